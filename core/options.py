"""Every `ferry migrate` option, declared once: type, default, range, help, and where it shows.

The CLI's parser (`cli/migrate.py`, `cli/embed_args.py`), the range table (`core/bounds.py`),
the run dialog's remembered choices (`core/run_choices.py`), the run dialog's generic fields and
profiles all read these rows, so adding an option is one `Option(...)` here. The shape follows
Harlequin's `options.py` (one declaration per option, rendered to the CLI and to a widget;
the label comes from the name) but as plain data: core is headless, so the renderers live in
`cli/option_args.py` and `tui/widgets/option_fields.py`. The order of the layers (profile <
remembered < explicit) is decided in one place, `core/option_layers.py`, as Posting's
settings model orders its sources in one `settings_customise_sources`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ferry.core.connectors.base import WriteMode
from ferry.core.embed.settings import MISSING_CHOICES
from ferry.core.layouts import LAYOUT_NAMES

EMBED_GROUP = "re-embedding (docs/re-embedding.md)"
NOT_SET = object()  # `dialog_default` when the dialog uses the CLI default


@dataclass(frozen=True)
class Range:
    """`least <= value <= most`; `zero` also allows exactly 0 (a flag whose 0 means "off")."""

    least: float
    most: float
    example: str
    zero: bool = False


@dataclass(frozen=True)
class Option:
    """One flag of `ferry migrate`.

    `type` is `int`, `float`, `str` or `bool` (a switch). `repeatable` flags collect a list.
    `in_dialog`: the run dialog offers it and remembers it per pair; `dialog_default` is what
    the dialog shows when nothing was chosen (e.g. `{name}` for `--target-name`);
    `dialog_always`: the dialog passes it even at its default; `needs`: it is passed only with
    that other dialog option set. `in_profile`: a profile may carry it (profile < remembered <
    explicit, `core/option_layers.py`). `in_validate`: `ferry validate` declares it as well.
    """

    flag: str
    dest: str
    type: type = str
    default: Any = None
    bounds: Range | None = None
    help: str | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    repeatable: bool = False
    required: bool = False
    group: str | None = None
    in_dialog: bool = False
    dialog_default: Any = NOT_SET
    dialog_always: bool = False
    needs: str | None = None
    in_profile: bool = False
    in_validate: bool = False

    @property
    def label(self) -> str:
        """The words a screen shows for it: `--embed-base-url` → `Embed base url`."""
        return self.flag.lstrip("-").replace("-", " ").capitalize()

    def shown_default(self) -> Any:
        """What the dialog shows (and remembers) when nothing was chosen."""
        return self.default if self.dialog_default is NOT_SET else self.dialog_default

    def parse(self, text: str) -> Any:
        """A value typed on a command line or in a field, as this option holds it."""
        if self.type is bool:
            return text.strip().lower() in {"1", "true", "yes", "on"}
        if self.type in (int, float):
            value = self.type(text)
            if self.type is float and not value and self.shown_default() is None:
                return None  # e.g. `--rate 0`: no cap
            return value
        return text

    def to_text(self, value: Any) -> str:
        return f"{value:g}" if isinstance(value, float) else str(value)


def _rows() -> list[Option]:
    layouts = tuple(LAYOUT_NAMES)
    return [
        Option("--from", "source", required=True, metavar="URI|PROFILE", help="a URI or a profile"),
        Option("--to", "target", required=True, metavar="URI|PROFILE", help="a URI or a profile"),
        Option("--collection", "collection", default=[], repeatable=True, metavar="NAME[=TARGET]",
               help="repeatable; NAME=TARGET writes into another target collection; "
               "all when omitted"),
        Option("--target-name", "target_name", metavar="TEMPLATE",
               help="target collection name for blue-green, e.g. '{name}_v2' (NAME=TARGET wins)",
               in_dialog=True, dialog_default="{name}"),
        Option("--batch-size", "batch_size", int, 1000, Range(1, 100_000, "1000"), metavar="N",
               in_dialog=True, dialog_always=True),
        Option("--workers", "workers", int, 2, Range(1, 64, "2"), metavar="N",
               in_dialog=True, dialog_always=True),
        Option("--batch-mb", "batch_mb", float, 32.0, Range(0.1, 4096, "32"), metavar="MB",
               help="at most this many MiB per batch (vectors, ids, documents): batches of "
               "large records shrink to fit, so memory stays bounded by bytes"),
        Option("--rate", "rate", float, None, Range(1, 10_000_000, "5000 (or omit it: no limit)"),
               metavar="N", help="cap records per second", in_dialog=True),
        Option("--mode", "mode", default="create", choices=tuple(m.value for m in WriteMode),
               help="append: upsert into an existing target collection",
               in_dialog=True, dialog_always=True),
        Option("--layout", "layout", choices=layouts,
               help="payload layout on a Qdrant target: what that framework's Qdrant store reads "
               "(default: the layout of the --from, else the --to profile; else the framework "
               "detected in each collection, else flat)",
               in_dialog=True, dialog_default="", in_profile=True),
        Option("--id-field", "id_field", default="source_id",
               help="payload field for the source id"),
        Option("--document-field", "document_field", default="document",
               help="payload field for the document"),
        Option("--give-up-after", "give_up_after", float, 120.0, Range(1, 86_400, "120"),
               metavar="SECONDS",
               help="stop retrying a failing call after this long (the run stays resumable)"),
        Option("--no-index", "no_index", bool,
               help="a staging copy: skip the index phase (the target is not search-ready)"),
        Option("--hnsw-m", "hnsw_m", int, None, Range(1, 1024, "16"), metavar="M",
               help="override the source's HNSW M"),
        Option("--hnsw-ef-construct", "hnsw_ef_construct", int, None, Range(1, 100_000, "100"),
               metavar="EF", help="override the source's HNSW ef_construction"),
        Option("--on-disk-vectors", "on_disk_vectors", bool,
               help="keep the target's vectors on disk"),
        Option("--payload-index", "payload_index", default=[], repeatable=True,
               metavar="KEY:TYPE",
               help="repeatable; index KEY as keyword|integer|float|bool "
               "(overrides the observed type)"),
        Option("--no-payload-indexes", "no_payload_indexes", bool,
               help="create no payload index from the metadata types (only --payload-index ones)"),
        Option("--restart", "restart", bool, help="start over instead of resuming"),
        Option("--follow", "follow", bool,
               help="a live source: after the copy, keep applying its changes until stopped "
               "(Ctrl-C) or cut over (docs/live-migration.md)"),
        Option("--follow-interval", "follow_interval", float, 1.0, Range(0.05, 3600, "1"),
               metavar="SECONDS", help="with --follow: how often to look for changes in the source"),
        Option("--yes", "yes", bool, help="do not ask for confirmation"),
        Option("--log", "log", bool,
               help="write the run's events to stderr, one line each (what a detached run logs)"),
        Option("--dry-run", "dry_run", bool,
               help="print the plan (targets, layout, records, warnings) and write nothing"),
        # The re-embedding group (cli/embed_args.py renders it for migrate and validate).
        Option("--embed", "embed", metavar="PROVIDER/MODEL", group=EMBED_GROUP,
               help="replace every vector with this model's embedding of the record's document: "
               "openai/<model> (any OpenAI-compatible endpoint), wordllama/l2_supercat, "
               "sentence-transformers/<model>, fastembed/<model> (local models from their cache)",
               in_dialog=True, dialog_default="", in_profile=True, in_validate=True),
        Option("--embed-base-url", "embed_base_url", metavar="URL", group=EMBED_GROUP,
               help="openai/…: the endpoint's /v1 URL (default: $OPENAI_BASE_URL)",
               in_dialog=True, dialog_default="", needs="embed", in_profile=True,
               in_validate=True),
        Option("--embed-api-key-env", "embed_api_key_env", metavar="VAR", group=EMBED_GROUP,
               help="openai/…: the environment variable holding the key (default: "
               "OPENAI_API_KEY); the key itself is never written or printed",
               in_dialog=True, dialog_default="", needs="embed", in_profile=True,
               in_validate=True),
        Option("--embed-dimensions", "embed_dimensions", int, None, Range(1, 65_536, "256"),
               metavar="N", help="shorter vectors", group=EMBED_GROUP, in_validate=True),
        Option("--embed-rpm", "embed_rpm", float, None, Range(0.01, 10_000_000, "3000"),
               metavar="N", help="requests per minute allowed", group=EMBED_GROUP),
        Option("--embed-tpm", "embed_tpm", float, None, Range(1, 10_000_000_000, "1000000"),
               metavar="N", help="tokens per minute allowed", group=EMBED_GROUP),
        Option("--embed-missing", "embed_missing", default="refuse",
               choices=tuple(MISSING_CHOICES), group=EMBED_GROUP,
               help="records without a document: refuse the run (default, naming them) "
               "or skip them"),
        Option("--embed-price", "embed_price", float, None, Range(0, 1_000_000, "0.02"),
               metavar="PRICE", help="price per million tokens: the plan shows the cost",
               group=EMBED_GROUP),
        Option("--embed-batch", "embed_batch", int, 256, Range(1, 2048, "256"), metavar="N",
               help="most documents in one embedding request", group=EMBED_GROUP),
        Option("--embed-concurrency", "embed_concurrency", int, 4, Range(1, 64, "4"),
               metavar="N", help="embedding requests in flight", group=EMBED_GROUP),
    ]  # fmt: skip


# The one list; a test (or a plugin) may append to it before the parser is built.
MIGRATE_OPTIONS: list[Option] = _rows()


def migrate_options(group: str | None | object = NOT_SET) -> Iterator[Option]:
    """The declared options, in declaration order (only `group`'s when given)."""
    for option in MIGRATE_OPTIONS:
        if group is NOT_SET or option.group == group:
            yield option


def dialog_options() -> list[Option]:
    """The options the run dialog offers and remembers, in declaration order."""
    return [o for o in MIGRATE_OPTIONS if o.in_dialog]


def profile_options() -> list[Option]:
    """The options a profile may carry."""
    return [o for o in MIGRATE_OPTIONS if o.in_profile]


def by_flag(flag: str) -> Option | None:
    return next((o for o in MIGRATE_OPTIONS if o.flag == flag), None)


def by_dest(dest: str) -> Option | None:
    return next((o for o in MIGRATE_OPTIONS if o.dest == dest), None)
