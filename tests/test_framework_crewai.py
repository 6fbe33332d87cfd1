"""CrewAI: knowledge and RAG collections written through CrewAI's Chroma client → `ferry migrate`
(layout detected) → CrewAI's Qdrant client (`QdrantConfig`), at its defaults.

CrewAI pins what Ferry runs on (pydantic, rich, portalocker …), so its side runs in a venv
of its own (tests/framework_venvs.py) as tests/crewai_side.py; Ferry runs here. Its knowledge
query (`KnowledgeStorage.search`) and its client's `search` (with a metadata filter) give the
same documents, metadata and scores after the move.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest

from ferry.core.journal import Journal
from ferry.core.validate import ValidationOptions, validate
from tests.framework_venvs import ScriptSession, framework_python
from tests.frameworks_common import Built, assert_clean, plan_of

pytestmark = pytest.mark.slow  # a venv of its own (cached) and CrewAI's ~10 s import

REQUIREMENTS = ["crewai==1.15.30", "qdrant-client>=1.20"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    python = framework_python("crewai", REQUIREMENTS)
    root = tmp_path_factory.mktemp("crewai")
    b = Built(root / "chroma", root / "qdrant", root / "journal.db", {})
    side = ScriptSession(python, "crewai_side.py", root / "crewai.log")  # imported once
    try:
        b.extra["answers"] = side.ask("write", str(b.chroma_dir))
        b.migrate(None)  # detected: no --layout
        b.extra["validated_before"] = b.validate()
        b.extra["after"] = side.ask("read-and-write", str(b.qdrant_dir))
    finally:
        side.close()
    return b


def test_plan_detects_crewai_and_says_what_changes(built: Built) -> None:
    for name in ("knowledge_handbook", "crew_notes"):
        plan = plan_of(built, name)
        assert plan.detection.framework == "CrewAI", plan.detection
        assert plan.layout == "crewai"
        text = "\n".join(plan.switch)
        assert "QdrantConfig" in text
        assert "score_threshold" in text  # raw cosine on Qdrant, (cos + 1) / 2 on Chroma


def test_validate_full_is_clean_after_migrate(built: Built) -> None:
    assert_clean(built.extra["validated_before"])


def test_crewai_qdrant_gives_the_same_documents_metadata_and_scores(built: Built) -> None:
    before, after = built.extra["answers"], built.extra["after"]
    for query, then in before.items():
        now = after[query]
        # The same hits, metadata exactly (no key of Ferry's), the same normalised scores.
        # But CrewAI's Qdrant client hands score_threshold to Qdrant as a raw cosine, while
        # the scores it reports are (cos + 1) / 2: a threshold t keeps scores ≥ (t + 1) / 2
        # now (0 → 0.5; the default 0.6 → 0.8). Chroma kept scores ≥ t.
        for kind in ("knowledge", "notes", "team_a"):
            assert now[kind] == [hit for hit in then[kind] if hit[-1] >= 0.5], kind
        assert now["team_a_default_threshold"] == [c for c, s in then["team_a"] if s >= 0.8]
        assert then["team_a_default_threshold"] == [c for c, s in then["team_a"] if s >= 0.6]
    assert any(len(v["knowledge"]) == 4 for v in before.values())
    assert any(hit[-1] < 0.5 for v in before.values() for hit in v["notes"])  # the rule is seen


def test_an_app_write_reads_back_under_the_id_crewais_chroma_store_gives_it(built: Built) -> None:
    assert built.extra["after"]["app_write"] == [["written by the app", {"ticket": 99}]]
    journal = Journal(built.journal_path)
    try:
        report = asyncio.run(
            validate(
                built.source,
                built.target,
                ["crew_notes"],
                ValidationOptions(full=True, queries=3, k=3),
                journal,
            )
        )
    finally:
        journal.close()
    notes = report.collections[0].to_json()
    content = 'written by the app|{"ticket": 99}'
    # Not in Chroma, so extra; read back under the very id CrewAI's Chroma store would give it.
    assert notes["extra"] == [hashlib.sha256(content.encode()).hexdigest()]
    assert notes["missing"] == [] and notes["mismatched"] == []
    assert json.dumps(notes)  # the report renders
