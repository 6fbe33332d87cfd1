"""Layouts of the application frameworks whose Chroma directories real projects commit:
Vanna, mem0, CrewAI and Embedchain (core.layouts holds the library frameworks).

Each framework has a Chroma store and a Qdrant store, and each Qdrant store reads a different
shape from the one its Chroma store wrote. Read from the frameworks' own code:

* vanna 2.0.2 `vanna/legacy/chromadb/chromadb_vector.py` → `vanna/legacy/qdrant/qdrant.py`.
  Chroma: collections ``sql`` / ``ddl`` / ``documentation``, ids ``deterministic_uuid(text)``
  + ``-sql`` / ``-ddl`` / ``-doc``, the sql document ``json.dumps({"question", "sql"})``, no
  metadata, l2. Qdrant: bare UUID point ids, payloads ``{question, sql}`` / ``{ddl}`` /
  ``{documentation}``, COSINE, `get_similar_question_sql` returns ``dict(payload)``.
* mem0ai 2.x `mem0/vector_stores/chroma.py` → `qdrant.py`: the Chroma metadata *is* the
  payload (``data``, ``hash``, ``user_id`` …; no document), uuid4 ids, l2 (Chroma's default).
  Qdrant: the same payload, an unnamed dense vector, COSINE (`Memory.search` keeps
  ``score >= threshold``: similarities), a sparse ``bm25`` slot with the IDF modifier (without
  it mem0 turns keyword search off), keyword indexes on user_id/agent_id/run_id/actor_id
  (created by mem0 on servers only). ``mem0migrations`` is mem0's telemetry collection.
* crewai 1.x `crewai/rag/chromadb/` → `crewai/rag/qdrant/`: Chroma ids are sha256 hex of the
  content (and sorted-JSON metadata), cosine. Qdrant: payload ``{"content": text, **metadata}``
  (`_process_search_results` hands back every other key as metadata), COSINE.
* embedchain 0.1.128 `embedchain/vectordb/chroma.py` → `qdrant.py`: Chroma ids sha256 hex of
  chunk + url (``app_id--`` prefixed with an app id), l2. Qdrant: payload ``{"identifier": id,
  "text": text, "metadata": {…, "text": text}}``, COSINE, collection
  ``<collection_name>-<dim>`` lowercased with ``_`` → ``-`` (``embedchain-store-384``). Its own
  writer used the raw id as point id, which Qdrant rejects: Ferry writes a uuid5 point id and
  keeps the original in ``identifier`` (what `get` and the app read).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any, ClassVar

from ferry.core.errors import PermanentError, PreflightError
from ferry.core.layouts.base import (
    Detection,
    PayloadLayout,
    _with_foreign,
)
from ferry.core.mapping import canonical_point_id
from ferry.core.model import CollectionInfo, Metadata, Metric

APP_LAYOUT_NAMES = ("vanna", "vanna-memory", "mem0", "crewai", "embedchain")

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
VANNA_ID = re.compile(rf"^({_UUID})-(sql|ddl|doc)$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
EMBEDCHAIN_ID = re.compile(r"^(?:.+--)?[0-9a-f]{64}$")


def vanna_uuid(content: str) -> str:
    """vanna.legacy.utils.deterministic_uuid: uuid5(nil namespace, sha256 hex of the text)."""
    digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
    return str(uuid.uuid5(uuid.UUID(int=0), digest))


class VannaLayout(PayloadLayout):
    """vanna.legacy Qdrant_VectorStore: ``{question, sql}`` / ``{ddl}`` / ``{documentation}``.

    The point id is the bare UUID of the Chroma id (its ``-sql`` / ``-ddl`` / ``-doc`` suffix
    is what Vanna's Qdrant store adds back when it reports an id: `_format_point_id`), so ids
    the app kept from the Chroma days still remove the right record. The source id of a ddl
    or documentation point stays in ``source_id`` (Vanna reads only ``payload["ddl"]`` /
    ``["documentation"]``); a sql point holds nothing but ``question`` and ``sql`` because
    Vanna returns the whole payload to the app: its id is the point id + ``-sql``.
    """

    name = "vanna"
    framework = "Vanna"
    target_metric = Metric.COSINE  # Qdrant_VectorStore's `distance_metric` default
    metadata_prefix = "metadata"  # Vanna writes none; any other sits out of its sight
    KEYS: ClassVar[dict[str, tuple[str, ...]]] = {
        "sql": ("question", "sql"),
        "ddl": ("ddl",),
        "doc": ("documentation",),
    }

    def point_id(self, source_id: str) -> int | str:
        match = VANNA_ID.match(source_id)
        return match.group(1) if match else canonical_point_id(source_id)

    def to_payload(self, source_id, metadata, document):  # type: ignore[no-untyped-def]
        match = VANNA_ID.match(source_id)
        kind = match.group(2) if match else None
        payload: dict[str, Any] = {}
        if kind == "sql":
            pair = _question_sql(document)
            if pair is not None:
                payload.update(question=pair[0], sql=pair[1])
            else:  # not Vanna's JSON: kept whole, beside what Vanna reads
                kind = None
        elif kind == "ddl" and document is not None:
            payload["ddl"] = document
        elif kind == "doc" and document is not None:
            payload["documentation"] = document
        else:
            kind = None
        if kind is None:
            payload[self.fields.document] = document
        if kind != "sql" or metadata:
            payload[self.id_field] = source_id
        if metadata:
            payload["metadata"] = dict(metadata)
        return payload

    def from_payload(self, point_id, payload):  # type: ignore[no-untyped-def]
        rest = dict(payload or {})
        stored = rest.pop(self.id_field, None)
        metadata = rest.pop("metadata", None)
        if not isinstance(metadata, dict):
            if metadata is not None:
                rest["metadata"] = metadata
            metadata = None
        document: str | None
        if "question" in rest and "sql" in rest:
            pair = {"question": rest.pop("question"), "sql": rest.pop("sql")}
            document = _pair_text(pair, point_id)
            suffix = "sql"
        elif "ddl" in rest:
            document, suffix = rest.pop("ddl"), "ddl"
        elif "documentation" in rest:
            document, suffix = rest.pop("documentation"), "doc"
        else:
            document, suffix = rest.pop(self.fields.document, None), None
        if stored is not None:
            source_id = str(stored)
        else:
            source_id = f"{point_id}-{suffix}" if suffix else str(point_id)
        return source_id, _with_foreign(metadata or None, rest), document

    def hit_source_id(self, point_id: Any, payload: dict[str, Any] | None) -> str:
        """Only sql points go without ``source_id`` (see the class doc)."""
        value = (payload or {}).get(self.id_field)
        return str(value) if value is not None else f"{point_id}-sql"


def _question_sql(document: str | None) -> tuple[Any, Any] | None:
    if document is None:
        return None
    try:
        pair = json.loads(document)
    except ValueError:
        return None
    if not isinstance(pair, dict) or list(pair) != ["question", "sql"]:
        return None
    # Only what Vanna wrote: re-encoding gives the very same text back (vanna 2 writes
    # ensure_ascii=False; plain json.dumps is accepted too, see `_pair_text`).
    if document not in (json.dumps(pair, ensure_ascii=False), json.dumps(pair)):
        return None
    return pair["question"], pair["sql"]


def _pair_text(pair: dict[str, Any], point_id: Any) -> str:
    """The sql document Vanna's Chroma store wrote for this pair: of its two JSON encodings
    (non-ASCII kept or escaped), the one whose deterministic_uuid is the point id (the Chroma
    id without `-sql`), so the text comes back byte for byte either way."""
    kept = json.dumps(pair, ensure_ascii=False)
    escaped = json.dumps(pair)
    if kept != escaped and vanna_uuid(escaped) == str(point_id):
        return escaped
    return kept


class Mem0Layout(PayloadLayout):
    """mem0's Qdrant store: the memory's payload as it is, at the top level.

    mem0 writes uuid4 ids, kept as point ids: then nothing else is added (mem0 hands every
    unknown payload key to the app as memory metadata). Other ids keep theirs in ``source_id``;
    a Chroma document (mem0 writes none) goes to ``document``."""

    name = "mem0"
    framework = "mem0"
    target_metric = Metric.COSINE
    sparse_slots = ("bm25",)  # SparseVectorParams(modifier=IDF)
    keyword_indexes = ("user_id", "agent_id", "run_id", "actor_id")

    def to_payload(self, source_id, metadata, document):  # type: ignore[no-untyped-def]
        payload = dict(metadata or {})
        if self.maps_id(source_id):
            payload[self.id_field] = source_id
        if document is not None:
            payload[self.fields.document] = document
        return payload

    def from_payload(self, point_id, payload):  # type: ignore[no-untyped-def]
        rest = dict(payload or {})
        stored = rest.pop(self.id_field, None)
        source_id = str(stored) if stored is not None else str(point_id)
        document = rest.pop(self.fields.document, None)
        return source_id, rest or None, document

    def check_metadata_keys(self, keys: list[str], where: str) -> None:
        self.fields.check_against(keys, where)


class CrewAILayout(PayloadLayout):
    """crewai.rag.qdrant: ``{"content": text, **metadata}`` at a uuid5 point id.

    CrewAI's Chroma ids are sha256 hex (not Qdrant ids) of what the payload holds anyway
    (`crewai_id`): such an id is recomputed on reading, so nothing else is stored and the app
    sees exactly its metadata. Any other id is kept in ``source_id``, which CrewAI hands back
    as one more metadata key."""

    name = "crewai"
    framework = "CrewAI"
    target_metric = Metric.COSINE  # DEFAULT_VECTOR_PARAMS
    CONTENT = "content"

    def to_payload(self, source_id, metadata, document):  # type: ignore[no-untyped-def]
        payload = dict(metadata or {})
        if self.CONTENT in payload or self.id_field in payload:
            raise PermanentError(
                f"record {source_id!r} has a metadata key 'content' or {self.id_field!r}",
                fix="migrate this collection with --layout flat, or rename with --id-field",
            )
        payload[self.CONTENT] = document if document is not None else ""
        if document is None:
            payload[self.fields.document] = None  # no Chroma document: said, out of the way
        if document is None or crewai_id(document, metadata) != source_id:
            payload[self.id_field] = source_id
        return payload

    def from_payload(self, point_id, payload):  # type: ignore[no-untyped-def]
        rest = dict(payload or {})
        stored = rest.pop(self.id_field, None)
        document = rest.pop(self.CONTENT, None)
        if self.fields.document in rest and rest[self.fields.document] is None:
            del rest[self.fields.document]
            document = None
        if stored is not None:
            source_id = str(stored)
        elif isinstance(document, str):
            source_id = crewai_id(document, rest or None)
        else:
            source_id = str(point_id)
        return source_id, rest or None, document

    hits_need_payload = True  # the id is recomputed from content and metadata

    def hit_source_id(self, point_id: Any, payload: dict[str, Any] | None) -> str:
        return self.from_payload(point_id, payload)[0]

    def check_metadata_keys(self, keys: list[str], where: str) -> None:
        clash = sorted({self.CONTENT, self.id_field} & set(keys))
        if clash:
            raise PreflightError(
                f"metadata key(s) {', '.join(clash)} collide with CrewAI's payload",
                where=where,
                fix="migrate with --layout flat, or rename the id field with --id-field",
            )


class EmbedchainLayout(PayloadLayout):
    """embedchain QdrantDB.add: ``{"identifier": id, "text": text, "metadata": {…, "text"}}``."""

    name = "embedchain"
    framework = "Embedchain"
    target_metric = Metric.COSINE
    metadata_prefix = "metadata"
    IDENTIFIER = "identifier"

    @property
    def id_field(self) -> str:
        return self.IDENTIFIER

    def to_payload(self, source_id, metadata, document):  # type: ignore[no-untyped-def]
        meta = dict(metadata or {})
        if "text" in meta and meta["text"] != document:
            raise PermanentError(
                f"record {source_id!r} has a metadata key 'text' that is not its document",
                fix="migrate this collection with --layout flat",
            )
        if document is not None:
            meta["text"] = document
        return {self.IDENTIFIER: source_id, "text": document, "metadata": meta}

    def from_payload(self, point_id, payload):  # type: ignore[no-untyped-def]
        rest = dict(payload or {})
        stored = rest.pop(self.IDENTIFIER, None)
        source_id = str(stored) if stored is not None else str(point_id)
        document = rest.pop("text", None)
        metadata = rest.pop("metadata", None)
        if not isinstance(metadata, dict):
            if metadata is not None:
                rest["metadata"] = metadata
            metadata = None
        elif "text" in metadata and metadata["text"] == document:
            metadata = {k: v for k, v in metadata.items() if k != "text"}
        return source_id, _with_foreign(metadata or None, rest), document


class VannaMemoryLayout(PayloadLayout):
    """Vanna 2 agent memory: `ChromaAgentMemory` → `QdrantAgentMemory` (``tool_memories``).

    Chroma keeps ``args`` and ``metadata`` as JSON strings (``args_json``, ``metadata_json``:
    Chroma metadata takes no dicts) and the question (or a text memory's content) as the
    document; the Qdrant store reads them parsed, at the payload's top level. uuid4 ids kept.
    A JSON string that would not come back byte for byte stays a string under its own name.
    """

    name = "vanna-memory"
    framework = "Vanna"
    target_metric = Metric.COSINE  # QdrantAgentMemory creates COSINE
    PARSED = {"args_json": "args", "metadata_json": "metadata"}

    def to_payload(self, source_id, metadata, document):  # type: ignore[no-untyped-def]
        payload = dict(metadata or {})
        clash = ({*self.PARSED.values(), self.id_field, self.fields.document}) & set(payload)
        if clash:
            raise PermanentError(
                f"record {source_id!r} has metadata key(s) {sorted(clash)}",
                fix="migrate this collection with --layout flat",
            )
        for raw_key, key in self.PARSED.items():
            raw = payload.get(raw_key)
            parsed = _json_exact(raw)
            if parsed is not None:
                del payload[raw_key]
                payload[key] = parsed[0]
        text_key = "content" if payload.get("is_text_memory") else "question"
        if document != payload.get(text_key):
            payload[self.fields.document] = document
        if self.maps_id(source_id):
            payload[self.id_field] = source_id
        return payload

    def from_payload(self, point_id, payload):  # type: ignore[no-untyped-def]
        rest = dict(payload or {})
        stored = rest.pop(self.id_field, None)
        source_id = str(stored) if stored is not None else str(point_id)
        for raw_key, key in self.PARSED.items():
            if key in rest:
                rest[raw_key] = json.dumps(rest.pop(key))
        text_key = "content" if rest.get("is_text_memory") else "question"
        if self.fields.document in rest:
            document = rest.pop(self.fields.document)
        else:
            document = rest.get(text_key)
        return source_id, rest or None, document


def _json_exact(raw: Any) -> tuple[Any] | None:
    """(value,) when `raw` is JSON that `json.dumps` gives back exactly, else None."""
    if not isinstance(raw, str):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return (value,) if json.dumps(value) == raw else None


APP_LAYOUTS: tuple[type[PayloadLayout], ...] = (
    VannaLayout,
    VannaMemoryLayout,
    Mem0Layout,
    CrewAILayout,
    EmbedchainLayout,
)

# -- detection ------------------------------------------------------------------------------
VANNA_COLLECTIONS = {"sql", "ddl", "documentation"}
MEM0_KEYS = {"data", "hash"}
MEM0_OWNERS = {"user_id", "agent_id", "run_id"}
CREWAI_PREFIXES = ("knowledge_", "memory_short_term", "memory_entities", "memory_long_term")


def crewai_id(content: str, meta: Metadata | None) -> str:
    """The id CrewAI's Chroma store gives a document (`_prepare_documents_for_chromadb`):
    metadata ``doc_id`` when there is one, else sha256 of the content, with ``|`` and the
    sorted-JSON metadata appended when the document has metadata."""
    if meta and "doc_id" in meta:
        return str(meta["doc_id"])
    if meta:
        content = f"{content}|{json.dumps(dict(meta), sort_keys=True)}"
    return hashlib.sha256(content.encode()).hexdigest()


def crewai_ids(content: str | None, meta: Metadata | None) -> set[str]:
    """crewai.rag.chromadb.utils `_prepare_documents_for_chromadb`: sha256 of the content, or
    of ``content|sorted-JSON metadata`` when the document came with metadata."""
    text = content or ""
    variants = {text}
    if meta:
        variants.add(f"{text}|{json.dumps(dict(meta), sort_keys=True)}")
    return {hashlib.sha256(v.encode()).hexdigest() for v in variants}


def detect_app(
    info: CollectionInfo, ids: list[str], metadatas: list[Metadata | None], documents: list[Any]
) -> Detection | None:
    """Marks Vanna, mem0, CrewAI and Embedchain leave in a sample of records (None: none)."""
    n = len(ids)
    vanna = [sid for sid in ids if VANNA_ID.match(sid)]
    if vanna and (info.name in VANNA_COLLECTIONS or len(vanna) == n):
        return Detection(
            "Vanna",
            "vanna",
            [f"{len(vanna)} of {n} sampled ids are Vanna's uuid-sql/-ddl/-doc"]
            + ([f"collection name {info.name!r}"] if info.name in VANNA_COLLECTIONS else []),
        )
    memory = sum(1 for m in metadatas if m and {"tool_name", "args_json"} <= set(m))
    if memory or info.name == "tool_memories":
        marks = (
            [f"tool_name/args_json metadata in {memory} of {n} sampled records"] if memory else []
        )
        if info.name == "tool_memories":
            marks.append("collection name 'tool_memories' (Vanna 2 agent memory's default)")
        return Detection("Vanna", "vanna-memory", marks)
    if info.name == "mem0migrations":
        return Detection("mem0", "mem0", ["mem0migrations: mem0's telemetry collection"])
    mem0 = sum(1 for m in metadatas if m and set(m) >= MEM0_KEYS and MEM0_OWNERS & set(m))
    if mem0:
        return Detection(
            "mem0", "mem0", [f"data/hash/user_id metadata in {mem0} of {n} sampled records"]
        )
    hashed = sum(
        1
        for sid, meta, doc in zip(ids, metadatas, documents, strict=True)
        if SHA256_HEX.match(sid) and sid in crewai_ids(doc, meta)
    )
    if hashed or (n and info.name.startswith(CREWAI_PREFIXES)):
        marks = [f"{hashed} of {n} sampled ids are CrewAI's sha256 of content"] if hashed else []
        if info.name.startswith(CREWAI_PREFIXES):
            marks.append(f"collection name {info.name!r}")
        return Detection("CrewAI", "crewai", marks)
    embedchain = sum(
        1
        for sid, meta in zip(ids, metadatas, strict=True)
        if EMBEDCHAIN_ID.match(sid) and meta and {"data_type", "doc_id"} <= set(meta)
    )
    if embedchain or info.name == "embedchain_store":
        marks = (
            [f"data_type/doc_id metadata and sha256 ids in {embedchain} of {n} sampled records"]
            if embedchain
            else []
        )
        if info.name == "embedchain_store":
            marks.append("collection name 'embedchain_store' (Embedchain's default)")
        return Detection("Embedchain", "embedchain", marks)
    return None


def written_shape(keys: set[str], fields: Any) -> str | None:
    """Which app layout a raw target payload's top-level keys look written in (None: other)."""
    keys = keys - {fields.source_id}
    if keys and keys <= {"question", "sql", "metadata"} and {"question", "sql"} <= keys:
        return "vanna"
    if (
        keys
        and keys <= {"ddl", "documentation", "metadata", fields.document}
        and (keys & {"ddl", "documentation"})
    ):
        return "vanna"
    if {"identifier", "text", "metadata"} <= keys:
        return "embedchain"
    if {"question", "tool_name", "args"} <= keys or {"content", "is_text_memory"} <= keys:
        return "vanna-memory"
    if keys >= MEM0_KEYS:
        return "mem0"
    if "content" in keys and fields.document not in keys:  # Haystack's is matched before
        return "crewai"
    return None


# -- what the plan says ---------------------------------------------------------------------
# The embedder each framework's Qdrant store uses when the app names none, against the one
# its Chroma store used: where they differ, copied vectors are searched with another model's
# query vectors and give wrong neighbours without any error.
# mem0 and Embedchain configure the embedder apart from the store: switching store keeps it.
DEFAULT_EMBEDDERS = {
    "Vanna": (
        "Chroma's all-MiniLM-L6-v2 (384-d)",
        "fastembed BAAI/bge-small-en-v1.5 (384-d)",
    ),
    "CrewAI": (  # crewai/rag/chromadb/config.py, crewai/rag/qdrant/config.py
        "OpenAI text-embedding-3-small (1536-d)",
        "fastembed sentence-transformers/all-MiniLM-L6-v2 (384-d)",
    ),
}


def app_plan_lines(layout: PayloadLayout, info: CollectionInfo) -> list[str]:
    """What changes for an app framework's collection: shapes, ids, distance, embedder."""
    lines: list[str] = []
    source = info.metric or Metric.L2
    wanted = getattr(layout, "target_metric", None)
    if wanted is not None and wanted is not source:
        lines.append(
            f"distance: {layout.framework}'s Qdrant store creates COSINE collections; the target "
            f"is created COSINE (the source searched with {source.value}): the vectors keep their "
            "directions (Qdrant stores them at length 1), their scores and, for vectors "
            "of unequal length, their order change"
        )
    if layout.name == "mem0" and source is Metric.L2:
        lines.append(
            "scores: mem0's Chroma store scored 1/(1 + d²), its Qdrant store the cosine; for "
            "unit vectors cos = (3 - 1/s)/2, and search's threshold (default 0.1) now "
            "applies to the cosine: memories below it that Chroma returned are left out"
        )
    embedders = DEFAULT_EMBEDDERS.get(layout.framework or "")
    if embedders:
        lines.append(
            f"embedder: {layout.framework}'s Chroma store embeds with {embedders[0]} by default, "
            f"its Qdrant store with {embedders[1]}: another model's query vectors find wrong "
            "neighbours without any error. Give the Qdrant store the embedder that wrote these "
            "vectors, or re-embed with --embed for the one it will use"
        )
    if layout.name == "embedchain" and info.dimension:
        wanted_name = f"{info.name}-{info.dimension}".lower().replace("_", "-")
        lines.append(
            f"collection: Embedchain's Qdrant store opens '{wanted_name}' "
            f"(collection_name-dimension): migrate with --collection {info.name}={wanted_name}"
        )
    if layout.name == "vanna-memory" and source is Metric.L2:
        lines.append(
            "scores: ChromaAgentMemory's similarity was 1 - d² (for unit vectors 2·cos - 1), "
            "QdrantAgentMemory's is cos: a similarity_threshold t keeps cos ≥ (t + 1)/2 on "
            "Chroma and cos ≥ t on Qdrant; pass (t + 1)/2 to keep what Chroma kept"
        )
    if layout.name == "crewai":
        lines.append(
            "scores: CrewAI reports (cos + 1)/2 on both stores, but its Qdrant client passes "
            "score_threshold to Qdrant as a raw cosine: a threshold t keeps reported scores "
            "≥ (t + 1)/2 after the switch (the default 0.6: ≥ 0.8); pass 2t - 1 to keep "
            "what Chroma kept"
        )
        lines.append(
            "collection: CrewAI's Qdrant client uses the name as given, its Chroma client "
            "sanitised it (characters other than letters, digits, _ and - became _): if yours "
            "had any, name the target with --collection SOURCE=NAME"
        )
    if layout.name == "crewai" and info.name.startswith(CREWAI_PREFIXES[1:]):
        lines.append(
            "memory: CrewAI ≤ 1.9 kept its agents' memory in Chroma; CrewAI ≥ 1.10's unified "
            "memory is another model (LanceDB, or Qdrant Edge: named vector 'memory', integer "
            "point ids, MemoryRecord payloads): this copy is readable with CrewAI's RAG client, "
            "not loaded into that memory"
        )
    if info.name == "mem0migrations":
        lines.append(
            "mem0migrations is mem0's telemetry collection, not memories: it need not move"
        )
    return lines


def app_switch_lines(layout: PayloadLayout, info: CollectionInfo, target: str, client: str) -> str:
    """The line the app changes to read the migrated collection with its Qdrant store."""
    if layout.name == "vanna":
        return (
            "from vanna.legacy.qdrant import Qdrant_VectorStore; "
            f'Qdrant_VectorStore(config={{"client": {client}}}) (reads sql, ddl, documentation)'
        )
    if layout.name == "vanna-memory":
        where = client.removeprefix("QdrantClient(").removesuffix(")")
        return (
            "from vanna.integrations.qdrant import QdrantAgentMemory; "
            f'QdrantAgentMemory(collection_name="{target}", {where}, dimension={info.dimension})'
            " (its embedding is a placeholder hash: give it the model that wrote these vectors)"
        )
    if layout.name == "mem0":
        return (
            'Memory.from_config({"vector_store": {"provider": "qdrant", "config": '
            f'{{"client": {client}, "collection_name": "{target}", '
            f'"embedding_model_dims": {info.dimension}}}}}, ...)'
        )
    if layout.name == "crewai":
        where = client.removeprefix("QdrantClient(").removesuffix(")")
        return (
            "from crewai.rag.qdrant.config import QdrantConfig; from crewai.rag.config.utils "
            f"import set_rag_config; set_rag_config(QdrantConfig(options=dict({where}), "
            f"embedding_function=<your embedder>)); collection {target!r}"
        )
    return (
        "embedchain config: vectordb provider qdrant (QDRANT_URL names the server); "
        f"collection {target!r}"
    )


def app_id_lines(layout: PayloadLayout, mapped: list[str]) -> list[str]:
    """How the Chroma ids sit on the target, in the app's terms."""
    if layout.name == "vanna":
        return [
            "ids: point id = the Chroma id without -sql/-ddl/-doc (Vanna's Qdrant store adds the "
            "suffix back), so ids the app kept still remove the right record; a question/SQL "
            "pair trained again after the switch is stored under Vanna's Qdrant id "
            'deterministic_uuid("Question: …\\n\\nSQL: …"), beside the copied one'
        ]
    if not mapped:
        return []
    if layout.name == "crewai":
        return [
            "ids: CrewAI's sha256 ids are not Qdrant ids: each lives at point "
            "uuid5(id) and is recomputed from content and metadata as CrewAI's Chroma store "
            "computed it; any other id is kept in 'source_id' (CrewAI shows it as metadata)"
        ]
    where = repr(layout.id_field)
    from ferry.core.mapping import FERRY_ID_NAMESPACE

    return [
        f"ids: ids that are not UUIDs (e.g. {mapped[0]!r}) live at point "
        f'uuid5(UUID("{FERRY_ID_NAMESPACE}"), id); the original id is kept in {where}'
    ]


def as_created(info: CollectionInfo, layout: PayloadLayout | None) -> CollectionInfo:
    """The source's description as the target collection is created for `layout`: with the
    distance the framework's Qdrant store creates (what `prepare`, the plan's shape check and
    validation compare an existing target with)."""
    wanted = layout.target_metric if layout is not None else None
    if wanted is None or info.metric is None or info.metric is wanted:
        return info
    from dataclasses import replace

    return replace(info, metric=wanted)
