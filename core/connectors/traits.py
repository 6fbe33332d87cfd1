"""What each database engine does differently, said once: the facts other modules used to
branch on by connector name (`kind.startswith("qdrant")`).

* **Ids**: Qdrant accepts only unsigned 64-bit integers and UUIDs as point ids, so other ids
  are mapped (`ferry.core.mapping`); Chroma keeps any string.
* **Payload fields**: a Qdrant point keeps the source id and the document in its payload
  beside the metadata, so a metadata key with one of those names would be overwritten.
* **Scores**: every engine reports query scores its own way. Ferry compares them on one
  scale, the *similarity*, higher is better (the exact scale of `ferry.core.validate.recall`):

  =========  ========================  ==========================  ======================
  metric     similarity                Chroma reports (distance)   Qdrant reports
  =========  ========================  ==========================  ======================
  l2         −‖q − x‖²                 ‖q − x‖² (squared)          ‖q − x‖ (plain)
  ip         q·x                       1 − q·x                     q·x
  cosine     cos(q, x)                 1 − cos                     cos
  =========  ========================  ==========================  ======================

  An unknown metric is treated as l2, Chroma's default.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from ferry.core.mapping import needs_id_mapping
from ferry.core.model import Metric


class Score(StrEnum):
    """How one engine reports one metric's score, relative to the similarity `s`."""

    SIMILARITY = "similarity"  # s itself (Qdrant cosine and dot)
    ONE_MINUS = "one-minus"  # 1 − s (Chroma's cosine and ip distances)
    NEGATED = "negated"  # −s: Chroma's squared L2 distance, since s = −‖q − x‖²
    ROOT = "root"  # √(−s): Qdrant's plain Euclidean distance


def _to_similarity(score: Score, raw: float) -> float:
    if score is Score.SIMILARITY:
        return raw
    if score is Score.ONE_MINUS:
        return 1.0 - raw
    if score is Score.NEGATED:
        return -raw
    return -(raw * raw)


def _from_similarity(score: Score, similarity: float) -> float:
    if score is Score.SIMILARITY:
        return similarity
    if score is Score.ONE_MINUS:
        return 1.0 - similarity
    if score is Score.NEGATED:
        return -similarity
    return math.sqrt(max(-similarity, 0.0))


@dataclass(frozen=True)
class EngineTraits:
    """One engine's conventions. Connectors hand theirs out as `connector.traits`."""

    engine: str  # "Chroma", "Qdrant": for messages
    scores: dict[Metric, Score]
    # None when any string is a valid id; else says whether one source id must be mapped.
    id_rule: Callable[[str], bool] | None = None
    # The source id and the document share the payload with the metadata (name clashes).
    payload_fields: bool = False
    # What a Chroma user must know about this engine's scores, per metric: shown in the plan
    # when the source engine reports differently.
    score_notes: dict[Metric, str] = field(default_factory=dict)
    # Why a collection name is refused by this engine (None: accepted), and the rule in words.
    name_rule: Callable[[str], str | None] | None = None
    # Apps read this engine's collections with its own client, as Ferry wrote them: a migration
    # here needs no app switch beyond pointing the app at the target (Chroma). The plan reads
    # this instead of guessing from a connector's name.
    apps_read_natively: bool = False

    def name_problem(self, name: str) -> str | None:
        """Why this engine would refuse `name` as a collection name (None when it would not):
        checked in preflight so a bad target name is one line, not a server error mid-run."""
        return self.name_rule(name) if self.name_rule else None

    def similarity(self, metric: Metric | None, raw: float) -> float:
        """A score as this engine reports it, on the similarity scale (higher is better)."""
        return _to_similarity(self.scores[metric or Metric.L2], float(raw))

    def raw_score(self, metric: Metric | None, similarity: float) -> float:
        """The inverse: what this engine would report for a similarity."""
        return _from_similarity(self.scores[metric or Metric.L2], float(similarity))

    def convert(self, metric: Metric | None, raw: float, to: EngineTraits) -> float:
        """This engine's score as `to` would report it (a router answering in Chroma's terms)."""
        return to.raw_score(metric, self.similarity(metric, raw))

    def needs_id_mapping(self, source_id: str) -> bool:
        return self.id_rule is not None and self.id_rule(source_id)

    @property
    def maps_ids(self) -> bool:
        return self.id_rule is not None

    def plan_notes(self, metric: Metric | None, source: EngineTraits) -> list[str]:
        """Notes for a plan that moves a `source` collection of this metric here."""
        if metric is None or source.scores.get(metric) == self.scores.get(metric):
            return []
        note = self.score_notes.get(metric)
        return [note] if note else []


# Qdrant 1.5+ (lib/common/common/src/validation.rs, `validate_collection_name`): 1-255
# bytes, none of these characters (the name is a directory on Linux and Windows).
QDRANT_FORBIDDEN = '<>:"/\\|?*\0\x1f'
QDRANT_MAX_BYTES = 255
# Chroma 1.x server (rust/types/src/validators.rs, `validate_name`): 3-512 characters from
# [a-zA-Z0-9._-], alphanumeric at both ends, no "..", not an IP address.
CHROMA_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$")


def qdrant_name_problem(name: str) -> str | None:
    if not name:
        return "a Qdrant collection name cannot be empty"
    if len(name.encode()) > QDRANT_MAX_BYTES:
        return f"a Qdrant collection name is at most {QDRANT_MAX_BYTES} bytes"
    bad = next((c for c in name if c in QDRANT_FORBIDDEN), None)
    if bad is not None:
        return f"a Qdrant collection name cannot contain {bad!r}"
    if name in {".", ".."}:
        return "a Qdrant collection name cannot be '.' or '..'"
    return None


def chroma_name_problem(name: str) -> str | None:
    if not CHROMA_NAME.match(name):
        return (
            "a Chroma collection name has 3-512 characters from [a-zA-Z0-9._-], "
            "starting and ending with a letter or digit"
        )
    if ".." in name:
        return "a Chroma collection name cannot contain '..'"
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return None
    return "a Chroma collection name cannot be an IP address"


CHROMA = EngineTraits(
    engine="Chroma",
    scores={Metric.L2: Score.NEGATED, Metric.COSINE: Score.ONE_MINUS, Metric.IP: Score.ONE_MINUS},
    name_rule=chroma_name_problem,
    apps_read_natively=True,
)

QDRANT = EngineTraits(
    engine="Qdrant",
    scores={Metric.L2: Score.ROOT, Metric.COSINE: Score.SIMILARITY, Metric.IP: Score.SIMILARITY},
    id_rule=needs_id_mapping,
    payload_fields=True,
    score_notes={
        Metric.IP: "ip: Qdrant Dot scores are dot products, Chroma's are 1 - dot",
        Metric.L2: "l2: Chroma reports squared distance, Qdrant plain distance",
    },
    name_rule=qdrant_name_problem,
)

# The target an inventory assumes when none is chosen yet: Ferry's main road.
DEFAULT_TARGET = QDRANT
