"""The `agentsim` command line: run | resume | validate | schema | analyze | view | interview | survey | sweep | branch |
export | models | families | data | bench."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from agentsim.llm.types import BackendError
from agentsim.logs.reader import LogError
from agentsim.spec.errors import SpecError

app = typer.Typer(help="Large-scale multi-agent LLM simulations.", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
models_app = typer.Typer(help="Manage model weights (the embedded default model).", no_args_is_help=True)
app.add_typer(models_app, name="models")
# Piped output (CI logs, files) gets a wide console so tables are not cut at 80 columns.
# emoji=False: ":x:" in a user's name or file must print as written, not as an emoji.
console = Console(emoji=False) if sys.stdout.isatty() else Console(width=160, emoji=False)
err = Console(stderr=True, emoji=False) if sys.stderr.isatty() else Console(stderr=True, width=160, emoji=False)


def _print_version(value: bool) -> None:
    if value:
        from agentsim import __version__

        console.print(f"agentsim {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print agentsim's version and exit.")] = False,
) -> None:
    """Large-scale multi-agent LLM simulations."""


class BackendChoice(StrEnum):
    vllm = "vllm"
    openai = "openai"
    scripted = "scripted"
    replay = "replay"


def _fail(message: str, code: int = 2) -> None:
    # escape: a message quotes names and values from the user's files, which rich must not read as markup ("[/b]x").
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _new_run_dir(parent: Path, name: str, seed: int) -> Path:
    from agentsim.runtime.meta import stamped_dir

    return stamped_dir(parent, name, f"-s{seed}")


# The options that change the scenario, shared by `run` and `validate` (agentsim/spec/overrides.py: each flag is
# sugar for a dotted path; a flag and a --set that give one path different values are an error).
BackendOpt = Annotated[BackendChoice | None, typer.Option(help="Use this backend for every model alias (models.*.backend).")]
SeedOpt = Annotated[int | None, typer.Option(help="Override the scenario's seed (seed).")]
StepsOpt = Annotated[int | None, typer.Option(help="Override the number of steps (steps).")]
OutOpt = Annotated[Path | None, typer.Option(help="Parent directory for the run directory (logging.dir), relative to the working directory.")]
RuntimeOpt = Annotated[str | None, typer.Option(help="Override runtime.kind: local or ray.")]
AddressOpt = Annotated[str | None, typer.Option(help="Ray cluster address (runtime.address, and runtime.kind=ray), e.g. auto or host:6379.")]
ShardsOpt = Annotated[int | None, typer.Option(help="Override runtime.shards.")]
HumanOpt = Annotated[list[str] | None, typer.Option(
    "--human", help="Play this seat yourself in the terminal: an agent id (it gets a human model alias of its own) or a "
                    "model alias (every agent on it); repeatable. Other human seats get a page (README: Playing a seat yourself).")]
HostOpt = Annotated[str, typer.Option(help="Address the seat pages of human seats listen on.")]
PortOpt = Annotated[int, typer.Option(min=0, max=65535, help="Port of the seat pages (0: a free port, printed).")]
PagesOpt = Annotated[bool, typer.Option(help="Serve a page per human seat (off: answer through the files in <run>/humans/).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Also show third-party logs (vLLM, torch, Triton, Ray) on the "
                                                                   "terminal; they always go to <run_dir>/third_party.log.")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="Override any field by dotted path: --set world.users.count=100000, --set world.users.groups.0.share=2 "
                  "(repeatable; values are YAML; relative paths are relative to the working directory).")]


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    backend: BackendOpt = None,
    replay_from: Annotated[Path | None, typer.Option(help="Run directory whose recorded answers the replay backend uses (or a "
                                                          "shipped recording: drift/recordings/rewrite-smollm2).")] = None,
    seed: SeedOpt = None,
    steps: StepsOpt = None,
    out: OutOpt = None,
    run_dir: Annotated[Path | None, typer.Option(help="Exact run directory to create (relative to the working directory).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar or summary tables.")] = False,
    runtime: RuntimeOpt = None,
    address: AddressOpt = None,
    shards: ShardsOpt = None,
    set_: SetOpt = None,
    human: HumanOpt = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 0,
    seat_pages: PagesOpt = True,
    verbose: VerboseOpt = False,
) -> None:
    """Run a scenario and write its log."""
    from agentsim.experiments import is_experiment_file

    if is_experiment_file(scenario):
        _fail(f"{scenario} is an experiment file (kind: experiment): run its cells with `agentsim sweep {scenario}`")
    if backend is BackendChoice.replay and replay_from is None:
        _fail("--backend replay needs --replay-from RUN_DIR (a run whose answers to replay)")
    from agentsim.runtime.entry import RunError, prepare_with_humans, target_dir

    try:
        sc, console_seats = prepare_with_humans(scenario, human or [], set_, run_dir, backend=backend.value if backend else None,
                                                seed=seed, steps=steps, out=out, runtime=runtime, address=address, shards=shards)
    except SpecError as e:
        _fail(e.render())

    try:
        target = target_dir(sc, run_dir)
    except RunError as e:
        _fail(str(e), e.exit_code)
    if not quiet:
        err.print(f"Run directory: {escape(str(target))}", highlight=False, soft_wrap=True)
    extra: dict[str, Any] = {"overrides": sc.overrides}
    if replay_from:
        from agentsim.spec.shipped import resolve_recording

        replay_from = resolve_recording(replay_from)  # a shipped recording by name, from any folder
        extra["replay_from"] = str(replay_from.resolve())
    with _run_directory(target), _human_seats(sc, target, console_seats, host, port, seat_pages):
        _execute(sc, target, replay_from, quiet, resume=False, extra_meta=extra, bar=not console_seats, verbose=verbose)


@contextlib.contextmanager
def _human_seats(sc: Any, run_dir: Path, console_seats: list[str], host: str, port: int, pages: bool) -> Iterator[None]:
    """While the run runs: the terminal answers `console_seats`, a page per other human seat answers the rest (its
    link printed, with a token only that seat's person gets); both stop at the end."""
    from agentsim.runtime.entry import human_seats

    seats = human_seats(sc)
    if not seats:
        yield
        return
    console_part = None
    server = None
    on_page = [s for s in seats if s not in console_seats]
    from agentsim.llm.human import clear_pending

    clear_pending(run_dir)  # before any page or console shows a request: a killed run's leftovers are not asked
    try:
        if console_seats:
            from agentsim.llm.human_form import ConsoleSeats

            console_part = ConsoleSeats(run_dir, console_seats).start()
        if on_page and pages:
            from agentsim.view.seat import serve_seats

            try:
                server = serve_seats(run_dir, on_page, host=host, port=port)
            except OSError as e:
                _fail(f"--host {host} --port {port}: the seat pages cannot listen there ({e.strerror or e})")
            err.print("Human seats (open each link in the seat's own browser; the token in it is that seat's key):", highlight=False)
            for seat, link in server.links.items():
                err.print(f"  {escape(seat)}: {escape(link)}", highlight=False, soft_wrap=True)
        elif on_page:
            err.print(f"Human seats {', '.join(on_page)}: answer through the files in {run_dir / 'humans'} (--no-seat-pages)",
                      highlight=False, soft_wrap=True)
        yield
    finally:
        if console_part is not None:
            console_part.stop()
        if server is not None:
            server.stop()


def _parse_sets(items: list[str] | None) -> dict[str, Any]:
    """--set KEY=VALUE pairs as {dotted path: value} (the benchmarks' --set); the value is read as YAML."""
    from agentsim.spec.overrides import parse_set

    try:
        return {o.path: o.value for o in map(parse_set, items or [])}
    except SpecError as e:
        _fail(e.render())
        raise  # unreachable: _fail exits


@contextlib.contextmanager
def _run_directory(run_dir: Path) -> Iterator[None]:
    """Hold the run directory's lock (logs/writer.py lock_directory) for all that writes into it: the seat pages'
    links, third_party.log, the log itself (the runtime's writer shares this process's lock). A directory another
    process is writing is refused before anything is added to it."""
    from agentsim.logs.writer import DirectoryInUse, lock_directory

    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = lock_directory(run_dir)
    except DirectoryInUse as e:
        _fail(f"{run_dir}: {e.strerror}")
    try:
        yield
    except BaseException:
        # A run refused before it began (a replay source that cannot match, a backend that cannot start) leaves no
        # directory behind, unless a third-party library wrote something worth reading about why.
        if created and not (run_dir / "run.json").exists() and _nothing_but_start_lines(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        lock.close()


def _nothing_but_start_lines(run_dir: Path) -> bool:
    from agentsim.runtime.terminal import THIRD_PARTY_LOG

    entries = list(run_dir.iterdir())
    if any(p.name != THIRD_PARTY_LOG for p in entries):
        return False
    return all(line.startswith("--- agentsim") or not line.strip()
               for p in entries for line in p.read_text(errors="replace").splitlines())


def _execute(sc, run_dir: Path, replay_from: Path | None, quiet: bool, resume: bool, extra_meta: dict | None = None,
             bar: bool = True, verbose: bool = False) -> None:
    """Run (or resume) the scenario in `run_dir` (agentsim/runtime/entry.py: execute), print the summary; a
    RunError is the message and exit code, an interrupted run exits 130, a run without a valid answer 4. `bar`:
    show the progress bar (not while a person answers in the terminal: it would draw over the questions).
    Third-party output goes to <run_dir>/third_party.log meanwhile (agentsim/runtime/terminal.py), and also to
    the terminal with `verbose`."""
    from agentsim.runtime.entry import RunError, execute
    from agentsim.runtime.progress import RunProgress
    from agentsim.runtime.summary import print_summary
    from agentsim.runtime.terminal import third_party_output

    log = (lambda m: None) if quiet else (lambda m: err.print(m, highlight=False))
    say = lambda m: err.print(escape(m), highlight=False, soft_wrap=True)  # noqa: E731
    progress = RunProgress(sc.spec.steps, console=err, enabled=not quiet and bar, redirect_stderr=False)
    try:
        with third_party_output(run_dir, verbose, consoles=(err,)):
            result = execute(sc, run_dir, replay_from, resume=resume, extra_meta=extra_meta, progress=progress, log=log, say=say)
    except RunError as e:
        _fail(str(e), code=e.exit_code)
    if not quiet:
        print_summary(console, sc, result)
    else:
        console.print(str(result.run_dir))
    if result.status == "interrupted":
        err.print(
            f"[yellow]Interrupted[/yellow] after {result.steps_completed} complete steps; the log in {result.run_dir} "
            f"holds every completed step. Resume with: agentsim resume {result.run_dir}",
            soft_wrap=True,
        )
        raise typer.Exit(130)
    if result.status == "no_valid_answers":
        err.print(f"[red]No valid answer[/red]: every agent answer of this run was invalid (see llm_calls.error in "
                  f"{result.run_dir})", soft_wrap=True)
        raise typer.Exit(4)


_JSON_KIND = {dict: "an object", list: "a list", str: "a string", int: "an integer", type(None): "null"}


def _read_run_meta(run_dir: Path) -> dict[str, Any]:
    """run.json of a run to resume, checked for what `resume` reads; exits 2 naming the file and what is wrong."""
    meta_path = run_dir / "run.json"
    if not run_dir.is_dir():
        _fail(f"{run_dir}: not a run directory ({'not found' if not run_dir.exists() else 'a file'})")
    if not meta_path.is_file():
        _fail(f"{run_dir}: not a run directory (no run.json)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        _fail(f"{meta_path}: not valid JSON ({e}); the run cannot be resumed from it")
    except OSError as e:
        _fail(f"{meta_path}: cannot be read ({e.strerror or e})")
    if not isinstance(meta, dict):
        _fail(f"{meta_path}: expected a JSON object with the run's spec, found {type(meta).__name__}; was it written by `agentsim run`?")
    checks = {"spec": (dict,), "status": (str,), "source": (str, type(None)), "replay_from": (str, type(None)), "steps_completed": (int,)}
    if "spec" not in meta:
        _fail(f"{meta_path}: lacks 'spec' (the scenario of the run); was it written by `agentsim run`?")
    for key, types in checks.items():
        if key in meta and (not isinstance(meta[key], types) or isinstance(meta[key], bool)):
            _fail(f"{meta_path}: '{key}' should be {' or '.join(_JSON_KIND[t] for t in types)}, found {json.dumps(meta[key])[:80]}")
    return meta


def _check_checkpoint(run_dir: Path) -> None:
    """A checkpoint that is there must be a whole one (agentsim/runtime/local.py: LocalRuntime._checkpoint writes
    these keys); exits 2 naming the file and what to do."""
    from agentsim.runtime.entry import CHECKPOINT_ADVICE
    from agentsim.runtime.local import CHECKPOINT

    ck = run_dir / CHECKPOINT
    if not ck.exists():
        return  # killed before the first checkpoint: the run starts again from step 0
    advice = CHECKPOINT_ADVICE.format(ck=ck, run_dir=run_dir)
    try:
        data = json.loads(ck.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        _fail(f"{ck}: the checkpoint is damaged (not valid JSON: {e}). {advice}")
    except OSError as e:
        _fail(f"{ck}: cannot be read ({e.strerror or e}). {advice}")
    shape = {"next_step": int, "rng": dict, "next_event_id": int, "parts": dict, "totals": dict, "tokens_by_model": dict, "step_wall": list}
    if not isinstance(data, dict):
        _fail(f"{ck}: the checkpoint is damaged (JSON {_JSON_KIND.get(type(data), type(data).__name__)}, not an object). {advice}")
    for key, tp in shape.items():
        if key not in data:
            _fail(f"{ck}: the checkpoint is damaged (no '{key}'). {advice}")
        if not isinstance(data[key], tp) or isinstance(data[key], bool):
            _fail(f"{ck}: the checkpoint is damaged ('{key}' is {json.dumps(data[key])[:60]}, not {_JSON_KIND[tp]}). {advice}")
    if "world" not in data:
        _fail(f"{ck}: the checkpoint is damaged (no 'world'). {advice}")
    arrays = data.get("world_arrays")
    if arrays is not None and (not isinstance(arrays, str) or not (run_dir / arrays).is_file()):
        _fail(f"{ck}: the checkpoint names world arrays {arrays!r} that are not in {run_dir}. {advice}")


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="The run directory of an interrupted or killed run.")],
    quiet: Annotated[bool, typer.Option(help="No progress bar or summary tables.")] = False,
    human: Annotated[list[str] | None, typer.Option("--human", help="Answer this human seat (agent id or human model alias) in the terminal; repeatable.")] = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 0,
    seat_pages: PagesOpt = True,
    verbose: VerboseOpt = False,
) -> None:
    """Continue a killed or interrupted run from its last checkpoint; the log ends as if it had never stopped."""
    from agentsim.spec.loader import build_world, check_log_dir, parse_scenario

    meta = _read_run_meta(run_dir)
    meta_path = run_dir / "run.json"
    if meta.get("status") == "completed":
        _fail(f"{run_dir} already completed all {meta.get('steps_completed')} steps; nothing to resume")
    _check_checkpoint(run_dir)
    source = meta.get("source")
    try:
        # The spec in run.json has its overrides applied and its paths made absolute; the same build as `run`.
        sc = parse_scenario(meta["spec"], f"{meta_path} (spec)", base_dir=Path(source).parent if source else None)
        check_log_dir(sc, run_dir)
        sc = build_world(sc)
    except SpecError as e:
        _fail(e.render())
    replay = meta.get("replay_from")
    from agentsim.runtime.entry import human_seats, seats_named

    # a resumed run keeps its seats: --human only says which of them this terminal answers
    console_seats, unmatched = seats_named(sc, human or [])
    for name in unmatched:
        _fail(f"--human {name}: not a human seat of this run (its human seats: {', '.join(human_seats(sc)) or 'none'})")
    with _run_directory(run_dir.absolute()), _human_seats(sc, run_dir.absolute(), console_seats, host, port, seat_pages):
        _execute(sc, run_dir.absolute(), Path(replay) if replay else None, quiet, resume=True, bar=not console_seats,
                 verbose=verbose)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Scenario YAML files.")],
    backend: BackendOpt = None,
    seed: SeedOpt = None,
    steps: StepsOpt = None,
    out: OutOpt = None,
    run_dir: Annotated[Path | None, typer.Option(help="The run directory `run --run-dir` would create: checked too.")] = None,
    runtime: RuntimeOpt = None,
    address: AddressOpt = None,
    shards: ShardsOpt = None,
    set_: SetOpt = None,
    human: HumanOpt = None,
    replay_from: Annotated[Path | None, typer.Option(help="The recorded run `run --replay-from` would replay: checked too "
                                                          "(its family, seed and recorded answers).")] = None,
) -> None:
    """Check scenario files as `run` would, up to its first step (overrides, fields, data files, the world, the
    log directory, --human seats, the --replay-from source) without loading models, and experiment files as
    `sweep` would (every cell's scenario); exit 2 and name every problem when one is wrong."""
    from agentsim.experiments import is_experiment_file, plan_experiment
    from agentsim.spec.overrides import parse_set

    bad = 0
    for f in files:
        if is_experiment_file(f):
            try:
                plan = plan_experiment(f, [parse_set(i) for i in set_ or []], backend=backend.value if backend else None)
            except SpecError as e:
                err.print(f"[red]invalid[/red] {escape(e.render())}", highlight=False, soft_wrap=True)
                bad += 1
            else:
                bases = sorted({c.base for c in plan.cells})
                console.print(f"[green]ok[/green] {escape(str(f))}: experiment '{plan.spec.name}', {len(plan.cells)} runs "
                              f"({escape(', '.join(bases))}), at most {plan.spec.max_concurrent_runs} at once", highlight=False, soft_wrap=True)
            continue
        from agentsim.llm.types import ReplaySourceError
        from agentsim.runtime.entry import RunError, prepare_with_humans, target_dir

        try:
            if backend is BackendChoice.replay and replay_from is None:
                raise RunError("--backend replay needs --replay-from RUN_DIR (a run whose answers to replay)", 2)
            sc, _ = prepare_with_humans(f, human or [], set_, run_dir, backend=backend.value if backend else None, seed=seed,
                                        steps=steps, out=out, runtime=runtime, address=address, shards=shards)
            if run_dir is not None:
                target_dir(sc, run_dir)  # `run` refuses a --run-dir that is not empty
            if replay_from is not None and any(m.backend == "replay" for m in sc.spec.models.values()):
                from agentsim.llm.replay import ReplayBackend
                from agentsim.spec.shipped import resolve_recording

                # what `run` builds before its first step: refuses another family or seed, more steps than the source
                # holds, or a log without answers
                differ = ReplayBackend(resolve_recording(replay_from), sc.spec.model_dump(mode="json")).differences
                if differ:
                    sc = dataclasses.replace(sc, notes=(*sc.notes, f"the recorded run differs in {', '.join(differ[:8])}: "
                                                        "where that changes a request, the replay stops at it (no recorded answer)"))
        except SpecError as e:
            err.print(f"[red]invalid[/red] {escape(e.render())}", highlight=False, soft_wrap=True)
            bad += 1
        except (RunError, ReplaySourceError) as e:
            err.print(f"[red]invalid[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
            bad += 1
        else:
            console.print(f"[green]ok[/green] {escape(str(f))}: {sc.spec.kind} '{sc.spec.name}', {sc.spec.steps} steps, "
                          f"models {escape(str(sorted(sc.spec.models)))}, "
                          + (f"log in {escape(str(run_dir.absolute()))}" if run_dir is not None
                             else f"logs under {escape(str(sc.spec.logging.dir.absolute()))}"),
                          highlight=False, soft_wrap=True)
            for n in sc.notes:
                console.print(f"  [yellow]note:[/yellow] {escape(n)}", highlight=False, soft_wrap=True)
    if bad:
        raise typer.Exit(2)


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
    experiment: Annotated[bool, typer.Option(help="The schema of experiment files (kind: experiment) instead.")] = False,
) -> None:
    """Print the JSON schema of scenario files, or of experiment files (for editor autocompletion)."""
    from agentsim.spec.loader import scenario_json_schema

    if experiment:
        from agentsim.experiments.spec import ExperimentSpec

        doc = ExperimentSpec.model_json_schema() | {"title": "agentsim experiment"}
    else:
        doc = scenario_json_schema()
    text = json.dumps(doc, indent=2)
    if out:
        out.write_text(text + "\n")
        console.print(f"wrote {out}")
    else:
        sys.stdout.write(text + "\n")


ROWS_SHOWN = 40


def _check_out_dir(out: Path) -> None:
    """--out must be a directory we can create or write into; checked before any analysis runs (the same probe
    as the run log's directory: agentsim/spec/loader.py directory_problem)."""
    from agentsim.spec.loader import directory_problem

    if out.exists() and not out.is_dir():
        _fail(f"--out {out}: exists and is not a directory; give a directory (created if missing)")
    problem = directory_problem(out, "the tables and figures")
    if problem:
        _fail(f"--out {out}: {problem}")


@app.command()
def analyze(
    run_dir: Annotated[Path, typer.Argument(help="A run directory, or a directory of runs (runs of other families are skipped).")],
    analysis: Annotated[str, typer.Argument(help="An analysis (escalation, social, tournament, drift, ...) or a family's name for its "
                                                 "default analysis (wargame = escalation); `agentsim families` lists them.")],
    out: Annotated[Path | None, typer.Option(help="Write the tables as CSV (notes in <analysis>_notes.csv) and plots as PNG into this directory.")] = None,
    reference: Annotated[Path | None, typer.Option(help="social: a real cascade to score the run(s) against (CSV/Parquet: minute or step, "
                                                        "scale, depth, max_breadth; or OASIS's real_world_prop_data folder with --param topic=NAME).")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="An analysis parameter KEY=VALUE (repeatable; values are YAML), "
                                                                    "e.g. --param scale=events --param normalise=range (social).")] = None,
    rows: Annotated[int, typer.Option(min=1, help="Rows shown per table in the terminal (a cut table says how many more; "
                                                  "--out always writes every row).")] = ROWS_SHOWN,
) -> None:
    """Run an analysis on a run's log (or on every run of its family under a directory) and print or save its
    tables; notes under a table say why it is empty or what is undefined."""
    from agentsim.analysis.tables import TableError, notes_table
    from agentsim.core.family import resolve
    from agentsim.core.registry import UnknownAnalysisError, find_analysis
    from agentsim.logs.reader import RunLog, find_runs

    if out is not None:
        _check_out_dir(out)
    try:
        by_family = dict(find_analysis(analysis))
    except UnknownAnalysisError as e:
        _fail(str(e))
    from agentsim.experiments.manifest import is_experiment_dir

    if is_experiment_dir(run_dir):
        _analyze_experiment(run_dir, by_family, out, reference, param or [], rows)
        return
    try:
        runs = find_runs(run_dir)
        logs = [RunLog(r) for r in runs]
        kinds = [log.spec.get("kind") for log in logs]
    except LogError as e:
        _fail(str(e))
    name = next(iter(by_family.values())).name
    wanted = " or ".join(sorted(by_family))
    matched = [(log, k) for log, k in zip(logs, kinds, strict=True) if k is None or k in by_family]
    skipped = [(log, k) for log, k in zip(logs, kinds, strict=True) if not (k is None or k in by_family)]
    if runs == [run_dir] and skipped:
        _fail(f"{run_dir}: a {skipped[0][1]} run; the {name} analysis reads {wanted} runs")
    if not matched:
        found = ", ".join(f"{kinds.count(k)} {k}" for k in sorted(set(map(str, kinds))))
        _fail(f"{run_dir}: no {wanted} runs here (found {found}); the {name} analysis reads {wanted} runs")
    run_notes = [f"skipped {log.run_dir.name}: a {k} run (the {name} analysis reads {wanted} runs)" for log, k in skipped]
    for n in run_notes:
        err.print(f"[yellow]note:[/yellow] {n}", highlight=False, soft_wrap=True)
    present = sorted({k for _, k in matched if k is not None})
    if len(present) > 1:
        _fail(f"{run_dir}: {analysis!r} means an analysis of each of {', '.join(present)} and runs of all are here; "
              f"name one family ({', '.join(present)}) or a folder of one family's runs")
    chosen = by_family[present[0]] if present else next(iter(by_family.values()))
    logs = [log for log, _ in matched]
    if len(logs) > 1 and chosen.compare is None:
        _fail(f"{run_dir}: the {chosen.name} analysis reads one run; name a run directory ({len(logs)} runs here)")
    extra = _analysis_params(chosen, reference, param or [])
    from agentsim.core.datafile import DataFileError

    try:
        fn = resolve(chosen.tables) if len(logs) == 1 else resolve(chosen.compare)
        target = logs[0] if len(logs) == 1 else logs
        tables = fn(target, params=extra) if chosen.params is not None else fn(target)
    except (LogError, TableError, DataFileError) as e:
        _fail(str(e))
    except KeyError as e:
        _fail(f"{run_dir}: the log lacks what the {chosen.name} analysis needs ({e})")
    _print_tables(chosen.name, tables, rows)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        for title, df in tables.items():
            df.to_csv(out / f"{chosen.name}_{title}.csv", index=False)
        if chosen.plots is not None:  # before the notes: a figure not drawn leaves a note saying why
            _plot(lambda: resolve(chosen.plots)(tables, logs, out), tables)
        notes = notes_table(tables)
        notes = _with_run_notes(notes, run_notes)
        notes.to_csv(out / f"{chosen.name}_notes.csv", index=False)  # always, so a report has the same files
        console.print(f"wrote {out}")


def _plot(plots: Any, tables: dict[str, Any]) -> None:
    """Draw an analysis's figures; say on stderr which were not drawn and why (the notes they left on tables)."""
    from agentsim.analysis.tables import notes_of

    before = {title: set(notes_of(df)) for title, df in tables.items()}
    plots()
    for title, df in tables.items():
        for n in notes_of(df):
            if n not in before.get(title, set()) and " not drawn: " in n:
                err.print(f"[yellow]note:[/yellow] {escape(n)}", highlight=False, soft_wrap=True)


def _print_tables(prefix: str, tables: dict[str, Any], rows: int = ROWS_SHOWN) -> None:
    """Each table with its notes; at most `rows` rows each ("N more rows" under a cut one: --out writes them all).
    Tables that do not apply to the run (analysis/tables.py: not_applicable) are not printed; one line names them
    and why (their notes are in --out's notes CSV)."""
    from agentsim.analysis.tables import notes_of, why_not_applicable
    from agentsim.runtime.summary import df_table

    hidden = []
    for title, df in tables.items():
        if why := why_not_applicable(df):
            hidden.append(f"{title} ({why})")
            continue
        # The title on its own line: rich wraps a table's title to the table's width.
        console.print(f"[italic]{escape(prefix)}: {escape(title)}[/italic]", highlight=False, soft_wrap=True)
        console.print(df_table(df, "", max_rows=rows, more_hint="; --out writes them all"))
        for n in notes_of(df):
            if n != why_not_applicable(df):
                console.print(f"  [yellow]note:[/yellow] {escape(n)}", highlight=False, soft_wrap=True)
    if hidden:
        console.print(f"[dim]hidden (do not apply to this run): {escape('; '.join(hidden))}[/dim]", highlight=False, soft_wrap=True)


def analysis_name(by_family: dict[str, Any]) -> str:
    return next(iter(by_family.values())).name


def _analyze_experiment(exp_dir: Path, by_family: dict[str, Any], out: Path | None, reference: Path | None,
                        param: list[str], rows: int = ROWS_SHOWN) -> None:
    """`agentsim analyze EXPERIMENT_DIR ANALYSIS`: the experiment's cells compared (agentsim.experiments.compare);
    `--reference` / `--param` as for a run (social: OASIS's alignment per condition)."""
    from agentsim.analysis.tables import TableError, notes_table
    from agentsim.core.datafile import DataFileError
    from agentsim.experiments import load_experiment
    from agentsim.experiments.compare import compare_experiment, plot_experiment
    from agentsim.experiments.manifest import ManifestError

    try:
        exp = load_experiment(exp_dir)
    except ManifestError as e:
        _fail(str(e))
    kinds = {c.get("kind") for c in exp.manifest["cells"]} - {None}
    matched = [a for fam, a in by_family.items() if fam in kinds]
    if kinds and not matched:
        wanted = " or ".join(sorted(by_family))
        _fail(f"{exp_dir}: an experiment of {', '.join(sorted(kinds))} runs; the {analysis_name(by_family)} analysis reads {wanted} runs")
    chosen = matched[0] if matched else next(iter(by_family.values()))
    extra = _analysis_params(chosen, reference, param)
    try:
        tables = compare_experiment(exp, chosen.name, extra)
    except (LogError, TableError, DataFileError, ValueError) as e:
        _fail(str(e) if str(e).startswith(str(exp_dir)) else f"{exp_dir}: {e}")
    _print_tables(f"{chosen.name} across {exp.name}", tables, rows)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        for title, df in tables.items():
            df.to_csv(out / f"{chosen.name}_{title}.csv", index=False)
        _plot(lambda: plot_experiment(chosen.name, tables, exp, out), tables)
        notes_table(tables).to_csv(out / f"{chosen.name}_notes.csv", index=False)
        console.print(f"wrote {out}")
def _analysis_params(chosen: Any, reference: Path | None, items: list[str]) -> dict[str, Any]:
    """`--reference` and `--param KEY=VALUE` as the analysis's parameters, checked against its model (exit 2
    naming the parameter); an analysis without parameters refuses them."""
    from pydantic import ValidationError

    from agentsim.core.family import resolve
    from agentsim.spec.errors import explain
    from agentsim.spec.yamlio import parse_yaml

    given: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            _fail(f"--param {item!r}: expected KEY=VALUE, e.g. --param scale=events")
        try:
            given[key.strip()] = parse_yaml(text, f"--param {key}").data
        except SpecError as e:
            _fail(f"--param {item}: the value is not valid YAML ({e.problems[0].message})")
    if reference is not None:
        if not reference.exists():
            _fail(f"--reference {reference}: no such file or folder")
        given["reference"] = str(reference.resolve())
    if not given:
        return {}
    if chosen.params is None:
        _fail(f"the {chosen.name} analysis takes no parameters (--reference, --param)")
    model = resolve(chosen.params)
    try:
        model.model_validate(given)
    except ValidationError as e:
        _fail("; ".join(f"--param {'.'.join(map(str, err['loc']))}: {explain(err, model)}" for err in e.errors(include_url=False))
              + f" (parameters of the {chosen.name} analysis: {', '.join(model.model_fields)})")
    return given


def _with_run_notes(notes: Any, run_notes: list[str]) -> Any:
    """The notes table plus the notes about skipped runs (table "runs")."""
    import pandas as pd

    if not run_notes:
        return notes
    return pd.concat([pd.DataFrame({"table": "runs", "note": run_notes}), notes], ignore_index=True)


@models_app.command("prepare")
def models_prepare(force: Annotated[bool, typer.Option(help="Convert again even if prepared.")] = False) -> None:
    """Convert the embedded SmolLM2 GGUF to a safetensors directory (once; `run` does it when needed)."""
    from agentsim.llm import embedded

    try:
        path = embedded.prepare(force=force, log=lambda m: console.print(m, highlight=False))
    except BackendError as e:
        _fail(str(e), code=3)
    console.print(f"ready: {path}")


@models_app.command("list")
def models_list() -> None:
    """Show the embedded model and where it is cached."""
    from agentsim.llm import embedded
    from agentsim.spec.models import EMBEDDED_MODEL

    state = "prepared" if embedded.is_prepared() else "not prepared (run `agentsim models prepare`)"
    console.print(f"{EMBEDDED_MODEL}: {state} at {embedded.embedded_dir()}")


@app.command()
def families() -> None:
    """List the installed scenario families."""
    from agentsim.core.registry import families as names
    from agentsim.core.registry import get_family

    for n in names():
        fam = get_family(n)
        analyses = f" (analyze: {', '.join(a.name for a in fam.analyses)})" if fam.analyses else ""
        console.print(f"[bold]{n}[/bold]: {fam.description}{analyses}")


bench_app = typer.Typer(help="Benchmarks that print ratios measured side by side in one run.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("vllm")
def bench_vllm(
    model: Annotated[str, typer.Option(help="'tiny' (random-weight Llama built offline), 'embedded' (SmolLM2), or a model path.")] = "tiny",
    scenario: Annotated[Path, typer.Option(help="Scenario to simulate (a file, or a shipped scenario such as wargame/neutral.yaml).")] = Path("wargame/neutral.yaml"),
    steps: Annotated[int, typer.Option(min=1, help="Simulated steps.")] = 3,
    max_tokens: Annotated[int, typer.Option(min=1, help="Completion budget per request.")] = 160,
    repeats: Annotated[int, typer.Option(min=1, help="Measured (simulated, raw) pairs after a warm-up.")] = 3,
    runtime: Annotated[str, typer.Option(help="local, or ray (shard actors + an engine actor).")] = "local",
    shards: Annotated[int, typer.Option(min=1, help="ray: shard actors.")] = 4,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override scenario fields: --set world.users.count=10000 (repeatable).")] = None,
) -> None:
    """Simulated tokens/s through the full agentsim path / raw LLM.generate tokens/s on the same requests."""

    from agentsim.bench.vllm_overhead import bench_model, run_overhead
    from agentsim.runtime.summary import df_table
    from agentsim.spec.loader import load_scenario

    try:  # the scenario (a shipped one by name, e.g. wargame/neutral.yaml) must be valid before any engine starts
        load_scenario(scenario)
    except SpecError as e:
        _fail(e.render())

    path, max_len = bench_model(model)
    if runtime == "ray":
        from agentsim.bench.vllm_overhead import run_overhead_ray

        results = [run_overhead_ray(scenario, path, steps, max_len, max_tokens, shards, log=lambda m: err.print(m, highlight=False),
                                    overrides=_parse_sets(set_)) for _ in range(repeats)]
    else:
        results = run_overhead(scenario, path, steps, max_len, max_tokens, repeats, log=lambda m: err.print(m, highlight=False),
                               overrides=_parse_sets(set_))
    import statistics

    import pandas as pd

    df = pd.DataFrame([
        {"repeat": i + 1, "requests": r.requests, "sim tokens": r.sim_tokens, "sim s": r.sim_s, "sim tok/s": r.sim_tps,
         "raw tokens": r.raw_tokens, "raw s": r.raw_s, "raw tok/s": r.raw_tps, "ratio": r.ratio}
        for i, r in enumerate(results)
    ])
    console.print(df_table(df, f"vLLM overhead: {model}, {scenario.name}, {steps} steps per repeat"))
    ratio = statistics.median(r.ratio for r in results)
    console.print(f"[bold]median ratio simulated/raw tokens/s = {ratio:.3f}[/bold] (target >= 0.8)")


@bench_app.command("csd")
def bench_csd(
    models: Annotated[int, typer.Option(min=2)] = 20,
    benchmarks: Annotated[int, typer.Option(min=1)] = 10,
    tournaments: Annotated[int, typer.Option(min=1)] = 100_000,
    loop_tournaments: Annotated[int, typer.Option(min=1, help="Tournaments for the per-tournament loop baseline.")] = 2_000,
    eliminations: Annotated[int, typer.Option(min=0, help="T_k, every round.")] = 1,
) -> None:
    """Vectorized CSD Monte Carlo vs a per-tournament Python loop (same table, same process)."""
    import pandas as pd

    from agentsim.bench.csd_speed import run_speed
    from agentsim.runtime.summary import df_table

    r = run_speed(models, benchmarks, tournaments, loop_tournaments, eliminations)
    df = pd.DataFrame([
        {"path": "vectorized (numpy)", "tournaments": tournaments, "seconds": r["vectorized_s"], "us/tournament": r["vectorized_us_per_tournament"]},
        {"path": "per-tournament loop", "tournaments": loop_tournaments, "seconds": r["loop_s"], "us/tournament": r["loop_us_per_tournament"]},
    ])
    console.print(df_table(df, f"CSD: {models} models x {benchmarks} benchmarks, T_k = {eliminations}"))
    console.print(f"[bold]speed-up vectorized/loop = {r['speedup']:.1f}x[/bold]; {tournaments:,} tournaments in {r['vectorized_s']:.2f} s")


@bench_app.command("runtime")
def bench_runtime(
    agents: Annotated[int, typer.Option(min=1)] = 100_000,
    steps: Annotated[int, typer.Option(min=1)] = 3,
    shards: Annotated[int, typer.Option(min=1)] = 4,
    address: Annotated[str | None, typer.Option(help="Ray cluster to join (default: start a local one).")] = None,
) -> None:
    """Agent-steps/s of the Ray runtime vs the local runtime (every agent acts every step; scripted backend)."""
    import pandas as pd

    from agentsim.bench.runtime_overhead import run_runtime_overhead
    from agentsim.runtime.summary import df_table

    r = run_runtime_overhead(agents, steps, shards, address, log=lambda m: err.print(m, highlight=False))
    df = pd.DataFrame([
        {"runtime": "local", "seconds": r["local_s"], "agent-steps/s": r["local_agent_steps_per_s"]},
        {"runtime": f"ray ({shards} shards)", "seconds": r["ray_s"], "agent-steps/s": r["ray_agent_steps_per_s"]},
    ])
    console.print(df_table(df, f"Runtime overhead: {agents:,} agents x {steps} steps"))
    console.print(f"[bold]ratio ray/local agent-steps/s = {r['ratio']:.2f}[/bold] (target >= 0.7)")
    console.print(f"peak memory per agent: local {r['local_peak_bytes_per_agent']:.0f} B; Ray shards "
                  f"{r['ray_shard_bytes_per_agent']:.0f} B (all shards' peak RSS growth / agents; each shard process "
                  f"starts at {r['ray_shard_base_bytes'] / 2**20:.0f} MiB), Ray driver +{r['ray_driver_extra_bytes_per_agent']:.0f} B "
                  "over the local run's peak")


@bench_app.command("social")
def bench_social(
    users: Annotated[int, typer.Option(min=10)] = 1_000_000,
    steps: Annotated[int, typer.Option(min=1)] = 3,
    active: Annotated[float, typer.Option(min=0.0001, max=1.0, help="Share of users acting per step.")] = 0.01,
    events: Annotated[int, typer.Option(min=0, help="Events in the synthetic log for the cascade analysis (0: skip).")] = 10_000_000,
    roles: Annotated[str, typer.Option(help="User counts for the roles benchmark, comma-separated ('' skips it).")] = "10000,100000,1000000",
    figure: Annotated[Path, typer.Option(help="Where the roles benchmark draws its figure (PNG).")] = Path("bench_social_roles.png"),
    scale: Annotated[bool, typer.Option(help="Run the platform step-time benchmark.")] = True,
) -> None:
    """Social platform at scale: step time and base memory per user at 1M users; cascade analysis of 10M events;
    the roles analysis at 10k..1M users with python-igraph and networkx side by side (and a figure)."""
    import pandas as pd

    from agentsim.bench.social_scale import run_cascades, run_roles
    from agentsim.runtime.summary import df_table

    say = lambda m: err.print(m, highlight=False)  # noqa: E731
    try:
        sizes = tuple(int(x) for x in roles.split(",") if x.strip())
    except ValueError:
        _fail(f"--roles {roles!r}: expected user counts separated by commas, e.g. 10000,100000")
    if scale:
        _bench_social_scale(users, steps, active, say)
    if events:
        c = run_cascades(events, max(1, events // 10), log=say)
        console.print(df_table(pd.DataFrame([c]), "Cascade analysis (read + rebuild trees + metrics)"))
        console.print(f"[bold]{events:,} events analysed in {c['analysis_s']:.1f} s[/bold] (target < 60 s)")
    if sizes:
        rows = run_roles(sizes, figure=figure, log=say)
        console.print(df_table(pd.DataFrame(rows), "Roles analysis (network features + k-means, k = 2..6)"))
        console.print(f"wrote {figure}")


def _bench_social_scale(users: int, steps: int, active: float, say: Any) -> None:
    import pandas as pd

    from agentsim.bench.social_scale import run_scale
    from agentsim.runtime.summary import df_table

    r = run_scale(users, steps, active, log=say)
    console.print(df_table(pd.DataFrame([r]), f"Social platform: {users:,} users, {active:.1%} active per step, scripted, hot + follow feeds"))
    console.print(f"[bold]step p50 {r['step_p50_s']:.2f} s[/bold] for {r['active_per_step']:,.0f} acting users; base state "
                  f"[bold]{r['base_bytes_per_user']:.0f} bytes/user[/bold] (numpy buffers {r['array_bytes_per_user']:.0f}; target <= 2048)")


@bench_app.command("transport")
def bench_transport(
    users: Annotated[int, typer.Option(min=10)] = 100_000,
    active: Annotated[float, typer.Option(min=0.0001, max=1.0)] = 0.1,
) -> None:
    """How one phase's observations travel to shard actors: through Ray's object store, as a list or as a block."""
    import pandas as pd

    from agentsim.bench.transport import run_transport
    from agentsim.runtime.summary import df_table

    rows = run_transport(users, active)
    console.print(df_table(pd.DataFrame(rows), f"Observations of one social phase ({rows[0]['observations']:,} acting users)"))


data_app = typer.Typer(help="The studies' data: fetched from pinned sources into the user cache, found by one resolver.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="Dataset name (`agentsim data list`).")],
    url: Annotated[str | None, typer.Option(help="Archive address instead of the pinned GitHub one (or $AGENTSIM_<NAME>_URL).")] = None,
    dest: Annotated[Path | None, typer.Option(help="Install into DEST/<name> instead of the user cache (e.g. your $AGENTSIM_DATA).")] = None,
    force: Annotated[bool, typer.Option(help="Download again even if a verified copy is in place.")] = False,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to connect and between two reads.")] = 30.0,
    commit: Annotated[str | None, typer.Option(help="With --unverified: the commit to fetch of a dataset not pinned yet.")] = None,
    unverified: Annotated[bool, typer.Option(help="Fetch a dataset whose checksums are not pinned yet (its manifest is pending), at --commit, unchecked.")] = False,
) -> None:
    """Download a dataset at its pinned commit, check every file's SHA-256 and install it (all or nothing)."""
    from agentsim import data

    try:
        r = data.fetch(name, url=url, dest=dest, force=force, timeout=timeout, console=err, commit=commit, unverified=unverified)
    except data.DataError as e:
        _fail(str(e), code=e.exit_code)
    if not r.verified:
        console.print(f"{name}: {r.files} files of {commit} kept, NOT verified (no pinned checksums yet) -> {r.path}")
        return
    if not r.fetched:
        console.print(f"{name}: already in place and verified ({r.files} files) at {r.path}; --force downloads it again")
        return
    renamed = f"; {len(r.renamed)} found under another name" if r.renamed else ""
    console.print(f"{name}: {r.files} files verified ({r.bytes / 2**20:.1f} MiB in {r.seconds:.1f} s{renamed}) -> {r.path}")


@data_app.command("list")
def data_list() -> None:
    """Every dataset, its pinned source and where it is found (or that it is missing)."""
    from agentsim import data

    for ds in data.DATASETS.values():
        try:
            place = data.locate(ds.name)
            state = f"found ({place.source}): {place.path}"
        except data.DataError as e:
            state = str(e)
        pinned = f"{ds.repository}@{ds.pinned}" if not ds.pending else f"{ds.repository} (not pinned yet: {ds.pending})"
        console.print(f"[bold]{ds.name}[/bold]: {ds.description}\n  source: {pinned}\n  {state}",
                      highlight=False, soft_wrap=True)


@data_app.command("path")
def data_path(name: Annotated[str, typer.Argument(help="Dataset name (`agentsim data list`).")]) -> None:
    """Print the folder that holds a dataset (exit 1 and how to fetch it when it is missing)."""
    from agentsim import data

    try:
        place = data.locate(name)
    except data.DataError as e:
        _fail(str(e), code=e.exit_code)
    print(place.path)


def main() -> None:
    """The `agentsim` command: the typer app, with the last guard against a traceback for what is the machine's or
    the user's (a path the system refuses: too long, a file where a folder should be, no permission, no space; memory
    a scenario asks for that is not there). AGENTSIM_DEBUG=1 shows the traceback instead."""
    import os

    try:
        app(prog_name="agentsim")
    except (OSError, MemoryError) as e:
        if os.environ.get("AGENTSIM_DEBUG") or (isinstance(e, OSError) and not e.filename):
            raise
        if isinstance(e, MemoryError):
            why = "out of memory (the scenario asks for more than this machine has: fewer agents, or a bigger machine)"
        else:
            why = f"{e.filename}: {e.strerror or e}"
        err.print(f"[red]error:[/red] {escape(why)}", highlight=False, soft_wrap=True)
        err.print("(AGENTSIM_DEBUG=1 shows where it happened)", highlight=False)
        raise SystemExit(2) from None


@app.command()
def sweep(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML file (kind: experiment).")],
    dir_: Annotated[Path | None, typer.Option("--dir", help="Experiment directory to create or resume (default: the newest unfinished one of the same plan under logging.dir, else a new one).")] = None,
    new: Annotated[bool, typer.Option(help="Start a new experiment directory even if an unfinished one of the same plan exists.")] = False,
    replay_from: Annotated[Path | None, typer.Option(help="Experiment directory whose recorded answers the replay backend uses (cell by cell).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Change every cell's scenario: --set steps=3 (repeatable; joins the experiment's `set`).")] = None,
    backend: Annotated[BackendChoice | None, typer.Option(help="Use this backend for every model alias of every cell.")] = None,
    repeats: Annotated[int | None, typer.Option(min=1, help="Override the experiment's repeats (seeds per cell).")] = None,
    max_concurrent_runs: Annotated[int | None, typer.Option(min=1, help="Override the experiment's max_concurrent_runs.")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
) -> None:
    """Run every cell of an experiment (concurrent runs sharing engines); the same command again resumes it."""
    from agentsim.experiments import plan_experiment, run_experiment
    from agentsim.experiments.manifest import ManifestError
    from agentsim.experiments.report import print_experiment
    from agentsim.spec.overrides import parse_set
    from agentsim.spec.shipped import resolve_scenario
    from agentsim.spec.yamlio import read_yaml

    try:
        kind = read_yaml(resolve_scenario(experiment), "experiment file").data.get("kind")
    except (SpecError, AttributeError):
        kind = None  # plan_experiment names what is wrong with the file
    if kind is not None and kind != "experiment":
        _fail(f"{experiment} is a {kind} scenario, not an experiment: run it with `agentsim run {experiment}`, or name it "
              "under `base:` of an experiment file (kind: experiment)")
    try:
        sets = [parse_set(item) for item in set_ or []]
        plan = plan_experiment(experiment, sets, backend=backend.value if backend else None, repeats=repeats,
                               max_concurrent_runs=max_concurrent_runs)
    except SpecError as e:
        _fail(e.render())
    try:
        result = run_experiment(plan, dir_, new=new, replay_from=replay_from, console=err, quiet=quiet)
    except ManifestError as e:
        _fail(str(e))
    except BackendError as e:
        _fail(str(e), code=3)
    print_experiment(console, result)
    if result.status == "interrupted":
        err.print(f"[yellow]Interrupted[/yellow]; run the same command again to resume {result.exp_dir}", soft_wrap=True)
        raise typer.Exit(130)
    if result.status == "failed":
        err.print(f"[red]{len(result.failed)} of {len(result.manifest['cells'])} runs failed[/red] (errors in "
                  f"{result.exp_dir / 'experiment.json'}); run the same command again to retry them", soft_wrap=True)
        raise typer.Exit(1)


@bench_app.command("sweep")
def bench_sweep(
    model: Annotated[str, typer.Option(help="'tiny' (random-weight Llama built offline), 'embedded' (SmolLM2), or a model path.")] = "tiny",
    runs: Annotated[int, typer.Option(min=2, help="K: runs (seeds of the neutral wargame).")] = 8,
    steps: Annotated[int, typer.Option(min=1, help="Steps per run.")] = 2,
    max_tokens: Annotated[int, typer.Option(min=1, help="Completion budget per request.")] = 64,
    repeats: Annotated[int, typer.Option(min=1, help="Measured (one after another, experiment) pairs.")] = 2,
    scripted_runs: Annotated[int, typer.Option(min=1, help="Short scripted runs for the experiment layer's own overhead.")] = 100,
) -> None:
    """K runs as one experiment (one engine, merged batches) vs the same K runs one after another via `agentsim run`."""
    import statistics

    import pandas as pd

    from agentsim.bench.sweep import bench
    from agentsim.runtime.summary import df_table

    r = bench(model, runs, steps, max_tokens, repeats, scripted_runs, log=lambda m: err.print(m, highlight=False))
    rows = []
    for i, (seq, exp) in enumerate(r["pairs"]):
        rows.append({"repeat": i + 1, "one-by-one s": seq.wall_s, "one-by-one tok/s": seq.tps, "one-by-one peak MiB": seq.peak_rss_mb,
                     "experiment s": exp.wall_s, "experiment tok/s": exp.tps, "experiment peak MiB": exp.peak_rss_mb,
                     "ratio": exp.tps / seq.tps})
    console.print(df_table(pd.DataFrame(rows), f"{runs} runs of the neutral wargame ({steps} steps, {model}): one after another vs one experiment"))
    ratio = statistics.median(x["ratio"] for x in rows)
    console.print(f"[bold]median ratio experiment/one-by-one tokens/s = {ratio:.2f}[/bold] (target >= 3 at K=8 on 2 CPU cores)")
    o = r["overhead"]
    console.print(f"experiment layer, {o['runs']} scripted runs in one process: one by one {o['one_by_one_s']:.2f} s, "
                  f"as an experiment {o['experiment_s']:.2f} s ({o['overhead']:+.1%})")


@app.command()
def branch(
    parent: Annotated[Path, typer.Argument(help="The run to branch from (it must have kept its checkpoints).")],
    at: Annotated[int, typer.Option("--at", min=1, help="How many of the parent's steps the branch keeps: steps 1..N are the parent's, the changes apply from step N+1.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="What changes from that step on: --set population.overrides.Red=big (repeatable).")] = None,
    backend: Annotated[BackendChoice | None, typer.Option(help="Use this backend for every model alias from the branch point on.")] = None,
    run_dir: Annotated[Path | None, typer.Option(help="Exact run directory to create (default: beside the parent, named after it).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar or summary tables.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Start a counterfactual run from a run's state at the start of a step, with some settings changed."""
    from agentsim.runtime.branch import BranchError, prepare_branch

    overrides = _parse_sets(set_)
    target = run_dir or _new_run_dir(parent.parent, f"{parent.name}-branch{at}", 0)
    if backend is BackendChoice.replay:
        _fail("a branch cannot replay: its steps after the branch point were never recorded")
    try:
        sc = prepare_branch(parent, at, overrides, target, backend=backend.value if backend else None)
    except BranchError as e:
        _fail(str(e))
    err.print(f"Branch of {parent} after its step {at} (changes from step {at + 1}): {target}", soft_wrap=True)
    with _run_directory(target):
        _execute(sc, target, None, quiet, resume=True, verbose=verbose)


class ExportTarget(StrEnum):
    mlflow = "mlflow"


@app.command()
def export(
    path: Annotated[Path, typer.Argument(help="A run directory, a directory of runs, or an experiment directory.")],
    to: Annotated[ExportTarget, typer.Option("--to", help="The tracker to export to.")] = ExportTarget.mlflow,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else MLflow's own: sqlite:///mlflow.db here).")] = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment name (default: the agentsim experiment's name, or 'agentsim').")] = None,
    artifacts: Annotated[bool, typer.Option(help="Upload each run directory as artifacts.")] = True,
    force: Annotated[bool, typer.Option(help="Export runs already exported to this MLflow experiment again.")] = False,
) -> None:
    """Export runs to an experiment tracker: params (the scenario as dotted paths), per-step metrics, the run
    directory as artifacts (agentsim/exporters/mlflow.py)."""
    from agentsim.experiments.manifest import ManifestError
    from agentsim.exporters.mlflow import ExportError
    from agentsim.exporters.mlflow import export as export_mlflow

    try:
        done = export_mlflow(path, tracking_uri=tracking_uri, experiment=experiment, artifacts=artifacts, force=force)
    except (ExportError, LogError, ManifestError) as e:
        _fail(str(e))
    for d in done:
        what = "already exported, skipped (--force exports it again)" if d.skipped else f"{d.metrics} metric values"
        console.print(f"{escape(str(d.run_dir))} -> MLflow run {d.mlflow_run_id}: {what}", highlight=False, soft_wrap=True)


@app.command()
def view(
    path: Annotated[Path, typer.Argument(help="A run directory (running or finished), an experiment directory, or a folder of runs.")],
    host: Annotated[str, typer.Option(help="Address to serve on (127.0.0.1: this machine only; 0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to serve on; 0 picks a free one (the URL printed has it).")] = 0,
) -> None:
    """Watch a run in the browser: status, per-step counts, a step scrubber, each agent's timeline and the family's
    view; follows a run still being written. Serves until Ctrl-C."""
    from agentsim.view.data import ViewError, open_target
    from agentsim.view.server import serve

    def ready(url: str) -> None:
        what = {"run": "run", "experiment": "experiment", "runs": "folder of runs"}[target.kind]
        console.print(f"agentsim view: {what} {escape(str(path))} at [cyan]{url}[/cyan] (Ctrl-C stops)", soft_wrap=True, highlight=False)
        sys.stdout.flush()

    try:
        target = open_target(path)
        serve(target, host, port, on_ready=ready)
    except (ViewError, LogError) as e:
        _fail(str(e))
    except OSError as e:  # the port is taken, or the address is not this machine's
        _fail(f"cannot serve on {host}:{port}: {e.strerror or e}")
    except KeyboardInterrupt:
        err.print("stopped")


class SourceChoice(StrEnum):
    auto = "auto"
    llm_calls = "llm_calls"
    checkpoint = "checkpoint"


AtOpt = Annotated[int | None, typer.Option("--at", help="The step (0-based, as the log's `step` column) at which to ask: the agent's "
                                                         "last prompt at or before it. Default: its latest.")]
SourceOpt = Annotated[SourceChoice, typer.Option(help="Where what the agent saw comes from: its stored prompt (llm_calls), a "
                                                      "checkpoint, or auto (the stored prompt, else a checkpoint).")]
AskBackendOpt = Annotated[BackendChoice | None, typer.Option(help="Answer with this backend instead of the run's (every model alias).")]
AskSetOpt = Annotated[list[str] | None, typer.Option("--set", help="Change the run's models for the question: --set "
                                                                   "models.default.model=PATH (repeatable; values are YAML).")]


def _interview_errors(fn: Any) -> Any:
    """Run `fn` with the interview's errors as the CLI's: bad input exit 2, a backend that cannot answer its code."""
    from agentsim.experiments.manifest import ManifestError
    from agentsim.interviews import InterviewError

    try:
        return fn()
    except (InterviewError, ManifestError, LogError) as e:
        _fail(str(e))
    except BackendError as e:
        _fail(str(e), code=e.exit_code)


@app.command()
def interview(
    run_dir: Annotated[Path, typer.Argument(help="The run directory.")],
    agent: Annotated[str, typer.Argument(help="The agent to ask (its id, as in the agents table).")],
    question: Annotated[str, typer.Argument(help="The question.")],
    at: AtOpt = None,
    backend: AskBackendOpt = None,
    set_: AskSetOpt = None,
    source: SourceOpt = SourceChoice.auto,
    verbose: VerboseOpt = False,
) -> None:
    """Ask a run's agent a question as it stood at a step, through its own model; print the answer (stdout) and
    append it to the run's `interviews` table."""
    from agentsim.experiments.manifest import is_experiment_dir
    from agentsim.interviews import ask
    from agentsim.runtime.terminal import third_party_output

    if is_experiment_dir(run_dir):
        _fail(f"{run_dir} is an experiment: ask every agent of every run with `agentsim survey {run_dir} QUESTION`, "
              "or name one of its run directories")
    if not (run_dir / "run.json").is_file():
        _fail(f"{run_dir}: not a run directory (no run.json)")
    sets = _parse_sets(set_)
    chosen = backend.value if backend else None

    def go() -> Any:
        # Everything an interview writes stays in interviews/: the run's own files are left as they were.
        with third_party_output(run_dir / "interviews", verbose, consoles=(err,)):
            return ask(run_dir, agent, question, at, backend=chosen, sets=sets, source=source.value,
                       log=lambda m: err.print(m, highlight=False))

    iv = _interview_errors(go)
    s = iv.seen
    check = {True: ", the same request the run sent", False: ", NOT the same request the run sent (see the interviews "
             "table's messages)", None: ""}[s.verified]
    err.print(escape(f"{s.agent_id} at step {s.step} (phase {s.phase}; what it saw from {s.source}{check}); answered by "
                     f"{s.alias} = {iv.backend}:{iv.model}, {iv.prompt_tokens} + {iv.completion_tokens} tokens"),
              highlight=False, soft_wrap=True)
    print(iv.answer)


@app.command()
def survey(
    experiment_dir: Annotated[Path, typer.Argument(help="The experiment directory (holding experiment.json).")],
    question: Annotated[str, typer.Argument(help="The question, put to every agent of every completed run.")],
    at: AtOpt = None,
    agents: Annotated[list[str] | None, typer.Option("--agent", help="Ask only these agents (repeatable; default: every agent a model plays).")] = None,
    backend: AskBackendOpt = None,
    set_: AskSetOpt = None,
    out: Annotated[Path | None, typer.Option(help="Write the answers as CSV to this file.")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Interview every agent of every run of an experiment with one question (agentsim.experiments.survey); print the
    answers with each run's cell parameters, or write them with --out."""
    from agentsim.experiments.manifest import is_experiment_dir
    from agentsim.experiments.surveys import survey as run_survey
    from agentsim.runtime.summary import df_table
    from agentsim.runtime.terminal import third_party_output

    if not is_experiment_dir(experiment_dir):
        _fail(f"{experiment_dir}: not an experiment directory (no experiment.json); ask one run's agent with "
              "`agentsim interview RUN_DIR AGENT QUESTION`")
    if out is not None and out.is_dir():
        _fail(f"--out {out}: a directory; give a CSV file name")
    sets = _parse_sets(set_)

    def go() -> Any:
        with third_party_output(experiment_dir, verbose, consoles=(err,)):
            return run_survey(experiment_dir, question, at, agents, backend=backend.value if backend else None, sets=sets,
                              log=lambda m: err.print(m, highlight=False))

    df = _interview_errors(go)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out, index=False)
        console.print(f"wrote {len(df)} answers to {out}")
    else:
        shown = df.drop(columns=["question", "interview_id", "latency_s"])
        console.print(df_table(shown, f"{question} ({len(df)} answers)", max_rows=ROWS_SHOWN))
