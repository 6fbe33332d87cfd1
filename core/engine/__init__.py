"""The migration engine: the loop (`loop.py`), one lifecycle per collection (`lifecycle.py`),
the steps a batch passes (`stages.py`), control and progress (`control.py`), and what a run
is asked to do (`options.py`). Importers use this package's names.
"""

from __future__ import annotations

from ferry.core.model import CollectionResult

from .control import CheckpointStore, ProgressMeter, RunControl, Watermark
from .lifecycle import CollectionLifecycle
from .loop import MigrationEngine, run_status
from .options import MigrationOptions
from .stages import BatchStage, FiniteVectors, refuse_non_finite

__all__ = [
    "BatchStage",
    "CheckpointStore",
    "CollectionLifecycle",
    "CollectionResult",
    "FiniteVectors",
    "MigrationEngine",
    "MigrationOptions",
    "ProgressMeter",
    "RunControl",
    "Watermark",
    "refuse_non_finite",
    "run_status",
]
