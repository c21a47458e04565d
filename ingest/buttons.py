"""Website WhatsApp buttons: buttons, clicks with their reference codes, and click attribution."""

import re
import secrets
from dataclasses import dataclass
from urllib.parse import quote

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ingest import aggregates, conversations
from ingest.contacts import insert_ignoring_conflicts
from ingest.conversations import Clock
from models import Channel, Conversation, WidgetButton, WidgetClick
from models.errors import BadInput, NotFound

KEY_BYTES = 9  # 12 url-safe characters
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,64}")
# Codes avoid look-alike characters (0/O, 1/I) since people may retype them.
REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
REF_LENGTH = 6
REF_CODE = re.compile(r"\[ref ([A-Za-z0-9]{6})\]")
ATTRIBUTION_SECONDS = 7 * 24 * 3600
CLOCK_SKEW_SECONDS = 300  # WhatsApp's message instants and ours may disagree a little
MAX_REFERRER_LENGTH = 2048
MAX_UTM_LENGTH = 255
UTM_FIELDS = ("utm_campaign", "utm_medium", "utm_source", "utm_term", "utm_content")


@dataclass(frozen=True)
class ClickDetails:
    """Where a click came from: the referring page (no query string) and the UTM values."""

    referrer: str | None
    utm: dict[str, str | None]


def marker(code: str) -> str:
    """How a reference code appears in the prefilled text, recognisable in the first message."""
    return f"[ref {code}]"


def button_url(public_url: str, key: str) -> str:
    return f"{public_url}/w/{key}"


def whatsapp_link(display_number: str, prefill: str, code: str | None) -> str:
    """The wa.me link with the prefilled text and the click's reference code (none for a visit
    that was not recorded)."""
    digits = "".join(char for char in display_number if char.isdigit())
    parts = [part for part in (prefill.strip() and prefill, code and marker(code)) if part]
    if not parts:
        return f"https://wa.me/{digits}"
    return f"https://wa.me/{digits}?text={quote(' '.join(parts), safe='')}"


def click_details(referer: str | None, query: dict[str, str]) -> ClickDetails:
    referrer = None
    if referer:
        referrer = _stored(referer.split("#", 1)[0].split("?", 1)[0], MAX_REFERRER_LENGTH)
    utm = {field: _stored(query.get(field) or "", MAX_UTM_LENGTH) for field in UTM_FIELDS}
    return ClickDetails(referrer=referrer, utm=utm)


def _stored(value: str, length: int) -> str | None:
    # A visitor's link may carry %00, which PostgreSQL text cannot hold: the click still counts.
    return value.replace("\x00", "").strip()[:length] or None


async def create_button(
    session: AsyncSession, account_id: int, phone_number_id: str, name: str, prefill: str = ""
) -> WidgetButton:
    if not name.strip():
        raise BadInput("name", "must not be empty")
    channel_id = await session.scalar(
        select(Channel.id).where(
            Channel.account_id == account_id, Channel.phone_number_id == phone_number_id
        )
    )
    if channel_id is None:
        raise NotFound(f"account {account_id} has no number with phone-number-id {phone_number_id}")
    button = WidgetButton(
        account_id=account_id,
        channel_id=channel_id,
        key=secrets.token_urlsafe(KEY_BYTES),
        name=name.strip(),
        prefill=prefill.strip(),
    )
    session.add(button)
    await session.flush()
    return button


async def find_button(session: AsyncSession, key: str) -> tuple[WidgetButton, str] | None:
    """The button with this key and the display number it opens, or None."""
    if not KEY_PATTERN.fullmatch(key):
        return None
    row = (
        await session.execute(
            select(WidgetButton, Channel.display_number)
            .join(Channel, col(Channel.id) == WidgetButton.channel_id)
            .where(WidgetButton.key == key)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def record_click(
    session: AsyncSession, button: WidgetButton, details: ClickDetails, at: int
) -> WidgetClick:
    """Store a click with a new reference code, unique in the account."""
    while True:
        code = "".join(secrets.choice(REF_ALPHABET) for _ in range(REF_LENGTH))
        values = {
            "account_id": button.account_id,
            "button_id": button.id,
            "clicked_at": at,
            "referrer": details.referrer,
            "ref_code": code,
            **details.utm,
        }
        if await insert_ignoring_conflicts(session, WidgetClick, values):
            click = await session.scalar(
                select(WidgetClick).where(
                    WidgetClick.account_id == button.account_id, WidgetClick.ref_code == code
                )
            )
            assert click is not None
            await aggregates.count_click(session, click, button.name)
            return click


async def attribute(
    session: AsyncSession, clock: Clock, conversation: Conversation, text: str | None, at: int
) -> None:
    """Attribute the conversation to the click whose code an inbound message at `at` carries,
    when the message came within 7 days of the click and neither side is attributed yet."""
    if conversation.widget_click_id is not None or not text:
        return
    for code in REF_CODE.findall(text):
        click = await session.scalar(
            select(WidgetClick)
            .where(
                WidgetClick.account_id == clock.account_id,
                WidgetClick.ref_code == code.upper(),
                col(WidgetClick.conversation_id).is_(None),
                col(WidgetClick.clicked_at) <= at + CLOCK_SKEW_SECONDS,
                col(WidgetClick.clicked_at) >= at - ATTRIBUTION_SECONDS,
            )
            .with_for_update()
        )
        if click is not None:
            await conversations.attach_click(session, clock, conversation, click)
            name = await session.scalar(
                select(WidgetButton.name).where(WidgetButton.id == click.button_id)
            )
            assert name is not None
            await aggregates.count_click(session, click, name, attributed=True)
            return
