"""The emulator's HTTP layer: Qdrant's REST routes on Starlette, shaped by qdrant-client's models.

Answers are `{"result": ..., "status": "ok", "time": s}`; failures are Qdrant's
`{"status": {"error": "..."}, "time": s}` with its status codes (400 bad input, 404 missing,
409 exists, 401 no key). Bodies are parsed with the pydantic models qdrant-client sends
(`extra="forbid"`), so a field the emulator does not know is a 400, as on a strict server.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from qdrant_client.http import models
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.qdrant_server import convert
from tests.qdrant_server.faults import Fault, Seen
from tests.qdrant_server.shapes import CONTROL, dump, error, ok, parse
from tests.qdrant_server.store import Collection, Conflict, NotFound, Store

# Edge's words for what Qdrant answers 400 ("Wrong input: ...") rather than 500.
BAD_INPUT_WORDS = ("dimension error", "Wrong input", "invalid", "parse", "Validation")
MAX_REQUEST_BYTES = 32 * 1024 * 1024  # Qdrant's service.max_request_size_mb default


class Emulator:
    """Shared state: the store, the faults, the key, the log of requests."""

    def __init__(self, root: Path, version: str, indexing_kb: int) -> None:
        self.store = Store(root, indexing_kb)
        self.version = version
        self.faults: list[Fault] = []
        self.api_key: str | None = None
        self.log: list[Seen] = []
        self.max_request_bytes = MAX_REQUEST_BYTES


# -- collections ---------------------------------------------------------------------------------
def collection_info(c: Collection) -> models.CollectionInfo:
    s = c.settings
    info = c.last_info
    status = models.CollectionStatus.YELLOW if c.optimizing else models.CollectionStatus.GREEN
    optimizer: Any = models.OptimizersStatusOneOf.OK
    if c.optimizer_error:
        status = models.CollectionStatus.RED
        optimizer = models.OptimizersStatusOneOf1(error=c.optimizer_error)
    return models.CollectionInfo(
        status=status,
        optimizer_status=optimizer,
        indexed_vectors_count=info.get("indexed", 0),
        points_count=info.get("points", 0),
        segments_count=info.get("segments", 1),
        config=models.CollectionConfig(
            params=models.CollectionParams(
                vectors=convert.vector_params(s),
                shard_number=1,
                replication_factor=1,
                write_consistency_factor=1,
                on_disk_payload=True,
            ),
            hnsw_config=models.HnswConfig(
                m=s["m"],
                ef_construct=s["ef_construct"],
                full_scan_threshold=s["full_scan_threshold"],
                max_indexing_threads=0,
                on_disk=False,
            ),
            optimizer_config=models.OptimizersConfig(
                deleted_threshold=0.2,
                vacuum_min_vector_number=1000,
                default_segment_number=0,
                indexing_threshold=s["indexing_kb"],
                flush_interval_sec=5,
            ),
            wal_config=models.WalConfig(wal_capacity_mb=32, wal_segments_ahead=0),
        ),
        payload_schema={
            key: models.PayloadIndexInfo(data_type=models.PayloadSchemaType(kind), points=0)
            for key, kind in c.payload_schema.items()
            if kind in {t.value for t in models.PayloadSchemaType}
        },
    )


def routes(em: Emulator) -> list[Route]:  # noqa: C901 - one table of Qdrant's endpoints
    store = em.store

    async def root(request: Request) -> Response:
        return JSONResponse({"title": "qdrant - vector search engine", "version": em.version})

    async def health(request: Request) -> Response:
        return PlainTextResponse("healthz check passed")

    async def list_collections(request: Request, t: float) -> Response:
        names = [models.CollectionDescription(name=n) for n in sorted(store.collections)]
        return ok(dump(models.CollectionsResponse(collections=names)), t)

    async def get_collection(request: Request, t: float) -> Response:
        c = store.resolve(request.path_params["name"])
        info = collection_info(c)
        request.state.collection_status = info.status.value
        return ok(dump(info), t)

    async def exists(request: Request, t: float) -> Response:
        name = request.path_params["name"]
        found = name in store.collections or name in store.aliases
        return ok(dump(models.CollectionExistence(exists=found)), t)

    async def create_collection(request: Request, t: float) -> Response:
        body = await parse(request, models.CreateCollection)
        if body.sparse_vectors or body.quantization_config or body.sharding_method:
            raise convert.Unsupported(
                "sparse vectors, quantization and sharding are not implemented"
            )
        if body.vectors is None:
            raise convert.Unsupported("a collection needs dense vectors")
        vectors = convert.vector_settings(body.vectors)
        store.create(request.path_params["name"], vectors, body.hnsw_config, body.optimizers_config)
        return ok(True, t)

    async def update_collection(request: Request, t: float) -> Response:
        body = await parse(request, models.UpdateCollection)
        c = store.resolve(request.path_params["name"])
        if body.vectors or body.quantization_config or body.sparse_vectors:
            raise convert.Unsupported(
                "only hnsw_config and optimizers_config updates are implemented"
            )
        changes: dict[str, Any] = {}
        if body.hnsw_config is not None:
            changes.update(
                m=body.hnsw_config.m,
                ef_construct=body.hnsw_config.ef_construct,
                full_scan_threshold=body.hnsw_config.full_scan_threshold,
            )
        if body.optimizers_config is not None:
            changes["indexing_kb"] = body.optimizers_config.indexing_threshold
        await store.reconfigure(c, changes)
        return ok(True, t)

    async def delete_collection(request: Request, t: float) -> Response:
        return ok(await store.delete(request.path_params["name"]), t)

    # -- points ---------------------------------------------------------------------------
    def update_result() -> Any:
        return dump(models.UpdateResult(operation_id=0, status=models.UpdateStatus.COMPLETED))

    async def upsert(request: Request, t: float) -> Response:
        import qdrant_edge as qe

        body = await parse(request, models.PointInsertOperations)
        c = store.resolve(request.path_params["name"])
        s = c.settings
        points = []
        if isinstance(body, models.PointsList):
            for p in body.points:
                vector = convert.vector_in(p.vector, s)
                points.append(qe.Point(convert.point_id(p.id), vector, p.payload or {}))
        else:
            batch = body.batch
            vectors = batch.vectors
            payloads = batch.payloads or [None] * len(batch.ids)
            for i, pid in enumerate(batch.ids):
                vector = (
                    {k: v[i] for k, v in vectors.items()}
                    if isinstance(vectors, dict)
                    else vectors[i]
                )
                points.append(
                    qe.Point(convert.point_id(pid), convert.vector_in(vector, s), payloads[i] or {})
                )
        await store.run(c, lambda shard: shard.update(qe.UpdateOperation.upsert_points(points)))
        await store.after_update(c)
        return ok(update_result(), t)

    async def delete_points(request: Request, t: float) -> Response:
        import qdrant_edge as qe

        body = await parse(request, models.PointsSelector)
        c = store.resolve(request.path_params["name"])
        if isinstance(body, models.PointIdsList):
            op = qe.UpdateOperation.delete_points([convert.point_id(i) for i in body.points])
        else:
            op = qe.UpdateOperation.delete_points_by_filter(convert.filter_in(body.filter))
        await store.run(c, lambda shard: shard.update(op))
        await store.after_update(c)
        return ok(update_result(), t)

    def record(p: Any, selector: Any) -> models.Record:
        return models.Record(
            id=convert.rest_id(p.id),
            payload=convert.payload_out(p.payload, selector),
            vector=convert.vector_out(p.vector),
        )

    async def retrieve(request: Request, t: float) -> Response:
        body = await parse(request, models.PointRequest)
        c = store.resolve(request.path_params["name"])
        ids = [convert.point_id(i) for i in body.ids]
        found = await store.run(
            c,
            lambda shard: shard.retrieve(
                ids,
                convert.with_payload_in(body.with_payload),
                convert.with_vector_in(body.with_vector),
            ),
        )
        return ok([dump(record(p, body.with_payload)) for p in found], t)

    async def get_point(request: Request, t: float) -> Response:
        c = store.resolve(request.path_params["name"])
        raw = request.path_params["id"]
        pid = convert.point_id(int(raw) if raw.isdigit() else raw)
        found = await store.run(c, lambda shard: shard.retrieve([pid], True, True))
        if not found:
            raise NotFound(f"Not found: No point with id {raw} found")
        return ok(dump(record(found[0], True)), t)

    async def scroll(request: Request, t: float) -> Response:
        import qdrant_edge as qe

        body = await parse(request, models.ScrollRequest)
        c = store.resolve(request.path_params["name"])
        if body.order_by is not None:
            raise convert.Unsupported("order_by is not implemented by the emulator")
        req = qe.ScrollRequest(
            offset=None if body.offset is None else convert.point_id(body.offset),
            limit=body.limit or 10,
            filter=convert.filter_in(body.filter),
            with_payload=convert.with_payload_in(
                True if body.with_payload is None else body.with_payload
            ),
            with_vector=convert.with_vector_in(body.with_vector),
        )
        found, next_offset = await store.run(c, lambda shard: shard.scroll(req))
        selector = True if body.with_payload is None else body.with_payload
        result = models.ScrollResult(
            points=[record(p, selector) for p in found],
            next_page_offset=None if next_offset is None else convert.rest_id(next_offset),
        )
        return ok(dump(result), t)

    async def count(request: Request, t: float) -> Response:
        import qdrant_edge as qe

        body = await parse(request, models.CountRequest)
        c = store.resolve(request.path_params["name"])
        req = qe.CountRequest(exact=True, filter=convert.filter_in(body.filter))
        n = await store.run(c, lambda shard: shard.count(req))
        return ok(dump(models.CountResult(count=int(n))), t)

    def search_params(params: models.SearchParams | None) -> Any:
        import qdrant_edge as qe

        if params is None:
            return None
        return qe.SearchParams(hnsw_ef=params.hnsw_ef, exact=bool(params.exact))

    def scored(p: Any, selector: Any) -> models.ScoredPoint:
        return models.ScoredPoint(
            id=convert.rest_id(p.id),
            version=int(getattr(p, "version", 0) or 0),
            score=float(p.score),
            payload=convert.payload_out(p.payload, selector),
            vector=convert.vector_out(p.vector),
        )

    async def nearest_of(c: Collection, query: Any, using: str | None) -> Any:
        """The vector a `query` asks for nearest neighbours of (a vector or a point's id)."""
        if isinstance(query, models.NearestQuery):
            query = query.nearest
        if isinstance(query, list):
            return [float(x) for x in query]
        if isinstance(query, int | str):
            found = await store.run(
                c, lambda shard: shard.retrieve([convert.point_id(query)], False, True)
            )
            if not found:
                raise NotFound(f"Not found: No point with id {query} found")
            vector = found[0].vector
            return vector[using or ""] if isinstance(vector, dict) else list(vector)
        raise convert.Unsupported(
            f"query {type(query).__name__} is not implemented by the emulator"
        )

    async def run_query(c: Collection, body: models.QueryRequest) -> models.QueryResponse:
        import qdrant_edge as qe

        if body.prefetch or body.lookup_from or body.shard_key:
            raise convert.Unsupported("prefetch, lookup_from and shard keys are not implemented")
        query = None
        if body.query is not None:
            vector = await nearest_of(c, body.query, body.using)
            query = (
                qe.Query.Nearest(vector, using=body.using)
                if body.using
                else qe.Query.Nearest(vector)
            )
        req = qe.QueryRequest(
            limit=body.limit or 10,
            offset=body.offset,
            query=query,
            filter=convert.filter_in(body.filter),
            params=search_params(body.params),
            score_threshold=body.score_threshold,
            with_payload=convert.with_payload_in(body.with_payload),
            with_vector=convert.with_vector_in(body.with_vector),
        )
        found = await store.run(c, lambda shard: shard.query(req))
        return models.QueryResponse(points=[scored(p, body.with_payload) for p in found])

    async def query(request: Request, t: float) -> Response:
        body = await parse(request, models.QueryRequest)
        c = store.resolve(request.path_params["name"])
        return ok(dump(await run_query(c, body)), t)

    async def query_batch(request: Request, t: float) -> Response:
        body = await parse(request, models.QueryRequestBatch)
        c = store.resolve(request.path_params["name"])
        return ok([dump(await run_query(c, q)) for q in body.searches], t)

    async def run_search(c: Collection, body: models.SearchRequest) -> list[Any]:
        vector, using = body.vector, None
        if isinstance(vector, models.NamedVector):
            vector, using = vector.vector, vector.name
        elif not isinstance(vector, list):
            raise convert.Unsupported("only dense and named dense vectors are implemented")
        request = models.QueryRequest(
            query=vector,
            using=using,
            filter=body.filter,
            params=body.params,
            limit=body.limit,
            offset=body.offset,
            with_payload=body.with_payload,
            with_vector=body.with_vector,
            score_threshold=body.score_threshold,
        )
        return (await run_query(c, request)).points

    async def search(request: Request, t: float) -> Response:
        body = await parse(request, models.SearchRequest)
        c = store.resolve(request.path_params["name"])
        return ok(dump(await run_search(c, body)), t)

    async def search_batch(request: Request, t: float) -> Response:
        body = await parse(request, models.SearchRequestBatch)
        c = store.resolve(request.path_params["name"])
        return ok([dump(await run_search(c, s)) for s in body.searches], t)

    # -- payload indexes ------------------------------------------------------------------
    async def create_index(request: Request, t: float) -> Response:
        import qdrant_edge as qe

        body = await parse(request, models.CreateFieldIndex)
        c = store.resolve(request.path_params["name"])
        if body.field_schema is None:
            raise convert.Unsupported("field_schema is required by the emulator")
        op = qe.UpdateOperation.create_field_index(
            body.field_name, convert.index_schema(body.field_schema)
        )
        await store.run(c, lambda shard: shard.update(op))
        await store.after_update(c)
        return ok(update_result(), t)

    async def delete_index(request: Request, t: float) -> Response:
        import qdrant_edge as qe

        c = store.resolve(request.path_params["name"])
        op = qe.UpdateOperation.delete_field_index(request.path_params["field"])
        await store.run(c, lambda shard: shard.update(op))
        await store.after_update(c)
        return ok(update_result(), t)

    # -- aliases --------------------------------------------------------------------------
    def alias_list(only: str | None = None) -> Any:
        found = [
            models.AliasDescription(alias_name=a, collection_name=c)
            for a, c in sorted(store.aliases.items())
            if only is None or c == only
        ]
        return dump(models.CollectionsAliasesResponse(aliases=found))

    async def aliases(request: Request, t: float) -> Response:
        return ok(alias_list(), t)

    async def collection_aliases(request: Request, t: float) -> Response:
        c = store.resolve(request.path_params["name"])
        return ok(alias_list(c.name), t)

    async def change_aliases(request: Request, t: float) -> Response:
        body = await parse(request, models.ChangeAliasesOperation)
        store.change_aliases(body.actions)
        return ok(True, t)

    # -- snapshots ------------------------------------------------------------------------
    async def create_snapshot(request: Request, t: float) -> Response:
        c = store.resolve(request.path_params["name"])
        return ok(await store.create_snapshot(c), t)

    async def list_snapshots(request: Request, t: float) -> Response:
        c = store.resolve(request.path_params["name"])
        return ok(store.snapshots(c), t)

    async def get_snapshot(request: Request, t: float) -> Response:
        c = store.resolve(request.path_params["name"])
        path = store.snapshot_path(c, request.path_params["snapshot"])
        return FileResponse(path, media_type="application/octet-stream", filename=path.name)

    async def delete_snapshot(request: Request, t: float) -> Response:
        c = store.resolve(request.path_params["name"])
        path = store.snapshot_path(c, request.path_params["snapshot"])
        path.unlink()
        path.with_name(path.name + ".checksum").unlink(missing_ok=True)
        return ok(True, t)

    # -- control (not Qdrant's: the tests' own) ------------------------------------------
    async def control(request: Request) -> Response:
        what = request.path_params["what"]
        data = json.loads(await request.body() or b"null")
        if what == "faults" and request.method == "PUT":
            em.faults = [Fault.from_json(f) for f in data or []]
        elif what == "key" and request.method == "PUT":
            em.api_key = data.get("key") if data else None
        elif what == "settings" and request.method == "PUT":
            store.indexing_kb = int(data.get("indexing_threshold_kb", store.indexing_kb))
            store.optimizer_min_seconds = float(
                data.get("optimizer_min_seconds", store.optimizer_min_seconds)
            )
        elif what == "log" and request.method == "DELETE":
            em.log.clear()
        elif what == "reset" and request.method == "POST":
            em.faults, em.api_key = [], None
            store.optimizer_min_seconds = 0.0
            em.log.clear()
        elif request.method != "GET":
            return JSONResponse({"error": f"unknown control {request.method} {what}"}, 404)
        return JSONResponse(
            {
                "faults": [f.to_json() for f in em.faults],
                "key": bool(em.api_key),
                "log": [s.to_json() for s in em.log],
                "indexing_threshold_kb": store.indexing_kb,
            }
        )

    def qdrant(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            try:
                return await handler(request, started)
            except NotFound as exc:
                return error(404, str(exc), started)
            except Conflict as exc:
                return error(409, str(exc), started)
            except (convert.Unsupported, ValidationError, json.JSONDecodeError) as exc:
                return error(400, f"Bad request: {' '.join(str(exc).split())[:500]}", started)
            except Exception as exc:  # the engine's own refusal, sorted as Qdrant sorts it
                text = " ".join(str(exc).split())
                if isinstance(exc, ValueError) or any(w in text for w in BAD_INPUT_WORDS):
                    return error(400, f"Wrong input: {text}", started)
                return error(500, f"Service internal error: {text}", started)

        return endpoint

    table = [
        ("/collections", "GET", list_collections),
        ("/aliases", "GET", aliases),
        ("/collections/aliases", "POST", change_aliases),
        ("/collections/{name}", "GET", get_collection),
        ("/collections/{name}", "PUT", create_collection),
        ("/collections/{name}", "PATCH", update_collection),
        ("/collections/{name}", "DELETE", delete_collection),
        ("/collections/{name}/exists", "GET", exists),
        ("/collections/{name}/aliases", "GET", collection_aliases),
        ("/collections/{name}/points", "PUT", upsert),
        ("/collections/{name}/points", "POST", retrieve),
        ("/collections/{name}/points/delete", "POST", delete_points),
        ("/collections/{name}/points/scroll", "POST", scroll),
        ("/collections/{name}/points/count", "POST", count),
        ("/collections/{name}/points/query", "POST", query),
        ("/collections/{name}/points/query/batch", "POST", query_batch),
        ("/collections/{name}/points/search", "POST", search),
        ("/collections/{name}/points/search/batch", "POST", search_batch),
        ("/collections/{name}/points/{id}", "GET", get_point),
        ("/collections/{name}/index", "PUT", create_index),
        ("/collections/{name}/index/{field}", "DELETE", delete_index),
        ("/collections/{name}/snapshots", "POST", create_snapshot),
        ("/collections/{name}/snapshots", "GET", list_snapshots),
        ("/collections/{name}/snapshots/{snapshot}", "GET", get_snapshot),
        ("/collections/{name}/snapshots/{snapshot}", "DELETE", delete_snapshot),
    ]
    found = [Route(path, qdrant(h), methods=[m]) for path, m, h in table]
    return [
        Route("/", root, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
        Route("/readyz", health, methods=["GET"]),
        Route("/livez", health, methods=["GET"]),
        Route(CONTROL + "{what}", control, methods=["GET", "PUT", "POST", "DELETE"]),
        *found,
    ]


def build(root: Path, version: str, indexing_kb: int) -> Any:
    em = Emulator(root, version, indexing_kb)

    async def not_found(request: Request, exc: Exception) -> Response:
        """Any route it does not serve (a path, or a method on a known path: `POST
        /points/recommend` matches `GET /points/{id}`) is a 404, saying so."""
        words = f"Not found: the test server does not serve {request.method} {request.url.path}"
        return error(404, words, time.perf_counter())

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        em.store.close()  # flushed shards: a restarted emulator finds what it held

    app = Starlette(
        routes=routes(em),
        exception_handlers={404: not_found, 405: not_found},
        lifespan=lifespan,
    )
    from tests.qdrant_server.gate import Gate

    return Gate(app, em)
