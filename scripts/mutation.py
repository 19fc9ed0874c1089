#!/usr/bin/env python
"""Mutation testing of the code that computes the studies' numbers: one mutmut run per module, then a table.

`make mutation` runs every module of tests/mutation/modules.toml, one after the other (never in parallel: each run
already keeps the cores busy), and prints killed / timeout / survived / no tests / equivalent and the score per
module. Usage:

    python scripts/mutation.py                      # every module
    python scripts/mutation.py wargame tournament   # some modules
    python scripts/mutation.py --report             # only tabulate the results of earlier runs
    python scripts/mutation.py --ref main           # the code and tests of a git ref (e.g. a baseline)
    python scripts/mutation.py --issue              # the faults of issue 16, each applied by hand: must be caught

Each module runs in its own folder, build/mutation/<module>/ (or build/mutation-<ref>/<module>/), holding a copy of
agentsim/, tests/ and scenarios/ and a pyproject.toml whose [tool.mutmut] section names the module's files and
fast tests (mutmut reads its configuration from the working directory). mutmut copies that tree to mutants/,
rewrites every function of the files to mutate into a trampoline over its mutants, runs the tests once to learn
which tests call which function, then forks one process per mutant and runs only those tests (with -x, in file
order, so a fast known-answer test that fails first ends the run). Results stay in mutants/*.meta; --keep reuses
them (mutmut re-tests only mutants of functions whose source changed), the default starts afresh.

Score = (killed + timeout) / (mutants - equivalent - not run). "no tests" (a function none of the selected tests
calls) counts against the score like a survivor. "not run": mutants mutmut has not checked yet (a run interrupted
or still going); they are neither killed nor survivors, and a module with any of them is marked partial (its score
covers only the mutants checked; `--keep` or `--survivors` checks the rest). Equivalent mutants (they cannot change behaviour) are listed with the
reason in tests/mutation/equivalent.toml; an entry names the mutant and the text of its mutated line, and an entry
whose mutant no longer makes that change (the code moved and mutmut renumbered) is reported as stale and not used.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tests" / "mutation" / "modules.toml"
EQUIVALENT = ROOT / "tests" / "mutation" / "equivalent.toml"
ISSUE = ROOT / "tests" / "mutation" / "issue_mutants.toml"
COPY = ("agentsim", "tests", "scenarios", "pyproject.toml")

# mutmut's exit codes -> our columns (mutmut.stats.status_by_exit_code: 1 and 3 are failures of the tests).
KILLED, TIMEOUT, SURVIVED, NO_TESTS, OTHER = "killed", "timeout", "survived", "no tests", "other"
NOT_RUN = "not run"  # mutmut's exit code None: the mutant exists but no test run has checked it yet
STATUS = {1: KILLED, 3: KILLED, 0: SURVIVED, 5: NO_TESTS, 33: NO_TESTS, 36: TIMEOUT, -24: TIMEOUT, 24: TIMEOUT,
          152: TIMEOUT, 255: TIMEOUT}


@dataclass
class Module:
    name: str
    mutate: list[str]
    tests: list[str]
    functions: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    deselect: list[str] = field(default_factory=list)
    sample: float | None = None
    note: str = ""

    def wanted(self, mutant: str) -> bool:
        """Whether a mutant is in this module's scope (`functions` and `exclude` are globs over mutant names)."""
        if self.functions and not any(fnmatch.fnmatchcase(mutant, p) for p in self.functions):
            return False
        return not any(fnmatch.fnmatchcase(mutant, p) for p in self.exclude)


@dataclass
class Tally:
    """One module's results: each mutant's status, and which survivors are listed as equivalent."""

    status: dict[str, str] = field(default_factory=dict)
    equivalent: set[str] = field(default_factory=set)
    stale: list[str] = field(default_factory=list)
    seconds: float | None = None

    def count(self, *statuses: str) -> int:
        return sum(1 for n, s in self.status.items() if s in statuses and n not in self.equivalent)

    @property
    def survivors(self) -> list[str]:
        return [n for n, s in self.status.items() if s in (SURVIVED, NO_TESTS, OTHER) and n not in self.equivalent]

    @property
    def not_run(self) -> list[str]:
        return [n for n, s in self.status.items() if s == NOT_RUN]

    @property
    def partial(self) -> bool:
        """Some mutants were never checked: the score covers only those that were."""
        return bool(self.not_run)

    @property
    def score(self) -> float | None:
        """Percentage of the checked, non-equivalent mutants that the tests killed (None: none checked)."""
        denominator = len(self.status) - len(self.equivalent) - len(self.not_run)
        return 100.0 * self.count(KILLED, TIMEOUT) / denominator if denominator else None

    def row(self, name: str) -> list[str | int]:
        score = f"{self.score:.1f} %" if self.score is not None else "-" if self.status else "never run"
        return [name, len(self.status), self.count(KILLED), self.count(TIMEOUT), self.count(SURVIVED, OTHER),
                self.count(NO_TESTS), len(self.equivalent), len(self.not_run),
                f"{score} partial" if self.partial else score,
                f"{self.seconds / 60:.1f}" if self.seconds is not None else "-"]


@dataclass
class Settings:
    pytest_args: list[str]
    do_not_mutate_patterns: list[str]
    sample: float | None


def load_modules(path: Path = CONFIG) -> tuple[dict[str, Module], Settings]:
    data = tomllib.loads(path.read_text())
    settings = Settings(list(data.get("pytest_args", [])), list(data.get("do_not_mutate_patterns", [])),
                        data.get("sample"))
    modules = {}
    for entry in data["module"]:
        m = Module(**entry)
        modules[m.name] = m
    return modules, settings


def in_sample(mutant: str, fraction: float | None) -> bool:
    """A fixed pseudo-random subset: the same mutants on every run and machine (a hash of the name)."""
    if fraction is None or fraction >= 1.0:
        return True
    return int(hashlib.sha1(mutant.encode()).hexdigest()[:8], 16) < fraction * 2**32


def load_equivalent(path: Path = EQUIVALENT) -> dict[str, dict[str, str]]:
    """mutant name -> {"change": its mutated line, "reason": why it cannot change behaviour}, from the groups of
    tests/mutation/equivalent.toml (each group: a reason and [name, mutated line] pairs)."""
    if not path.is_file():
        return {}
    out = {}
    for group in tomllib.loads(path.read_text()).get("group", []):
        for name, change in group["mutants"]:
            out[name] = {"change": change, "reason": group["reason"]}
    return out


def mark_equivalent(module: Module, work: Path, names: list[str], reason: str, path: Path = EQUIVALENT) -> None:
    """Append a group to equivalent.toml: these mutants (as mutmut's last run of `module` made them) and why."""
    diffs = mutant_diffs(work, names)
    lines = [f"\n[[group]]\nreason = {json.dumps(reason, ensure_ascii=False)}\nmutants = ["]
    for n in names:
        change = changed_lines(diffs.get(n, ""))
        if not change:
            raise SystemExit(f"{n}: no diff found in {work} (run the module first)")
        lines.append(f"  [{json.dumps(n, ensure_ascii=False)}, {json.dumps(change.splitlines()[0], ensure_ascii=False)}],")
    lines.append("]\n")
    with path.open("a", encoding="utf-8") as f:
        f.write("\n".join(lines))


def toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(x) for x in items) + "]"


def copy_tree(work: Path) -> None:
    """The working tree's COPY entries into `work` (no byte code)."""
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, work / name)


def prepare(module: Module, settings: Settings, work: Path, ref: str | None, keep: bool) -> None:
    """The module's folder: the tree to test (working tree or `ref`) and mutmut's configuration."""
    if work.exists() and not keep:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    for name in COPY:  # refreshed every time; mutmut decides from mtimes and hashes what to redo under --keep
        target = work / name
        if target.is_dir():
            shutil.rmtree(target)
    if ref is None:
        copy_tree(work)
    else:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, *COPY], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    args = [*settings.pytest_args, *(f"--deselect={d}" for d in module.deselect)]
    missing = [t for t in module.tests if not (work / t.split("::")[0]).exists()]
    tests = [t for t in module.tests if t not in missing]
    if missing:
        print(f"  ({module.name}: not in this tree, left out: {', '.join(missing)})")
    pyproject = (work / "pyproject.toml").read_text()
    pyproject += (
        "\n[tool.mutmut]\n"
        'source_paths = ["agentsim"]\n'
        f"only_mutate = {toml_list(module.mutate)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
        f"pytest_add_cli_args = {toml_list(args)}\n"
        'also_copy = ["scenarios"]\n'
        f"do_not_mutate_patterns = {toml_list(settings.do_not_mutate_patterns)}\n"
    )
    (work / "pyproject.toml").write_text(pyproject)


GENERATE = """
import json, sys
from pathlib import Path
from mutmut.mutation.file_mutation import mutate_file_contents
from mutmut.utils.format_utils import get_mutant_name
names = []
for rel in json.load(sys.stdin):
    mutated = mutate_file_contents(rel, Path(rel).read_text(), None, None)
    names += [get_mutant_name(Path(rel), n) for n in mutated.mutant_names]
json.dump(names, sys.stdout)
"""


def select(module: Module, work: Path, fraction: float | None) -> list[str] | None:
    """The mutants to test (None: all of the module's files), computed as mutmut will name them; saved in
    selected.json for the tally."""
    if not module.functions and not module.exclude and (fraction is None or fraction >= 1.0):
        (work / "selected.json").unlink(missing_ok=True)
        return None
    r = subprocess.run([sys.executable, "-c", GENERATE], cwd=work, input=json.dumps(module.mutate),
                       capture_output=True, text=True, check=True)
    names = [n for n in json.loads(r.stdout) if module.wanted(n) and in_sample(n, fraction)]
    (work / "selected.json").write_text(json.dumps(names))
    return names


def run_mutmut(module: Module, work: Path, max_children: int, names: list[str] | None, timing: str = "seconds.txt") -> float:
    env = dict(os.environ)
    # Tests that start `agentsim` in a subprocess import the mutated tree too (MUTANT_UNDER_TEST is inherited).
    # The folder must exist before mutmut starts: Python caches a missing sys.path entry as "nothing there" and
    # would then import agentsim from the installed checkout instead.
    (work / "mutants").mkdir(exist_ok=True)
    env["PYTHONPATH"] = str(work / "mutants")
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("AGENTSIM_DATA", str(study_data_root()))
    # mutmut forks one process per mutant from a parent that has already run the tests: a BLAS or OpenMP thread
    # pool started there can leave a lock held in the child, which then waits forever (0 CPU, a futex) and is
    # reported as a timeout. One thread each avoids the pools (and oversubscribing two cores).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env.setdefault(var, "1")
    mutmut = Path(sys.executable).with_name("mutmut")
    cmd = [str(mutmut), "run", "--max-children", str(max_children), *(names or [])]
    shown = " ".join(cmd[1:4]) + (f" <{len(names)} mutant names>" if names else "")
    print(f"  $ (cd {work.relative_to(ROOT)} && mutmut {shown})", flush=True)
    start = time.monotonic()
    log = work / "mutmut.log"
    with log.open("w") as out:
        rc = subprocess.run(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    seconds = time.monotonic() - start
    if rc != 0:
        tail = log.read_text()[-4000:]
        raise SystemExit(f"mutmut failed for {module.name} (exit {rc}); the end of {log}:\n{tail}")
    (work / timing).write_text(f"{seconds:.0f}\n")  # the whole run's time; a re-test of survivors keeps its own
    return seconds


def study_data_root() -> Path:
    """$AGENTSIM_DATA for the copies: the folder holding this checkout's copy of the study data (the copies live
    under build/, where agentsim's resolver would look beside the wrong checkout)."""
    sys.path.insert(0, str(ROOT))
    from agentsim.data import DataNotFound, locate

    try:
        return locate("escalaition").path.parent
    except DataNotFound:
        return ROOT / "build" / "no-study-data"


def tally(module: Module, work: Path, equivalent: dict[str, dict[str, str]], fraction: float | None = None) -> Tally:
    """Read mutmut's results for the module (mutants/<file>.meta) and sort them into our columns; with `fraction`,
    only the mutants of that hashed sample (to compare a full run with a sampled one on the same mutants)."""
    t = Tally()
    seconds = work / "seconds.txt"
    if seconds.is_file():
        t.seconds = float(seconds.read_text())
    selected_file = work / "selected.json"
    selected = set(json.loads(selected_file.read_text())) if selected_file.is_file() else None
    for rel in module.mutate:
        meta = work / "mutants" / (rel + ".meta")
        if not meta.is_file():
            continue
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if (selected is not None and name not in selected) or not in_sample(name, fraction):
                continue
            t.status[name] = STATUS.get(code, OTHER) if code is not None else NOT_RUN
    survivors = t.survivors
    if survivors:
        diffs = mutant_diffs(work, survivors)
        for name in survivors:
            entry = equivalent.get(name)
            if entry is None:
                continue
            if entry["change"].strip() in [x.strip() for x in changed_lines(diffs.get(name, "")).splitlines()]:
                t.equivalent.add(name)
            else:
                t.stale.append(name)
        with (work / "survivors.txt").open("w") as f:
            for name in t.survivors:
                f.write(f"# {name}: {t.status[name]}\n{diffs.get(name, '(no diff)')}\n\n")
    return t


def changed_lines(diff: str) -> str:
    return "\n".join(line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++"))


def mutant_diffs(work: Path, names: list[str]) -> dict[str, str]:
    """Each mutant's diff, by mutmut's own function (in a subprocess: mutmut reads its configuration from cwd)."""
    code = (
        "import json, sys\n"
        "from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant\n"
        "out = {}\n"
        "for n in json.load(sys.stdin):\n"
        "    try:\n"
        "        out[n] = get_diff_for_mutant(n, path=find_mutant(n).path)\n"
        "    except Exception as e:\n"
        "        out[n] = f'(no diff: {e})'\n"
        "json.dump(out, sys.stdout)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=work, input=json.dumps(names), capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stderr[-2000:], file=sys.stderr)
        return {}
    return json.loads(r.stdout)


def total_of(results: dict[str, Tally]) -> Tally:
    total = Tally(seconds=0.0)
    for name, t in results.items():
        total.status.update({f"{name}:{k}": v for k, v in t.status.items()})
        total.equivalent |= {f"{name}:{k}" for k in t.equivalent}
        total.seconds = (total.seconds or 0.0) + (t.seconds or 0.0)
    return total


def table(results: dict[str, Tally]) -> str:
    cols = ["module", "mutants", "killed", "timeout", "survived", "no tests", "equivalent", "not run", "score",
            "minutes"]
    rows = [t.row(name) for name, t in results.items()] + [total_of(results).row("TOTAL")]
    widths = [max(len(str(r[i])) for r in [cols, *rows]) for i in range(len(cols))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def check_issue_mutants(path: Path = ISSUE) -> int:
    """Apply each hand-written fault of `path` to a copy of the tree and run each of its tests: all must fail.
    Returns the number of faults some listed test let through (0: all caught)."""
    entries = tomllib.loads(path.read_text())["mutant"]
    work = ROOT / "build" / "mutation" / "issue"
    env = {**os.environ, "MPLBACKEND": "Agg", "AGENTSIM_DATA": str(study_data_root())}
    missed = 0
    for e in entries:
        if work.exists():
            shutil.rmtree(work)
        copy_tree(work)
        target = work / e["file"]
        text = target.read_text()
        if text.count(e["old"]) != 1:
            print(f"STALE  {e['name']}: the text to replace occurs {text.count(e['old'])} times in {e['file']}")
            missed += 1
            continue
        target.write_text(text.replace(e["old"], e["new"]))
        survived = []
        for test in e["tests"]:
            r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--hypothesis-seed=0",
                                "-m", "not vllm and not slow", test], cwd=work, env={**env, "PYTHONPATH": str(work)},
                               capture_output=True, text=True)
            if r.returncode != 1:  # 1: tests failed; 0: passed; other: the test could not even run
                survived.append(f"{test} (pytest exit {r.returncode})")
        status = "caught" if not survived else "MISSED"
        print(f"{status:6} {e['name']}" + ("".join(f"\n         {t}" for t in survived)), flush=True)
        missed += bool(survived)
    shutil.rmtree(work, ignore_errors=True)
    print(f"{len(entries) - missed} of {len(entries)} hand-made faults caught by every test listed for them")
    return missed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("modules", nargs="*", help="modules of tests/mutation/modules.toml (default: all)")
    p.add_argument("--report", action="store_true", help="only tabulate the results of earlier runs")
    p.add_argument("--keep", action="store_true", help="reuse earlier results (re-test only changed functions)")
    p.add_argument("--survivors", action="store_true",
                   help="re-test only the mutants that survived the last run of each module (after adding tests); implies --keep")
    p.add_argument("--timeouts", action="store_true",
                   help="with --survivors, re-test the mutants that timed out too (a timeout counts as killed, but a hung "
                   "mutant process is not a failing test)")
    p.add_argument("--ref", help="test the agentsim/, tests/ and scenarios/ of this git ref instead of the working tree")
    p.add_argument("--max-children", type=int, default=1, help="mutants tested at once (default 1)")
    p.add_argument("--sample", type=float, help="test this fraction of each module's mutants, chosen by a hash of their "
                   "names (overrides modules.toml); with --report, tabulate only that fraction of earlier results")
    p.add_argument("--issue", action="store_true", help="check the hand-made faults of tests/mutation/issue_mutants.toml")
    p.add_argument("--mark-equivalent", nargs="+", metavar="MUTANT",
                   help="append these mutants of the (one) module given to equivalent.toml, with --reason")
    p.add_argument("--reason", help="why the mutants of --mark-equivalent cannot change behaviour")
    p.add_argument("--fail-under", type=float, help="exit 1 when the total score is below this percentage")
    args = p.parse_args(argv)
    if args.issue:
        return 1 if check_issue_mutants() else 0
    if args.mark_equivalent:
        modules, _ = load_modules()
        if len(args.modules) != 1 or not args.reason:
            p.error("--mark-equivalent needs one module and --reason")
        base = ROOT / "build" / (f"mutation-{args.ref.replace('/', '_')}" if args.ref else "mutation")
        mark_equivalent(modules[args.modules[0]], base / args.modules[0], args.mark_equivalent, args.reason)
        return 0

    modules, settings = load_modules()
    unknown = [m for m in args.modules if m not in modules]
    if unknown:
        p.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(modules)}")
    chosen = args.modules or list(modules)
    base = ROOT / "build" / (f"mutation-{args.ref.replace('/', '_')}" if args.ref else "mutation")
    equivalent = load_equivalent()
    results: dict[str, Tally] = {}
    for name in chosen:
        module = modules[name]
        work = base / name
        if not args.report:
            print(f"== {name}: {', '.join(module.mutate)}", flush=True)
            if args.survivors:
                last = tally(module, work, {})
                names = last.survivors + last.not_run  # the unchecked ones need a result too
                if args.timeouts:
                    names += [n for n, st in last.status.items() if st == TIMEOUT]
                if not names:
                    print("  no survivors to re-test")
                    results[name] = tally(module, work, equivalent)
                    continue
                prepare(module, settings, work, args.ref, keep=True)
                print(f"  re-testing {len(last.survivors)} survivors and {len(last.not_run)} unchecked mutants of the last run")
                seconds = run_mutmut(module, work, args.max_children, names, timing="seconds-survivors.txt")
                print(f"  done in {seconds / 60:.1f} min", flush=True)
                results[name] = tally(module, work, equivalent)
                continue
            prepare(module, settings, work, args.ref, args.keep)
            fraction = args.sample if args.sample is not None else module.sample if module.sample is not None else settings.sample
            names = select(module, work, fraction)
            if fraction is not None and fraction < 1.0:
                print(f"  sample: {len(names or [])} mutants ({fraction:.0%} of the module's, by a hash of their names)")
            seconds = run_mutmut(module, work, args.max_children, names)
            print(f"  done in {seconds / 60:.1f} min", flush=True)
        results[name] = tally(module, work, equivalent, args.sample if args.report else None)
    print()
    print(table(results))
    for name, t in results.items():
        if t.stale:
            print(f"{name}: stale entries in {EQUIVALENT.relative_to(ROOT)} (not counted): {', '.join(t.stale)}")
        if t.survivors:
            print(f"{name}: {len(t.survivors)} survivors, with diffs, in {(base / name / 'survivors.txt').relative_to(ROOT)}")
        if t.partial:
            print(f"{name}: partial, {len(t.not_run)} of {len(t.status)} mutants not run yet (an interrupted run, or "
                  f"functions changed since; `--survivors {name}` checks them)")
    report = base / "report.txt"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(table(results) + "\n")
    total = total_of(results)
    if args.fail_under is not None and total.partial:
        print(f"total score is partial ({len(total.not_run)} mutants not run): it cannot show {args.fail_under} %")
        return 1
    if args.fail_under is not None and (total.score or 0.0) < args.fail_under:
        print(f"total score {total.score or 0.0:.1f} % is below {args.fail_under} %")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
