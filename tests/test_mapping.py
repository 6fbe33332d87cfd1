"""The id mapping: canonical ids kept, all others uuid5, never two sources on one point."""

from __future__ import annotations

import uuid

import pytest

from ferry.core.errors import PermanentError, PreflightError
from ferry.core.mapping import (
    FERRY_ID_NAMESPACE,
    PayloadFields,
    canonical_point_id,
    check_unique_targets,
    from_payload,
    to_payload,
)
from tests.conftest import TRAP_IDS


@pytest.mark.parametrize(
    ("source_id", "expected"),
    [
        ("12", 12),
        ("0", 0),
        ("18446744073709551615", 2**64 - 1),
        ("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"),
    ],
)
def test_canonical_ids_are_kept(source_id: str, expected: object) -> None:
    assert canonical_point_id(source_id) == expected


@pytest.mark.parametrize(
    "source_id",
    [
        "00012",
        "-5",
        "+5",
        "18446744073709551616",
        "A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D",
        "a1b2c3d4e5f64a7b8c9d0e1f2a3b4c5d",
        "١٢",
        " 7",
        "x" * 300,
        "ünïcødé",
    ],
)
def test_other_ids_become_uuid5(source_id: str) -> None:
    assert canonical_point_id(source_id) == str(uuid.uuid5(FERRY_ID_NAMESPACE, source_id))


def test_trap_ids_map_to_distinct_points() -> None:
    points = [canonical_point_id(i) for i in TRAP_IDS]
    assert len(set(map(str, points))) == len(TRAP_IDS)
    check_unique_targets(TRAP_IDS, points)  # does not raise


def test_a_collision_inside_a_batch_is_refused() -> None:
    forged = str(uuid.uuid5(FERRY_ID_NAMESPACE, "00012"))
    ids = ["00012", forged]
    with pytest.raises(PermanentError, match="same point id"):
        check_unique_targets(ids, [canonical_point_id(i) for i in ids])


def test_payload_round_trip_keeps_types_and_absence() -> None:
    fields = PayloadFields()
    meta = {"i": 1, "f": 1.0, "b": True, "l": [1, "a"], "s": "x"}
    payload = to_payload("00012", meta, None, fields)
    assert "document" not in payload
    source_id, back, document = from_payload(canonical_point_id("00012"), payload, fields)
    assert (source_id, back, document) == ("00012", meta, None)
    assert type(back["f"]) is float and type(back["b"]) is bool and type(back["i"]) is int
    assert from_payload(5, to_payload("5", None, "doc", fields), fields) == ("5", None, "doc")


def test_metadata_keys_colliding_with_payload_fields_fail_preflight() -> None:
    with pytest.raises(PreflightError, match="collide"):
        PayloadFields().check_against(["source_id", "x"], where="test")
    PayloadFields("orig_id", "text").check_against(["source_id", "document"], where="test")
