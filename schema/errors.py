"""Maps the errors resolvers raise to `extensions.code`, and masks every unexpected one."""

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from models.errors import BadInput

log = logging.getLogger("wareports.graphql")

INTERNAL_MESSAGE = "Internal server error"


class ErrorCodes(SchemaExtension):
    """Sets `extensions.code` on every error; unexpected exceptions keep only a request id."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        result.errors = [self._coded(error) for error in result.errors]

    def _coded(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        extensions = dict(error.extensions or {})
        if original is None or isinstance(original, GraphQLError):
            # As Apollo Server does: a variable value that does not coerce (a malformed Date, an
            # unknown enum value, a missing required variable) is the caller's input, not a
            # malformed document.
            invalid_variable = error.message.startswith("Variable '$")
            extensions.setdefault(
                "code", "BAD_USER_INPUT" if invalid_variable else "GRAPHQL_VALIDATION_FAILED"
            )
            error.extensions = extensions
            return error
        if isinstance(original, BadInput):
            return self._replace(error, str(original), code="BAD_USER_INPUT", field=original.field)
        request_id = self._request_id()
        log.error(
            "unexpected error in %s (request %s)",
            ".".join(str(part) for part in error.path or ()),
            request_id,
            exc_info=original,
        )
        return self._replace(
            error, INTERNAL_MESSAGE, code="INTERNAL_SERVER_ERROR", requestId=request_id
        )

    def _request_id(self) -> str | None:
        context = self.execution_context.context
        return getattr(context, "request_id", None)

    @staticmethod
    def _replace(error: GraphQLError, message: str, **extensions: object) -> GraphQLError:
        return GraphQLError(
            message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions=extensions,
        )
