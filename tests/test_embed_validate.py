"""Re-embedding with the wordllama model itself (in-process, no network), then validating
the re-embedded copy: documents and metadata exactly, model determinism, the A/B search
report and its threshold, and a repair that re-embeds from the cache."""

from __future__ import annotations

import email.utils
import time
from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings

from ferry.core.connectors import open_connector
from ferry.core.embed import EmbedSettings, open_embedder
from ferry.core.embed.cache import EmbeddingCache, cache_path_for
from ferry.core.embed.openai_compat import retry_after_seconds
from ferry.core.embed.stage import split_requests
from ferry.core.engine import MigrationOptions
from ferry.core.errors import FerryError
from ferry.core.journal import Journal
from ferry.core.runner import migrate
from ferry.core.validate import ValidationOptions, validate
from ferry.core.validate.report import report_markdown
from tests.embed_fixtures import wordllama_vectors

TOPICS = {
    "boats": ["ferry crossing the harbour", "sailing boat at the dock", "cargo ship in port"],
    "food": ["fresh bread from the bakery", "tomato soup recipe", "cheese and wine tasting"],
    "space": ["rocket launch to orbit", "telescope sees a galaxy", "astronaut on the moon"],
    "music": ["piano concerto in the hall", "guitar solo at a concert", "choir sings a hymn"],
}
MODEL = "wordllama/l2_supercat"


def documents() -> list[tuple[str, str, dict]]:
    rows = []
    for topic, phrases in TOPICS.items():
        for i in range(15):
            phrase = phrases[i % 3]
            rows.append((f"{topic}-{i}", f"{phrase} number {i}", {"topic": topic, "i": i}))
    return rows


def semantic_source(path: Path, random_vectors: bool = False) -> str:
    """A Chroma collection whose vectors are the model's own (or random) embeddings."""
    rows = documents()
    docs = [d for _, d, _ in rows]
    vectors = (
        np.random.default_rng(1).normal(size=(len(rows), 256)).astype(np.float32)
        if random_vectors
        else wordllama_vectors(docs)
    )
    client = chromadb.PersistentClient(str(path), settings=Settings(anonymized_telemetry=False))
    collection = client.create_collection("notes", configuration={"hnsw": {"space": "cosine"}})
    collection.add(
        ids=[r[0] for r in rows], embeddings=vectors, metadatas=[r[2] for r in rows], documents=docs
    )
    del client
    return f"chroma+file://{path}"


async def migrate_reembedded(tmp_path: Path, source: str, dimensions: int | None = None):
    target = f"qdrant+edge://{tmp_path / 'edge'}"
    journal = Journal(tmp_path / "state" / "journal.sqlite3")
    options = MigrationOptions(
        batch_size=16, embed=EmbedSettings(MODEL, dimensions=dimensions, batch_texts=7)
    )
    outcome = await migrate(source, target, [], options, journal)
    return target, journal, outcome


async def test_wordllama_reembeds_and_the_copy_validates_with_an_ab_report(
    tmp_path: Path,
) -> None:
    source = semantic_source(tmp_path / "src")
    target, journal, outcome = await migrate_reembedded(tmp_path, source, dimensions=128)
    assert outcome.status.value == "completed"
    n = len(documents())
    assert outcome.embed is not None and outcome.embed["embedded"] == len(
        {d for _, d, _ in documents()}
    )
    # Every vector is the model's embedding of its document, at the asked dimension.
    tgt = open_connector(target)
    try:
        got = await tgt.fetch("notes", [r[0] for r in documents()])
        assert got.vectors.shape == (n, 128)
        order = {sid: i for i, sid in enumerate(got.ids)}
        expected = wordllama_vectors([d for _, d, _ in documents()], dimensions=128)
        held = np.stack([got.vectors[order[r[0]]] for r in documents()])
        assert np.allclose(held, expected, atol=1e-5)
    finally:
        await tgt.close()

    # Validation: the model comes from the journal (the run's options); vectors are not
    # compared with the source's 256-dimension ones, documents and metadata are.
    options = ValidationOptions(sample=n, queries=12, k=5, ab_min_overlap=0.3)
    report = await validate(source, target, None, options, journal)
    (checked,) = report.collections
    assert checked.ok, checked.reasons
    assert checked.checked == n and checked.mismatched.total == 0
    ab = checked.ab
    assert ab.model == MODEL and ab.queries == 12
    assert ab.determinism_checked == n and ab.determinism_max_diff < 1e-4
    assert ab.mean >= 0.3, ab.overlaps  # the same model, shortened: neighbourhoods agree
    assert 0.0 <= min(ab.overlaps) <= ab.mean <= 1.0
    data = report.to_json()["collections"][0]["ab"]
    assert len(data["worst"]) == 5 and data["worst"][0]["document"]
    assert sum(data["histogram"]["counts"]) == 12
    text = report_markdown(report.to_json())
    assert "A/B search overlap@5" in text and "Worst queries" in text

    # A threshold the A/B report does not meet blocks the check (and so the cutover).
    assert ab.mean < 1.0  # (measured: 0.95; 128 of 256 dimensions move a few neighbours)
    strict = ValidationOptions(sample=0, queries=12, k=5, ab_min_overlap=1.0)
    report = await validate(source, target, None, strict, journal)
    assert not report.ok
    assert any("--ab-min-overlap" in r for r in report.collections[0].reasons)


async def test_metadata_changed_in_the_target_is_found_and_repair_reembeds_from_the_cache(
    tmp_path: Path,
) -> None:
    source = semantic_source(tmp_path / "src", random_vectors=True)
    target, journal, _ = await migrate_reembedded(tmp_path, source)
    cache = EmbeddingCache(cache_path_for(journal.path))
    cached_before = cache.count(MODEL)
    cache.close()
    # Behind Ferry's back: one record's metadata changed, one record deleted.
    tgt = open_connector(target)
    try:
        batch = await tgt.fetch("notes", ["food-3"])
        batch.metadatas[0] = {"topic": "changed", "i": 3}
        await tgt.write("notes", batch)
        await tgt.delete("notes", ["space-7"])
        await tgt.sync("notes")
    finally:
        await tgt.close()
    options = ValidationOptions(full=True, queries=8, k=5, ab_min_overlap=0.0, repair=True)
    report = await validate(source, target, None, options, journal)
    (checked,) = report.collections
    assert [m.id for m in checked.mismatched.items] == ["food-3"]
    assert checked.mismatched.items[0].fields == ["metadata.topic"]  # not the vector
    assert checked.missing.items == ["space-7"]
    assert checked.repair is not None and checked.repair.verified == 2
    assert checked.ab.mean < 0.5  # random source vectors: the new search is another one
    cache = EmbeddingCache(cache_path_for(journal.path))
    assert cache.count(MODEL) == cached_before  # the repair paid for nothing
    cache.close()
    again = await validate(source, target, None, ValidationOptions(full=True, queries=0), journal)
    assert again.ok, again.collections[0].reasons


async def test_wordllama_loads_from_its_wheel_and_refuses_what_is_not_there() -> None:
    embedder = await open_embedder(EmbedSettings(MODEL))
    try:
        assert embedder.dimension == 256 and embedder.metric.value == "cosine"
        vectors = await embedder.embed(["a ferry in the harbour", "soup"])
        assert vectors.dtype == np.float32 and vectors.shape == (2, 256)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert np.allclose(vectors, wordllama_vectors(["a ferry in the harbour", "soup"]))
    finally:
        await embedder.aclose()
    for model, dims, words in (
        ("wordllama/l3_supercat", None, "not on this machine"),
        ("wordllama/nope", None, "no config"),
        (MODEL, 100, "not offered"),
        ("acme/model", None, "not PROVIDER/MODEL"),
    ):
        with pytest.raises(FerryError, match=words):
            await open_embedder(EmbedSettings(model, dimensions=dims))


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("0.5") == 0.5
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= retry_after_seconds(date, now=now) <= 31
    assert retry_after_seconds(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_requests_are_cut_by_count_and_by_estimated_tokens() -> None:
    texts = ["a"] * 10
    assert split_requests(texts, [1] * 10, 4, 100) == [(0, 4), (4, 8), (8, 10)]
    assert split_requests(texts, [30] * 10, 100, 100) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert split_requests(["big", "x"], [500, 1], 10, 100) == [(0, 1), (1, 2)]


def test_a_relaunch_passes_the_same_model_and_settings() -> None:
    """The TUI resumes a run by relaunching `ferry migrate` from the journaled options: the
    flags rebuilt from them must give the same settings (the same run key and cache)."""
    from ferry.cli.embed_args import embed_settings_from
    from ferry.tui.migrate_flags import migrate_parser

    settings = EmbedSettings(
        "openai/text-embedding-3-small",
        base_url="http://127.0.0.1:9/v1",
        dimensions=512,
        rpm=3000.0,
        tpm=1e6,
        missing="skip",
        price=0.02,
    )
    journaled = EmbedSettings.from_json(settings.to_json())
    argv = ["migrate", "--from", "chroma+file:///a", "--to", "qdrant+edge:///b", *journaled.argv()]
    again = embed_settings_from(migrate_parser().parse_args(argv))
    assert again == settings and again.fingerprint() == settings.fingerprint()
