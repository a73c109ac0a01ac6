"""The exception hierarchy of deskline.

DesklineError
├── StorageUnavailableError     Redis unreachable or timed out: the webhook answers 503
├── InvalidInputError           bad input from a caller; carries the offending `field`
│   └── WebhookPayloadError     a body that is not a webhook envelope (400)
├── NotFoundError               an API resource that does not exist (404)
├── ForbiddenError              the caller may see it, but may not do that (403)
├── ConflictError               a request that contradicts current state (409); carries `code`
└── OutboxError                 a send to Meta that did not go out
    ├── TransientError          worth retrying later: timeouts, 5xx, throttling codes
    └── PermanentError          retrying cannot help: window closed, invalid parameter, token
        └── WindowClosedError   free text outside the 24-hour window, refused locally
"""

from __future__ import annotations


class DesklineError(Exception):
    """Base of every error deskline raises on purpose."""


class StorageUnavailableError(DesklineError):
    """Redis could not be reached, or did not answer in time."""


class InvalidInputError(DesklineError):
    """Input that breaks a rule; `field` is its dotted path (`service_hours.weekly.mon[0].end`)."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


class BadRequestError(InvalidInputError):
    """A request body that cannot be read at all (not JSON, a number Python will not convert,
    absurd nesting): a 400 naming `field` ("body"), where a rule broken by readable input is
    a 422."""


class WebhookPayloadError(InvalidInputError):
    """A POST /webhook body that is not JSON, or not an object with an `entry` list."""


class NotFoundError(DesklineError):
    """The resource does not exist (or the caller may not know that it does)."""


class ForbiddenError(DesklineError):
    """The caller may see the resource but may not do this to it (a service's permission check).

    Whoever may not even learn that the resource exists gets NotFoundError instead.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConflictError(DesklineError):
    """The request contradicts the current state, e.g. `window_closed`, `served_by_another`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class OutboxError(DesklineError):
    """A message to Meta did not go out. `code` is Meta's error code when Meta gave one."""

    def __init__(self, message: str, *, code: int | None = None, http_status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status


class TransientError(OutboxError):
    """Retry later: connection error, timeout, 5xx, or a Graph throttling code."""


class PermanentError(OutboxError):
    """Do not retry: Meta refused the request for a reason a retry cannot change."""


class WindowClosedError(PermanentError):
    """Free text outside the 24-hour customer service window; only a template may go."""
