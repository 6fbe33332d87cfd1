"""Runs INSIDE one chromadb release's own venv (its python, its numpy, its chromadb).

    python writer.py write   DIR SET    # build DIR with that release's PersistentClient
    python writer.py truth   DIR OUT [NAME...]  # dump collections as the release sees them
    python writer.py upgrade DIR        # open DIR once (a newer chromadb migrates it in place)

Each mode is its own process: the builder copies DIR for Ferry between ``write`` and
``truth``, so the copy is exactly what the release left on disk when its process ended
(opening a directory again can change it: migrations, log purges, HNSW persists).

Everything is seeded; the same data goes into every release, adapted only where a release
refuses it (list metadata before 1.x, ``None`` entries in some), which it says by raising.
"""

from __future__ import annotations

import base64
import json
import sys
import uuid
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chromadb  # noqa: E402
import numpy as np  # noqa: E402
import spec  # noqa: E402  (standard library only, shared with the tests)
from chromadb.config import Settings  # noqa: E402

U = str(uuid.UUID(int=0xA1B2C3D4E5F64A7B8C9D0E1F2A3B4C5D))
ODD_IDS = [
    "re.search#0",
    "123",
    "00123",
    "-5",
    "0",
    "with space",
    " leading and trailing ",
    "ключ",
    "日本語のID",
    "rocket 🚀",
    "é" * 120,
    "L" * 600,
    U.upper(),
    U.lower(),
    "quote'\"\\",
]
WAL_ODD_IDS = ["wal#1", "wal 🚀 2", "456"]
EXACT_FLOAT = 0.9507332740887903  # one of the doubles Qdrant Edge rounds by 1 ulp
READDED: dict[str, dict[str, str]] = {}  # collection -> re-added id -> vector as written


def client(path: str) -> Any:
    return chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode()


class Adapter:
    """Learns what this release refuses, once, from its own validation errors.

    Validation runs client-side before anything is written, so a refused call leaves no
    trace on disk.
    """

    def __init__(self) -> None:
        self.lists = True
        self.none_metadata = True
        self.none_document = True

    def metadata(self, i: int, md: dict[str, Any] | None) -> dict[str, Any] | None:
        if md is None:
            return None if self.none_metadata else {"i": i}
        if not self.lists:
            md = {k: v for k, v in md.items() if not isinstance(v, list)}
        return md

    def document(self, i: int, doc: str | None) -> str | None:
        if doc is None and not self.none_document:
            return f"doc {i}"
        return doc

    def learn(self, exc: Exception) -> bool:
        text = str(exc).lower()
        if self.lists and "list" in text and "metadata" in text:
            self.lists = False
        elif self.none_metadata and "metadata" in text and ("none" in text or "dict" in text):
            self.none_metadata = False
        elif self.none_document and "document" in text:
            self.none_document = False
        else:
            return False
        return True

    def call(
        self,
        collection: Any,
        op: str,
        rows: list[int],
        ids: list[str],
        vectors: np.ndarray | None,
        metadatas: list[dict[str, Any] | None] | None,
        documents: list[str | None] | None,
    ) -> None:
        while True:
            kwargs: dict[str, Any] = {"ids": list(ids)}
            if vectors is not None:
                kwargs["embeddings"] = np.asarray(vectors, dtype=np.float32).tolist()
            if metadatas is not None:
                kwargs["metadatas"] = [
                    self.metadata(i, m) for i, m in zip(rows, metadatas, strict=True)
                ]
            if documents is not None:
                kwargs["documents"] = [
                    self.document(i, d) for i, d in zip(rows, documents, strict=True)
                ]
            try:
                getattr(collection, op)(**kwargs)
                return
            except Exception as exc:  # each release raises its own error types
                if not self.learn(exc):
                    raise


def metadata_for(i: int, rng: np.random.Generator) -> dict[str, Any] | None:
    if i % 13 == 5:
        return None
    md: dict[str, Any] = {
        "i": i,
        "f": float(rng.random()),
        "whole": float(i % 3),  # 0.0, 1.0, 2.0: floats that look like ints
        "b": i % 2 == 0,
        "s": f"s{i}-ünï",
        "neg": -7 * i,
        "big": 2**53 + i,
    }
    if i == 7:
        md["f"] = EXACT_FLOAT
    if i % 4 == 0:
        md["tag"] = ("red", "green", "blue")[i % 3]
    if i % 3 == 0:
        md["li"] = [i, -1, 2**40]
        md["lf"] = [0.5, EXACT_FLOAT, -2.25]
        md["ls"] = ["a", "β", f"x{i}"]
        md["lb"] = [True, False, True]
    return md


def document_for(i: int) -> str | None:
    return None if i % 4 == 1 else f"document {i} — ünïcode ✓"


def vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    """Varied norms, so a cosine index that forgot its norms cannot pass for exact."""
    scale = rng.uniform(0.5, 5.0, size=(n, 1))
    return (rng.normal(size=(n, spec.DIM)) * scale).astype(np.float32)


def create(cl: Any, name: str, way: str, space: str) -> Any:
    if way == "meta":
        return cl.create_collection(name, metadata={"hnsw:space": space})
    if way == "cfg":
        return cl.create_collection(name, configuration={"hnsw": {"space": space}})
    if way == "schema":
        from chromadb import Schema, VectorIndexConfig

        schema = Schema().create_index(config=VectorIndexConfig(space=space))
        return cl.create_collection(name, schema=schema)
    raise ValueError(way)


def story(cl: Any, plan: spec.Plan, ad: Adapter) -> Any:
    """The history of one full/small collection: adds, more adds, then every kind of change."""
    rng = np.random.default_rng(zlib.crc32(plan.name.encode()))
    first, more = (
        (spec.FIRST, spec.MORE) if plan.story == "full" else (spec.SMALL_FIRST, spec.SMALL_MORE)
    )
    ids = ODD_IDS + [f"r{i}" for i in range(first - len(ODD_IDS))]
    ids += WAL_ODD_IDS + [f"w{i}" for i in range(more - len(WAL_ODD_IDS))]
    n = len(ids)
    vecs = vectors(rng, n)
    metas = [metadata_for(i, rng) for i in range(n)]
    docs = [document_for(i) for i in range(n)]
    col = create(cl, plan.name, plan.way, plan.space)

    def put(op: str, rows: list[int], with_vectors: bool = True) -> None:
        ad.call(
            col,
            op,
            rows,
            [ids[i] for i in rows],
            vecs[rows] if with_vectors else None,
            [metas[i] for i in rows],
            [docs[i] for i in rows],
        )

    for start in range(0, first, 300):
        put("add", list(range(start, min(start + 300, first))))
    for start in range(first, n, 100):
        put("add", list(range(start, min(start + 100, n))))

    # Deletes: persisted rows, an odd id, rows that only ever lived in the WAL.
    gone = ids[20:30] + ["123"] + ids[first + 5 : first + 10]
    col.delete(ids=gone)
    # Vector-only updates (persisted and WAL-only rows).
    rows = list(range(30, 35)) + [first + 11]
    ad.call(col, "update", rows, [ids[i] for i in rows], vectors(rng, len(rows)), None, None)
    # Metadata-only updates: a key changes type, a new key with an exact double.
    rows = list(range(40, 45))
    new_metas = [{"i": f"now text {i}", "added": EXACT_FLOAT, "b": False} for i in rows]
    ad.call(col, "update", rows, [ids[i] for i in rows], None, new_metas, None)
    # Vector + metadata + document together.
    rows = list(range(50, 53)) + [first + 20]
    ad.call(
        col,
        "update",
        rows,
        [ids[i] for i in rows],
        vectors(rng, len(rows)),
        [{"updated": True, "i": -i} for i in rows],
        [f"updated document {i}" for i in rows],
    )
    col.delete(ids=[ids[first + 21]])  # a WAL-only row: added, then deleted
    # Re-adds of deleted ids, with new vectors and metadata.
    back = ids[20:23] + ["123", ids[first + 5]]
    rows = [ids.index(b) for b in back]
    again = vectors(rng, len(back))
    READDED[plan.name] = {rid: b64(v) for rid, v in zip(back, again, strict=True)}
    ad.call(
        col,
        "add",
        rows,
        back,
        again,
        [{"readded": True, "i": k} for k in range(len(back))],
        [None, "re-added", None, "re-added 123", "re-added wal"],
    )
    # Upserts: three existing ids, three new ones.
    up_ids = ids[60:63] + ["up-new-0", "up-new-1", "up-new-2"]
    ad.call(
        col,
        "upsert",
        list(range(6)),
        up_ids,
        vectors(rng, 6),
        [{"upserted": k, "f": float(k) + 0.25} for k in range(6)],
        [f"upserted {k}" for k in range(6)],
    )
    return col


def probe_v0_configuration(cl: Any) -> str:
    """0.5/0.6 export a configuration API; on a PersistentClient it raises before writing."""
    try:
        from chromadb.api.configuration import CollectionConfiguration, HNSWConfiguration
    except ImportError:
        return "absent"
    config = CollectionConfiguration(hnsw_configuration=HNSWConfiguration(space="cosine"))
    try:
        cl.create_collection("cfg-probe", configuration=config)
    except ValueError as exc:
        names = [c if isinstance(c, str) else c.name for c in cl.list_collections()]
        assert "cfg-probe" not in names, "the failed configuration call created a collection"
        return f"raises: {exc}"
    raise AssertionError("this 0.x release accepts configuration=: add 'cfg' in spec.ways")


def write(path: str, dataset: str) -> None:
    cl = client(path)
    ad = Adapter()
    probe = None
    if chromadb.__version__.startswith("0.") and "cfg" not in spec.ways(spec.release_of(dataset)):
        probe = probe_v0_configuration(cl)
    plans = spec.collections(dataset)
    first_full = None
    for plan in plans:
        if plan.story in ("full", "small"):
            col = story(cl, plan, ad)
            first_full = first_full or col
        elif plan.story == "renamed":
            rng = np.random.default_rng(11)
            col = create(cl, "to-be-renamed", plan.way, plan.space)
            rows = list(range(40))
            ids = [f"n{i}" for i in rows]
            ad.call(
                col, "add", rows, ids, vectors(rng, 40), [metadata_for(i, rng) for i in rows], None
            )
            col.modify(name=plan.name)
            col = cl.get_collection(plan.name)
            ad.call(col, "add", [40], ["after-rename"], vectors(rng, 1), [{"late": 1}], ["late"])
        elif plan.story == "recreated":
            rng = np.random.default_rng(12)
            old = create(cl, plan.name, plan.way, "cosine")
            rows = list(range(30))
            ad.call(old, "add", rows, [f"old{i}" for i in rows], vectors(rng, 30), None, None)
            cl.delete_collection(plan.name)
            col = create(cl, plan.name, plan.way, plan.space)
            rows = list(range(50))
            new_ids = [f"old{i}" for i in range(5)] + [f"new{i}" for i in range(45)]
            metas = [metadata_for(i, rng) for i in rows]
            ad.call(col, "add", rows, new_ids, vectors(rng, 50), metas, None)
        elif plan.story == "empty":
            create(cl, plan.name, plan.way, plan.space)
    # Interleave: the first collection's newest rowids come after every other collection's.
    if first_full is not None:
        rng = np.random.default_rng(13)
        ad.call(
            first_full,
            "add",
            [0, 1],
            ["late-0", "late-1"],
            vectors(rng, 2),
            [{"late": True}, None],
            ["late", None],
        )
    print(
        json.dumps(
            {
                "adapter": vars(ad),
                "chromadb": chromadb.__version__,
                "v0_configuration": probe,
                "readded": READDED,
            }
        )
    )


def jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=repr))
    except (TypeError, ValueError):
        return repr(value)


def dump(col: Any, queries: np.ndarray) -> dict[str, Any]:
    """One collection as this release sees it: records, settings, and query() answers."""
    get_error, no_vector = None, []
    try:
        got = col.get(include=["embeddings", "metadatas", "documents"])
        emb = got["embeddings"]
        emb = (
            np.zeros((0, spec.DIM), dtype=np.float32)
            if emb is None or len(emb) == 0
            else np.asarray([np.asarray(e, dtype=np.float32) for e in emb], dtype=np.float32)
        )
    except Exception as exc:
        # 0.4.24: ids deleted and re-added before the next HNSW persist stay "deleted" in
        # its vector segment but live in its metadata segment, and a bulk
        # get(include=embeddings) raises IndexError (in the writing process as after a
        # reopen). Ask one id at a time; ids without a vector are listed (NaN rows), and
        # the tests compare those with what the writer re-added (READDED in its output).
        get_error = f"{type(exc).__name__}: {exc}"
        got = col.get(include=["metadatas", "documents"])
        emb = np.full((len(got["ids"]), spec.DIM), np.nan, dtype=np.float32)
        all_ids = list(got["ids"])
        for start in range(0, len(all_ids), 250):
            chunk = all_ids[start : start + 250]
            try:  # most chunks hold no such id: one call for the chunk
                part = col.get(ids=chunk, include=["embeddings"])
                for rid, vector in zip(part["ids"], part["embeddings"], strict=True):
                    emb[start + chunk.index(rid)] = np.asarray(vector, dtype=np.float32)
                continue
            except Exception:
                pass
            for k, rid in enumerate(chunk, start):
                try:
                    one = col.get(ids=[rid], include=["embeddings"])["embeddings"]
                except Exception:
                    one = None
                if one is not None and len(one) == 1 and one[0] is not None:
                    emb[k] = np.asarray(one[0], dtype=np.float32)
                else:
                    no_vector.append(rid)
    ids = list(got["ids"])
    entry: dict[str, Any] = {
        "get_error": get_error,
        "no_vector": no_vector,
        "id": str(col.id),
        "count": col.count(),
        "metadata": jsonable(col.metadata),
        "ids": ids,
        "embeddings": b64(emb),
        "dim": int(emb.shape[1]) if len(ids) else None,
        "metadatas": jsonable(list(got["metadatas"] or [None] * len(ids))),
        "documents": list(got["documents"] or [None] * len(ids)),
    }
    for attr in ("configuration_json", "configuration"):
        try:
            entry[attr] = jsonable(getattr(col, attr))
        except Exception as exc:  # absent or broken in this release
            entry[attr] = f"<{type(exc).__name__}>"
    try:
        schema = col.schema
        entry["schema"] = jsonable(schema.serialize_to_json() if schema else None)
    except Exception as exc:
        entry["schema"] = f"<{type(exc).__name__}>"
    hits: list[dict[str, Any]] = []
    if ids:
        res = col.query(
            query_embeddings=queries.tolist(),
            n_results=min(10, len(ids)),
            include=["distances"],
        )
        for k in range(len(queries)):
            distances = [float(d) for d in res["distances"][k]]
            hits.append({"ids": list(res["ids"][k]), "distances": distances})
    entry["queries"] = hits
    return entry


def truth(path: str, out: str, *only: str) -> None:
    """Every collection (or only the named ones) as the release's own API returns it.

    A collection the release cannot read is recorded with its error instead: chromadb 1.x
    panics on some directories older releases wrote (see build.py's upgraded data set).
    """
    cl = client(path)
    names = sorted(c if isinstance(c, str) else c.name for c in cl.list_collections())
    result: dict[str, Any] = {"chromadb": chromadb.__version__, "collections": {}}
    rng = np.random.default_rng(99)
    queries = (rng.normal(size=(spec.QUERIES, spec.DIM)) * 2).astype(np.float32)
    result["queries"] = b64(queries)
    for name in names:
        if only and name not in only:
            continue
        try:
            result["collections"][name] = dump(cl.get_collection(name), queries)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # pyo3's PanicException is a BaseException
            result["collections"][name] = {"error": f"{type(exc).__name__}: {exc}"}
    Path(out).write_text(json.dumps(result, ensure_ascii=False))


def upgrade(path: str) -> None:
    """Open once, as a user who upgraded chromadb would: migrations apply in place."""
    cl = client(path)
    names = [c if isinstance(c, str) else c.name for c in cl.list_collections()]
    print(json.dumps({"chromadb": chromadb.__version__, "collections": names}))


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    {"write": write, "truth": truth, "upgrade": upgrade}[mode](*args)
