"""Connection URIs: a typo in an option is refused in one line, never ignored."""

from __future__ import annotations

import re

import pytest

from ferry.core.errors import FerryError
from ferry.core.uri import parse_uri


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("qdrant+http://localhost:6333?api_kye_env=X", "unknown option ?api_kye_env="),
        ("qdrant+http://localhost:6333?grpc=maybe", "not a yes/no value"),
        ("qdrant+edge:///data/q?grpc=1", "unknown option ?grpc="),
        ("chroma+file:///data/c?tenant=x", "unknown option ?tenant="),
        ("qdrant+https://h?timeout=nan", "not a number of seconds"),
        ("qdrant+https://h?timeout=-5", "not a number of seconds"),
        ("chroma+http://h:8000?database=", "is empty"),
        ("qdrant+http://h?api_key=secret", "secrets are not accepted"),
    ],
)
def test_bad_options_are_refused(uri: str, message: str) -> None:
    with pytest.raises(FerryError, match=re.escape(message)) as caught:
        parse_uri(uri)
    assert "\n" not in str(caught.value) and "secret" not in caught.value.where


@pytest.mark.parametrize(
    "uri",
    [
        "qdrant+http://localhost:6333?api_key_env=QDRANT_KEY&grpc=1&timeout=30",
        "chroma+file:///data/c?api=1",
        "chroma+http://h:8000?tenant=t&database=d",
    ],
)
def test_known_options_are_accepted(uri: str) -> None:
    assert parse_uri(uri).params
