"""Connections (1): named profiles — add, edit, delete, test — and which is source / target.

A profile may name the payload layout its application's framework reads; runs between
profiles default to it (core.profile_defaults).

Profiles live in core.profiles (TOML, mode 0600). An API key is entered as the *name* of an
environment variable; the screen never reads its value, so it cannot show or log it.
"""

from __future__ import annotations

import dataclasses

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Collapsible, Footer, Input, Label, Select, Static

from ferry.core.bounds import check_bound
from ferry.core.connectors import PingResult
from ferry.core.errors import FerryError
from ferry.core.layouts import LAYOUT_NAMES
from ferry.core.options import Option, profile_options
from ferry.core.profiles import Profile, delete_profile, load_profiles, ping_profile, upsert_profile
from ferry.tui.screens.base import FerryScreen
from ferry.tui.screens.quit import AskScreen
from ferry.tui.widgets.filter_bar import LIST_KEYS, FilterBar, ListKeysMixin
from ferry.tui.widgets.listing import ListingTable
from ferry.tui.widgets.option_fields import option_field, read_option

# Profile options with a field of their own at the top of the form (the rest fold away).
OWN_FIELDS = {"layout"}


def folded_options() -> list[Option]:
    """The declared `in_profile` options the form shows under "More": re-embedding and any
    option added to core/options.py with `in_profile=True`, without touching this screen."""
    return [o for o in profile_options() if o.dest not in OWN_FIELDS]


def profile_value(profile: Profile, option: Option) -> object:
    if option.dest in Profile.__dataclass_fields__:
        return getattr(profile, option.dest)
    return profile.option(option.dest)


def more_title(profile: Profile) -> str:
    """The folded section's one line says what is set inside, so nothing hides there."""
    shown = [
        f"{o.label.lower()} {profile_value(profile, o)}"
        for o in folded_options()
        if profile_value(profile, o) not in (None, "")
    ]
    return "More: " + ("; ".join(shown) if shown else "re-embedding, other run options")


def profile_field_id(option: Option) -> str:
    return f"profile-opt-{option.dest.replace('_', '-')}"


def describe_ping(profile: Profile, result: PingResult) -> Text:
    """One line a person can act on: version, latency, auth — or the error."""
    text = Text(no_wrap=False)
    if result.ok:
        text.append("✓ ", style="bold green")
        text.append(profile.name, style="bold")
        text.append(" · ")
        parts = [
            result.version or "version unknown",
            f"{result.latency_ms:.0f} ms" if result.latency_ms is not None else "",
            f"auth {result.auth}",
            result.detail,
        ]
    else:
        text.append("✗ ", style="bold red")
        text.append(f"{profile.name}: ", style="bold")
        parts = [result.detail or "failed", f"auth {result.auth}" if result.auth != "n/a" else ""]
    text.append(" · ".join(p for p in parts if p))
    return text


class ProfileForm(ModalScreen[bool]):
    """Add or edit a profile; saves it itself so a mistake is shown right here."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="profile.cancel"),
        Binding("ctrl+s", "save", "Save", id="profile.save"),
    ]
    AUTO_FOCUS = "#name"
    VERTICAL_BREAKPOINTS = [(0, "-short"), (24, "-tall")]  # -short: no blank rows (60×20)

    def __init__(self, profile: Profile | None = None) -> None:
        super().__init__()
        self.profile = profile

    def compose(self) -> ComposeResult:
        profile = self.profile or Profile("", "")
        with VerticalScroll(classes="dialog", id="profile-dialog"):
            yield Static(
                "Edit profile" if self.profile else "Add a profile", classes="dialog-title"
            )
            yield Label("Name")
            yield Input(profile.name, placeholder="prod-qdrant", id="name", compact=True)
            yield Label("URI")
            yield Input(profile.uri, placeholder="qdrant+http://host:6333", id="uri", compact=True)
            yield Label("API key: the NAME of an environment variable (never the key)")
            yield Input(
                profile.api_key_env, placeholder="QDRANT_API_KEY", id="api_key_env", compact=True
            )
            yield Label("Layout: what the app's framework reads (runs default to it)")
            yield Select(
                [("detect per collection", ""), *((name, name) for name in LAYOUT_NAMES)],
                value=profile.layout if profile.layout in LAYOUT_NAMES else "",
                allow_blank=False,
                compact=True,
                id="layout",
            )
            folded = folded_options()
            if folded:
                with Collapsible(title=more_title(profile), collapsed=True, id="profile-more"):
                    for option in folded:
                        if option.type is not bool:
                            yield Label(option.label)
                        yield option_field(
                            option,
                            profile_value(profile, option),
                            profile_field_id(option),
                            classes="profile-option",
                        )
            yield Static("", id="profile-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", id="save", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        for field in self.query(Input):
            field.cursor_blink = not self.app.is_headless  # snapshots must not blink
        self.query_one("#name", Input).focus()

    @on(Input.Submitted)
    def next_or_save(self, event: Input.Submitted) -> None:
        order = ["name", "uri", "api_key_env"]
        index = order.index(event.input.id or "name")
        if index + 1 < len(order):
            self.query_one(f"#{order[index + 1]}", Input).focus()
        else:
            self.action_save()

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        try:
            profile = self.edited()
            upsert_profile(profile, replacing=self.profile.name if self.profile else None)
        except FerryError as exc:
            self.query_one("#profile-error", Static).update(Text(exc.one_line(), style="red"))
            return
        self.dismiss(True)

    def edited(self) -> Profile:
        """The profile as the form says; a field the form does not show keeps its value."""
        fields: dict[str, object] = {
            "name": self.query_one("#name", Input).value.strip(),
            "uri": self.query_one("#uri", Input).value.strip(),
            "api_key_env": self.query_one("#api_key_env", Input).value.strip(),
            "layout": str(self.query_one("#layout", Select).value or ""),
        }
        base = self.profile or Profile("", "")
        declared = dict(base.options)
        for option in folded_options():
            value = read_option(option, self.query_one(f"#{profile_field_id(option)}"))
            if option.dest in Profile.__dataclass_fields__:
                fields[option.dest] = "" if value is None else str(value)
            elif value in (None, "", option.default) or (option.type is bool and not value):
                declared.pop(option.dest, None)  # the default (a switch off): nothing to carry
            else:
                check_bound("migrate", option.flag, value)
                declared[option.dest] = value
        fields["options"] = tuple(sorted(declared.items()))
        return dataclasses.replace(base, **fields)  # type: ignore[arg-type]

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)


class ConnectionsScreen(ListKeysMixin, FerryScreen):
    TITLE = "Connections"
    BINDINGS = [
        Binding("a", "add", "Add", id="connections.add", tooltip="add a named profile"),
        Binding("e", "edit", "Edit", id="connections.edit"),
        Binding(
            "t", "test", "Test", id="connections.test", tooltip="connect: version, latency, auth"
        ),
        Binding(
            "f",
            "use_source",
            "From",
            id="connections.source",
            tooltip="use the highlighted profile as the source",
        ),
        Binding(
            "o",
            "use_target",
            "To",
            id="connections.target",
            tooltip="use the highlighted profile as the target",
        ),
        Binding("d,delete", "delete", "Delete", id="connections.delete", key_display="d"),
        *LIST_KEYS,
    ]

    def __init__(self) -> None:
        super().__init__()
        self.profiles: list[Profile] = []

    def compose_body(self):  # type: ignore[no-untyped-def]
        with Vertical(id="connections-body"):
            yield Static("", id="roles")
            yield FilterBar("profiles", id="profiles-filter")
            yield ListingTable(id="profiles", zebra_stripes=True)
            yield Static(
                "No test yet: highlight a profile and press t.", id="test-result", markup=False
            )

    def on_mount(self) -> None:
        table = self.query_one("#profiles", ListingTable)
        table.add_column("Name", key="name")
        table.add_column("Role", key="role", width=13)
        table.add_column("Type", key="type")
        table.add_column("Key from", key="key")
        table.add_column("URI", key="uri")  # last: long, and the table scrolls sideways
        self.reload()
        table.focus()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.show_roles()

    # -- data -------------------------------------------------------------------------------
    def reload(self, keep: str | None = None) -> None:
        table = self.query_one("#profiles", ListingTable)
        try:
            self.profiles = load_profiles()
        except FerryError as exc:
            self.profiles = []
            self.notify(exc.one_line(), severity="error")
        rows = []
        for profile in self.profiles:
            try:
                kind = profile.kind
            except FerryError:
                kind = "?"
            cells = (
                profile.name,
                self.role(profile),
                kind,
                profile.api_key_env or "—",
                profile.uri,
            )
            rows.append((profile.name, cells))
        table.set_rows(rows)
        result = self.query_one("#test-result", Static)
        if not self.profiles:
            result.update(
                "No profiles yet: press a to add one (they are saved in your config dir)."
            )
        elif str(result.render()).startswith("No profiles"):
            result.update("Highlight a profile: t tests it, f makes it the source, o the target.")
        if keep and keep in table.rows:
            table.move_cursor(row=table.get_row_index(keep))
        self.show_roles()

    def role(self, profile: Profile) -> str:
        context = self.ferry.context
        roles = []
        if context.source_uri == profile.connect_uri():
            roles.append("source")
        if context.target_uri == profile.connect_uri():
            roles.append("target")
        return "+".join(roles) or ""

    def show_roles(self) -> None:
        context = self.ferry.context
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("From ", style="bold")
        text.append(context.source_uri or "— (f on a profile)")
        text.append("\nTo   ", style="bold")
        text.append(context.target_uri or "— (o on a profile)")
        self.query_one("#roles", Static).update(text)
        table = self.query_one("#profiles", ListingTable)
        for profile in self.profiles:
            table.set_cell(profile.name, "role", self.role(profile))

    def highlighted(self) -> Profile | None:
        key = self.query_one("#profiles", ListingTable).highlighted_key
        return next((p for p in self.profiles if p.name == key), None)

    # -- actions ----------------------------------------------------------------------------
    def action_add(self) -> None:
        self.app.push_screen(ProfileForm(), lambda saved: saved and self.reload())

    def action_edit(self) -> None:
        profile = self.highlighted()
        if profile is None:
            self.notify("No profile to edit: press a to add one.")
            return

        def saved(ok: bool | None) -> None:
            if ok:
                self.reload()

        self.app.push_screen(ProfileForm(profile), saved)

    def action_delete(self) -> None:
        profile = self.highlighted()
        if profile is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                delete_profile(profile.name)
                self.reload()
                self.notify(f"Deleted profile {profile.name}.")

        self.app.push_screen(AskScreen(f"Delete profile {profile.name}?", yes="Delete"), answered)

    def action_test(self) -> None:
        profile = self.highlighted()
        if profile is None:
            self.notify("No profile to test: press a to add one.")
            return
        self.query_one("#test-result", Static).update(f"Testing {profile.name}…")
        self.run_test_worker(profile)

    @work(exclusive=True, group="test-profile")
    async def run_test_worker(self, profile: Profile) -> None:
        result = await ping_profile(profile)
        self.query_one("#test-result", Static).update(describe_ping(profile, result))

    def _use(self, role: str) -> None:
        profile = self.highlighted()
        if profile is None:
            self.notify("No profile: press a to add one.")
            return
        try:
            profile.check()
        except FerryError as exc:
            self.notify(exc.one_line(), severity="error")
            return
        self.ferry.context.pair_from_run = False  # chosen now
        if role == "source":
            self.ferry.context.source_uri = profile.connect_uri()
        else:
            self.ferry.context.target_uri = profile.connect_uri()
        self.ferry.context.selected = []
        self.show_roles()
        self.ferry.refresh_header()
        self.notify(f"{profile.name} is the {role}. Inventory (2) lists its collections.")

    def action_use_source(self) -> None:
        self._use("source")

    def action_use_target(self) -> None:
        self._use("target")
