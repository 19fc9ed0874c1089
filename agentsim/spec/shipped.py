"""The scenarios that ship with agentsim (the repository's scenarios/ folder; in a wheel, agentsim/shipped_scenarios):
a scenario path that does not exist where it is given is looked up there, so `agentsim run wargame/neutral.yaml`
works from any folder and from an installed wheel."""

from __future__ import annotations

from pathlib import Path

PACKAGED = Path(__file__).resolve().parents[1] / "shipped_scenarios"  # in an installed wheel (setup.py copies it)
CHECKOUT = Path(__file__).resolve().parents[2] / "scenarios"  # in a source checkout (also an editable install)


def shipped_root() -> Path | None:
    """The folder of the shipped scenarios, or None (an installation without them)."""
    for root in (PACKAGED, CHECKOUT):
        if (root / "wargame").is_dir():
            return root
    return None


def resolve_scenario(path: str | Path) -> Path:
    """`path` if it exists; else the shipped scenario it names (`wargame/neutral.yaml`, `scenarios/wargame/neutral.yaml`,
    or without `.yaml`); else `path` unchanged, for the caller's "not found" error."""
    path = Path(path)
    if path.exists() or path.is_absolute():
        return path
    root = shipped_root()
    if root is None:
        return path
    parts = path.parts[1:] if path.parts[:1] == ("scenarios",) else path.parts
    for candidate in (root.joinpath(*parts), root.joinpath(*parts).with_suffix(".yaml")):
        if parts and candidate.is_file():
            return candidate
    return path


def resolve_recording(path: str | Path) -> Path:
    """`path` if it exists; else the shipped recorded run it names (a run directory under the shipped scenarios,
    e.g. `drift/recordings/rewrite-smollm2`: a real LLM's answers, for `--replay-from`); else `path` unchanged."""
    path = Path(path)
    if path.exists() or path.is_absolute():
        return path
    root = shipped_root()
    parts = path.parts[1:] if path.parts[:1] == ("scenarios",) else path.parts
    if root is not None and parts and (root.joinpath(*parts) / "run.json").is_file():
        return root.joinpath(*parts)
    return path


def shipped_names() -> list[str]:
    """The shipped scenarios as `family/name.yaml` (for "not found" hints)."""
    root = shipped_root()
    if root is None:
        return []
    return sorted(str(p.relative_to(root)) for p in root.glob("*/*.yaml"))
