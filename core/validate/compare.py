"""Is this target record the source record? Vectors within a tolerance, the rest type-exact.

Why type-exact: a migration that turns ``1`` into ``1.0`` or ``True`` into ``1`` changes what
filters match (Qdrant's ``match: 1`` does not match ``1.0``; Chroma's ``$eq: True`` does not
match ``1``). Python's ``==`` says they are equal, so we compare types first, all the way
down lists and nested dicts.

Why normalise for cosine: Qdrant normalises vectors on store for Cosine collections, so a
faithful copy of an unnormalised Chroma vector comes back with length 1. The two are the same
point for cosine search; comparing raw values would flag every record.

Why a target's float reader: Qdrant Edge gives about one float payload value in ten back one
unit in the last place off (its JSON payload reader; see core/connectors/qdrant/edge_floats.py), and
no way of writing avoids it. A value that is *exactly* what that reader makes of the source's
value is reported as "target engine rounds doubles", apart from mismatches; any other change,
a 1-ulp one included, is still a mismatch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ferry.core.connectors.qdrant.edge_floats import ulps_apart
from ferry.core.model import Metadata, Metric

DEFAULT_TOLERANCE = 1e-5
ROUNDING_NOTE = "target engine rounds doubles"

# What a target engine gives back for a stored float (`connector.float_read_back`).
FloatReader = Callable[[float], float]


@dataclass
class VectorDiff:
    """How far apart two vectors are: the detail pane shows both figures."""

    max_abs_diff: float
    cosine: float
    same_shape: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "max_abs_diff": _finite(self.max_abs_diff),
            "cosine": _finite(self.cosine),
            "same_shape": self.same_shape,
        }


@dataclass
class RecordDiff:
    """The fields that differ (``vector``, ``document``, ``metadata.<key>``) and why."""

    fields: list[str] = field(default_factory=list)
    vector: VectorDiff | None = None
    # Fields that differ only as the target engine rounds floats (not differences), and by
    # how many units in the last place at most.
    rounded: list[str] = field(default_factory=list)
    rounded_ulps: int = 0

    @property
    def equal(self) -> bool:
        return not self.fields


def normalise(vector: np.ndarray) -> np.ndarray:
    """Unit length in float64; a zero vector stays zero (Qdrant leaves it so too)."""
    v = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def vector_diff(a: np.ndarray, b: np.ndarray, metric: Metric | None) -> VectorDiff:
    a64 = np.asarray(a, dtype=np.float64).ravel()
    b64 = np.asarray(b, dtype=np.float64).ravel()
    if a64.shape != b64.shape:
        return VectorDiff(math.inf, math.nan, same_shape=False)
    na, nb = float(np.linalg.norm(a64)), float(np.linalg.norm(b64))
    cosine = float(a64 @ b64 / (na * nb)) if na > 0 and nb > 0 else (1.0 if na == nb else 0.0)
    if metric == Metric.COSINE:
        a64, b64 = normalise(a64), normalise(b64)
    max_abs = float(np.max(np.abs(a64 - b64))) if a64.size else 0.0
    return VectorDiff(max_abs, cosine)


def same_value(a: Any, b: Any) -> bool:
    """Equal *and* of the same type, recursively (``1 != 1.0``, ``True != 1``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return bool(a == b)


def engine_rounding(a: Any, b: Any, read_back: FloatReader) -> int | None:
    """Units in the last place when `b` is `a` as the target engine reads it back (0 when
    equal), recursively; None when they differ in any other way."""
    if type(a) is not type(b):
        return None
    if isinstance(a, float):
        if a == b or (math.isnan(a) and math.isnan(b)):
            return 0
        return ulps_apart(a, b) if b == read_back(a) else None
    if isinstance(a, list | tuple):
        if len(a) != len(b):
            return None
        worst = [engine_rounding(x, y, read_back) for x, y in zip(a, b, strict=True)]
    elif isinstance(a, dict):
        if a.keys() != b.keys():
            return None
        worst = [engine_rounding(a[k], b[k], read_back) for k in a]
    else:
        return 0 if a == b else None
    return None if None in worst else max(worst, default=0)


def metadata_differences(source: Metadata | None, target: Metadata | None) -> list[str]:
    """Keys whose value or type differs, or that one side lacks.

    "No metadata" is one thing whatever its spelling: Chroma returns ``None`` for a record
    without metadata, the Qdrant connectors return ``None`` for an empty payload, and an
    empty dict means the same; so ``None`` and ``{}`` compare equal.
    """
    return [f"metadata.{key}" for key in _differing_keys(source or {}, target or {})]


def _differing_keys(src: Metadata, tgt: Metadata) -> list[Any]:
    keys = sorted(set(src) | set(tgt), key=str)
    return [
        key
        for key in keys
        if key not in src or key not in tgt or not same_value(src[key], tgt[key])
    ]


def compare_record(
    source: tuple[np.ndarray, Metadata | None, str | None],
    target: tuple[np.ndarray, Metadata | None, str | None],
    metric: Metric | None,
    tolerance: float = DEFAULT_TOLERANCE,
    read_back: FloatReader | None = None,
) -> RecordDiff:
    """Compare one record's (vector, metadata, document) on both sides; `read_back` is the
    target engine's float reader (`target.float_read_back`), None for an exact one."""
    diff = RecordDiff()
    vdiff = vector_diff(source[0], target[0], metric)
    if not vdiff.same_shape or not vdiff.max_abs_diff <= tolerance:
        diff.fields.append("vector")
        diff.vector = vdiff
    src, tgt = source[1] or {}, target[1] or {}
    for key in _differing_keys(src, tgt):
        ulps = None
        if read_back is not None and key in src and key in tgt:
            ulps = engine_rounding(src[key], tgt[key], read_back)
        if ulps is None:
            diff.fields.append(f"metadata.{key}")
        else:
            diff.rounded.append(f"metadata.{key}")
            diff.rounded_ulps = max(diff.rounded_ulps, ulps)
    if source[2] != target[2] or type(source[2]) is not type(target[2]):
        diff.fields.append("document")
    return diff


def value_repr(value: Any) -> str:
    """A value with its type visible: ``1`` / ``1.0`` / ``True`` / ``'1'`` read differently."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return f"{value} (bool)"
    if isinstance(value, int):
        return f"{value} (int)"
    if isinstance(value, float):
        return f"{value!r} (float)"
    if isinstance(value, list):
        return "[" + ", ".join(value_repr(v) for v in value) + "]"
    return repr(value)


def _finite(value: float) -> float | None:
    """JSON has no inf/nan: a missing figure is null."""
    return value if math.isfinite(value) else None
