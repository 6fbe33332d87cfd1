"""Render every screen of the real app to screenshots/<screen>.svg at 80×24, the size Ferry
is laid out for (the run dialog and the run log included).

Builds a small demo data set (real stdlib docstrings, core.demo) in a temporary directory,
with its own config and journal, so it never reads or writes yours. Run it whenever a screen
changes: `python scripts/screenshots.py`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SIZE = (80, 24)
PER_COLLECTION = 400
SCREEN_TIMEOUT = 90.0


async def shoot(app, name: str, out: Path, prepare) -> None:  # type: ignore[no-untyped-def]
    async with app.run_test(size=SIZE) as pilot:
        await asyncio.wait_for(prepare(pilot), SCREEN_TIMEOUT)
        await pilot.pause(0.2)
        app.save_screenshot(str(out / f"{name}.svg"))
    print(f"screenshots/{name}.svg")


async def until(pilot, condition) -> None:  # type: ignore[no-untyped-def]
    while not condition():
        await pilot.pause(0.05)


def until_mode(app, mode: str):  # type: ignore[no-untyped-def]
    return lambda pilot: until(pilot, lambda: app.current_mode == mode)


async def main() -> int:
    out = ROOT / "screenshots"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ferry-shots-") as tmp:
        base = Path(tmp)
        os.environ["FERRY_CONFIG"] = str(base / "config" / "profiles.toml")
        os.environ["FERRY_STATE"] = str(base / "state" / "journal.sqlite3")
        os.environ["ANONYMIZED_TELEMETRY"] = "False"
        from ferry.core.demo import build_demo_source, demo_paths
        from ferry.core.journal import Journal
        from ferry.core.profiles import Profile, upsert_profile
        from ferry.tui.app import FerryApp

        source_dir, target_dir = demo_paths(base / "demo")
        build_demo_source(source_dir, PER_COLLECTION)
        source, target = f"chroma+file://{source_dir}", f"qdrant+edge://{target_dir}"
        state = Path(os.environ["FERRY_STATE"])
        upsert_profile(Profile("demo-chroma", source))
        upsert_profile(Profile("demo-edge", target))
        upsert_profile(
            Profile("prod-qdrant", "qdrant+https://qdrant.example.com:6333", "QDRANT_API_KEY")
        )

        def text(app) -> str:  # type: ignore[no-untyped-def]
            from tests.tui_helpers import screen_text

            return screen_text(app)

        app = FerryApp(state, source, target, start="connections")

        async def tested(pilot) -> None:  # type: ignore[no-untyped-def]
            await pilot.press("t")
            await until(pilot, lambda: "✓ demo-chroma" in text(app))

        await shoot(app, "connections", out, tested)

        # The profile form (e on a profile), its declared options folded under "More".
        app = FerryApp(state, source, target, start="connections")

        async def edit_form(pilot) -> None:  # type: ignore[no-untyped-def]
            await until(pilot, lambda: "demo-chroma" in text(app))
            await pilot.press("e")
            await until(pilot, lambda: "Edit profile" in text(app) and "More:" in text(app))

        await shoot(app, "profile_form", out, edit_form)

        app = FerryApp(state, source, target, start="inventory", select_all=True)
        await shoot(
            app, "inventory", out, lambda pilot: until(pilot, lambda: "press m" in text(app))
        )

        # The run dialog, then the real detached run it starts: the Monitor and its log.
        app = FerryApp(state, source, target, start="inventory", select_all=True)

        async def dialog(pilot) -> None:  # type: ignore[no-untyped-def]
            await until(pilot, lambda: "press m" in text(app))
            await pilot.press("m")
            await until(pilot, lambda: "enter starts" in text(app))

        await shoot(app, "run-dialog", out, dialog)

        app = FerryApp(state, source, target, start="inventory", select_all=True)

        async def run_and_log(pilot) -> None:  # type: ignore[no-untyped-def]
            await dialog(pilot)
            await pilot.press("enter")
            await until(pilot, lambda: app.snapshot and app.snapshot.state.value == "completed")
            await until(pilot, lambda: "run completed" in text(app))
            await pilot.pause(0.3)
            app.save_screenshot(str(out / "monitor.svg"))
            print("screenshots/monitor.svg")
            await pilot.press("l")
            await until(
                pilot, lambda: "run completed" in "\n".join(app.screen.query_one("#run-log").lines)
            )
            await pilot.press("home")  # the start: the run, its options, its first events

        await shoot(app, "log", out, run_and_log)

        app = FerryApp(state, source, target, start="monitor")

        async def keys(pilot) -> None:  # type: ignore[no-untyped-def]
            await until(pilot, lambda: "run completed" in text(app))
            await pilot.press("question_mark")
            await until(pilot, lambda: "Everywhere" in text(app))

        await shoot(app, "help", out, keys)

        # Validation: damage the copy a little (one record dropped, one value retyped), so
        # the picture shows what a difference looks like, then run a full diff.
        from ferry.core.connectors import open_connector
        from ferry.core.cutover import cutover
        from ferry.core.model import Batch

        async with open_connector(source) as reader:
            first = await reader.sample("stdlib-functions", 2)
        assert first is not None
        async with open_connector(target) as connector:
            sample = await connector.fetch("stdlib-functions_v1", first.ids)
            await connector.delete("stdlib-functions_v1", [sample.ids[0]])
            retyped = dict(sample.metadatas[1] or {})
            retyped["lineno"] = str(retyped.get("lineno"))
            one = Batch(sample.ids[1:2], sample.vectors[1:2], [retyped], sample.documents[1:2])
            await connector.write("stdlib-functions_v1", one)
            await connector.sync("stdlib-functions_v1")

        app = FerryApp(state, source, target, start="validation")

        async def full_diff(pilot) -> None:  # type: ignore[no-untyped-def]
            await until_mode(app, "validation")(pilot)
            await pilot.press("f")
            await until(pilot, lambda: "Full diff:" in text(app))
            await pilot.press("down")  # the collection with differences
            await pilot.press("tab", "down")  # its first difference, shown side by side
            await pilot.pause(1.0)

        await shoot(app, "validation", out, full_diff)

        # Cutover: an alias the application uses, already pointing at one collection, and a
        # blue-green candidate: a named target (`stdlib-classes=stdlib-classes_v2`), migrated
        # (in LangChain's layout, for the "switch the app" picture) and validated, so every
        # column has its figures.
        await cutover(
            target,
            "stdlib-classes_v1",
            "stdlib-classes",
            Journal(state),
            force=True,
            reason="demo picture",
        )
        from ferry.core.engine import MigrationOptions
        from ferry.core.runner import migrate
        from ferry.core.targets import TargetNames
        from ferry.core.validate import ValidationOptions, validate

        pair = {"stdlib-classes": "stdlib-classes_v2"}
        options = MigrationOptions(targets=TargetNames(pair), layout="langchain")
        await migrate(source, target, list(pair), options, Journal(state))
        await validate(
            source, target, list(pair), ValidationOptions(), Journal(state), target_names=pair
        )
        app = FerryApp(state, source, target, start="cutover")
        await shoot(
            app,
            "cutover",
            out,
            lambda pilot: until(pilot, lambda: "stdlib-classes_v2" in text(app)),
        )

        app = FerryApp(state, source, target, start="cutover")

        async def switch(pilot) -> None:  # type: ignore[no-untyped-def]
            await until(pilot, lambda: "stdlib-classes_v2" in text(app))
            await pilot.press("s")  # what the app changes to read the candidate
            await until(pilot, lambda: "score_threshold" in text(app))

        await shoot(app, "switch-app", out, switch)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
