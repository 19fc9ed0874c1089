"""Counterfactual branches: a new run that starts from another run's state at the start of a step, with some of its
settings changed from that step on ("what if Red had used another model from day 7").

The parent must have kept its checkpoints (`runtime.keep_checkpoints: true`; with `checkpoint_every: 1` every step
can be a branch point). The branch's run directory starts with a copy of the parent's log parts up to the
checkpoint, so every step before the branch point is the parent's, row for row; its own world is built from the
changed scenario and restored to the parent's state (world, RNG, agents' memories, counters); then it runs on as a
resumed run would. run.json records the parent, the step and the changes (`branch`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from agentsim.logs.writer import atomic_write_json

KEPT = "checkpoints"
CHECKPOINT = "checkpoint.json"


class BranchError(Exception):
    """A branch that cannot be made; the message says why and what to do."""


def kept_path(run_dir: Path, step: int) -> Path:
    return run_dir / KEPT / f"step-{step:06d}.json"


def keep_checkpoint(run_dir: Path, next_step: int) -> None:
    """Keep a copy of the checkpoint just written (and its array file) as the state at the start of `next_step`."""
    ck = json.loads((run_dir / CHECKPOINT).read_text())
    arrays = ck.get("world_arrays")
    if arrays:
        kept = f"step-{next_step:06d}.npz"
        (run_dir / KEPT).mkdir(exist_ok=True)
        shutil.copyfile(run_dir / arrays, run_dir / KEPT / kept)
        ck["world_arrays"] = kept
    atomic_write_json(kept_path(run_dir, next_step), ck)


def kept_steps(run_dir: Path) -> list[int]:
    return sorted(int(p.stem.split("-")[1]) for p in (run_dir / KEPT).glob("step-*.json"))


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # parts are never rewritten in place: sharing the file is safe and costs no space
    except OSError:
        shutil.copyfile(src, dst)


def prepare_branch(parent: Path, at: int, overrides: dict[str, Any], run_dir: Path, backend: str | None = None) -> Any:
    """Set up `run_dir` as a branch of `parent` at the start of step `at` with `overrides` (dotted paths) applied.
    Returns the branch's Scenario; the caller resumes it (LocalRuntime(..., resume=True)). Raises BranchError."""
    from agentsim.core.world import agents_table
    from agentsim.logs.writer import RunLogWriter
    from agentsim.runtime.meta import new_meta
    from agentsim.spec.errors import SpecError
    from agentsim.spec.loader import apply_overrides, parse_scenario

    meta_path = parent / "run.json"
    try:
        meta = json.loads(meta_path.read_text())
        spec_data, steps = meta["spec"], int(meta["spec"]["steps"])
    except FileNotFoundError:
        raise BranchError(f"{parent}: not a run directory (no run.json)") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise BranchError(f"{meta_path}: not a readable run.json (no spec)") from None
    kept = kept_steps(parent)
    if not kept:
        raise BranchError(f"{parent} kept no checkpoints; run it with --set runtime.keep_checkpoints=true "
                          "(and runtime.checkpoint_every=1 to branch at any step)")
    if at not in kept:
        raise BranchError(f"{parent} has no checkpoint after step {at}; --at values it can branch at (steps kept): "
                          f"{', '.join(str(k) for k in kept if k < steps) or 'none before its end'}")
    if at >= steps and "steps" not in overrides:
        raise BranchError(f"step {at} is the end of {parent} ({steps} steps): nothing left to run; give --set steps=N with N > {at}")
    if "kind" in overrides and overrides["kind"] != spec_data.get("kind"):
        raise BranchError(f"a branch of a {spec_data.get('kind')} run cannot change its kind to {overrides['kind']}")
    source = meta.get("source")
    try:
        data = apply_overrides(spec_data, backend=backend, **overrides)
        sc = parse_scenario(data, source or str(meta_path), base_dir=Path(source).parent if source else None)
    except SpecError as e:
        raise BranchError(e.render()) from None
    if sc.spec.steps <= at:
        raise BranchError(f"steps: {sc.spec.steps} leaves nothing to run after step {at}")
    if run_dir.exists() and any(run_dir.iterdir()):
        raise BranchError(f"{run_dir} exists and is not empty; choose another --run-dir")

    ck = json.loads(kept_path(parent, at).read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        # The parent's steps before `at`, part for part; the agents table is the branch's own (its models may differ).
        parts = dict(ck["parts"])
        for table, upto in parts.items():
            if table == "agents":
                continue
            for i in range(upto):
                _link_or_copy(parent / table / f"part-{i:06d}.parquet", run_dir / table / f"part-{i:06d}.parquet")
        writer = RunLogWriter(run_dir)
        writer.append_table("agents", agents_table(sc.family.create_world(sc.spec, sc.world)))
        parts["agents"] = writer.positions()["agents"]
        writer.release()  # the branch's runtime writes from here on
        ck["parts"] = parts
        if ck.get("world_arrays"):
            name = f"checkpoint-{at:06d}.npz"
            shutil.copyfile(parent / KEPT / ck["world_arrays"], run_dir / name)
            ck["world_arrays"] = name
        atomic_write_json(run_dir / CHECKPOINT, ck)
    except (OSError, KeyError, ValueError) as e:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise BranchError(f"{parent}: cannot copy its log up to step {at} ({e})") from None
    new = new_meta(run_dir.name, sc.spec.model_dump(mode="json"), sc.world.model_dump(mode="json"), source, {})
    new.update(status="branched", steps_completed=at, overrides={**meta.get("overrides", {}), **overrides},
               branch={"parent": str(parent.resolve()), "parent_run_id": meta.get("run_id"), "at_step": at,
                       "overrides": overrides, **({"backend": backend} if backend else {})})
    if meta.get("replay_from"):
        new["replay_from"] = meta["replay_from"]
    atomic_write_json(run_dir / "run.json", new)
    return sc
