"""Running an experiment: its cells as concurrent runs of one process, sharing engines and batches, resumable.

Each cell is a `LocalRuntime` run in its own run directory under `<experiment>/runs/`, driven as an asyncio task;
at most `max_concurrent_runs` are in flight. The runs' LLM requests go through the experiment's `EnginePool`. A cell
that fails is recorded with its error in experiment.json and the others go on. Running the same experiment again
resumes it: completed runs are skipped, interrupted or killed ones continue from their checkpoints (exactly as
`agentsim resume` would), so the logs end as those of an uninterrupted experiment.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from agentsim.experiments.manifest import DONE, ManifestError, new_manifest, read_manifest, write_manifest
from agentsim.experiments.plan import Cell, Plan
from agentsim.experiments.pool import EnginePool
from agentsim.experiments.progress import ExperimentProgress
from agentsim.logs.writer import DirectoryInUse, lock_directory
from agentsim.runtime.local import stop_signals
from agentsim.runtime.meta import now, stamped_dir


@dataclass
class ExperimentResult:
    exp_dir: Path
    status: str  # completed | interrupted | failed (some cells failed; the others ran)
    manifest: dict[str, Any]
    wall_s: float
    resumed: bool = False
    engines: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [c for c in self.manifest["cells"] if c["status"] == "failed"]


def experiment_dir_for(plan: Plan, parent: Path | None = None, new: bool = False) -> tuple[Path, bool]:
    """(directory, resumed): the newest unfinished directory of the same plan under `parent`, else a new
    `<name>-<stamp>` one. A directory of the same plan that completed is returned too (nothing left to run)."""
    parent = Path(parent) if parent is not None else plan.spec.logging.dir
    if not new and parent.is_dir():
        same = []
        for d in parent.glob(f"{plan.spec.name}-*"):
            try:
                m = read_manifest(d)
            except ManifestError:
                continue
            if m["plan_hash"] == plan.plan_hash:
                same.append(d)
        if same:
            return max(same, key=lambda d: (d / "experiment.json").stat().st_mtime), True
    return stamped_dir(parent, plan.spec.name), False


def _open(plan: Plan, exp_dir: Path) -> dict[str, Any]:
    if (exp_dir / "experiment.json").exists():
        manifest = read_manifest(exp_dir)
        if manifest["plan_hash"] != plan.plan_hash:
            raise ManifestError(
                f"{exp_dir} holds another plan of {manifest['name']!r} (its cells or base scenarios changed); "
                "run without --dir for a new experiment directory"
            )
        return manifest
    exp_dir.mkdir(parents=True, exist_ok=True)
    manifest = new_manifest(plan)
    write_manifest(exp_dir, manifest)
    return manifest


def _replay_sources(replay_from: Path | None) -> dict[tuple[str, str, int], Path]:
    """Cells of a recorded experiment by (base, params, seed): where each cell's replay answers come from."""
    if replay_from is None:
        return {}
    m = read_manifest(replay_from)
    return {(c["base"], json.dumps(c["params"], sort_keys=True), c["seed"]): replay_from / c["run_dir"] for c in m["cells"]}


def _cell_state(exp_dir: Path, entry: dict[str, Any]) -> str:
    """What to do with a cell: skip (completed), resume (its run has a run.json), or start (fresh)."""
    run_dir = exp_dir / entry["run_dir"]
    meta_path = run_dir / "run.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError:
            meta = {}
        if meta.get("status") == DONE:
            return "skip"
        if "spec" in meta:
            return "resume"
    if run_dir.exists():  # killed before run.json was written: no step was completed; start over
        shutil.rmtree(run_dir)
    return "start"


def run_experiment(
    plan: Plan,
    exp_dir: Path | None = None,
    *,
    new: bool = False,
    replay_from: Path | None = None,
    console: Console | None = None,
    quiet: bool = False,
) -> ExperimentResult:
    """Run (or resume) every cell of `plan`; returns when all ended or a stop was requested (Ctrl-C)."""
    console = console or Console(stderr=True)
    resumed = False
    if exp_dir is None:
        exp_dir, resumed = experiment_dir_for(plan, new=new)
    else:
        resumed = (exp_dir / "experiment.json").exists()
    exp_dir.mkdir(parents=True, exist_ok=True)
    try:  # two sweeps of one experiment would both write its manifest and its runs
        lock = lock_directory(exp_dir, "experiment")
    except DirectoryInUse as e:
        raise ManifestError(f"{exp_dir}: {e.strerror}") from None
    try:
        return _run_locked(plan, exp_dir, resumed, replay_from, console, quiet)
    finally:
        lock.close()


def _run_to_end(make: Any) -> Any:
    """asyncio.run(make()), or, where this thread's event loop is already running (a Jupyter kernel:
    `agentsim.sweep` in a notebook cell), the same in a new loop on a worker thread, as a single run does
    (runtime/local.py LocalRuntime.run)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="agentsim-sweep") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def sweep(experiment: str | Path, *, backend: str | None = None, repeats: int | None = None,
          max_concurrent_runs: int | None = None, dir: str | Path | None = None, new: bool = False,
          replay_from: str | Path | None = None, quiet: bool = True, **overrides: Any) -> Any:
    """`agentsim.sweep`: run (or resume) an experiment as `agentsim sweep` does and return it as an `Experiment`
    (experiments/load.py: `.cells`, `.table(...)`, `.logs()`; its status is `.manifest["status"]`).

    `experiment`: an experiment file or a shipped one's name (`"wargame/study.yaml"`). `backend`, `repeats`,
    `max_concurrent_runs`, `dir`, `new`, `replay_from` are the command's `--backend`, `--repeats`,
    `--max-concurrent-runs`, `--dir`, `--new`, `--replay-from`; `overrides` are its `--set`s as dotted paths, applied
    to every cell, e.g. `**{"steps": 3}`. `quiet=False` shows the progress display on stderr. Works in a notebook
    (a running event loop).

    Raises SpecError for a bad experiment file, override or cell scenario (the CLI's exit 2), ManifestError for an
    experiment directory that cannot be used (another sweep holds it, a damaged experiment.json)."""
    from agentsim.experiments.load import load_experiment
    from agentsim.experiments.plan import plan_experiment
    from agentsim.spec.errors import SpecError, SpecProblem
    from agentsim.spec.overrides import COMMAND_LINE, Override

    bad = [k for k in overrides if not isinstance(k, str) or any(not p.strip() for p in k.split("."))]
    if bad:
        raise SpecError(COMMAND_LINE, [SpecProblem(str(k), f"{k!r} is not a dotted path like world.users.count") for k in bad])
    sets = [Override(k.strip(), v, f"{k}={v!r}") for k, v in overrides.items()]
    plan = plan_experiment(experiment, sets, backend=backend, repeats=repeats, max_concurrent_runs=max_concurrent_runs)
    result = run_experiment(plan, Path(dir) if dir is not None else None, new=new,
                            replay_from=Path(replay_from) if replay_from is not None else None, quiet=quiet)
    return load_experiment(result.exp_dir)


def _run_locked(plan: Plan, exp_dir: Path, resumed: bool, replay_from: Path | None, console: Console,
                quiet: bool) -> ExperimentResult:
    manifest = _open(plan, exp_dir)
    sources = _replay_sources(replay_from)
    runner = _Runner(plan, exp_dir, manifest, sources, console, quiet)
    t0 = time.perf_counter()
    try:
        with stop_signals(runner.on_sigint, runner.on_sigterm):
            _run_to_end(runner.run)
    except KeyboardInterrupt:
        runner.stopping = True
    finally:
        runner.pool.close()
    cells = manifest["cells"]
    if runner.stopping and any(c["status"] != DONE for c in cells):
        status = "interrupted"
    elif any(c["status"] != DONE for c in cells):
        status = "failed"
    else:
        status = "completed"
    manifest.update(status=status, finished_at=now(), engines=runner.pool_stats)
    write_manifest(exp_dir, manifest)
    return ExperimentResult(exp_dir, status, manifest, time.perf_counter() - t0, resumed, runner.pool_stats)


class _Runner:
    def __init__(self, plan: Plan, exp_dir: Path, manifest: dict[str, Any], sources: dict[tuple[str, str, int], Path],
                 console: Console, quiet: bool):
        self.plan = plan
        self.exp_dir = exp_dir
        self.manifest = manifest
        self.sources = sources
        self.console = console
        self.stopping = False
        self.runtimes: list[Any] = []
        self.progress = ExperimentProgress(len(plan.cells), sum(c.scenario.spec.steps for c in plan.cells), console, enabled=not quiet)
        self.pool = EnginePool(plan.spec.share_engines, log=lambda m: self.progress.note(m))
        self.pool_stats: dict[str, Any] = {}
        self.ray_started = False

    def on_sigterm(self, signum: int, frame: object) -> None:
        """SIGTERM: stop now, as a second Ctrl-C does; every run ends `interrupted` on its last whole step."""
        self.stopping = True
        for rt in self.runtimes:
            rt.stop_requested = True
            rt.meta["stopped_by"] = "SIGTERM"
        raise KeyboardInterrupt

    def on_sigint(self, signum: int, frame: object) -> None:
        """First Ctrl-C: every run finishes and flushes its current step, no new run starts. Second: stop now."""
        if self.stopping:
            raise KeyboardInterrupt
        self.stopping = True
        for rt in self.runtimes:
            rt.stop_requested = True
        self.progress.note("Ctrl-C: runs stop after their current step (press Ctrl-C again to stop now)")

    def _save(self) -> None:
        write_manifest(self.exp_dir, self.manifest)

    async def run(self) -> None:
        self.manifest["status"] = "running"
        self.manifest.setdefault("runs", []).append({"started_at": now()})
        self._save()
        sem = asyncio.Semaphore(self.plan.spec.max_concurrent_runs)
        with self.progress:
            todo = []
            for cell in self.plan.cells:
                entry = self.manifest["cells"][cell.index]
                state = _cell_state(self.exp_dir, entry)
                if state == "skip":
                    entry.update(status=DONE, steps_completed=cell.scenario.spec.steps)
                    self.progress.done += 1
                    self.progress.advance_steps(cell.scenario.spec.steps)
                    continue
                todo.append((cell, entry, state == "resume"))
            self._save()
            await asyncio.gather(*(self._cell(sem, cell, entry, resume) for cell, entry, resume in todo))
        self.pool_stats = self.pool.stats()

    def _branch(self, cell: Cell, run_dir: Path, overrides: dict[str, Any], extra: dict[str, Any]) -> None:
        from agentsim.logs.writer import atomic_write_json
        from agentsim.runtime.branch import prepare_branch

        assert self.plan.branch_parent is not None and self.plan.spec.branch is not None
        prepare_branch(self.plan.branch_parent, self.plan.spec.branch.at, overrides, run_dir)
        meta = json.loads((run_dir / "run.json").read_text())
        atomic_write_json(run_dir / "run.json", {**meta, "experiment": extra["experiment"]})

    def _ray_shards(self, sc: Any, replay: Path | None) -> tuple[list[Any], Any]:
        """A Ray run's shard actors, sending their vLLM requests to the experiment's engine actors (created by the
        first run that needs them), where requests from concurrent runs join the same engine batches."""
        from agentsim.runtime.ray_runtime import ShardedPolicy, make_shards, start_ray

        rt = sc.spec.runtime
        if not self.ray_started:  # a local Ray instance advertises what all concurrent runs reserve
            concurrent = min(self.plan.spec.max_concurrent_runs, len(self.plan.cells))
            engines = len({m.engine_key() for c in self.plan.cells for m in c.scenario.spec.models.values() if m.backend == "vllm"})
            start_ray(rt.address, self.progress.note, cpus_needed=concurrent * rt.shards * rt.cpus_per_shard + engines * rt.engines * rt.cpus_per_engine)
            self.ray_started = True
        shards, _ = make_shards(sc.spec, sc.family.scripted_policy, str(replay.resolve()) if replay else None,
                                log=lambda m: None, engines_by_key=self.pool.ray_engines)
        return shards, ShardedPolicy(shards)

    async def _cell(self, sem: asyncio.Semaphore, cell: Cell, entry: dict[str, Any], resume: bool) -> None:
        from agentsim.runtime.local import LocalRuntime

        async with sem:
            if self.stopping:
                return
            run_dir = self.exp_dir / entry["run_dir"]
            sc = cell.scenario
            replay = self.sources.get((cell.base, json.dumps(cell.params, sort_keys=True), cell.seed))
            if any(m.backend == "replay" for m in sc.spec.models.values()) and replay is None:
                entry.update(status="failed", error="the replay backend needs --replay-from EXPERIMENT_DIR holding this cell")
                self._save()
                self.progress.run_started()
                self.progress.run_ended("failed")
                return
            entry.update(status="running", error=None)
            self._save()
            self.progress.run_started()
            self.pool.active_runs += 1
            router = None
            status, error = "failed", None
            shards: list[Any] = []
            runtime = None
            try:
                policy = None
                if sc.spec.runtime.kind == "ray":
                    shards, policy = self._ray_shards(sc, replay)
                else:
                    router = self.pool.router(sc.spec.models, sc.family.scripted_policy, replay)
                paths = {a: self.pool.model_path(m) for a, m in sc.spec.models.items() if m.backend == "vllm"}
                overrides = {**self.plan.spec.set, **cell.params, "seed": cell.seed}
                extra = {"experiment": {"dir": str(self.exp_dir.resolve()), "name": self.plan.spec.name, "cell": cell.index,
                                        "base": cell.base, "params": cell.params},
                         "overrides": overrides, **({"replay_from": str(replay.resolve())} if replay else {})}
                progress = self.progress.for_cell(cell.run_name)
                if not resume and self.plan.branch_parent is not None:
                    # A counterfactual branch: the parent's log up to the branch point, then on as a resumed run.
                    self._branch(cell, run_dir, overrides, extra)
                    resume = True
                if resume:
                    runtime = LocalRuntime(sc, router, run_dir, progress=progress, model_paths=paths, resume=True, policy=policy)
                    self.progress.advance_steps(runtime.start_step)
                else:
                    runtime = LocalRuntime(sc, router, run_dir, progress=progress, model_paths=paths, extra_meta=extra, policy=policy)
                self.runtimes.append(runtime)
                if self.stopping:
                    runtime.stop_requested = True
                result = await runtime.arun()
                status = result.status
                entry["steps_completed"] = result.steps_completed
                entry["wall_s"] = round(result.wall_s, 3)
            except Exception as e:  # a cell's failure is recorded; the other cells go on
                error = f"{type(e).__name__}: {e}"
                if runtime is not None and runtime._finished is not None:  # e.g. backend_unavailable (resumable)
                    status = runtime._finished.status
                self.progress.note(f"[red]cell {cell.index} ({cell.run_name}) failed[/red]: {error}")
            finally:
                self.pool.active_runs -= 1
                if router is not None:
                    router.close()
                if shards:  # free the run's CPUs for the next run; the engine actors stay in the pool
                    import ray

                    for shard in shards:
                        ray.kill(shard)
            entry.update(status=status, error=error)
            self._save()
            self.progress.run_ended(status)
