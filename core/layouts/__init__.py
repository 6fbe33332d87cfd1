"""Payload layouts: how a Chroma record becomes a Qdrant point so that the *application* reads it.

Most Chroma collections are written by a framework, and each framework's Qdrant store reads
its own shape of payload. A layout writes exactly that shape, so the app switches store class
and keeps its data, ids, metadata and filters. Verified against the frameworks' own code:

* langchain-qdrant 1.1.0 (`QdrantVectorStore`, langchain-core 1.7) / langchain-chroma 1.1.0
* llama-index-vector-stores-qdrant 0.10.4 / llama-index-vector-stores-chroma 0.6.0
  (llama-index-core 0.14.25: `node_to_metadata_dict`, `metadata_dict_to_node`)
* qdrant-haystack 13.1.0 (`QdrantDocumentStore`, `convert_id`) / chroma-haystack 5.0.0
  (haystack-ai 3.4)

Shapes written (``sid`` is the Chroma id; ``source_id`` is `PayloadFields.source_id`):

* ``flat``: ``{**metadata, "source_id": sid, "document": text}``; point id canonical or uuid5.
* ``langchain``: ``{"page_content": text, "metadata": {…}, "source_id": sid}``. LangChain hands
  the app ``metadata`` (+ its own ``_id`` / ``_collection_name``) and ``page_content``; any
  other top-level key stays out of the app's sight. Canonical UUIDs and u64 ids are kept as
  point ids (LangChain passes ids to Qdrant unchanged), others become uuid5.
* ``llamaindex``: the metadata as LlamaIndex's Chroma store saved it (user keys,
  ``_node_content``, ``_node_type``, ``doc_id``, ``document_id``, ``ref_doc_id``) with the
  document text put back into ``_node_content`` (its Chroma store blanks it there; its Qdrant
  store reads the text only from there), plus ``source_id`` at the top level, which
  `metadata_dict_to_node` ignores (and ``document: None`` for a record without a Chroma
  document, which LlamaIndex never writes). A record without ``_node_content`` gets its text in
  ``text`` (the store's legacy ``text_key``).
* ``haystack``: ``{"id": sid, "content": text, "blob": None, "meta": {…}, "score": None,
  "sparse_embedding": None}`` (`Document.to_dict(flatten=False)` without the embedding); the
  point id is ``uuid5(3896d314-…, sid)`` as `convert_id` derives it. ``id`` *is* the source id:
  `Document.from_dict` folds any other top-level key into the app's ``meta``.

Reading back (`from_payload`) is exact for records written either by Ferry or by the framework
itself (an app writing during dual-write), and strict: a payload key the layout does not
expect comes back as metadata ``payload:<key>``, so a collection written half in one layout
and half in another shows up as differences in validation instead of silence.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ferry.core.errors import PreflightError
from ferry.core.mapping import PayloadFields
from ferry.core.model import CollectionInfo, Metadata, Metric

from . import apps as app_layouts
from .base import (
    FOREIGN,
    HAYSTACK_NAMESPACE,
    LIBRARY_LAYOUT_NAMES,
    Detection,
    FlatLayout,
    HaystackLayout,
    LangChainLayout,
    LlamaIndexLayout,
    PayloadLayout,
    _with_foreign,
)

__all__ = [
    "FOREIGN",
    "HAYSTACK_NAMESPACE",
    "LAYOUTS",
    "LAYOUT_NAMES",
    "Detection",
    "PayloadLayout",
    "_with_foreign",
    "detect_framework",
    "detect_written_layout",
    "haystack_ids",
    "make_layout",
    "score_lines",
    "switch_lines",
]

# Every layout by name: the libraries' (base.py), then the application frameworks' (apps.py).
LAYOUT_NAMES: tuple[str, ...] = (*LIBRARY_LAYOUT_NAMES, *app_layouts.APP_LAYOUT_NAMES)
LAYOUTS: dict[str, type[PayloadLayout]] = {
    cls.name: cls
    for cls in (
        FlatLayout,
        LangChainLayout,
        LlamaIndexLayout,
        HaystackLayout,
        *app_layouts.APP_LAYOUTS,
    )
}


def make_layout(name: str | None, fields: PayloadFields | None = None) -> PayloadLayout:
    """The layout of this name (flat when None); an unknown name is a one-line error."""
    key = (name or "flat").lower()
    if key not in LAYOUTS:
        raise PreflightError(
            f"unknown layout {name!r}", fix=f"choose one of: {', '.join(LAYOUT_NAMES)}"
        )
    return LAYOUTS[key](fields)


def haystack_ids(content: str | None, meta: Metadata | None) -> set[str]:
    """The ids Haystack gives a Document of this content and meta (`Document._create_id`):
    haystack-ai 2.x (meta as a Python dict) and 3.x (meta as sorted JSON), no blob and no
    embedding at creation (a Document is embedded after its id is made)."""
    text = content or None
    variants = {f"{meta or {}}"}  # 2.x
    variants.add(json.dumps(meta, sort_keys=True, default=str) if meta else "{}")  # 3.x
    return {hashlib.sha256(f"{text}NoneNoneNone{m}None".encode()).hexdigest() for m in variants}


def detect_framework(
    info: CollectionInfo, ids: list[str], metadatas: list[Metadata | None], documents: list[Any]
) -> Detection:
    """Marks each framework's Chroma integration leaves in the data (a sample of records):

    * LlamaIndex: `_node_content` and `_node_type` metadata keys on its records.
    * Haystack: ids that are Haystack's content hash of (document, meta) — a default
      `Document` id; custom ids leave no mark.
    * LangChain: langchain-chroma adds nothing to records; its default collection name
      ``langchain`` is the only mark.
    """
    n = len(ids)
    app = app_layouts.detect_app(info, ids, metadatas, documents)
    if app is not None:
        return app
    llama = sum(
        1
        for m in metadatas
        if m and LlamaIndexLayout.NODE_CONTENT in m and LlamaIndexLayout.NODE_TYPE in m
    )
    if llama:
        return Detection(
            "LlamaIndex",
            "llamaindex",
            [f"_node_content/_node_type metadata in {llama} of {n} sampled records"],
        )
    hashed = sum(
        1
        for sid, meta, doc in zip(ids, metadatas, documents, strict=True)
        if len(sid) == 64 and sid in haystack_ids(doc, meta)
    )
    if hashed:
        return Detection(
            "Haystack",
            "haystack",
            [f"{hashed} of {n} sampled ids are Haystack content hashes of (content, meta)"],
        )
    if info.name == "langchain":
        return Detection(
            "LangChain", "langchain", ["collection name 'langchain' (langchain-chroma's default)"]
        )
    return Detection()


def detect_written_layout(payloads: list[dict[str, Any] | None], fields: PayloadFields) -> str:
    """Which layout a Qdrant collection's points were written in (a sample of raw payloads,
    e.g. read through the flat layout: metadata holds every top-level key but the id and the
    document). The most common shape wins; a mixed collection then shows differences."""
    votes: dict[str, int] = {}
    for payload in payloads:
        keys = set(payload or {}) - {fields.source_id}
        langchain = {LangChainLayout.CONTENT, LangChainLayout.METADATA}
        haystack = {"id", "content", "meta", *HaystackLayout.EMPTY_FIELDS}
        if LangChainLayout.METADATA in keys and keys <= langchain:
            shape = "langchain"
        elif {"id", "meta"} <= keys and keys <= haystack:
            shape = "haystack"
        elif LlamaIndexLayout.NODE_CONTENT in keys and fields.document not in keys:
            shape = "llamaindex"
        elif app_layouts.written_shape(keys, fields):
            shape = str(app_layouts.written_shape(keys, fields))
        else:
            shape = "flat"
        votes[shape] = votes.get(shape, 0) + 1
    return max(votes, key=lambda k: votes[k]) if votes else "flat"


# -- switching the app ----------------------------------------------------------------------
QDRANT_DISTANCE_NAME = {Metric.L2: "EUCLID", Metric.COSINE: "COSINE", Metric.IP: "DOT"}
HAYSTACK_SIMILARITY = {Metric.L2: "l2", Metric.COSINE: "cosine", Metric.IP: "dot_product"}


def score_lines(metric: Metric | None, framework: str | None) -> list[str]:
    """How a score or threshold tuned on Chroma reads on Qdrant (see core.connectors.traits).

    Chroma reports distances (lower is better): squared L2, 1 − cos, 1 − dot. Qdrant reports
    the plain Euclidean distance (lower is better) and cos / dot (higher is better), and its
    `score_threshold` keeps hits on the better side of the threshold.
    """
    metric = metric or Metric.L2
    if framework == "LlamaIndex":
        # llama-index-vector-stores-chroma reports similarity = exp(-distance).
        if metric is Metric.L2:
            return [
                "scores: Chroma's node similarity was exp(-d²); Qdrant's is the plain distance d "
                "(lower is better): a similarity_cutoff c becomes a maximum distance √(-ln c)"
            ]
        word = "cos" if metric is Metric.COSINE else "dot"
        return [
            f"scores: Chroma's node similarity was exp(-(1 - {word})); Qdrant's is {word}: "
            f"a similarity_cutoff c becomes 1 + ln(c)"
        ]
    if metric is Metric.L2:
        return [
            "scores: Chroma gave the squared distance d², Qdrant gives d (lower is better on "
            "both): a Chroma threshold t becomes score_threshold=√t"
        ]
    word = "cos" if metric is Metric.COSINE else "dot"
    return [
        f"scores: Chroma gave 1 - {word} (lower is better), Qdrant gives {word} (higher is "
        f"better): a Chroma threshold t becomes score_threshold=1 - t"
    ]


def switch_lines(
    layout: PayloadLayout,
    info: CollectionInfo,
    target_name: str,
    client: str,
    sample_ids: list[str] | None = None,
) -> list[str]:
    """The few lines an application changes to read this migrated collection.

    `client` is how the app builds its Qdrant client (e.g. ``QdrantClient(path="/data/q")``).
    """
    metric = info.metric or Metric.L2
    lines: list[str] = []
    if layout.name == "langchain":
        distance = QDRANT_DISTANCE_NAME[metric]
        setting = "" if metric is Metric.COSINE else f", distance=models.Distance.{distance}"
        lines.append(
            f"from langchain_qdrant import QdrantVectorStore; QdrantVectorStore(client={client}, "
            f'collection_name="{target_name}", embedding=<your embeddings>{setting})'
        )
    elif layout.name == "llamaindex":
        lines.append(
            "from llama_index.vector_stores.qdrant import QdrantVectorStore; "
            f'QdrantVectorStore(collection_name="{target_name}", client={client})'
        )
    elif layout.name == "haystack":
        where = client.removeprefix("QdrantClient(").removesuffix(")")
        lines.append(
            "from haystack_integrations.document_stores.qdrant import QdrantDocumentStore; "
            f'QdrantDocumentStore({where}, index="{target_name}", '
            f'embedding_dim={info.dimension}, similarity="{HAYSTACK_SIMILARITY[metric]}")'
        )
    elif layout.framework is not None:
        lines.append(app_layouts.app_switch_lines(layout, info, target_name, client))
    else:
        lines.append(
            f'{client}.query_points("{target_name}", query=<vector>, limit=k): metadata at the '
            f"payload's top level, text in {layout.fields.document!r}, the Chroma id in "
            f"{layout.fields.source_id!r}"
        )
    mapped = [sid for sid in (sample_ids or []) if layout.maps_id(sid)]
    if layout.name in app_layouts.APP_LAYOUT_NAMES:
        return (
            lines
            + app_layouts.app_id_lines(layout, mapped)
            + app_layouts.app_plan_lines(layout, info)
        )
    if layout.name == "haystack":
        lines.append("ids: Haystack document ids are kept (the store derives point ids itself)")
    elif mapped:
        from ferry.core.mapping import FERRY_ID_NAMESPACE

        lines.append(
            f"ids: ids that are not UUIDs (e.g. {mapped[0]!r}) live at point "
            f'uuid5(UUID("{FERRY_ID_NAMESPACE}"), id); get/delete by that'
            + ("; nodes still report their own id" if layout.name == "llamaindex" else "")
        )
    lines += score_lines(metric, layout.framework)
    return lines
