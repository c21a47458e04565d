"""The few errors the layers raise on purpose; `api` and `schema` map them to HTTP and GraphQL."""


class BadInput(ValueError):
    """Input that names something wrong: `field` says where, `reason` says what."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFound(LookupError):
    """A named object that does not exist in the account."""
