"""Which run choices the dialog offers first: profile, remembered and explicit, layered once.

Moved out of the TUI so every front end layers the same way. The remembered choices (or, with
none, the defaults with the app's own flags on top) are the base; a profile's layout replaces
a remembered one (the profile is where a person says which framework the app uses); a
profile's embedding model fills in only when none was chosen.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from ferry.core.options import dialog_options
from ferry.core.profile_defaults import profile_embed, profile_layout
from ferry.core.profiles import Profile
from ferry.core.run_choices import RunChoices

# Options layered by hand above (their profile value has its own rule); RunChoices' fields.
HAND_LAYERED = frozenset(f.name for f in fields(RunChoices))


def layered_choices(
    remembered: RunChoices | None,
    explicit_argv: list[str],
    profiles: tuple[Profile | None, Profile | None],
) -> RunChoices:
    choices = remembered or RunChoices.from_argv(explicit_argv)
    asked = profile_layout(*profiles)
    choices = replace(choices, layout=asked.layout) if asked.layout else choices
    embed = profile_embed(*profiles)  # a profile's model
    if embed and not choices.embed:
        embed.pop("profile")
        choices = replace(choices, **embed)
    return _layer_declared(choices, remembered, explicit_argv, profiles)


def _layer_declared(
    choices: RunChoices,
    remembered: RunChoices | None,
    explicit_argv: list[str],
    profiles: tuple[Profile | None, Profile | None],
) -> RunChoices:
    """Declared dialog options without a hand-made field: profile < remembered < explicit."""
    layered: dict[str, Any] = {}
    for option in dialog_options():
        if not option.in_profile or option.dest in HAND_LAYERED:
            continue
        for profile in profiles:  # the source profile's, else the target's (as for layout)
            if profile is not None and profile.option(option.dest) is not None:
                layered[option.dest] = profile.option(option.dest)
                break
    layered.update(remembered.extras if remembered else {})
    layered.update(RunChoices.from_argv(explicit_argv).extras)
    return replace(choices, extras={**choices.extras, **layered})
