"""experiment.json: what an experiment runs (its cells and their parameter values), where each run is, and how
each ended. Rewritten atomically on every change, so a killed experiment leaves a readable manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentsim.logs.writer import atomic_write_json
from agentsim.runtime.meta import now, package_versions

if TYPE_CHECKING:
    from agentsim.experiments.plan import Plan

MANIFEST = "experiment.json"
FORMAT = 1
#: Cell states: pending (not started), running (or killed while running), completed, interrupted, failed.
DONE = "completed"


class ManifestError(Exception):
    """An experiment directory whose manifest cannot be used; the message names the file."""


def new_manifest(plan: Plan) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "name": plan.spec.name,
        "description": plan.spec.description,
        "source": str(plan.source),
        "plan_hash": plan.plan_hash,
        "spec": plan.spec.model_dump(mode="json"),
        "versions": package_versions(),
        "created_at": now(),
        "status": "pending",
        "cells": [
            {
                "cell": c.index,
                "kind": c.scenario.spec.kind,
                "base": c.base,
                "base_file": str(c.base_file),
                "params": c.params,
                "seed": c.seed,
                "steps": c.scenario.spec.steps,
                "run_dir": f"runs/{c.run_name}",
                "status": "pending",
                "steps_completed": 0,
                "error": None,
            }
            for c in plan.cells
        ],
    }


def read_manifest(exp_dir: Path) -> dict[str, Any]:
    path = exp_dir / MANIFEST
    if not path.is_file():
        raise ManifestError(f"{exp_dir}: not an experiment directory (no {MANIFEST})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list) or "plan_hash" not in data:
        raise ManifestError(f"{path}: not an agentsim experiment manifest (no cells / plan_hash)")
    if data.get("format") != FORMAT:
        raise ManifestError(f"{path}: manifest format {data.get('format')!r}; this agentsim reads {FORMAT}")
    return data


def write_manifest(exp_dir: Path, manifest: dict[str, Any]) -> None:
    atomic_write_json(exp_dir / MANIFEST, manifest)


def is_experiment_dir(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file()
