"""Errors that carry what went wrong, where, and how to fix it.

Every failure that reaches a user is one line: the CLI prints ``str(error)`` and exits with
``error.exit_code``; the TUI shows the same line in a notification. Tracebacks are for
``--debug`` only.
"""

from __future__ import annotations

import errno


class FerryError(Exception):
    """A failure the user can act on. Exit code 2: bad input or a failed preflight."""

    exit_code = 2

    def __init__(self, what: str, where: str = "", fix: str = "") -> None:
        from ferry.core.secrets import redact  # a server may echo our key in its error text

        self.what = redact(what)
        self.where = redact(where)
        self.fix = redact(fix)
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
    """Worth retrying: timeouts, resets, 429 and 5xx answers.

    `throttled`: the server said "not now" (429, 503) rather than failing: the retry policy
    waits it out until the give-up time instead of counting it against the attempts, and
    views say *throttled*, not *unreachable*. `retry_after`: the seconds it asked for
    (its `Retry-After`), which the policy honours instead of its own backoff."""

    exit_code = 1

    def __init__(
        self,
        what: str,
        where: str = "",
        fix: str = "",
        retry_after: float | None = None,
        throttled: bool = False,
    ) -> None:
        super().__init__(what, where, fix)
        self.retry_after = retry_after
        self.throttled = throttled


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


class ResourceError(PermanentError):
    """A resource ran out or went away (disk full, read-only, a missing or unreadable file):
    retrying will not help until someone frees space or fixes permissions; resuming will."""


TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# "Not now" rather than "broken": rate limits and a server shedding load.
THROTTLE_STATUS = frozenset({429, 503})
# gRPC status names that mean "try again" (UNAVAILABLE, DEADLINE_EXCEEDED, …).
TRANSIENT_GRPC = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED"})
# Class-name families of transport failures: httpx (TransportError, TimeoutException, …),
# httpcore, requests, urllib3, the stdlib's ConnectionError/TimeoutError.
TRANSPORT_WORDS = ("Timeout", "Connect", "Remote", "Network", "Transport", "Protocol")
DISK_FULL = errno.ENOSPC, errno.EDQUOT
READ_ONLY = errno.EROFS, errno.EACCES, errno.EPERM


def classify(exc: BaseException, what: str, where: str = "", who: str = "") -> FerryError:
    """The one place that decides whether a failure is transient (retry) or permanent.

    Every connector routes its client's exceptions here — httpx and chromadb (servers),
    qdrant-client (REST and gRPC), the Qdrant Edge worker pipe, sqlite3 and the file
    system — so a reset means the same thing everywhere. `what` names the operation
    ("upsert"), `where` the resource (a URI or a path), `who` the party that failed to answer
    ("Chroma"). A FerryError passes through.
    """
    who = who or "the server"
    if isinstance(exc, FerryError):
        return exc
    detail = _short(in_words(exc, 400))  # the driver's message, not its class name
    full = detail
    resource = _resource_fault(exc, what, where)
    if resource is not None:
        return resource
    code = status_code(exc)
    if code is not None:
        if code in THROTTLE_STATUS:
            wait = retry_after(exc)
            asked = f", Retry-After {wait:g}s" if wait is not None else ""
            return TransientError(
                f"throttled: {who} answered {code} to {what}{asked}: {detail}",
                where,
                fix="it asks us to slow down: lower --rate or --workers, or raise --give-up-after",
                retry_after=wait,
                throttled=True,
            )
        if code in TRANSIENT_STATUS or code >= 500:
            return TransientError(f"{who} answered {code} to {what}: {detail}", where)
        if code in {401, 403}:
            return ConnectionFailed(
                f"{who} refused our credentials ({code}) on {what}",
                where,
                fix="check the variable named by ?api_key_env",
            )
        return PermanentError(f"{who} answered {code} to {what}: {detail}", where)
    grpc_code = _grpc_code(exc)
    if grpc_code is not None:
        if grpc_code == "RESOURCE_EXHAUSTED":  # gRPC's 429
            return TransientError(f"throttled: gRPC {grpc_code} on {what}", where, throttled=True)
        if grpc_code in TRANSIENT_GRPC:
            return TransientError(f"gRPC {grpc_code} on {what}", where)
        return PermanentError(f"gRPC {grpc_code} on {what}: {detail}", where)
    family = " ".join(cls.__name__ for cls in type(exc).__mro__)
    if isinstance(exc, ConnectionError | TimeoutError) or any(w in family for w in TRANSPORT_WORDS):
        return TransientError(f"{who} did not answer {what}: {full}", where)
    if "ResponseHandlingException" in family:  # qdrant-client wraps transport errors in it
        return TransientError(f"{who} did not answer {what}: {full}", where)
    if isinstance(exc, OSError) and exc.errno in {errno.ECONNRESET, errno.EPIPE, errno.ETIMEDOUT}:
        return TransientError(f"{who} did not answer {what}: {full}", where)
    return PermanentError(f"{who} refused {what}: {full}", where)


def status_code(exc: BaseException) -> int | None:
    """The HTTP status an exception carries, itself or in the chain it was raised from
    (chromadb turns an answer it does not know into `Exception(text)` or `ValueError`, raised
    while handling httpx's `HTTPStatusError`: the status is only there)."""
    for seen in _chain(exc):
        code = _own_status(seen)
        if code is not None:
            return code
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and what it was raised from or during, nearest first (bounded, cycle-safe)."""
    found: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in found and len(found) < 8:
        found.append(seen)
        seen = seen.__cause__ or seen.__context__
    return found


def _own_status(exc: BaseException) -> int | None:
    """qdrant-client's `status_code` (and its 429 `ResourceExhaustedResponse`), chromadb's
    `code()`, httpx's `response.status_code`."""
    if type(exc).__name__ == "ResourceExhaustedResponse" or _RETRY_AFTER_NOT_INT in str(exc):
        return 429  # qdrant-client raises these for a 429 that carries Retry-After
    for candidate in (getattr(exc, "status_code", None), getattr(exc, "code", None)):
        if callable(candidate):
            try:
                candidate = candidate()
            except Exception:
                candidate = None
        if isinstance(candidate, int) and 100 <= candidate < 600:
            return candidate
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


# qdrant-client's words when a 429's Retry-After is an HTTP date rather than seconds.
_RETRY_AFTER_NOT_INT = "Retry-After header value is not a valid integer: "


def retry_after(exc: BaseException) -> float | None:
    """The seconds a throttling server asked us to wait (`Retry-After`: seconds or an HTTP
    date), from the exception or the chain it was raised from; None when it did not say."""
    for seen in _chain(exc):
        seconds = getattr(seen, "retry_after_s", None)  # qdrant-client's 429
        if isinstance(seconds, int | float):
            return max(0.0, float(seconds))
        text = str(seen)
        if _RETRY_AFTER_NOT_INT in text:
            return parse_retry_after(text.split(_RETRY_AFTER_NOT_INT, 1)[1])
        for holder in (seen, getattr(seen, "response", None)):
            headers = getattr(holder, "headers", None)
            value = headers.get("retry-after") if hasattr(headers, "get") else None
            if value:
                return parse_retry_after(str(value))
    return None


def parse_retry_after(value: str, now: float | None = None) -> float | None:
    """RFC 9110 `Retry-After`: delay-seconds, or an HTTP date (seconds from now, not below 0)."""
    import email.utils
    import time

    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _grpc_code(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    if not callable(code) or "grpc" not in type(exc).__module__ + repr(type(exc).__mro__):
        return None
    try:
        value = code()
    except Exception:
        return None
    return getattr(value, "name", None) or str(value)


def _resource_fault(exc: BaseException, what: str, where: str) -> FerryError | None:
    """Disk full, read-only, missing or unreadable files, a damaged SQLite file."""
    text = str(exc)
    number = getattr(exc, "errno", None)
    if number in DISK_FULL or "No space left" in text or "database or disk is full" in text:
        return ResourceError(
            f"disk full during {what}", where, fix="free space there, then re-run to resume"
        )
    if number == errno.EROFS or "Read-only file system" in text or "readonly database" in text:
        return ResourceError(
            f"read-only file system during {what}",
            where,
            fix="make it writable (or use another place), then re-run to resume",
        )
    if isinstance(exc, PermissionError) or number in {errno.EACCES, errno.EPERM}:
        path = getattr(exc, "filename", None) or where
        return ResourceError(
            f"permission denied during {what}", str(path), fix="fix its permissions and re-run"
        )
    if isinstance(exc, FileNotFoundError):
        path = getattr(exc, "filename", None) or where
        return ResourceError(
            f"a file is missing during {what}", str(path), fix="restore it (or check the path)"
        )
    family = " ".join(cls.__name__ for cls in type(exc).__mro__)
    if "DatabaseError" in family and (
        "malformed" in text or "not a database" in text or "disk I/O" in text
    ):
        return ResourceError(
            f"damaged SQLite file during {what}: {_short(text)}",
            where,
            fix="restore it from a backup; Ferry never writes to a source",
        )
    return None


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
