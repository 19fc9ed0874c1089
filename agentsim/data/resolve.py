"""One resolver for the studies' data: where a dataset's files are on this machine.

Places, in order (the first that exists decides):
1. an explicit path (a function argument, e.g. `load_study_logs(data_dir=...)`): the dataset's own folder;
2. `$AGENTSIM_DATA`: a folder that holds one sub-folder per dataset (`$AGENTSIM_DATA/escalaition/...`);
3. the user cache, where `agentsim data fetch` puts it: `<cache>/data/<name>`, with `<cache>` =
   `$AGENTSIM_CACHE` or platformdirs' user cache dir of agentsim (the embedded model's cache, too);
4. `../shared/data/<name>` beside a source checkout (the parent of the folder holding pyproject.toml and
   `agentsim/`), where the project's developers keep a copy.

A place that exists is checked cheaply (every manifest file present with its size); `agentsim data fetch`
checks the SHA-256 of every file before it installs a copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from agentsim.data.errors import DataIncomplete, DataNotFound
from agentsim.data.sources import Dataset, get_dataset, sha256_file

DATA_ENV = "AGENTSIM_DATA"


def cache_root() -> Path:
    # The same cache as the embedded model's (`agentsim.llm.embedded.cache_root`, $AGENTSIM_CACHE); imported
    # lazily so that loading data does not import the LLM package.
    from agentsim.llm.embedded import cache_root as llm_cache_root

    return llm_cache_root()


def cache_dir(name: str) -> Path:
    """Where `agentsim data fetch NAME` stores a dataset."""
    return cache_root() / "data" / name


def checkout_root() -> Path | None:
    """The source checkout this agentsim runs from, or None when it runs from an installed wheel."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "agentsim" / "__init__.py").is_file() else None


@dataclass(frozen=True)
class Place:
    """One place the resolver looks: `source` is argument | AGENTSIM_DATA | cache | checkout."""

    source: str
    path: Path

    @property
    def exists(self) -> bool:
        return self.path.is_dir()

    def describe(self) -> str:
        return {"argument": "given path", DATA_ENV: f"${DATA_ENV}/<name>", "cache": "user cache",
                "checkout": "../shared beside the checkout"}[self.source] + f" {self.path}"


def places(name: str, path: str | Path | None = None) -> list[Place]:
    """Every place the resolver looks for dataset `name`, in order (those not configured are left out)."""
    out = []
    if path is not None:
        out.append(Place("argument", Path(path).expanduser()))
    if os.environ.get(DATA_ENV):
        out.append(Place(DATA_ENV, Path(os.environ[DATA_ENV]).expanduser() / name))
    out.append(Place("cache", cache_dir(name)))
    root = checkout_root()
    if root is not None:
        out.append(Place("checkout", root.parent / "shared" / "data" / name))
    return out


def problems(dataset: Dataset, root: Path, checksums: bool = False) -> list[str]:
    """What is wrong with a copy of `dataset` at `root`, one phrase per file ([] when it is complete).
    Sizes only, unless `checksums` (then every file is hashed: about 0.1 s for the wargame's 9 MB)."""
    out = []
    for rel, entry in dataset.manifest.items():
        p = root / rel
        if not p.is_file():
            out.append(f"{rel} (missing)")
        elif (size := p.stat().st_size) != entry.size:
            out.append(f"{rel} ({size} bytes, expected {entry.size})")
        elif checksums and (digest := sha256_file(p)) != entry.sha256:
            out.append(f"{rel} (sha256 {digest[:12]}..., expected {entry.sha256[:12]}...)")
    return out


def summarize(items: list[str], limit: int = 5) -> str:
    return "; ".join(items[:limit]) + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def locate(name: str = "escalaition", path: str | Path | None = None) -> Place:
    """The place that holds dataset `name` (see the module docstring for the order).

    Raises DataNotFound (the places looked in and the fetch command) when none exists, and DataIncomplete when
    the first that exists lacks files or has files of the wrong size (it is not skipped: a broken copy should be
    repaired, not hidden behind another).
    """
    dataset = get_dataset(name)
    looked = places(name, path)
    for place in looked:
        if place.source == "argument" and not place.exists:
            raise DataNotFound(f"{name}: the given path {place.path} is not a folder")
        if place.exists:
            bad = problems(dataset, place.path)
            if dataset.pending and not any(dataset.wanted(q.relative_to(place.path).as_posix()) for q in place.path.rglob("*") if q.is_file()):
                bad = [f"none of the files it takes ({', '.join(dataset.include)})"]
            if bad:
                raise DataIncomplete(
                    f"{name} at {place.path} ({place.source}) is incomplete: {summarize(bad)}; "
                    f"refetch with: {dataset.fetch_command} --force"
                )
            return place
    raise DataNotFound(
        f"{name}: the study's data is not on this machine (looked in: {'; '.join(p.describe() for p in looked)}); "
        f"fetch it with: {dataset.fetch_command}"
    )
