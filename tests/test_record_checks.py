"""What no target holds exactly is found by id; what it holds (i64 limits, nested lists) passes."""

from __future__ import annotations

import numpy as np

from ferry.core.model import Batch
from ferry.core.record_checks import I64_MAX, I64_MIN, first_problem


def batch(ids: list[str], metadatas: list, documents: list) -> Batch:  # type: ignore[type-arg]
    return Batch(ids, np.ones((len(ids), 2), np.float32), metadatas, documents)


def test_the_limits_themselves_are_carried() -> None:
    ok = batch(
        ["a", "b"],
        [{"max": I64_MAX, "min": I64_MIN, "l": [1, 2.5, "x", True], "n": None}, None],
        ["text", None],
    )
    assert first_problem(ok) is None


def test_each_fault_names_its_record() -> None:
    cases = [
        ({"big": I64_MAX + 1}, "doc", "beyond"),
        ({"small": I64_MIN - 1}, "doc", "beyond"),
        ({"x": float("nan")}, "doc", "finite"),
        ({"x": [1.0, float("-inf")]}, "doc", "finite"),
        ({"": 1}, "doc", "empty"),
        ({"x": b"bytes"}, "doc", "type bytes"),
        (None, 7, "document is a int"),
    ]
    for metadata, document, words in cases:
        found = first_problem(batch(["good", "bad"], [None, metadata], ["d", document]))
        assert found is not None and found[0] == "bad" and words in found[1], (metadata, found)


def test_the_same_id_twice_across_batches() -> None:
    seen: set[str] = set()
    assert first_problem(batch(["a", "b"], [None, None], [None, None]), seen) is None
    assert first_problem(batch(["c", "a"], [None, None], [None, None]), seen) == (
        "a",
        "the same id appears twice",
    )
