"""Website WhatsApp buttons: `wareports button create`, clicks on /w/{key}, attribution."""

import json
import re
import time
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from ingest.buttons import create_button
from models import WidgetButton, WidgetClick
from models.db import transaction
from models.settings import get_settings
from tests.conftest import TestAccount, make_settings
from tests.ingest.support import (
    PNID,
    add_channel,
    conversations,
    count_rows,
    inbound,
    post_webhook,
    rows,
)

DAY = 86400
MARKER = re.compile(r"\[ref ([A-Z0-9]{6})\]")


@pytest.fixture
async def button(engine: AsyncEngine, account: TestAccount) -> WidgetButton:
    await add_channel(engine, account.id)
    async with transaction(engine) as session:
        return await create_button(session, account.id, PNID, "Pricing page", "Hello there")


async def click(client: httpx.AsyncClient, key: str, **params: str) -> str:
    """Click and return the reference code the redirect carries."""
    response = await client.get(f"/w/{key}", params=params)
    assert response.status_code == 302, response.text
    text = parse_qs(urlsplit(response.headers["location"]).query)["text"][0]
    found = MARKER.search(text)
    assert found is not None, text
    return found.group(1)


async def clicks(engine: AsyncEngine) -> list[WidgetClick]:
    return await rows(engine, WidgetClick, WidgetClick.id)


def test_cli_button_create(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAREPORTS_DATABASE_URL", database_url)
    monkeypatch.setenv("WAREPORTS_PUBLIC_URL", "https://wa.example.com/")
    get_settings.cache_clear()
    try:
        runner = CliRunner()

        def run(*args: str) -> dict[str, object]:
            result = runner.invoke(cli, list(args))
            assert result.exit_code == 0, result.output
            return json.loads(result.stdout)  # type: ignore[no-any-return]

        account = run("account", "create", "--name", "Shop")
        run(
            "channel", "add", "--account", str(account["id"]), "--phone-number-id", "555",
            "--display-number", "+33 1 23 45 67 89", "--app-secret", "s", "--verify-token", "v",
        )  # fmt: skip
        button = run(
            "button", "create", "--account", str(account["id"]), "--phone-number-id", "555",
            "--name", "Footer", "--prefill", "Hi!",
        )  # fmt: skip
        key = button["key"]
        assert isinstance(key, str) and re.fullmatch(r"[A-Za-z0-9_-]{8,}", key)
        assert button["url"] == f"https://wa.example.com/w/{key}"
        assert (button["name"], button["prefill"], button["accountId"]) == (
            "Footer",
            "Hi!",
            account["id"],
        )
        assert isinstance(button["id"], int)
        refused = runner.invoke(
            cli,
            [
                "button",
                "create",
                "--account",
                str(account["id"]),
                "--phone-number-id",
                "999",
                "--name",
                "X",
            ],
        )
        assert refused.exit_code == 2
        assert "no number with phone-number-id 999" in refused.stderr
    finally:
        get_settings.cache_clear()


async def test_click_is_recorded_and_redirected(
    client: httpx.AsyncClient, engine: AsyncEngine, button: WidgetButton
) -> None:
    before = int(time.time())
    response = await client.get(
        f"/w/{button.key}",
        params={"utm_campaign": "  spring  ", "utm_medium": " ", "utm_source": "newsletter"},
        headers={"Referer": "https://shop.example.com/pricing?plan=pro&utm_x=1#faq"},
    )
    assert response.status_code == 302
    assert response.headers["cache-control"] == "no-store"
    location = response.headers["location"]
    [row] = await clicks(engine)
    assert location == f"https://wa.me/972123456789?text=Hello%20there%20%5Bref%20{row.ref_code}%5D"
    assert re.fullmatch(r"[A-Z2-9]{6}", row.ref_code)
    assert (row.button_id, row.account_id, row.conversation_id) == (
        button.id,
        button.account_id,
        None,
    )
    assert row.referrer == "https://shop.example.com/pricing"
    assert (row.utm_campaign, row.utm_medium, row.utm_source, row.utm_term, row.utm_content) == (
        "spring",
        None,
        "newsletter",
        None,
        None,
    )
    assert before <= row.clicked_at <= int(time.time())


async def test_a_head_request_is_answered_but_not_a_click(
    client: httpx.AsyncClient, engine: AsyncEngine, button: WidgetButton
) -> None:
    """Link checkers and chat previews ask with HEAD: each was stored as a click."""
    response = await client.head(f"/w/{button.key}")
    assert response.status_code == 302
    assert response.headers["location"] == "https://wa.me/972123456789?text=Hello%20there"
    assert await clicks(engine) == []


async def test_clicks_are_recorded_up_to_a_rate_per_client_address(
    database_url: str, engine: AsyncEngine, button: WidgetButton
) -> None:
    """One address could store any number of anonymous clicks (300 in 4.9 s); beyond the rate
    the visitor still reaches WhatsApp, and nothing is stored. Other addresses are not held."""
    application = create_app(make_settings(database_url, click_rate_limit="3/minute"))
    coded: list[bool] = []
    async with application.router.lifespan_context(application):
        for address, visits in (("203.0.113.7", 5), ("198.51.100.9", 1)):
            transport = httpx.ASGITransport(app=application, client=(address, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as web:
                for _ in range(visits):
                    response = await web.get(f"/w/{button.key}")
                    assert response.status_code == 302
                    location = unquote(response.headers["location"])
                    assert location.startswith("https://wa.me/972123456789?text=Hello there")
                    coded.append(MARKER.search(location) is not None)
    assert coded == [True, True, True, False, False, True]
    assert len(await clicks(engine)) == 4


async def test_nul_characters_in_a_link_are_dropped_and_the_click_counts(
    client: httpx.AsyncClient, engine: AsyncEngine, button: WidgetButton
) -> None:
    # PostgreSQL text cannot hold U+0000: removed from the stored values, never a 500.
    response = await client.get(
        f"/w/{button.key}", params={"utm_campaign": "spr\x00ing", "utm_term": "\x00"}
    )
    assert response.status_code == 302
    [row] = await clicks(engine)
    assert (row.utm_campaign, row.utm_term) == ("spring", None)


async def test_each_click_gets_its_own_code(
    client: httpx.AsyncClient, engine: AsyncEngine, button: WidgetButton
) -> None:
    codes = [await click(client, button.key) for _ in range(5)]
    assert len(set(codes)) == 5
    assert sorted(row.ref_code for row in await clicks(engine)) == sorted(codes)
    assert all(row.referrer is None for row in await clicks(engine))


async def test_button_without_prefill_carries_only_the_code(
    client: httpx.AsyncClient, engine: AsyncEngine, account: TestAccount
) -> None:
    await add_channel(engine, account.id)
    async with transaction(engine) as session:
        bare = await create_button(session, account.id, PNID, "Bare")
    code = await click(client, bare.key)
    response = await client.get(f"/w/{bare.key}")
    assert response.headers["location"].startswith("https://wa.me/972123456789?text=%5Bref%20")
    assert code


@pytest.mark.parametrize("key", ["doesnotexist", "x", "bad.key~", "a" * 200])
async def test_unknown_key_is_404_and_stores_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, button: WidgetButton, key: str
) -> None:
    response = await client.get(f"/w/{key}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Link not found" in response.text
    assert (await count_rows(engine))["widget_click"] == 0


# --- attribution


async def test_first_message_with_the_code_attributes_its_conversation(
    client: httpx.AsyncClient, engine: AsyncEngine, button: WidgetButton
) -> None:
    code = await click(client, button.key)
    now = int(time.time())
    text = f"Hello there [ref {code}]"
    assert (await post_webhook(client, inbound("w1", "33611111111", now + 20, text))).status_code
    # The same code from someone else, later: the click is used already.
    await post_webhook(client, inbound("w2", "33622222222", now + 40, text))
    first, second = await conversations(engine)
    [row] = await clicks(engine)
    assert (first.widget_click_id, row.conversation_id) == (row.id, first.id)
    assert second.widget_click_id is None


async def test_code_is_matched_whatever_its_case(
    client: httpx.AsyncClient, engine: AsyncEngine, button: WidgetButton
) -> None:
    code = await click(client, button.key)
    now = int(time.time())
    await post_webhook(client, inbound("w1", "33611111111", now, f"hi [ref {code.lower()}]"))
    [conversation] = await conversations(engine)
    [row] = await clicks(engine)
    assert conversation.widget_click_id == row.id


async def test_code_older_than_seven_days_does_not_attribute(
    client: httpx.AsyncClient, engine: AsyncEngine, button: WidgetButton
) -> None:
    code = await click(client, button.key)
    now = int(time.time())
    async with transaction(engine) as session:
        await session.execute(update(WidgetClick).values(clicked_at=now - 7 * DAY - 60))
    await post_webhook(client, inbound("w1", "33611111111", now, f"[ref {code}]"))
    [conversation] = await conversations(engine)
    assert conversation.widget_click_id is None
    assert (await clicks(engine))[0].conversation_id is None


async def test_code_within_seven_days_attributes(
    client: httpx.AsyncClient, engine: AsyncEngine, button: WidgetButton
) -> None:
    code = await click(client, button.key)
    now = int(time.time())
    async with transaction(engine) as session:
        await session.execute(update(WidgetClick).values(clicked_at=now - 7 * DAY + 60))
    await post_webhook(client, inbound("w1", "33611111111", now, f"[ref {code}]"))
    [conversation] = await conversations(engine)
    assert conversation.widget_click_id == (await clicks(engine))[0].id


async def test_an_attributed_conversation_keeps_its_click(
    client: httpx.AsyncClient, engine: AsyncEngine, button: WidgetButton
) -> None:
    first_code = await click(client, button.key)
    second_code = await click(client, button.key)
    now = int(time.time())
    await post_webhook(client, inbound("w1", "33611111111", now, f"[ref {first_code}]"))
    await post_webhook(client, inbound("w2", "33611111111", now + 5, f"[ref {second_code}]"))
    [conversation] = await conversations(engine)
    first, second = await clicks(engine)
    assert conversation.widget_click_id == first.id
    assert (first.conversation_id, second.conversation_id) == (conversation.id, None)


async def test_a_code_without_click_or_from_another_account_is_ignored(
    client: httpx.AsyncClient, engine: AsyncEngine, button: WidgetButton
) -> None:
    now = int(time.time())
    await post_webhook(client, inbound("w1", "33611111111", now, "[ref ABCDEF] [ref]"))
    [conversation] = await conversations(engine)
    assert conversation.widget_click_id is None
