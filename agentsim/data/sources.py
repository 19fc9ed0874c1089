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
    commit: str | None  # 40 hex digits; None: the manifest's (a pending manifest has none yet)
    include: tuple[str, ...]
    description: str
    license: str = ""

    @cached_property
    def _raw(self) -> dict[str, Any]:
        return json.loads(files("agentsim.data").joinpath("manifests", f"{self.name}.json").read_text("utf-8"))

    @property
    def pinned(self) -> str | None:
        """The commit the manifest's checksums are of (None while the manifest is pending)."""
        return self.commit or self._raw.get("commit")

    @property
    def pending(self) -> str:
        """Why the dataset has no pinned checksums yet ("" once it has): such a dataset is fetched only with
        `--commit SHA --unverified`, and a maintainer pins it with scripts/pin_dataset.py."""
        if self.pinned and self._raw.get("files"):
            return ""
        return str(self._raw.get("pending") or "its manifest lists no files yet")

    def archive_url(self, commit: str) -> str:
        return f"https://codeload.github.com/{self.repository}/tar.gz/{commit}"

    @property
    def default_url(self) -> str:
        return self.archive_url(self.pinned or "<commit>")

    @property
    def url_env(self) -> str:
        """The environment variable that overrides the download URL (a mirror, or a local server in tests)."""
        return f"AGENTSIM_{self.name.upper()}_URL"

    def url(self, override: str | None = None) -> str:
        return override or os.environ.get(self.url_env) or self.default_url

    @cached_property
    def manifest(self) -> dict[str, FileEntry]:
        """Relative path -> FileEntry, read from the manifest shipped in the package ({} while pending)."""
        raw = self._raw
        if self.commit is not None and raw.get("commit") != self.commit:  # pragma: no cover - guarded by tests/test_data_fetch.py
            raise RuntimeError(f"manifest of {self.name} is for commit {raw.get('commit')}, not the pinned {self.commit}")
        return {p: FileEntry(p, e["sha256"], int(e["size"])) for p, e in (raw.get("files") or {}).items()}

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
        Dataset(
            name="oasis",
            repository="camel-ai/oasis",
            commit=None,  # pinned by the manifest (agentsim/data/manifests/oasis.json; scripts/pin_dataset.py)
            include=(
                "data/twitter_dataset/all_topics.csv",
                "data/twitter_dataset/anonymous_topic_200_1h/*.csv",
                "data/twitter_dataset/real_world_prop_data/real_data_*/*.pkl",
                "data/reddit/user_data_36.json",
                "data/reddit/counterfactual_36.json",
            ),
            description="OASIS (Yang et al. 2024): the Twitter topics (users CSV per topic, all_topics.csv, the real "
            "cascades), the Reddit users and counterfactual posts",
            license="Apache-2.0",
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


def build_manifest(dataset: Dataset, root: Path, commit: str | None = None) -> dict[str, Any]:
    """The manifest of a local copy: every file under `root` that `dataset.include` keeps, hashed.
    Used once to write `manifests/<name>.json` from a trusted copy of `commit` (default: the pinned one;
    scripts/pin_dataset.py), and by tests to compare a copy with it."""
    entries = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and dataset.wanted(rel):
            entries[rel] = {"sha256": sha256_file(p), "size": p.stat().st_size}
    return {"dataset": dataset.name, "repository": dataset.repository, "commit": commit or dataset.pinned, "files": entries}
