"""What the framework tests share: a deterministic embedder, the records, migrate and validate.

Each framework test builds a Chroma store with the framework's own Chroma integration, migrates
it into a qdrant-client local directory (`qdrant+file://`, a client the frameworks open; Edge
is not one), and opens it with the framework's own Qdrant integration.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ferry.core.engine import MigrationOptions
from ferry.core.journal import Journal
from ferry.core.mapping import FERRY_ID_NAMESPACE
from ferry.core.runner import RunOutcome, migrate
from ferry.core.validate import ValidationOptions, ValidationReport, validate

DIM = 16
METRICS = ("l2", "cosine", "ip")
TOPICS = ("regex", "parsing", "search")
RECORDS = 24
QUERIES = ("how do I match a pattern", "tokenising text", "finding the best hit", "doc 7")


def embed(text: str) -> list[float]:
    """Deterministic, unnormalised (l2 and ip see lengths), the same in every process."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return [float(x) for x in np.random.default_rng(seed).normal(size=DIM)]


def record_id(i: int) -> str:
    """Custom string ids (as apps write them: "re.search#0") and canonical UUIDs, alternating."""
    return f"re.search#{i}" if i % 2 == 0 else str(uuid.uuid5(uuid.NAMESPACE_URL, f"doc/{i}"))


def text(i: int) -> str:
    return f"doc {i}: notes on {TOPICS[i % 3]} — número {i}"


def metadata(i: int) -> dict[str, Any]:
    """Exact types a migration must keep: str, int, float (not round), bool."""
    return {"topic": TOPICS[i % 3], "n": i, "weight": i / 7, "draft": i % 4 == 0}


def ferry_point(source_id: str) -> str:
    """Where Ferry puts a non-UUID id in the langchain/llamaindex layouts (the app's lookup)."""
    try:
        if str(uuid.UUID(source_id)) == source_id:
            return source_id
    except ValueError:
        pass
    return str(uuid.uuid5(FERRY_ID_NAMESPACE, source_id))


def assert_exact(a: Any, b: Any) -> None:
    """Equal and of the same type, all the way down (1 is not 1.0, True is not 1)."""
    assert a == b, (a, b)
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        for key in a:
            assert_exact(a[key], b[key])


@dataclass
class Built:
    chroma_dir: Path
    qdrant_dir: Path
    journal_path: Path
    collections: dict[str, str]  # metric -> collection name
    outcome: RunOutcome | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return f"chroma+file://{self.chroma_dir}"

    @property
    def target(self) -> str:
        return f"qdrant+file://{self.qdrant_dir}"

    def migrate(self, layout: str | None) -> RunOutcome:
        journal = Journal(self.journal_path)
        try:
            self.outcome = asyncio.run(
                migrate(self.source, self.target, [], MigrationOptions(layout=layout), journal)
            )
        finally:
            journal.close()
        assert self.outcome.status.value == "completed", self.outcome.to_json()
        return self.outcome

    def validate(self) -> ValidationReport:
        journal = Journal(self.journal_path)
        try:
            return asyncio.run(
                validate(
                    self.source,
                    self.target,
                    None,
                    ValidationOptions(full=True, queries=3, k=3),
                    journal,
                )
            )
        finally:
            journal.close()


def migrate_to_server(built: Built, url: str, layout: str | None) -> dict[str, str]:
    """Migrate the same Chroma collections into a Qdrant server (QDRANT_URL, else the test
    server) under names of their own; returns metric -> target collection name."""
    from ferry.core.targets import TargetNames
    from tests.test_qdrant_server import server_uri

    suffix = uuid.uuid4().hex[:6]
    names = TargetNames(template="{name}_" + suffix)
    journal = Journal(built.journal_path.with_name(f"server-{suffix}.db"))
    try:
        outcome = asyncio.run(
            migrate(
                built.source,
                server_uri(url),
                list(built.collections.values()),
                MigrationOptions(layout=layout, targets=names),
                journal,
            )
        )
    finally:
        journal.close()
    assert outcome.status.value == "completed", outcome.to_json()
    assert all(c.search_ready for c in outcome.collections), outcome.to_json()
    return {metric: names.resolve(name) for metric, name in built.collections.items()}


def drop_on_server(url: str, names: list[str]) -> None:
    import os

    from qdrant_client import QdrantClient

    client = QdrantClient(url=url, api_key=os.environ.get("QDRANT_API_KEY"))
    try:
        for name in names:
            client.delete_collection(name)
    finally:
        client.close()


def plan_of(built: Built, name: str) -> Any:
    assert built.outcome is not None
    return next(c for c in built.outcome.plan.collections if c.source.name == name)


def assert_clean(report: ValidationReport) -> None:
    for c in report.collections:
        assert c.ok, (c.name, c.reasons, c.to_json()["mismatched"], c.to_json()["extra"])
    assert report.ok
