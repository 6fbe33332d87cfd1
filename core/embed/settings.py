"""What a user asks of the embed stage (`--embed provider/model` and its flags), declared once.

Why a settings object of its own: the same choice comes from the CLI, the run dialog and
profiles; it is journaled with the run (a resume keeps the model), and part of it - the
settings that change a vector - is the cache's key (`fingerprint`). The API key is named by
the environment variable that holds it; its value is read when a request is sent and never
stored in this object, so nothing that serialises it can leak the key.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from ferry.core.errors import FerryError

PROVIDERS = ("openai", "wordllama", "sentence-transformers", "fastembed")
MISSING_CHOICES = ("refuse", "skip")
DEFAULT_KEY_ENV = "OPENAI_API_KEY"


@dataclass(frozen=True)
class EmbedSettings:
    """One embedding model and how to reach it within its limits."""

    model: str  # "provider/name", e.g. "openai/text-embedding-3-small", "wordllama/l2_supercat"
    base_url: str | None = None  # openai: the endpoint (default $OPENAI_BASE_URL)
    # openai: the variable holding the key (never its value); None: OPENAI_API_KEY when set,
    # else no key (a local server may need none)
    api_key_env: str | None = None
    dimensions: int | None = None  # where the model can shorten its vectors
    rpm: float | None = None  # requests per minute allowed (None: no client-side cap)
    tpm: float | None = None  # tokens per minute allowed
    missing: str = "refuse"  # records without a document: refuse (by id) | skip (counted)
    price: float | None = None  # per million tokens, for the plan's cost line
    batch_texts: int = 256  # most texts in one request
    batch_tokens: int = 100_000  # most estimated tokens in one request
    concurrency: int = 4  # requests in flight
    timeout: float = 60.0  # one request
    give_up_after: float = 600.0  # stop retrying one request after this long (429s included)

    @property
    def provider(self) -> str:
        return self.model.partition("/")[0]

    @property
    def model_name(self) -> str:
        return self.model.partition("/")[2]

    def fingerprint(self) -> str:
        """What changes a vector besides the model's name: the cache key's second part.

        The endpoint is part of it for hosted models (two servers may serve different weights
        under one name); rate limits, batching and the key are not (they change no vector).
        """
        material = {"model": self.model, "dimensions": self.dimensions}
        if self.provider == "openai":
            material["base_url"] = (self.resolved_base_url() or "").rstrip("/")
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def key_env(self) -> str:
        return self.api_key_env or DEFAULT_KEY_ENV

    def api_key(self) -> str | None:
        """The key's value, read at the moment a request needs it (never kept here; known
        to `ferry.core.secrets.redact`, so an endpoint echoing it is masked everywhere)."""
        from ferry.core.secrets import remember

        value = os.environ.get(self.key_env) or None
        remember(value)
        return value

    def resolved_base_url(self) -> str | None:
        return self.base_url or os.environ.get("OPENAI_BASE_URL") or None

    def to_json(self) -> dict[str, Any]:
        """Journaled with the run and shown in the plan: names, never the key's value."""
        data: dict[str, Any] = {"model": self.model, "missing": self.missing}
        if self.provider == "openai":
            data["base_url"] = self.resolved_base_url()
            data["api_key_env"] = self.api_key_env  # None: OPENAI_API_KEY when set
        for name in ("dimensions", "rpm", "tpm", "price"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data

    def argv(self) -> list[str]:
        """The `ferry migrate` flags for these settings (a relaunch resumes the same run)."""
        out = ["--embed", self.model]
        flags = {
            "--embed-base-url": self.base_url,
            "--embed-api-key-env": self.api_key_env,
            "--embed-dimensions": self.dimensions,
            "--embed-rpm": self.rpm,
            "--embed-tpm": self.tpm,
            "--embed-price": self.price,
        }
        for flag, value in flags.items():
            if value is not None:
                out += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
        if self.missing != "refuse":
            out += ["--embed-missing", self.missing]
        return out

    @staticmethod
    def from_json(data: dict[str, Any]) -> EmbedSettings:
        known = {k: v for k, v in data.items() if k in EmbedSettings.__dataclass_fields__}
        return EmbedSettings(**known)

    def check(self) -> None:
        """Refuse what cannot work, in one line, before anything is read or written."""
        provider, _, name = self.model.partition("/")
        if provider not in PROVIDERS or not name:
            raise FerryError(
                f"--embed {self.model!r} is not PROVIDER/MODEL",
                where="--embed",
                fix="e.g. openai/text-embedding-3-small or wordllama/l2_supercat "
                f"(providers: {', '.join(PROVIDERS)})",
            )
        if self.missing not in MISSING_CHOICES:
            raise FerryError(
                f"--embed-missing {self.missing!r}", fix=f"one of {', '.join(MISSING_CHOICES)}"
            )
        for flag, value in (
            ("--embed-dimensions", self.dimensions),
            ("--embed-rpm", self.rpm),
            ("--embed-tpm", self.tpm),
        ):
            if value is not None and value <= 0:
                raise FerryError(f"{flag} {value} must be positive", where=flag)
        if self.price is not None and self.price < 0:
            raise FerryError(f"--embed-price {self.price} must be >= 0", where="--embed-price")
        if provider == "openai":
            if not self.resolved_base_url():
                raise FerryError(
                    f"--embed {self.model} needs an endpoint",
                    where="--embed-base-url",
                    fix="pass --embed-base-url https://HOST/v1 or set OPENAI_BASE_URL",
                )
            if self.api_key_env is None:
                return
            if not self.api_key_env.replace("_", "").isalnum():
                raise FerryError(
                    f"--embed-api-key-env {self.api_key_env!r} is not a variable name",
                    where="--embed-api-key-env",
                    fix="name the environment variable that holds the key, e.g. OPENAI_API_KEY",
                )
            if not os.environ.get(self.api_key_env):
                raise FerryError(
                    f"the environment variable {self.api_key_env} (the API key) is not set",
                    where="--embed-api-key-env",
                    fix=f"export {self.api_key_env}=... or name another with --embed-api-key-env",
                )
