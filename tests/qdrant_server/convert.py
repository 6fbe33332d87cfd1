"""qdrant-client's REST models (`qdrant_client.http.models`) to Qdrant Edge's objects and back.

The emulator parses every request body into the model qdrant-client would send and shapes
every answer from the model it parses: what cannot be expressed here raises `Unsupported`,
which the app answers with Qdrant's error shape (400), never a silent approximation.
"""

from __future__ import annotations

import uuid
from typing import Any

import qdrant_edge as qe
from qdrant_client.http import models

from tests.qdrant_server.shard_config import (  # noqa: F401 - re-exported
    DEFAULT_EF_CONSTRUCT,
    DEFAULT_FULL_SCAN_KB,
    DEFAULT_INDEXING_KB,
    DEFAULT_M,
    edge_config,
)

DISTANCE = {
    models.Distance.COSINE: "Cosine",
    models.Distance.EUCLID: "Euclid",
    models.Distance.DOT: "Dot",
    models.Distance.MANHATTAN: "Manhattan",
}
SCHEMA = {
    "keyword": "Keyword",
    "integer": "Integer",
    "float": "Float",
    "bool": "Bool",
    "geo": "Geo",
    "datetime": "Datetime",
    "text": "Text",
    "uuid": "Uuid",
}


class Unsupported(ValueError):
    """A request the emulator cannot serve as Qdrant would: answered 400, in Qdrant's shape."""


def vector_settings(vectors: Any) -> dict[str, Any]:
    """`VectorParams` or `{name: VectorParams}` as plain JSON."""

    def one(v: models.VectorParams) -> dict[str, Any]:
        if v.multivector_config is not None:
            raise Unsupported("multivectors are not implemented by the emulator")
        return {"size": v.size, "distance": DISTANCE[v.distance], "on_disk": v.on_disk}

    if isinstance(vectors, models.VectorParams):
        return one(vectors)
    if isinstance(vectors, dict) and vectors:
        return {name: one(v) for name, v in vectors.items()}
    raise Unsupported("a collection needs dense vectors (sparse-only is not implemented)")


def vector_params(settings: dict[str, Any]) -> Any:
    def one(v: dict[str, Any]) -> models.VectorParams:
        distance = next(k for k, name in DISTANCE.items() if name == v["distance"])
        return models.VectorParams(size=v["size"], distance=distance, on_disk=v.get("on_disk"))

    vectors = settings["vectors"]
    return one(vectors) if "size" in vectors else {k: one(v) for k, v in vectors.items()}


# -- ids, vectors, payloads ---------------------------------------------------------------------
def point_id(value: Any) -> Any:
    """A REST id (unsigned int or UUID text) as Edge takes it."""
    if isinstance(value, int):
        return value
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise Unsupported(f"Unable to parse UUID: {value}") from exc  # Qdrant's words for a bad id


def rest_id(value: Any) -> Any:
    return value if isinstance(value, int) else str(value)


def vector_in(vector: Any, settings: dict[str, Any]) -> Any:
    """A point's vector (a list, or `{name: list}`) for Edge."""
    named = "size" not in settings["vectors"]
    if isinstance(vector, dict):
        if not named and set(vector) <= {""}:
            return [float(x) for x in vector.get("", [])]
        for value in vector.values():
            if not isinstance(value, list):
                raise Unsupported("only dense vectors are implemented by the emulator")
        return {k: [float(x) for x in v] for k, v in vector.items()}
    if named:
        raise Unsupported("Wrong input: Not existing vector name error: ")
    return [float(x) for x in vector]


def vector_out(vector: Any) -> Any:
    if vector is None:
        return None
    if isinstance(vector, dict):
        return {k: list(v) for k, v in vector.items()}
    return list(vector)


def payload_out(payload: Any, selector: Any) -> dict[str, Any] | None:
    """Edge's payload cut to what `with_payload` asked for."""
    if selector is False or selector is None:
        return None
    data = dict(payload or {})
    if isinstance(selector, models.PayloadSelectorExclude):
        return {k: v for k, v in data.items() if k not in set(selector.exclude)}
    return data


def with_payload_in(selector: Any) -> Any:
    if selector is None:
        return False
    if isinstance(selector, bool):
        return selector
    if isinstance(selector, list):
        return list(selector)
    if isinstance(selector, models.PayloadSelectorInclude):
        return list(selector.include)
    return True  # exclusion is applied on the way out


def with_vector_in(selector: Any) -> Any:
    if selector is None:
        return False
    return list(selector) if isinstance(selector, list) else bool(selector)


# -- filters -----------------------------------------------------------------------------------
def filter_in(value: models.Filter | None) -> qe.Filter | None:
    if value is None:
        return None

    def many(conditions: Any) -> list[Any] | None:
        if conditions is None:
            return None
        items = conditions if isinstance(conditions, list) else [conditions]
        return [condition_in(c) for c in items]

    min_should = None
    if value.min_should is not None:
        min_should = qe.MinShould(
            conditions=[condition_in(c) for c in value.min_should.conditions],
            min_count=value.min_should.min_count,
        )
    return qe.Filter(
        must=many(value.must),
        should=many(value.should),
        must_not=many(value.must_not),
        min_should=min_should,
    )


def condition_in(condition: Any) -> Any:
    if isinstance(condition, models.Filter):
        return filter_in(condition)
    if isinstance(condition, models.HasIdCondition):
        return qe.HasIdCondition(point_ids={point_id(i) for i in condition.has_id})
    if isinstance(condition, models.IsEmptyCondition):
        return qe.IsEmptyCondition(key=condition.is_empty.key)
    if isinstance(condition, models.IsNullCondition):
        return qe.IsNullCondition(key=condition.is_null.key)
    if isinstance(condition, models.NestedCondition):
        return qe.NestedCondition(
            key=condition.nested.key, filter=filter_in(condition.nested.filter)
        )
    if isinstance(condition, models.FieldCondition):
        return field_condition_in(condition)
    raise Unsupported(f"filter condition {type(condition).__name__} is not implemented")


def field_condition_in(c: models.FieldCondition) -> Any:
    kwargs: dict[str, Any] = {"key": c.key}
    match = c.match
    if isinstance(match, models.MatchValue):
        kwargs["match"] = qe.MatchValue(match.value)
    elif isinstance(match, models.MatchAny):
        kwargs["match"] = qe.MatchAny(list(match.any))
    elif isinstance(match, models.MatchExcept):
        kwargs["match"] = qe.MatchExcept(list(match.except_))
    elif isinstance(match, models.MatchText):
        kwargs["match"] = qe.MatchText(match.text)
    elif match is not None:
        raise Unsupported(f"match {type(match).__name__} is not implemented")
    if isinstance(c.range, models.Range):
        r = c.range
        kwargs["range"] = qe.RangeFloat(gte=r.gte, gt=r.gt, lte=r.lte, lt=r.lt)
    elif c.range is not None:
        raise Unsupported("datetime ranges are not implemented by the emulator")
    if c.values_count is not None:
        v = c.values_count
        kwargs["values_count"] = qe.ValuesCount(lt=v.lt, gt=v.gt, lte=v.lte, gte=v.gte)
    for geo in ("geo_bounding_box", "geo_radius", "geo_polygon"):
        if getattr(c, geo, None) is not None:
            raise Unsupported(f"{geo} is not implemented by the emulator")
    if c.is_empty is not None:
        kwargs["is_empty"] = c.is_empty
    if c.is_null is not None:
        kwargs["is_null"] = c.is_null
    return qe.FieldCondition(**kwargs)


def index_schema(schema: Any) -> Any:
    """A payload index's schema (a type name or typed params) for Edge."""
    kind = getattr(schema, "type", schema)
    kind = str(getattr(kind, "value", kind))
    if kind not in SCHEMA:
        raise Unsupported(f"payload index type {kind!r} is not implemented")
    enable_hnsw = getattr(schema, "enable_hnsw", None)
    params_class = getattr(qe, f"{SCHEMA[kind]}IndexParams", None)
    if enable_hnsw is not None and params_class is not None:
        try:
            return params_class(enable_hnsw=enable_hnsw)
        except TypeError:
            pass
    return getattr(qe.PayloadSchemaType, SCHEMA[kind])


def schema_name(data_type: Any) -> str:
    """Edge's `PayloadSchemaType.Keyword` as REST's "keyword"."""
    return str(data_type).rsplit(".", 1)[-1].lower()
