"""How Qdrant Edge gives a float payload value back, to the bit.

Why this exists: Edge changes about one float payload value in ten by one unit in the last place
(rarely two), and nothing Ferry hands to the binding avoids it:

* On the way in the value is exact: the binding turns a Python float into
  `serde_json::Number::from_f64` (qdrant/qdrant `lib/edge/python/src/types/value.rs`,
  `PyValue::extract`; `types/payload.rs` `number_from_py` in older releases). Reading the
  `Point` back in Python gives the same bits.
* Payload storage keeps each payload as JSON text: `impl Blob for Payload` in
  `lib/segment/src/payload_storage/payload_storage_impl.rs` writes with `serde_json::to_vec`
  (ryu's shortest round-trip digits, exact) and reads with `serde_json::from_slice`. Qdrant's
  workspace builds serde_json without its `float_roundtrip` feature (`Cargo.toml`:
  `serde_json = { version = "~1.0", features = ["preserve_order"] }`), so the reader is
  serde_json's "best-effort" `f64_from_parts` (serde-rs/json `src/de.rs`,
  `#[cfg(not(feature = "float_roundtrip"))]`): the decimal significand is rounded to f64, then
  divided (or multiplied) by a rounded power of ten, two or three roundings where a correct
  parser does one. Every read (retrieve, scroll, query) goes through it; the WAL and
  `on_disk_payload` / `payload_memory` make no difference (measured).
* No written value comes back as the original: for changed doubles of everyday size (in
  [0, 1), up to ±1e6) no double within 3 ulp reads back as it (measured; tests prove it), so
  pre-compensating is impossible where it matters — and would store a value other than the
  source's for every correct reader of the shard.

So validation needs to tell this rounding from a real change: `edge_read_back(x)` is exactly
what Edge returns for a stored `x` (checked against a real shard in the tests), and a target
value that equals it is "the target engine rounds doubles", not a mismatch.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

EDGE_ROUNDS_FLOATS = "Qdrant Edge reads float metadata back rounded"

# serde_json's POW10 table: 1e0 ..= 1e308 as f64 literals (exact only up to 1e22).
_POW10 = tuple(float(f"1e{i}") for i in range(309))


def edge_read_back(value: float) -> float:
    """The float Edge's payload reader returns for a stored `value`.

    Mirrors serde_json's `parse_integer` / `parse_decimal` / `parse_exponent` feeding
    `f64_from_parts` without `float_roundtrip`, applied to the text `serde_json::to_vec`
    wrote. ryu and Python's `repr` both write the shortest digits that round-trip, and the
    significand and decimal exponent (all that the parser keeps) do not depend on which of the
    two notations chose where to put the point. At most 17 significant digits (plus a trailing
    `.0`) never overflow serde_json's u64 significand, so its overflow paths are never taken.
    """
    if value == 0.0 or not math.isfinite(value):
        return value  # "0.0" / "-0.0" read back exactly; Edge refuses nan and inf
    _sign, digits, exponent = Decimal(repr(abs(value))).as_tuple()
    assert isinstance(exponent, int)
    result = float(int("".join(map(str, digits))))  # `significand as f64`: round to nearest
    while True:
        if abs(exponent) < len(_POW10):
            if exponent >= 0:
                result *= _POW10[exponent]
            else:
                result /= _POW10[-exponent]
            break
        if result == 0.0:
            break
        result /= 1e308  # serde_json's loop for exponents beyond the table
        exponent += 308
    return math.copysign(result, value)


def ulps_apart(a: float, b: float) -> int:
    """How many representable doubles lie between `a` and `b` (0 when equal, -0.0 == 0.0)."""
    return abs(_ordered(a) - _ordered(b))


def _ordered(x: float) -> int:
    """The double's bits as an integer that sorts like the doubles themselves."""
    bits = struct.unpack("<q", struct.pack("<d", x))[0]
    return bits if bits >= 0 else -(bits & 0x7FFF_FFFF_FFFF_FFFF)


def rounding_warning(metadatas: Iterable[Any]) -> str | None:
    """Whether these (sampled) metadata hold floats that Edge would give back changed, as a
    plan warning; floats it keeps (0.5, 1.0) warn nothing."""
    floats: list[float] = []

    def collect(value: Any) -> None:
        if isinstance(value, float):
            floats.append(value)
        elif isinstance(value, list | tuple):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)

    for metadata in metadatas:
        collect(metadata)
    changed = [x for x in floats if edge_read_back(x) != x]
    if not changed:
        return None
    worst = max(ulps_apart(x, edge_read_back(x)) for x in changed)
    return (
        f"{EDGE_ROUNDS_FLOATS} ({len(changed)} of {len(floats)} sampled, ≤ {worst} ulp): "
        "validate notes it, not a mismatch; repair cannot change it"
    )
