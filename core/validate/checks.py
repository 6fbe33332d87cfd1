"""The checks themselves: streaming passes over each side, memory bounded by the batch size.

Passes, each run only when asked for:

* **source pass** — reservoir-samples `sample` records and `queries` query vectors (a seeded
  numpy Generator, so the same seed picks the same records), and in `full` mode looks every
  batch up in the target by id and compares it; repairs happen inline, batch by batch.
* **target pass** (`full`) — streams the target and looks its ids up in the source: extras.
* **exact pass** (`queries`) — brute-force top-k over the source's vectors for the queries.

There is no positional access in the connector protocol, so even a sample costs one read
of the source; what it saves is the target side (N look-ups instead of a full scan).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ferry.core import faultpoints
from ferry.core.connectors.base import Connector, TargetConnector
from ferry.core.embed import EmbedSettings, EmbedStage
from ferry.core.journal.runs import SearchSettings
from ferry.core.layouts.apps import as_created
from ferry.core.model import Batch, CollectionInfo, Metric, Phase
from ferry.core.tuning import IndexTuning, plan_tuning
from ferry.core.validate.compare import DEFAULT_TOLERANCE, compare_record
from ferry.core.validate.recall import (
    ExactTopK,
    exact_scores,
    float32_allowance,
    latency_summary,
    measure,
)
from ferry.core.validate.reembed import (
    DEFAULT_AB_MIN_OVERLAP,
    ABReport,
    ab_search,
    check_determinism,
)
from ferry.core.validate.report import (
    DEFAULT_CAP,
    DEFAULT_RECALL_THRESHOLD,
    CollectionValidation,
    Mismatch,
    RepairResult,
    Rounded,
)


@dataclass
class ValidationOptions:
    """What to check. `sample=0` and `queries=0` turn those checks off; counts always run."""

    sample: int = 1000
    full: bool = False
    queries: int = 20
    k: int = 10
    tolerance: float = DEFAULT_TOLERANCE
    seed: int = 0
    batch_size: int = 500
    cap: int = DEFAULT_CAP
    repair: bool = False
    delete_extra: bool = False  # only ever True after the user confirmed
    recall_threshold: float = DEFAULT_RECALL_THRESHOLD
    # A re-embedded copy (`--embed`, or as the journal says the run re-embedded): vectors are
    # not compared; determinism and the A/B search report are, gated by `ab_min_overlap`.
    embed: EmbedSettings | None = None
    ab_min_overlap: float = DEFAULT_AB_MIN_OVERLAP

    def to_json(self) -> dict[str, Any]:
        return {
            "sample": self.sample,
            "full": self.full,
            "queries": self.queries,
            "k": self.k,
            "tolerance": self.tolerance,
            "seed": self.seed,
            "repair": self.repair,
            "delete_extra": self.delete_extra,
        } | (
            {"embed": self.embed.to_json(), "ab_min_overlap": self.ab_min_overlap}
            if self.embed is not None
            else {}
        )


@dataclass
class ValidationProgress:
    """Latest-value progress for a view: which collection, which step, how far."""

    collection: str
    step: str  # counts | source | extras | exact | queries | repair | done
    done: int = 0
    total: int | None = None
    message: str = ""
    started: float = field(default_factory=time.time)

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


ProgressCallback = Callable[[ValidationProgress], None]


class Reservoir:
    """Algorithm R over streamed records: a uniform seeded sample without holding all ids."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.size = size
        self.rng = rng
        self.seen = 0
        self.ids: list[str] = []
        self.vectors: list[np.ndarray] = []

    def offer(self, batch: Batch) -> None:
        if self.size <= 0:
            return
        n = len(batch)
        start = self.seen
        self.seen += n
        for i in range(n):
            if start + i < self.size:
                self.ids.append(batch.ids[i])
                self.vectors.append(np.array(batch.vectors[i], dtype=np.float32))
        first_draw = max(0, self.size - start)
        if first_draw >= n:
            return
        positions = np.arange(start + first_draw, start + n)
        draws = self.rng.integers(0, positions + 1)
        for offset, slot in zip(range(first_draw, n), draws, strict=True):
            if slot < self.size:
                self.ids[slot] = batch.ids[offset]
                self.vectors[slot] = np.array(batch.vectors[offset], dtype=np.float32)


async def stream(connector: Connector, name: str, batch_size: int) -> AsyncIterator[Batch]:
    """A connector's read, closed properly however the consumer stops (cancel included)."""
    reader = connector.read(name, None, batch_size)
    try:
        async for batch in reader:
            yield batch
    finally:
        await reader.aclose()


class CollectionCheck:
    """Runs the chosen checks for one collection and fills a CollectionValidation."""

    def __init__(
        self,
        source: Connector,
        target: Connector,
        name: str,
        target_name: str,
        options: ValidationOptions,
        on_progress: ProgressCallback | None = None,
        search: SearchSettings | None = None,
    ) -> None:
        self.source = source
        self.target = target
        # What the journal says about how the target is searched
        # (journal.runs.search_settings), None when no run recorded it.
        self.search = search
        self.name = name
        self.target_name = target_name
        self.options = options
        self.on_progress = on_progress
        self.metric: Metric | None = None
        self.source_metric: Metric | None = None  # set when the target searches with another
        self.result = CollectionValidation(
            name, target_name, recall_threshold=options.recall_threshold
        )
        for kind in ("missing", "extra", "mismatched", "rounded"):
            getattr(self.result, kind).cap = options.cap
        # Edge gives some floats back 1 ulp off whatever is written: that is noted, not
        # counted as a mismatch, and not "repaired" (see compare.py).
        self.read_back = target.float_read_back
        if options.repair or options.delete_extra:
            self.result.repair = RepairResult()
        # Set for a re-embedded target (core.validate.reembed): the model, and its cache for
        # a repair (a re-copied record is embedded again, from the cache when it can be).
        self.stage: EmbedStage | None = None

    def progress(self, step: str, done: int = 0, total: int | None = None, msg: str = "") -> None:
        if self.on_progress:
            self.on_progress(ValidationProgress(self.name, step, done, total, msg))

    async def run(self) -> CollectionValidation:
        started = time.perf_counter()
        try:
            await self._run()
        finally:
            self.result.seconds = time.perf_counter() - started
            self.result.finished_at = time.time()
        self.progress("done", 1, 1, "ok" if self.result.ok else "differences found")
        return self.result

    async def _run(self) -> None:
        options, result = self.options, self.result
        self.progress("counts", msg="counting both sides")
        info = await self.source.describe(self.name)
        self.metric = info.metric
        result.metric = info.metric.value if info.metric else None
        result.source_count = await self.source.count(self.name)
        if self.target_name not in await self.target.list_collections():
            if result.source_count == 0 and info.dimension is None:
                # migrate skips it (nothing to copy, no dimension to create it with)
                result.skipped_reason = "empty source collection of unknown dimension"
                return
            result.error = f"collection {self.target_name!r} does not exist in the target"
            return
        result.target_count = await self.target.count(self.target_name)
        target_info = await self.target.describe(self.target_name)
        # An app framework's layout creates the target with its store's distance (mem0,
        # CrewAI, Vanna, Embedchain: COSINE): that is the distance the target must have, and
        # the one its search is judged by.
        wanted = as_created(info, self.target.payload_layout(self.target_name))
        if wanted is not info:
            self.metric, self.source_metric = wanted.metric, info.metric
        if self.stage is not None:  # re-embedded: the target holds the new model's shape
            wanted = dataclasses.replace(
                wanted, dimension=self.stage.dimension, metric=self.stage.embedder.metric
            )
        result.problems.extend(shape_problems(wanted, target_info))
        result.mode = "full" if options.full else ("sample" if options.sample > 0 else "counts")
        result.k = options.k if options.queries > 0 else 0

        wants_queries = options.queries > 0 and options.k > 0 and result.source_count > 0
        sample = 0 if options.full else max(0, options.sample)
        reservoir_size = max(sample, options.queries if wants_queries else 0)
        if options.full or reservoir_size:
            rng = np.random.default_rng(options.seed)
            reservoir = Reservoir(reservoir_size, rng)
            await self._source_pass(reservoir)
            # Sampled records and query vectors come from the same seeded reservoir; they may
            # overlap, which is harmless (a query is only a vector).
            sample_slots = rng.permutation(len(reservoir.ids))[:sample]
            query_slots = rng.permutation(len(reservoir.ids))[: options.queries]
            if len(sample_slots):
                await self._sample_check(sorted(reservoir.ids[i] for i in sample_slots))
            if options.full:
                await self._target_pass()
            if self.stage is not None:
                await self._reembedded(
                    sorted(reservoir.ids[i] for i in sample_slots),
                    [reservoir.ids[i] for i in query_slots] if wants_queries else [],
                    min(options.k, max(result.source_count - 1, 1)),
                )
            elif wants_queries and len(query_slots):
                queries = np.stack([reservoir.vectors[i] for i in query_slots])
                await self._recall(queries, min(options.k, result.source_count))
        if result.repair is not None:
            if result.repair.rewritten or result.repair.deleted:
                await _finish(self.target, self.target_name)
            result.target_count_after = await self.target.count(self.target_name)

    # -- source pass: sampling, and in full mode the record-by-record diff -------------------
    async def _source_pass(self, reservoir: Reservoir) -> None:
        total = self.result.source_count
        done = 0
        step = "source" if self.options.full else "sample"
        self.progress(step, 0, total, "reading the source")
        async for batch in stream(self.source, self.name, self.options.batch_size):
            if self._skips_missing():  # left out by `--embed-missing skip`, as agreed
                self.result.embed_skipped += sum(d in (None, "") for d in batch.documents)
            reservoir.offer(batch)
            if self.options.full:
                await self._compare_batch(batch)
            done += len(batch)
            self.progress(step, done, total, "comparing" if self.options.full else "sampling")

    async def _compare_batch(self, batch: Batch) -> None:
        """Look a source batch up in the target and compare; repair what differs."""
        theirs = await self.target.fetch(self.target_name, list(batch.ids))
        found = {sid: i for i, sid in enumerate(theirs.ids)}
        broken: list[int] = []
        for i, sid in enumerate(batch.ids):
            self.result.checked += 1
            j = found.get(sid)
            if j is None and self._skips_missing() and batch.documents[i] in (None, ""):
                continue  # no document, left out by `--embed-missing skip`: not missing
            if j is None:
                self.result.missing.add(sid)
                broken.append(i)
                continue
            # Re-embedded: the vectors are meant to differ (checked by determinism instead).
            vector = batch.vectors[i] if self.stage is None else theirs.vectors[j]
            diff = compare_record(
                (vector, batch.metadatas[i], batch.documents[i]),
                (theirs.vectors[j], theirs.metadatas[j], theirs.documents[j]),
                self.metric,
                self.options.tolerance,
                self.read_back,
            )
            if diff.rounded:
                self.result.rounded.add(Rounded(sid, diff.rounded, diff.rounded_ulps))
                self.result.rounded_ulps = max(self.result.rounded_ulps, diff.rounded_ulps)
            if not diff.equal:
                self.result.mismatched.add(Mismatch(sid, diff.fields, diff.vector))
                broken.append(i)
        if broken and self.options.repair:
            await self._rewrite(_subset(batch, broken))

    async def _sample_check(self, ids: list[str]) -> None:
        step = self.options.batch_size
        self.progress("sample", 0, len(ids), "comparing the sample")
        for start in range(0, len(ids), step):
            chunk = ids[start : start + step]
            mine = await self.source.fetch(self.name, chunk)
            await self._compare_batch(mine)
            self.progress("sample", start + len(chunk), len(ids), "comparing the sample")

    async def _rewrite(self, batch: Batch) -> None:
        """Copy records again (idempotent upsert), then read them back to confirm."""
        assert self.result.repair is not None
        self.progress("repair", 0, len(batch), f"re-copying {len(batch)} record(s)")
        if self.stage is not None:  # the new model's vectors, from the cache when known
            batch = await self.stage.embed_batch(self.name, batch)
        await self.target.replace(self.target_name, batch)  # whole: no stale key survives
        faultpoints.reached("repair")
        self.result.repair.rewritten += len(batch)
        back = await self.target.fetch(self.target_name, list(batch.ids))
        found = {sid: i for i, sid in enumerate(back.ids)}
        for i, sid in enumerate(batch.ids):
            j = found.get(sid)
            if (
                j is not None
                and compare_record(
                    (batch.vectors[i], batch.metadatas[i], batch.documents[i]),
                    (back.vectors[j], back.metadatas[j], back.documents[j]),
                    self.metric,
                    self.options.tolerance,
                    self.read_back,
                ).equal
            ):
                self.result.repair.verified += 1

    # -- target pass: extras ----------------------------------------------------------------
    async def _target_pass(self) -> None:
        """Find target records the source lacks, and target records that repeat a source id
        under a key Ferry would not give it (written by another tool or an app).

        Deletion, when confirmed, happens after the scan (a Chroma target pages by offset, so
        deleting mid-scan would skip records) and by the keys the target reported, counting
        only what the target confirms is gone.
        """
        total = self.result.target_count
        done = 0
        doomed: list[Any] = []
        self.progress("extras", 0, total, "looking for records the source lacks")
        async for batch in stream(self.target, self.target_name, self.options.batch_size):
            known = set((await self.source.fetch(self.name, list(batch.ids))).ids)
            keys = batch.native_ids if batch.native_ids is not None else list(batch.ids)
            for sid, key in zip(batch.ids, keys, strict=True):
                stray = sid in known and str(key) != str(
                    self.target.native_id(sid, self.target_name)
                )
                if sid not in known or stray:
                    self.result.extra.add(sid if not stray else f"{sid} (duplicate at {key})")
                    doomed.append(key)
            done += len(batch)
            self.progress("extras", done, total, "looking for records the source lacks")
        if doomed and self.options.delete_extra:
            assert self.result.repair is not None
            for start in range(0, len(doomed), self.options.batch_size):
                chunk = doomed[start : start + self.options.batch_size]
                self.result.repair.deleted += await self.target.delete_found(
                    self.target_name, chunk
                )
                self.progress("repair", start + len(chunk), len(doomed), "deleting extras")
            self.result.repair.delete_failed = len(doomed) - self.result.repair.deleted

    # -- a re-embedded copy -----------------------------------------------------------------
    def _skips_missing(self) -> bool:
        return self.stage is not None and self.stage.settings.missing == "skip"

    async def _reembedded(self, sample_ids: list[str], query_ids: list[str], k: int) -> None:
        """Determinism on the sample, and the A/B search report on the queries."""
        assert self.stage is not None
        report = ABReport(self.stage.model, k, self.options.ab_min_overlap)
        self.result.ab = report
        self.progress("determinism", 0, 1, f"embedding the sample again with {report.model}")
        await check_determinism(
            self.stage.embedder, self.target, self.target_name, sample_ids or query_ids, report
        )
        if query_ids and await self._ready_for_recall():
            self.progress("queries", 0, len(query_ids), "A/B search: source vs target")
            await ab_search(
                self.source, self.target, self.name, self.target_name, query_ids, k, report
            )
            self.result.k = k
        self.progress("queries", 1, 1, "A/B search compared")

    # -- search quality ---------------------------------------------------------------------
    async def _ready_for_recall(self) -> bool:
        """Refuse to judge recall on a target that is not answering from its index yet:
        the figure would measure brute force or a half-built graph, not the real index."""
        status = self.search.phase if self.search else None
        if status is Phase.INDEXING:
            self.result.recall_refused = (
                "recall not judged: the migration's index phase has not finished (status "
                "indexing); validate again once `ferry status` says completed"
            )
            return False
        state_of = getattr(self.target, "index_state", None)
        if state_of is None:
            return True
        state = await state_of(self.target_name)
        self.result.index = state.to_json()
        if not state.ready:
            self.result.recall_refused = (
                f"recall not judged: the target is not search-ready ({state.detail}); "
                "finish the migration (`ferry migrate` again resumes its index phase)"
            )
            return False
        return True

    async def _timed_queries(
        self, connector: Connector, name: str, queries: np.ndarray, k: int
    ) -> tuple[list[list[tuple[str, float]]], list[float]]:
        """One query at a time, so each has its own latency (as the connector sees it)."""
        hits: list[list[tuple[str, float]]] = []
        latencies: list[float] = []
        for vector in queries:
            started = time.perf_counter()
            answer = await connector.query(name, vector[None, :], k)
            latencies.append((time.perf_counter() - started) * 1000)
            hits.extend(answer)
        return hits, latencies

    def _hnsw_ef(self, info: CollectionInfo) -> int | None:
        recorded = self.search.hnsw_ef if self.search else None
        if recorded:
            return int(recorded)
        return plan_tuning(info.facts, []).hnsw_ef

    async def _recall(self, queries: np.ndarray, k: int) -> None:
        hnsw_ef = self._hnsw_ef(await self.source.describe(self.name))
        if not await self._ready_for_recall():
            return
        tune = getattr(self.target, "tune_search", None)
        if tune is not None:
            tune(self.target_name, hnsw_ef)
        exact = ExactTopK(queries, self.metric, k)
        done, total = 0, self.result.source_count
        largest_norm = 0.0  # for the float32 allowance of ip scores (recall.float32_allowance)
        self.progress("exact", 0, total, "exact top-k by brute force")
        async for batch in stream(self.source, self.name, self.options.batch_size):
            await asyncio.to_thread(exact.update, batch.ids, batch.vectors)
            if len(batch):
                norms = np.linalg.norm(batch.vectors.astype(np.float64), axis=1)
                largest_norm = max(largest_norm, float(norms.max()))
            done += len(batch)
            self.progress("exact", done, total, "exact top-k by brute force")
        exact_hits = exact.result()
        self.progress("queries", 0, 2, "querying the source")
        source_hits, source_ms = await self._timed_queries(self.source, self.name, queries, k)
        self.progress("queries", 1, 2, "querying the target")
        target_hits, target_ms = await self._timed_queries(
            self.target, self.target_name, queries, k
        )
        table = await self._exact_table(queries, exact_hits, source_hits, target_hits)

        def exact_score(qi: int, item: str) -> float:
            return table[qi].get(item, -math.inf)

        query_norms = np.linalg.norm(np.asarray(queries, dtype=np.float64), axis=1)
        allowances = [float32_allowance(self.metric, float(n), largest_norm) for n in query_norms]

        src, tgt, metric = self.source.traits, self.target.traits, self.metric
        self.result.recall = measure(
            k,
            exact_hits,
            source_hits,
            target_hits,
            exact_score,
            (
                # The source's scores are on its own distance's scale when the target's differs.
                (lambda raw: None)
                if self.source_metric is not None
                else (lambda raw: src.similarity(metric, raw)),
                lambda raw: tgt.similarity(metric, raw),
            ),
            allowance=lambda qi, truth: allowances[qi](truth),
        )
        self.result.recall.latency_ms = {
            "source": latency_summary(source_ms),
            "target": latency_summary(target_ms),
        }
        self.result.recall.hnsw_ef = hnsw_ef
        # Mean time per query on each side: the Cutover screen's Δ latency before any app
        # has reported router figures.
        self.result.recall.query_ms = {
            "source": sum(source_ms) / max(len(source_ms), 1),
            "target": sum(target_ms) / max(len(target_ms), 1),
        }
        self.progress("queries", 2, 2, "search compared")

    async def _exact_table(
        self,
        queries: np.ndarray,
        exact_hits: list[list[tuple[str, float]]],
        source_hits: list[list[tuple[str, float]]],
        target_hits: list[list[tuple[str, float]]],
    ) -> list[dict[str, float]]:
        """Exact scores for every id either side returned (fetched from the source)."""
        table = [dict(hits) for hits in exact_hits]
        wanted = sorted(
            {i for hits in (*source_hits, *target_hits) for i, _ in hits}
            - {i for hits in exact_hits for i, _ in hits}
        )
        vectors: dict[str, np.ndarray] = {}
        for start in range(0, len(wanted), self.options.batch_size):
            batch = await self.source.fetch(
                self.name, wanted[start : start + self.options.batch_size]
            )
            vectors.update(zip(batch.ids, batch.vectors, strict=True))
        if vectors:
            ids = list(vectors)
            scores = exact_scores(queries, np.stack([vectors[i] for i in ids]), self.metric)
            for qi in range(len(queries)):
                for j, item in enumerate(ids):
                    table[qi].setdefault(item, float(scores[qi, j]))
        return table


async def delete_extras(
    source: Connector,
    target: Connector,
    name: str,
    target_name: str,
    batch_size: int = 500,
    on_progress: ProgressCallback | None = None,
) -> int:
    """Delete target records the source does not hold; call only after the user confirmed."""
    options = ValidationOptions(
        sample=0, queries=0, full=True, delete_extra=True, batch_size=batch_size
    )
    check = CollectionCheck(source, target, name, target_name, options, on_progress)
    check.result.target_count = await target.count(target_name)
    await check._target_pass()
    assert check.result.repair is not None
    if check.result.repair.deleted:
        await _finish(target, target_name)
    return check.result.repair.deleted


async def _finish(target: Connector, name: str) -> None:
    """After a repair: durable, final again (a file export re-seals its manifest) and
    search-ready again — records written by the repair land outside the index on an engine
    that indexes in a later phase (Qdrant Edge's optimizer), and a target that no longer
    answers from its index fails the next validation's recall check."""
    if isinstance(target, TargetConnector):
        await target.sync(name)
        await target.finish(name)
        if not (await target.index_state(name)).ready:
            await target.build_index(name, IndexTuning())


def shape_problems(source: CollectionInfo, target: CollectionInfo) -> list[str]:
    """What makes the target collection wrong as a whole, whatever its records hold."""
    out: list[str] = []
    if source.metric is not None and target.metric is not None and source.metric != target.metric:
        out.append(
            f"distance: the target searches with {target.metric.value}, the source with "
            f"{source.metric.value}"
        )
    if (
        source.dimension is not None
        and target.dimension is not None
        and source.dimension != target.dimension
    ):
        out.append(f"dimension: target {target.dimension}, source {source.dimension}")
    return out


def _subset(batch: Batch, rows: list[int]) -> Batch:
    return Batch(
        [batch.ids[i] for i in rows],
        batch.vectors[rows],
        [batch.metadatas[i] for i in rows],
        [batch.documents[i] for i in rows],
    )
