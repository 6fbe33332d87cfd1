"""What a run is asked to do: every engine setting of `ferry migrate`, in one dataclass.

Why apart from the loop: the CLI, the run dialog, profiles and the journal build and read
these settings without needing the engine that acts on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ferry.core.embed import EmbedSettings
from ferry.core.mapping import PayloadFields
from ferry.core.model import WriteMode
from ferry.core.retry import RetryPolicy
from ferry.core.targets import TargetNames
from ferry.core.tuning import TuningOptions


@dataclass
class MigrationOptions:
    batch_size: int = 1000
    workers: int = 2
    rate: float | None = None  # records per second, None for unlimited
    mode: WriteMode = WriteMode.CREATE
    fields: PayloadFields = field(default_factory=PayloadFields)
    # Payload layout (core/layouts/) for every collection; None: each its detected one.
    layout: str | None = None
    # Who asked for `layout`, in the plan's words ("profile NAME"); None: `--layout`.
    layout_origin: str | None = None
    # Where each collection lands (`docs=docs_v2`, `{name}_v2`); default: its own name.
    targets: TargetNames = field(default_factory=TargetNames)
    max_attempts: int = 6
    retry_initial: float = 0.2
    retry_max: float = 10.0
    give_up_after: float = 120.0
    # Bytes one batch may hold (vectors, ids, documents): records of 2 MB documents read
    # 1,000 at a time would hold 2 GB per batch. Batches shrink to fit; None: no byte bound.
    batch_bytes: int | None = 32 * 2**20
    index: bool = True  # False: a staging copy (`--no-index`), completed without the index phase
    tuning: TuningOptions = field(default_factory=TuningOptions)
    embed: EmbedSettings | None = None  # re-embed every document with this model (`--embed`)

    def paced_batch_size(self, target_most: int | None = None) -> int:
        """The records per read: the batch size, at most what the target takes at once, and
        with a rate cap at most about one second of it — a batch of 1,000 at 100/s would
        otherwise wait 10 s in one piece and the progress would stand still meanwhile."""
        size = min(self.batch_size, target_most or self.batch_size)
        if self.rate:
            size = min(size, max(int(self.rate), 1))
        return size

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            self.max_attempts, self.retry_initial, self.retry_max, self.give_up_after
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "batch_size": self.batch_size,
            "workers": self.workers,
            "rate": self.rate,
            "mode": self.mode.value,
            "layout": self.layout,
        }
        if not self.index:  # a staging copy; journaled only when asked, like the targets
            data["index"] = False
        if self.tuning != TuningOptions():
            data["tuning"] = self.tuning.to_json()
        if not self.targets.trivial:  # journaled so a relaunch passes the same pairs
            data["targets"] = self.targets.to_json()
        if self.embed is not None:  # the model and its settings; never the key's value
            data["embed"] = self.embed.to_json()
        return data
