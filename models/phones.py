"""The country of a phone number, from its E.164 form, with Google's libphonenumber data
(`phonenumbers`): what WhatsApp's per-message prices depend on (the recipient's calling code)."""

from functools import lru_cache
from typing import Any

import phonenumbers

# Calling codes shared by several regions (+1, +7, +44, ...) fall back to their main region
# when the number is not a valid one of any of them; "001" names a non-geographic code.
NO_REGION = frozenset({"ZZ", "001"})


@lru_cache(maxsize=65_536)
def country_of(phone: str) -> str | None:
    """ISO 3166-1 alpha-2 code of an E.164 number ("+33612345678" → "FR"); None when the
    number names no region (unknown calling code, non-geographic, not a number)."""
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number) or (
        phonenumbers.region_code_for_country_code(number.country_code or 0)
    )
    return None if region in NO_REGION else region


def country_default(context: Any) -> str | None:
    """Column default of `contact.country`: the region of the row's `phone`, so every insert
    (ORM, Core executemany, multi-row VALUES, the demo generator) fills it alike."""
    phone = context.get_current_parameters(isolate_multiinsert_groups=True).get("phone")
    return country_of(phone) if isinstance(phone, str) else None
