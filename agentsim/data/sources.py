"""The pinned sources of the studies' data and their manifests (relative path -> SHA-256 and size).

A manifest ships inside the package (`agentsim/data/manifests/<name>.json`); the data never does: the study's
repository has no license file, so each user fetches it from its public source onto their own machine.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from dataclasses import dataclass
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Any

from agentsim.data.errors import UnknownDataset

CHUNK = 1 << 20  # bytes read at a time when hashing and copying


@dataclass(frozen=True)
class FileEntry:
    """One file of a dataset: its path relative to the dataset root (POSIX), its SHA-256 (hex) and size (bytes)."""

    path: str
    sha256: str
    size: int

    @property
    def folder(self) -> str:
        return self.path.rpartition("/")[0]


@dataclass(frozen=True)
class Dataset:
    """A dataset fetched from a public GitHub repository at a pinned commit.

    `include`: glob patterns (relative to the repository root) of the files kept; everything else in the archive
    is dropped. The manifest lists exactly the files kept, with their checksums.
    """

    name: str
    repository: str  # "owner/name" on GitHub
    commit: str  # 40 hex digits
    include: tuple[str, ...]
    description: str

    @property
    def default_url(self) -> str:
        return f"https://codeload.github.com/{self.repository}/tar.gz/{self.commit}"

    @property
    def url_env(self) -> str:
        """The environment variable that overrides the download URL (a mirror, or a local server in tests)."""
        return f"AGENTSIM_{self.name.upper()}_URL"

    def url(self, override: str | None = None) -> str:
        return override or os.environ.get(self.url_env) or self.default_url

    @cached_property
    def manifest(self) -> dict[str, FileEntry]:
        """Relative path -> FileEntry, read from the manifest shipped in the package."""
        raw = json.loads(files("agentsim.data").joinpath("manifests", f"{self.name}.json").read_text("utf-8"))
        if raw.get("commit") != self.commit:  # pragma: no cover - guarded by tests/test_data_fetch.py
            raise RuntimeError(f"manifest of {self.name} is for commit {raw.get('commit')}, not the pinned {self.commit}")
        return {p: FileEntry(p, e["sha256"], int(e["size"])) for p, e in raw["files"].items()}

    def wanted(self, relpath: str) -> bool:
        return any(fnmatch.fnmatchcase(relpath, pat) for pat in self.include)

    @property
    def fetch_command(self) -> str:
        return f"agentsim data fetch {self.name}"


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            name="escalaition",
            repository="jprivera44/EscalAItion",
            commit="bdd1e516b606e9e0bb28f38b1db45b172a27ca24",
            include=(
                "results/actions_v3/*.csv",
                "evals/json_v6_exponential/*_raw.json",
                "action_configs/actions_v8.csv",
                "nations_configs/nations_v5.csv",
            ),
            description="Rivera et al. (2024) wargame: 165 action logs, the study's per-day escalation scores, "
            "its actions and nations tables",
        ),
    )
}


def get_dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownDataset(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}") from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def build_manifest(dataset: Dataset, root: Path) -> dict[str, Any]:
    """The manifest of a local copy: every file under `root` that `dataset.include` keeps, hashed.
    Used once to write `manifests/<name>.json` from a trusted copy, and by tests to compare a copy with it."""
    entries = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and dataset.wanted(rel):
            entries[rel] = {"sha256": sha256_file(p), "size": p.stat().st_size}
    return {"dataset": dataset.name, "repository": dataset.repository, "commit": dataset.commit, "files": entries}
