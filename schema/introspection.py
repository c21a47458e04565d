"""With introspection off, errors must not give the schema away either: graphql-core's
"Did you mean ...?" suggestions name fields, arguments, types and enum values."""

import re
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

SUGGESTION = re.compile(r" Did you mean .*\?$", re.DOTALL)


class HideSuggestions(SchemaExtension):
    """Strips the suggestions from every error message of the operation."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        for error in (result.errors if result else None) or ():
            error.message = SUGGESTION.sub("", error.message)
