"""What a run takes from the connection profiles it goes between: their URIs and the layout.

A profile may name the payload layout (core.layouts) its application's framework reads. A
run between two profiles writes that layout unless it is asked for another: the source
profile's first (the framework that wrote the Chroma data), else the target's (the framework
that will read it). `ferry migrate --from NAME --to NAME` takes profile names where URIs go;
the TUI knows its source and target only as URIs, so it finds their profiles by URI.
Explicit choices always win: `--layout` on the command line, a layout picked in the run
dialog.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ferry.core.errors import FerryError
from ferry.core.profiles import PROFILE_NAME, Profile, load_profiles, profiles_path


@dataclass(frozen=True)
class ProfileLayout:
    """The layout a pair of profiles asks for ("" : none) and which profile said so."""

    layout: str = ""
    profile: str = ""

    @property
    def origin(self) -> str:
        """How the plan explains the choice: "profile NAME"."""
        return f"profile {self.profile}" if self.profile else ""


def is_profile_name(value: str) -> bool:
    """A URI always has a scheme (`chroma+file://…`, `qdrant+memory:`): a value without a
    colon that is a valid profile name is a profile name."""
    return ":" not in value and bool(PROFILE_NAME.match(value))


def resolve_endpoint(
    value: str, flag: str, profiles: Sequence[Profile] | None = None
) -> tuple[str, Profile | None]:
    """`value` as a URI to open, and the profile it named (None for a URI).

    A name that no profile has is a one-line error; a profile is checked (`Profile.check`)
    so a hand-edited file with a bad layout or a key in the URI is refused here, by name."""
    if not is_profile_name(value):
        return value, None
    known = list(profiles) if profiles is not None else load_profiles()
    profile = next((p for p in known if p.name == value), None)
    if profile is None:
        names = ", ".join(p.name for p in known) or "none yet"
        raise FerryError(
            f"{value!r} is neither a URI nor a profile name (profiles: {names})",
            where=f"{flag} ({profiles_path()})",
            fix="give a URI such as chroma+file:///abs/dir, or add the profile in `ferry` (1)",
        )
    return profile.check().connect_uri(), profile


def profile_layout(source: Profile | None, target: Profile | None) -> ProfileLayout:
    """The layout the profiles ask for: the source profile's, else the target's."""
    for profile in (source, target):
        if profile is not None and profile.layout:
            return ProfileLayout(profile.layout, profile.name)
    return ProfileLayout()


def profiles_for_uris(
    source_uri: str | None, target_uri: str | None, profiles: Sequence[Profile] | None = None
) -> tuple[Profile | None, Profile | None]:
    """The profiles whose connect URI is the source's and the target's (None where none is,
    or the profiles file cannot be read: a run then simply has no profile defaults)."""
    if profiles is None:
        try:
            profiles = load_profiles()
        except FerryError:
            return None, None

    def find(uri: str | None) -> Profile | None:
        for profile in profiles or []:
            try:
                if uri and profile.connect_uri() == uri:
                    return profile.check()
            except FerryError:
                continue  # a broken profile gives no defaults (Connections shows why)
        return None

    return find(source_uri), find(target_uri)


def profile_embed(source: Profile | None, target: Profile | None) -> dict[str, str]:
    """The re-embedding a pair of profiles asks for: the target profile's model (where the
    new vectors will live), else the source's; {} when neither names one."""
    for profile in (target, source):
        if profile is not None and profile.embed:
            return {
                "embed": profile.embed,
                "embed_base_url": profile.embed_base_url,
                "embed_api_key_env": profile.embed_api_key_env,
                "profile": profile.name,
            }
    return {}
