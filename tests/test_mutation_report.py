"""The mutation report (scripts/mutation.py): mutants mutmut never checked are "not run", not survivors."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mutation():
    spec = importlib.util.spec_from_file_location("mutation_script", ROOT / "scripts" / "mutation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


# mutmut exit codes (None: never run) -> killed, survived+other, no tests, not run, score, partial
CASES = [
    ("all checked", [1, 1, 3, 0], (3, 1, 0, 0, 75.0, False)),
    ("interrupted run", [1, 1, 0, None, None, None], (2, 1, 0, 3, 100.0 * 2 / 3, True)),
    ("nothing checked yet", [None, None], (0, 0, 0, 2, None, True)),
    ("no tests count against", [1, 33, 5, None], (1, 0, 2, 1, 100.0 / 3, True)),
    ("an unknown exit code is a survivor", [1, 99], (1, 1, 0, 0, 50.0, False)),
]


@pytest.mark.parametrize(("codes", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_never_run_mutants_are_their_own_column_and_the_module_is_partial(mutation, tmp_path: Path, codes, expected) -> None:
    module = mutation.Module(name="m", mutate=["pkg/a.py"], tests=[])
    meta = tmp_path / "mutants" / "pkg" / "a.py.meta"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"exit_code_by_key": {f"pkg.a.x_f__mutmut_{i}": c for i, c in enumerate(codes)}}))
    (tmp_path / "mutants" / "pkg" / "a.py").write_text("")  # survivors' diffs are looked up; none is found here
    t = mutation.tally(module, tmp_path, {})
    killed, survived, no_tests, not_run, score, partial = expected
    assert (t.count(mutation.KILLED), t.count(mutation.SURVIVED, mutation.OTHER), t.count(mutation.NO_TESTS)) == (
        killed, survived, no_tests)
    assert len(t.not_run) == not_run and len(t.survivors) == survived + no_tests
    assert t.partial is partial
    assert t.score == pytest.approx(score) if score is not None else t.score is None
    row = dict(zip(["module", "mutants", "killed", "timeout", "survived", "no tests", "equivalent", "not run",
                    "score", "minutes"], t.row("m"), strict=True))
    assert row["not run"] == not_run and row["mutants"] == len(codes)
    assert row["score"].endswith("partial") is partial


def test_a_partial_module_makes_the_total_partial(mutation) -> None:
    done = mutation.Tally(status={"a": mutation.KILLED, "b": mutation.SURVIVED})
    cut = mutation.Tally(status={"c": mutation.KILLED, "d": mutation.NOT_RUN})
    total = mutation.total_of({"done": done, "cut": cut})
    assert total.partial and total.score == pytest.approx(200 / 3)
    text = mutation.table({"done": done, "cut": cut, "never": mutation.Tally()})
    header, _, *rows = text.splitlines()
    assert "not run" in header
    by_name = {r.split("|")[0].strip(): r for r in rows}
    assert "partial" not in by_name["done"] and "partial" in by_name["cut"] and "partial" in by_name["TOTAL"]
    assert "never run" in by_name["never"]
