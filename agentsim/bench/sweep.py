"""Benchmark: K runs as one experiment (one process, one engine, cross-run batches) against the same K runs one
after another, each as `agentsim run` does it (its own process, imports and engine start).

Both sides run the same scenario with the same seeds through the CLI, so each side pays what a user pays. Tokens
are the completion tokens the runs' logs record; peak memory is each process's maximum resident set (os.wait4).
A second measurement, with the scripted backend and many short runs in one process, is the overhead of the
experiment layer itself: the same runs through `run_experiment` and through `LocalRuntime.run` one by one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass
class Side:
    wall_s: float
    tokens: int
    peak_rss_mb: float

    @property
    def tps(self) -> float:
        return self.tokens / self.wall_s


def _timed(cmd: list[str]) -> tuple[float, float]:
    """Run a command; (seconds, peak RSS in MiB of that process)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} ... failed ({p.returncode}): {(p.stderr.read() if p.stderr else '')[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def _tokens(run_dirs: list[Path]) -> int:
    return sum(json.loads((d / "run.json").read_text())["totals"].get("completion_tokens", 0) for d in run_dirs)


def run_sweep_bench(scenario: Path, model_path: str, runs: int, sets: dict[str, Any], work: Path) -> tuple[Side, Side]:
    """(sequential, experiment) for `runs` seeds of `scenario` on `model_path`."""
    cli = [sys.executable, "-m", "agentsim"]
    sets = {"models.default.model": model_path, **sets}
    set_args = [f"--set={k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in sets.items() if k != "steps"]
    set_args += [f"--steps={sets['steps']}"] if "steps" in sets else []
    seq_dirs = [work / "sequential" / f"s{i}" for i in range(runs)]
    walls, peaks = [], []
    for i, d in enumerate(seq_dirs):
        w, rss = _timed([*cli, "run", str(scenario), "--seed", str(i), *set_args, "--run-dir", str(d), "--quiet"])
        walls.append(w)
        peaks.append(rss)
    sequential = Side(sum(walls), _tokens(seq_dirs), max(peaks))
    exp_file = work / "experiment.yaml"
    exp_file.write_text(yaml.safe_dump({
        "kind": "experiment", "name": "bench-sweep", "base": [str(scenario.resolve())], "set": sets,
        "seeds": list(range(runs)), "max_concurrent_runs": runs, "logging": {"dir": str(work / "experiments")},
    }))
    exp_dir = work / "experiments" / "bench"
    w, rss = _timed([*cli, "sweep", str(exp_file), "--dir", str(exp_dir), "--quiet"])
    cells = json.loads((exp_dir / "experiment.json").read_text())["cells"]
    together = Side(w, _tokens([exp_dir / c["run_dir"] for c in cells]), rss)
    return sequential, together


def run_layer_overhead(scenario: Path, runs: int, steps: int, work: Path) -> dict[str, float]:
    """Scripted backend, `runs` short runs in this process: one after another vs as one experiment."""
    from agentsim.experiments import plan_experiment, run_experiment
    from agentsim.llm.router import build_backend
    from agentsim.runtime.local import LocalRuntime

    exp_file = work / "overhead.yaml"
    exp_file.write_text(yaml.safe_dump({
        "kind": "experiment", "name": "bench-overhead", "base": [str(scenario.resolve())],
        "set": {"steps": steps, "models.default.backend": "scripted", "runtime.checkpoint_every": None},
        "repeats": runs, "max_concurrent_runs": 16, "logging": {"dir": str(work / "overhead")},
    }))
    plan = plan_experiment(exp_file)
    t0 = time.perf_counter()
    for c in plan.cells:
        router = build_backend(c.scenario.spec.models, c.scenario.family.scripted_policy)
        LocalRuntime(c.scenario, router, work / "one-by-one" / c.run_name).run()
    alone = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_experiment(plan, work / "overhead" / "exp", quiet=True)
    together = time.perf_counter() - t0
    return {"runs": runs, "one_by_one_s": alone, "experiment_s": together, "overhead": together / alone - 1}


def bench(model: str, runs: int, steps: int, max_tokens: int, repeats: int, scripted_runs: int, log: Any = print) -> dict[str, Any]:
    from agentsim.spec.shipped import resolve_scenario

    scenario = resolve_scenario("wargame/neutral.yaml")
    if not scenario.exists():
        raise FileNotFoundError("the benchmark runs the shipped neutral wargame, which this installation lacks")
    from agentsim.bench.vllm_overhead import bench_model

    model, max_len = bench_model(model)
    sets = {"steps": steps, "models.default.sampling.max_tokens": max_tokens, "models.default.max_model_len": max_len,
            "models.default.kv_cache_gib": 1, "runtime.checkpoint_every": None}
    pairs = []
    for r in range(repeats):
        with tempfile.TemporaryDirectory(prefix="agentsim-bench-sweep-") as tmp:
            log(f"repeat {r + 1}/{repeats}: {runs} runs one after another, then as one experiment")
            pairs.append(run_sweep_bench(scenario, model, runs, sets, Path(tmp)))
    with tempfile.TemporaryDirectory(prefix="agentsim-bench-overhead-") as tmp:
        log(f"experiment-layer overhead: {scripted_runs} scripted runs of {steps} steps")
        overhead = run_layer_overhead(scenario, scripted_runs, steps, Path(tmp))
    return {"pairs": pairs, "overhead": overhead}
