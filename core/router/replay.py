"""The replay log: writes the non-serving store missed, kept in order until they can be re-sent.

A failed mirror write must never fail the app's write, and must not be lost either. It goes
to a JSONL file (one operation a line, vectors as JSON floats — exact for float32). While the
log is non-empty, later mirror writes are appended behind it instead of being sent, so that a
replay never overwrites a newer value with an older one.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class ReplayLog:
    """An ordered list of pending operations: in a file (shared by processes) or in memory."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._depth = 0  # flock is per open file: nested holds must not lock twice

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the log for a replay: other threads and processes wait to append."""
        with self._lock:
            if self.path is None or self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path.with_name(self.path.name + ".lock"), "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def pending(self) -> bool:
        """Cheap: one stat. True when earlier operations still wait for a replay."""
        if self.path is None:
            return bool(self._memory)
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def append(self, entry: dict[str, Any]) -> None:
        with self.exclusive():
            if self.path is None:
                self._memory.append(entry)
                return
            line = json.dumps(entry, separators=(",", ":"), default=str) + "\n"
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)

    def entries(self) -> list[dict[str, Any]]:
        with self.exclusive():
            if self.path is None:
                return list(self._memory)
            try:
                text = self.path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return []
            # A torn last line (a crash mid-append) is skipped, not fatal.
            found = []
            for line in text.splitlines():
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
            return found

    def __len__(self) -> int:
        return len(self.entries())

    def rewrite(self, remaining: list[dict[str, Any]]) -> None:
        """Keep only what is still pending (called under `exclusive`)."""
        with self.exclusive():
            if self.path is None:
                self._memory = list(remaining)
                return
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # app data: private
            with open(fd, "w", encoding="utf-8") as handle:
                for entry in remaining:
                    handle.write(json.dumps(entry, separators=(",", ":"), default=str) + "\n")
            os.replace(tmp, self.path)
