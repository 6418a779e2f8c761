"""Every error haggler raises on purpose.

    HagglerError                 base: one line that says what failed, the value, and the fix
    ├── SpecError                a spec (YAML file or Python object) is malformed or inconsistent
    ├── ConfigError              the environment is wrong: a missing API key, an unknown model prefix
    │   └── ParameterError       a plug-in's factory refused its parameters (names the parameter)
    ├── StoreError               the store cannot be opened, is of a newer schema, or lacks a record
    ├── RequestError             a forget request in words cannot be understood or is ambiguous
    └── ModelError               a model call failed for good (after retries, where retrying makes sense)
        ├── ModelAuthError       the provider refused the credentials (HTTP 401/403): not retried
        ├── ModelRequestError    the provider refused the request (HTTP 400/404/422): not retried
        └── TransientModelError  rate limit, timeout, connection or 5xx: retried, raised when retries run out
            └── ModelUnreachableError  nothing listens at the server's address, or its host does not
                                       resolve: retried once, quickly (see haggler.llm.retry)

The CLI prints `str(error)` and exits with status 2 for SpecError, ConfigError and StoreError
(and RequestError, which is a user's mistake in the same way).
Messages never hold secrets: model errors pass through `haggler.llm.secrets.redact`.
Bad *model output* is never an exception: it is a game outcome (see haggler.games).
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "failure_reason",
    "HagglerError",
    "ModelAuthError",
    "ModelError",
    "ModelRequestError",
    "ModelUnreachableError",
    "ParameterError",
    "RequestError",
    "SpecError",
    "StoreError",
    "PlayerError",
    "TransientModelError",
]


class HagglerError(Exception):
    """Base of every error raised on purpose by haggler."""


class SpecError(HagglerError):
    """A spec is malformed; the message names the source, the field path and the fix."""

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.message = message
        self.source = source
        self.field = field
        where = ": ".join(part for part in (source, field) if part)
        super().__init__(f"{where}: {message}" if where else message)


class ConfigError(HagglerError):
    """The environment cannot serve the spec (a missing API key, an unknown model prefix)."""


class ParameterError(ConfigError):
    """A plug-in's factory refused the parameters a spec gave it (see `haggler.registry`);
    `parameter` names the one at fault, None when the call as a whole was refused."""

    def __init__(self, message: str, *, parameter: str | None = None, unknown: bool = False):
        self.parameter = parameter
        # The factory takes no such parameter (rather than refusing its value).
        self.unknown = unknown
        super().__init__(message)


class StoreError(HagglerError):
    """The store cannot be opened or read as asked."""


class RequestError(HagglerError):
    """A forget request in words cannot be read, or could mean more than one thing; the message
    quotes the words and says how to put them (raised by the unlearners in
    `haggler.agents.unlearner`)."""


class ModelError(HagglerError):
    """A model call failed for good."""

    def __init__(self, message: str, *, model: str, status: int | None = None):
        self.model = model
        self.status = status
        super().__init__(message)


class PlayerError(ModelError):
    """A player's own code raised (a role plug-in's bug, a local model's runtime): the game
    cannot go on. A run treats it as a model that failed for good; `model` is the player's
    label and the original exception its `__cause__`."""


class ModelAuthError(ModelError):
    """The provider refused the credentials; retrying cannot help."""


class ModelRequestError(ModelError):
    """The provider refused the request itself; retrying cannot help."""


class TransientModelError(ModelError):
    """A failure that may pass: rate limit, timeout, dropped connection, server error."""

    def __init__(
        self,
        message: str,
        *,
        model: str,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        self.retry_after = retry_after
        super().__init__(message, model=model, status=status)


class ModelUnreachableError(TransientModelError):
    """No server could be reached: the connection was refused or the host does not resolve.

    Retried once after a short pause (a server may be restarting), not with the backoff of a
    busy one: nobody should wait half a minute to learn that nothing listens at an address.
    """


def failure_reason(error: BaseException) -> str:
    """Why a game or lineage did not finish, as stored: one line, no secret, no traceback."""
    import asyncio

    from haggler.llm.secrets import redact

    if isinstance(error, KeyboardInterrupt | asyncio.CancelledError):
        return "interrupted before the game ended"
    if isinstance(error, HagglerError):
        return redact(str(error))
    return f"{type(error).__name__}: {redact(str(error))}"[:500]
