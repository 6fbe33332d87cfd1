"""Engine traits: each database's score convention, id rule and plan notes, said once.

The contract suite (tests/test_connector_contract.py) checks the score conventions against
the real engines; these are the table itself, and the derived conversions.
"""

from __future__ import annotations

import math

import pytest

from ferry.core.connectors.traits import CHROMA, QDRANT
from ferry.core.model import Metric
from ferry.core.router.stores import qdrant_to_chroma_distance


def test_reported_scores_become_similarities() -> None:
    assert CHROMA.similarity(Metric.IP, 0.25) == 0.75
    assert CHROMA.similarity(Metric.COSINE, 0.25) == 0.75
    assert CHROMA.similarity(Metric.L2, 4.0) == -4.0  # squared distance
    assert QDRANT.similarity(Metric.L2, 2.0) == -4.0  # plain distance
    assert QDRANT.similarity(Metric.IP, 0.25) == 0.25
    assert QDRANT.similarity(Metric.COSINE, 0.25) == 0.25
    assert CHROMA.similarity(None, 4.0) == -4.0  # unknown: l2, Chroma's default


@pytest.mark.parametrize("traits", [CHROMA, QDRANT], ids=["chroma", "qdrant"])
@pytest.mark.parametrize("metric", list(Metric))
@pytest.mark.parametrize("raw", [0.0, 0.5, 2.0])
def test_raw_score_inverts_similarity(traits, metric: Metric, raw: float) -> None:  # type: ignore[no-untyped-def]
    assert math.isclose(traits.raw_score(metric, traits.similarity(metric, raw)), raw)


def test_the_router_answers_in_chromas_terms() -> None:
    assert qdrant_to_chroma_distance(Metric.L2, 3.0) == 9.0
    assert qdrant_to_chroma_distance(Metric.COSINE, 0.8) == pytest.approx(0.2)
    assert qdrant_to_chroma_distance(Metric.IP, 2.5) == pytest.approx(-1.5)


def test_ids_and_payload_fields() -> None:
    assert not CHROMA.maps_ids and not CHROMA.needs_id_mapping("with space")
    assert QDRANT.maps_ids and QDRANT.needs_id_mapping("with space")
    assert not QDRANT.needs_id_mapping("12") and QDRANT.needs_id_mapping("00012")
    assert QDRANT.payload_fields and not CHROMA.payload_fields


def test_plan_notes_only_when_the_conventions_differ() -> None:
    assert QDRANT.plan_notes(Metric.L2, CHROMA) == [
        "l2: Chroma reports squared distance, Qdrant plain distance"
    ]
    assert QDRANT.plan_notes(Metric.IP, CHROMA) == [
        "ip: Qdrant Dot scores are dot products, Chroma's are 1 - dot"
    ]
    assert QDRANT.plan_notes(Metric.COSINE, CHROMA) == []
    assert QDRANT.plan_notes(Metric.L2, QDRANT) == []
    assert CHROMA.plan_notes(Metric.L2, CHROMA) == []


@pytest.mark.parametrize(
    ("uri", "indexing"),
    [
        ("chroma+http://127.0.0.1:1", "on-write"),
        ("qdrant+edge:///tmp/ferry-no-such-edge", "after-copy"),
        ("qdrant+http://127.0.0.1:1", "restored"),
        ("qdrant+file:///tmp/ferry-no-such-local", "never"),
        ("parquet+file:///tmp/ferry-no-such-export", "none"),
        ("memory://indexing", "marked"),
    ],
)
def test_each_target_declares_when_its_index_exists(uri: str, indexing: str) -> None:
    """A typed capability, not a text hook: the plan's index line is the declared value's
    words, and nothing is contacted to know it."""
    from ferry.core.connectors import Indexing, TargetConnector, open_connector

    target = open_connector(uri)
    assert isinstance(target, TargetConnector)
    assert target.indexing is Indexing(indexing)
    assert target.indexing.words  # the plan's words for it, said once (Indexing.words)
