"""Errors raised by the router's core; each says what went wrong, where, and what is allowed.

    BotError                      base of everything the core raises on purpose
    ├── ConfigError               a setting that cannot work (bad value, missing model path)
    ├── IntentFileError           intents/*.yaml: `path:line: message`
    │   └── KnowledgeFileError    intents/knowledge/*: `path:line: message`
    ├── TemplateError             an answer template that does not compile or is unsafe
    ├── ModelError                the encoder model cannot be loaded
    ├── NotFoundError             a named thing (intent, conversation, ticket) does not exist   -> 404
    ├── ConflictError             the request clashes with current state (ticket already claimed) -> 409
    └── InvalidInputError         a well-formed value that is not allowed here, naming the field -> 422

The API turns these into HTTP responses in exactly one handler; the CLI prints `str(error)` and
exits 2. Neither ever shows a traceback for them.
"""

from __future__ import annotations

from pathlib import Path


class BotError(Exception):
    """Base class for errors a user can act on."""


class ConfigError(BotError):
    """A setting has a value that cannot work."""


class IntentFileError(BotError):
    """A problem in an intent file, located as `path:line`."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {message}")


class KnowledgeFileError(IntentFileError):
    """A problem in a knowledge-base file, located as `path:line`."""


class TemplateError(BotError):
    """An answer template that fails to compile or tries to escape the sandbox."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(message)


class ModelError(BotError):
    """The sentence-encoder model cannot be loaded."""


class NotFoundError(BotError):
    """A named object does not exist."""


class ConflictError(BotError):
    """The request clashes with the current state (a ticket already claimed or resolved)."""


class BusyError(BotError):
    """The work asked for is already running and runs one at a time; retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class InvalidInputError(BotError):
    """A request value that is well-formed but not allowed here; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")
