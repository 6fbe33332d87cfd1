"""Errors that carry what went wrong, where, and how to fix it.

Every failure that reaches a user is one line: the CLI prints ``str(error)`` and exits with
``error.exit_code``; the TUI shows the same line in a notification. Tracebacks are for
``--debug`` only.
"""

from __future__ import annotations


class FerryError(Exception):
    """A failure the user can act on. Exit code 2: bad input or a failed preflight."""

    exit_code = 2

    def __init__(self, what: str, where: str = "", fix: str = "") -> None:
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = self.what
        if self.where:
            text += f" [{self.where}]"
        if self.fix:
            text += f" — {self.fix}"
        return text.replace("\n", " ")


class PreflightError(FerryError):
    """Found before a single write: nothing on the target was changed."""


class ConnectionFailed(FerryError):
    """The database could not be reached or refused our credentials."""


class TransientError(FerryError):
    """Worth retrying: timeouts, resets, 429 and 5xx answers."""

    exit_code = 1


class PermanentError(FerryError):
    """Retrying will not help (bad dimension, auth, id collision): stop this collection."""

    exit_code = 1


def in_words(exc: BaseException, limit: int = 160) -> str:
    """A driver's exception as a person reads it: its message, never its Python class name
    ("ValueError: Could not connect…" → "Could not connect…"). A message-less exception is
    named in words from its class ("ReadTimeout" → "read timeout")."""
    if isinstance(exc, FerryError):
        return exc.one_line()
    text = " ".join(str(exc).split())
    if not text:
        name = type(exc).__name__
        text = "".join(f" {c.lower()}" if c.isupper() else c for c in name).strip()
    return text[:limit]
