"""Which run choices the dialog offers first: profile, remembered and explicit, layered once.

Moved out of the TUI so every front end layers the same way. The remembered choices (or, with
none, the defaults with the app's own flags on top) are the base; a profile's layout replaces
a remembered one (the profile is where a person says which framework the app uses); a
profile's embedding model fills in only when none was chosen.
"""

from __future__ import annotations

from dataclasses import replace

from ferry.core.profile_defaults import profile_embed, profile_layout
from ferry.core.profiles import Profile
from ferry.core.run_choices import RunChoices


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
    return choices
