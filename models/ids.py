"""Row ids as clients send them: ASCII digits only, within PostgreSQL's INTEGER (the id columns'
type on both engines). Superscript, Arabic-Indic or mathematical digits are not ids, whatever
Python's `int` makes of them."""

MAX_ID = 2**31 - 1


def parse_id(text: str) -> int | None:
    """The id `text` spells, or None when it spells no id a row can have."""
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None
