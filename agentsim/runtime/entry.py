"""One way into a run, shared by `agentsim run` / `resume` / `branch` (agentsim/cli.py) and `agentsim.run(...)`.

`prepare` reads, overrides and validates a scenario (agentsim/spec/loader.py: prepare_scenario), `target_dir`
chooses the run directory, `execute` builds the backends and runs (or resumes) the scenario in it. Problems a user
can fix are exceptions with the message the CLI prints: SpecError (bad scenario or override; CLI exit 2), RunError
(a backend that cannot start or stopped serving, an unwritable run directory, a checkpoint that cannot be
restored; `exit_code` is the CLI's). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from agentsim.llm.types import BackendError

Say = Callable[[str], None]


class RunError(Exception):
    """A run could not start, or stopped; the message says why and how to go on. `exit_code`: the CLI's (2 for bad
    input, a backend's own code for a backend that failed)."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


CHECKPOINT_ADVICE = ("To run it again from step 0, delete {ck} and run `agentsim resume {run_dir}` (the steps logged "
                     "so far are written again); or start a new run with `agentsim run`.")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def prepare(scenario: str | Path, sets: list[str] | None = None, run_dir: Path | None = None,
            paths: Mapping[str, Any] | None = None, **flags: Any) -> Any:
    """Read, override and validate a scenario, check the log directory and build the world: what `agentsim run` and
    `validate` do before the first step. `sets`: `--set PATH=VALUE` strings; `paths`: {dotted path: value} (the
    same overrides, already parsed: `agentsim.run(..., **{"world.max_actions_per_day": 2})`); `flags`: the
    shorthands (backend, seed, steps, out, runtime, address, shards). Raises SpecError naming every problem."""
    from agentsim.spec.errors import SpecError, SpecProblem
    from agentsim.spec.loader import prepare_scenario
    from agentsim.spec.overrides import COMMAND_LINE, Override, command_line_overrides

    overrides = command_line_overrides(sets or [], **flags)
    for key, value in (paths or {}).items():
        if not isinstance(key, str) or any(not p.strip() for p in key.split(".")):
            raise SpecError(COMMAND_LINE, [SpecProblem(str(key), f"{key!r} is not a dotted path like world.users.count")])
        overrides.append(Override(key.strip(), value, f"{key}={value!r}"))
    return prepare_scenario(scenario, overrides, run_dir=run_dir)


def human_seats(sc: Any) -> list[str]:
    """The agent ids of the prepared scenario `sc` that a person plays (their model alias has `backend: human`), in
    the world's order; [] without a human alias (the world's agents are not listed then)."""
    from agentsim.llm.human import human_seats as seats

    if not any(m.backend == "human" for m in sc.spec.models.values()):
        return []
    return seats(sc.spec.models, list(_agent_aliases(sc).items()))


def _agent_aliases(sc: Any) -> dict[str, str]:
    """{agent id: model alias} of the prepared scenario's world (the world `build_world` built, not handed over)."""
    peek = getattr(sc.family.create_world, "peek", None)
    world = (peek() if peek else None) or sc.family.create_world(sc.spec, sc.world)
    return {a.agent_id: a.model for a in world.agents()}


def prepare_with_humans(scenario: str | Path, humans: list[str], sets: list[str] | None = None, run_dir: Path | None = None,
                        **flags: Any) -> tuple[Any, list[str]]:
    """`prepare`, with `--human NAME` for each of `humans`: a model alias NAME becomes a human one (every agent on it
    is a seat); an agent id NAME gets a human alias of its own (`human-NAME`, through population.overrides; one the
    scenario or a --set already defines is used, made human, with its options) unless its alias is human already. `--backend` (flags["backend"]) changes every other alias. Returns the scenario and
    the seats these names made (agent ids). Raises SpecError for a name that is neither, or an agent whose family
    does not take its model from population.overrides."""
    from agentsim.spec.errors import SpecError, SpecProblem
    from agentsim.spec.loader import prepare_scenario
    from agentsim.spec.overrides import COMMAND_LINE, Override, command_line_overrides

    if not humans:
        return prepare(scenario, sets, run_dir, **flags), []
    backend = flags.pop("backend", None)
    sc = prepare(scenario, sets, run_dir, **flags)
    alias_of = _agent_aliases(sc)
    models = sc.spec.models
    extra: list[Override] = []
    keep: set[str] = set()  # aliases that stay human whatever --backend says
    problems = []
    for name in dict.fromkeys(humans):
        flag = f"--human {name}"
        if name in models:
            keep.add(name)
            if models[name].backend != "human":
                extra.append(Override(f"models.{name}.backend", "human", flag))
        elif name in alias_of:
            if models[alias_of[name]].backend == "human":
                keep.add(alias_of[name])
            else:
                alias = f"human-{name}"
                keep.add(alias)
                if alias in models:
                    # The user gave it options already (--set models.human-Red.timeout_s=60, or in the file): that
                    # alias is the seat's, made human, with its options kept.
                    extra.append(Override(f"models.{alias}.backend", "human", flag))
                else:
                    extra.append(Override(f"models.{alias}", {"backend": "human"}, flag))
                extra.append(Override(f"population.overrides.{name}", alias, flag))
        else:
            agents = ", ".join(list(alias_of)[:20]) + (", ..." if len(alias_of) > 20 else "")
            problems.append(SpecProblem("--human", f"{name!r} is neither an agent nor a model alias of this scenario; agents: "
                                                   f"{agents}; aliases: {', '.join(sorted(models))}"))
    if problems:
        raise SpecError(COMMAND_LINE, problems)
    if backend is not None:
        extra += [Override(f"models.{a}.backend", backend, f"--backend {backend}") for a in models if a not in keep]
    def not_overridable(name: str) -> SpecProblem:
        alias = alias_of.get(name, "ALIAS")
        return SpecProblem("--human", f"{name!r}: this family does not take {name}'s model from population.overrides; "
                                      f"{name} plays on model alias {alias!r}: --human {alias} makes every agent on it a "
                                      f"human seat (or give {name} an alias of its own in the scenario)")

    if extra:
        try:
            sc = prepare_scenario(scenario, [*command_line_overrides(sets or [], **flags), *extra], run_dir=run_dir)
        except SpecError as e:
            # an agent the world lists but whose model the population does not set (the wargame's WorldModel): say
            # so about --human, not about the override it made
            mine = {f"population.overrides.{n}": n for n in humans if n in alias_of and n not in models}
            named = [not_overridable(mine[p.path]) if p.path in mine else p for p in e.problems]
            raise SpecError(COMMAND_LINE if all(p.path in mine for p in e.problems) else e.source, named) from None
    out, unmatched = seats_named(sc, humans)
    problems += [not_overridable(name) for name in unmatched]
    if problems:
        raise SpecError(COMMAND_LINE, problems)
    return sc, out


def seats_named(sc: Any, names: list[str]) -> tuple[list[str], list[str]]:
    """The human seats (agent ids, in the world's order per name) of the prepared scenario `sc` that `names` name,
    each name an agent id or a model alias (all of its agents), and the names that name no human seat."""
    alias_of = _agent_aliases(sc)
    seats = set(human_seats(sc))
    out: list[str] = []
    unmatched: list[str] = []
    for name in dict.fromkeys(names):
        mine = [a for a, alias in alias_of.items() if a in seats and (a == name or alias == name)]
        if not mine:
            unmatched.append(name)
        out += mine
    return list(dict.fromkeys(out)), unmatched


def target_dir(sc: Any, run_dir: Path | None) -> Path:
    """The run directory to create: `run_dir`, or a new stamped one under logging.dir (`<name>-<time>-s<seed>`).
    Raises RunError when it exists and is not empty."""
    from agentsim.runtime.meta import stamped_dir

    spec = sc.spec
    target = (run_dir or stamped_dir(spec.logging.dir, spec.name, f"-s{spec.seed}")).absolute()
    if target.is_dir() and any(target.iterdir()):  # a file there was refused by prepare_scenario
        raise RunError(f"{target} exists and is not empty; choose another --run-dir")
    return target


def execute(sc: Any, run_dir: Path, replay_from: Path | None = None, *, resume: bool = False,
            extra_meta: dict | None = None, progress: Any = None, log: Say | None = None, say: Say = _stderr) -> Any:
    """Build the backends and run (or resume) the prepared scenario `sc` in `run_dir`; returns the runtime's
    result (run_dir, status, steps_completed, ...). `progress`: a RunProgress (None: none); `log`: where backend
    start-up messages go (None: nowhere); `say`: where the resume line and the failure hint go (stderr).

    Raises RunError for a backend that cannot start or stops serving (the log holds every completed step; the
    message says how to resume), a run directory that cannot be written, a checkpoint that cannot be restored."""
    from agentsim.llm.router import build_backend
    from agentsim.runtime.local import CHECKPOINT, LocalRuntime

    spec = sc.spec
    log = log or (lambda m: None)
    router, policy, model_paths = None, None, {}
    try:
        if spec.runtime.kind == "ray":
            from agentsim.runtime.ray_runtime import ShardedPolicy, make_shards

            shards, _ = make_shards(spec, sc.family.scripted_policy, str(replay_from.resolve()) if replay_from else None, log=log)
            policy = ShardedPolicy(shards)
        else:
            router = build_backend(spec.models, sc.family.scripted_policy, replay_from=replay_from, log=log,
                                   expect=spec.model_dump(mode="json"), run_dir=run_dir)
            model_paths = {a: b.model_path(a) for a, b in router.backend_for_alias.items() if hasattr(b, "model_path")}
    except BackendError as e:
        raise RunError(str(e), e.exit_code) from e
    try:
        runtime = LocalRuntime(sc, router, run_dir, progress=progress, model_paths=model_paths, resume=resume,
                               extra_meta=extra_meta, policy=policy)
    except (ValueError, KeyError, TypeError, IndexError) as e:
        if router is not None:
            router.close()
        if not resume:
            raise  # the world was built and checked before: this is a bug, keep its traceback
        ck = run_dir / CHECKPOINT
        raise RunError(f"{ck}: the checkpoint cannot be restored ({type(e).__name__}: {e}). "
                       f"{CHECKPOINT_ADVICE.format(ck=ck, run_dir=run_dir)}") from e
    except OSError as e:
        if router is not None:
            router.close()
        raise RunError(f"{run_dir}: cannot write the run log there ({e.strerror or e})") from e
    if resume:
        say(f"Resuming {run_dir} at step {runtime.start_step + 1} of {spec.steps}")
    try:
        return runtime.run()
    except BackendError as e:  # a backend that stopped serving mid-run: the run is resumable
        at = runtime.meta.get("error", {}).get("resume_at_step")
        where = f" from the checkpoint at step {at + 1}" if at is not None else ""
        if getattr(e, "outage", None) == "unrecorded":
            # A replay that asks what its source never recorded asks it again on resume: no point advising it.
            raise RunError(f"{e}\n{run_dir} keeps the steps replayed so far; replay a run of the same scenario, "
                           "seed and steps to go further", e.exit_code) from e
        raise RunError(f"{e}\nOnce it serves again, continue{where} with: agentsim resume {run_dir}", e.exit_code) from e
    except Exception:
        say(f"The run failed; {run_dir} holds every completed step. Resume with: agentsim resume {run_dir}")
        raise
    finally:
        if router is not None:
            router.close()


def run_scenario(scenario: Any, *, backend: str | None = None, steps: int | None = None, seed: int | None = None,
                 out: str | Path | None = None, run_dir: str | Path | None = None, replay_from: str | Path | None = None,
                 quiet: bool = True, **overrides: Any) -> Any:
    """`agentsim.run`: run a scenario as `agentsim run` does and return its RunLog.

    `scenario`: a scenario file, a shipped scenario's name (`"wargame/neutral.yaml"`), or a Scenario from
    `agentsim.load_scenario` (then without overrides: load it with them). `backend`, `steps`, `seed`, `out` (the
    parent of the run directory, logging.dir) are `--backend`, `--steps`, `--seed`, `--out`; `run_dir` is
    `--run-dir`, `replay_from` `--replay-from`; `overrides` are `--set`s as dotted paths, e.g.
    `**{"world.max_actions_per_day": 2}`. `quiet=False` shows the progress bar on stderr.

    Raises SpecError for a bad scenario or override (what the CLI reports with exit 2) and RunError for a backend
    that cannot start or stopped, or a run directory that cannot be written. The run's status (completed,
    interrupted, no_valid_answers) is `log.meta["status"]`."""
    from agentsim.logs.reader import RunLog
    from agentsim.runtime.progress import RunProgress
    from agentsim.spec.errors import SpecError, SpecProblem
    from agentsim.spec.loader import Scenario, build_world, check_log_dir
    from agentsim.spec.overrides import COMMAND_LINE

    if backend == "replay" and replay_from is None:
        raise SpecError(COMMAND_LINE, [SpecProblem("backend", "backend='replay' needs replay_from=RUN_DIR (a run whose answers to replay)")])
    where = Path(run_dir) if run_dir is not None else None
    if isinstance(scenario, Scenario):
        given = {k: v for k, v in {"backend": backend, "steps": steps, "seed": seed, "out": out}.items() if v is not None}
        if given or overrides:
            raise TypeError(f"agentsim.run: overrides ({', '.join([*given, *overrides])}) need a scenario file or name; "
                            "a Scenario object is run as it is (load it with agentsim.load_scenario(path, ...) overrides)")
        check_log_dir(scenario, where)
        sc = build_world(scenario)
    else:
        sc = prepare(scenario, None, where, paths=overrides, backend=backend, seed=seed, steps=steps, out=out)
    target = target_dir(sc, where)
    extra: dict[str, Any] = {"overrides": sc.overrides}
    if replay_from is not None:
        from agentsim.spec.shipped import resolve_recording

        replay_from = resolve_recording(replay_from)  # a shipped recording by name, from any folder
        extra["replay_from"] = str(Path(replay_from).resolve())
    progress = RunProgress(sc.spec.steps, enabled=not quiet)
    result = execute(sc, target, Path(replay_from) if replay_from is not None else None, extra_meta=extra,
                     progress=progress, log=None if quiet else _stderr)
    return RunLog(result.run_dir)
