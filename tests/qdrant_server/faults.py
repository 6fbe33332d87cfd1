"""Faults a test asks for, per endpoint, and what the emulator saw (for the key tests).

Rules are set over the control API (`PUT /__emulator/faults`): each names a method and a
path pattern, then what to do to the next `times` matching requests (all of them when
`times` is absent): answer `status` (401, 429 with `retry_after`, 503, ...) in Qdrant's
error shape, answer after `delay` seconds, or `cut` the answer short (a declared length
never sent: the client sees the connection end mid-answer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass
class Fault:
    path: str = ".*"  # a regular expression matched against the whole path
    method: str | None = None
    status: int | None = None
    retry_after: str | None = None  # seconds, or an HTTP date, as the header carries it
    delay: float = 0.0
    cut: bool = False
    times: int | None = None  # None: every matching request
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        return re.fullmatch(self.path, path) is not None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        known = {"path", "method", "status", "retry_after", "delay", "cut", "times"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "method": self.method,
            "status": self.status,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "cut": self.cut,
            "times": self.times,
            "hits": self.hits,
        }


@dataclass
class Seen:
    """One request as the server received it (the key only as whether it matched)."""

    method: str
    path: str
    query: str
    status: int
    api_key_header: bool  # an `api-key` header was sent
    key_elsewhere: bool  # the configured key appeared in the path, query, another header or body
    collection_status: str | None = None  # what a collection info answer reported
    at: float = 0.0  # when it arrived (time.time())
    seconds: float = 0.0  # how long the answer took
    bytes: int = 0  # the request body's size

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)
