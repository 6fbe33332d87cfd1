"""Qdrant's answer shapes: `{"result", "status": "ok", "time"}` and `{"status": {"error"}, "time"}`,
and request bodies parsed with qdrant-client's own models."""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.responses import JSONResponse

CONTROL = "/__emulator/"  # the tests' own control API (not Qdrant's)


def ok(result: Any, started: float) -> JSONResponse:
    return JSONResponse({"result": result, "status": "ok", "time": time.perf_counter() - started})


def error(
    status: int, message: str, started: float, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"status": {"error": message}, "time": time.perf_counter() - started}
    return JSONResponse(body, status_code=status, headers=headers)


def dump(model: Any) -> Any:
    if isinstance(model, list):
        return [dump(m) for m in model]
    return model.model_dump(mode="json", exclude_none=True)


async def parse(request: Request, shape: Any) -> Any:
    raw = await request.body()
    data = json.loads(raw) if raw.strip() else {}
    return TypeAdapter(shape).validate_python(data)
