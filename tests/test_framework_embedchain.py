"""Embedchain 0.1.128: its ChromaDB store → `ferry migrate` (layout detected) → its QdrantDB.

Embedchain pins chromadb < 0.6 and langchain 0.3, so its side runs in a venv of its own
(tests/framework_venvs.py) as tests/embedchain_side.py, which says what it adapts (the client
QdrantDB opens, and `QdrantClient.search`, gone from qdrant-client since 1.16). Its `query`
(with and without a `where` filter on metadata), `get` and `count` give the same chunks,
metadata and ids after the move. Its own `add` cannot write to any Qdrant (it passes sha256
ids as point ids): the test shows that too.
"""

from __future__ import annotations

import asyncio

import pytest

from ferry.core.engine import MigrationOptions
from ferry.core.journal import Journal
from ferry.core.runner import migrate
from ferry.core.targets import TargetNames
from ferry.core.validate import ValidationOptions, ValidationReport, validate
from tests.framework_embed import DIM
from tests.framework_venvs import ScriptSession, framework_python
from tests.frameworks_common import Built, assert_clean, plan_of

pytestmark = pytest.mark.slow  # a venv of its own (cached), Embedchain imported once

REQUIREMENTS = ["embedchain==0.1.128", "qdrant-client>=1.20"]
TARGET = f"embedchain-store-{DIM}"  # what QdrantDB opens: collection_name-dimension


def validate_pair(b: Built) -> ValidationReport:
    journal = Journal(b.journal_path)
    try:
        return asyncio.run(
            validate(
                b.source,
                b.target,
                ["embedchain_store"],
                ValidationOptions(full=True, queries=3, k=3),
                journal,
                target_names={"embedchain_store": TARGET},
            )
        )
    finally:
        journal.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    python = framework_python("embedchain", REQUIREMENTS)
    root = tmp_path_factory.mktemp("embedchain")
    b = Built(root / "chroma", root / "qdrant", root / "journal.db", {})
    side = ScriptSession(python, "embedchain_side.py", root / "embedchain.log")  # imported once
    journal = Journal(b.journal_path)
    try:
        b.extra["answers"] = side.ask("write", str(b.chroma_dir))
        pairs = TargetNames(pairs={"embedchain_store": TARGET})
        b.outcome = asyncio.run(
            migrate(
                b.source, b.target, ["embedchain_store"], MigrationOptions(targets=pairs), journal
            )
        )
        assert b.outcome.status.value == "completed", b.outcome.to_json()
        b.extra["validated_before"] = validate_pair(b)
        b.extra["after"] = side.ask("read", str(b.qdrant_dir))
    finally:
        journal.close()
        side.close()
    return b


def test_plan_detects_embedchain_and_names_the_collection_its_qdrant_store_opens(
    built: Built,
) -> None:
    plan = plan_of(built, "embedchain_store")
    assert plan.detection.framework == "Embedchain", plan.detection
    assert plan.layout == "embedchain"
    text = "\n".join(plan.switch)
    assert f"--collection embedchain_store={TARGET}" in text
    assert "'identifier'" in text and "COSINE" in text


def test_validate_full_is_clean_after_migrate(built: Built) -> None:
    assert_clean(built.extra["validated_before"])


def test_embedchain_qdrant_gives_the_same_chunks_metadata_and_ids(built: Built) -> None:
    before, after = built.extra["answers"], built.extra["after"]
    assert after["collection"] == TARGET
    assert after["count"] == before["count"] == 8
    assert after["get"] == before["get"]  # the Chroma ids, from `identifier`
    for key, then in before.items():
        if key in ("get", "count"):
            continue
        now = after[key]
        if key.endswith("(where doc_id)"):  # a `where` on metadata: `metadata.doc_id` there
            assert now == then
            continue
        # QdrantDB's citations carry the chunk in metadata["text"] too (its own writer puts
        # it there): the rest is the metadata Chroma gave.
        assert [text for text, _ in now] == [text for text, _ in then]
        for (text, meta), (_, chroma_meta) in zip(now, then, strict=True):
            assert meta.pop("text") == text
            assert meta == chroma_meta


def test_embedchains_own_writer_cannot_write_to_qdrant(built: Built) -> None:
    """Why Ferry writes uuid5 point ids and keeps the original in `identifier`."""
    assert "is not a valid UUID" in built.extra["after"]["app_write_error"]
