"""Every data file a scenario can point at has a documented format (README "File formats", generated from the row
models), a shipped example that validates, and errors that name the file, row, id and field."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from test_names import cli, write_yaml

from agentsim.core.datafile import DataFileError, FileFormat, update_readme
from agentsim.core.registry import families, get_family
from agentsim.spec.errors import SpecError

from conftest import REPO

README = REPO / "README.md"
FORMATS: list[FileFormat] = [f for n in families() for f in get_family(n).file_formats]


def fmt(name: str) -> FileFormat:
    return next(f for f in FORMATS if f.name == name)


# -- documentation ------------------------------------------------------------------------------------------------
def test_readme_file_formats_are_generated_from_the_models() -> None:
    assert update_readme(README, check=True), "README.md's Names / File formats sections are stale: run python scripts/file_formats.py"


def _section(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"### {name} (")
    end = text.find("\n### ", start + 1)
    return text[start:end if end > 0 else None]


@pytest.mark.parametrize("f", FORMATS, ids=lambda f: f.name)
def test_every_field_of_every_format_is_documented(f: FileFormat) -> None:
    section = _section(f.name)
    for model in (f.row_model, *f.models):
        for name, info in model.model_fields.items():
            assert f"| `{info.alias or name}` |" in section, f"{model.__name__}.{name} is not in README's {f.name!r} section"
    assert f.example in section and (REPO / f.example).is_file()


def _path_fields(model: type[BaseModel], prefix: str) -> list[str]:
    out = []
    for name, info in model.model_fields.items():
        todo = [info.annotation]
        while todo:
            tp = todo.pop()
            args = typing.get_args(tp)
            if tp is Path:
                out.append(f"{prefix}{name}")
            elif isinstance(tp, type) and issubclass(tp, BaseModel):
                out += _path_fields(tp, f"{prefix}{name}.")
            else:
                todo += list(args)
    return out


@pytest.mark.parametrize("family", families())
def test_every_path_field_of_a_family_has_a_documented_format(family: str) -> None:
    fam = get_family(family)
    paths = set(_path_fields(fam.config_model, "world."))
    documented = {x for f in fam.file_formats for x in f.fields}
    assert paths == documented, f"{family}: path fields {sorted(paths)}, documented formats for {sorted(documented)}"


# -- shipped examples ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("f", FORMATS, ids=lambda f: f.name)
def test_every_shipped_example_reads_with_its_format(f: FileFormat) -> None:
    assert f.read(REPO / f.example)
    for note in f.notes:  # further examples linked from the notes
        for other in re.findall(r"\]\(([^)]+)\)", note):
            assert f.read(REPO / other)


EXAMPLE_SCENARIOS = sorted((REPO / "scenarios").glob("*/examples/*.yaml"))


@pytest.mark.parametrize("path", [p for p in EXAMPLE_SCENARIOS if "kind" in yaml.safe_load(p.read_text())], ids=lambda p: p.name)
def test_example_scenarios_validate_and_run(path: Path, tmp_path: Path) -> None:
    code, out = cli("validate", str(path))
    assert code == 0, out
    code, out = cli("run", str(path), "--backend", "scripted", "--steps", "2", "--run-dir", str(tmp_path / "run"), "--quiet")
    assert code == 0, out


# -- bad files: every problem with its row, id and field ------------------------------------------------------------
NATION = "- name: {n}\n  static: {{governance: Democratic}}\n  dynamic: {{gdp: 1}}\n"
ACTIONS_OK = "- {name: Wait, description: w, privacy: private}\n- {name: Message, description: m, privacy: target_dependent}\n"
BAD: list[Any] = [
    ("Users file", "users.csv", "user_id,groups\nanna,x\n", r"unknown column 'groups'; did you mean 'group'\?"),
    ("Users file", "users.csv", "id,bio\nanna,x\n", r"lacks column\(s\) \['user_id'\]"),
    ("Users file", "users.csv", "user_id,name\n,Bob\n", r"users\.csv row 1: field user_id: must not be empty"),
    ("Users file", "users.csv", 'user_id,name\nbob,"Bob\nSmith"\n', r"row 1 \(id 'bob'\): field name: 'Bob\\nSmith' contains a control character \(U\+000A\)"),
    ("Users file", "users.csv", "user_id,name\nanna\nbob,Bob\n", r"users\.csv row 1: 1 cells; the header has 2 columns"),
    ("Users file", "users.csv", b"user_id\n\xff\n", r"not UTF-8 text"),
    ("Follows file", "follows.csv", "follower,followee\nanna,\n", r"follows\.csv row 1 \(id 'anna'\): field followee: must not be empty"),
    ("Follows file", "follows.csv", "follower\nanna\n", r"lacks column\(s\) \['followee'\]"),
    ("Seed posts file", "posts.csv", "author,content,timestamp\nanna,hi,yesterday\n",
     r"posts\.csv row 1 \(id 'anna'\): field timestamp: 'yesterday' is neither ISO 8601 nor epoch seconds$"),
    ("Seed posts file", "posts.csv", "author,content\nanna,\n", r"row 1 \(id 'anna'\): field content: String should have at least 1 character"),
    ("Score table, wide", "s.csv", "model,a,b\nm1,1,2\nm2,x,\n",
     r"s\.csv row 2 \(id 'm2'\): field a: .*valid number.*\n.*s\.csv row 2 \(id 'm2'\): field b: the score is missing"),
    ("Score table, wide", "s.csv", "model,a\nm1,1\nm2,inf\n", r"row 2 \(id 'm2'\): field a: Input should be a finite number"),
    ("Score table, wide", "s.csv", "model,a\nm1,1\n", r"a tournament needs at least 2 models; the table has 1"),
    ("Score table, wide", "s.csv", "model,a\nm1,1\nm1,2\n", r"s\.csv row 2 \(id 'm1'\): field model: 'm1' is used twice; first at .*s\.csv row 1"),
    ("Score table, wide", "s.csv", "model\nm1\nm2\n", r"no benchmark columns"),
    ("Score table, wide", "s.csv", "name,a\nm1,1\n", r"needs a 'model' column"),
    ("Score table, wide", "s.csv", "model,a,a\nm1,1,2\nm2,2,1\n", r"column\(s\) \['a'\] appear more than once in the header"),
    ("Score table, long", "s.csv", "model,benchmark,score\nm1,a,1\nm1,a,2\nm2,a,0\n", r"s\.csv row 2 \(id 'm1'\): field benchmark: 'm1' already has a score on 'a'"),
    ("Score table, long", "s.csv", "model,benchmark,score\nm1,a,1\nm1,b,2\nm2,a,0\n", r"model 'm2' \(row 3\) has no score on benchmark 'b'"),
    ("Score table, long", "s.csv", "model,benchmark,score,note\nm1,a,1,x\nm2,a,2,y\n", r"unknown column 'note'"),
    ("Benchmark items", "items.jsonl", '{"question": "a", "answer": 1}\n{"question": \n', r"items\.jsonl line 2: not valid JSON"),
    ("Benchmark items", "items.jsonl", '{"answer": "1"}\n', r"items\.jsonl row 1: field question: required field is missing"),
    ("Benchmark items", "items.jsonl", '["q", "a"]\n', r"items\.jsonl row 1: Input should be a valid dictionary"),
    ("Benchmark items", "items.csv", "question,answr\nq,a\n", r"unknown column 'answr'; did you mean 'answer'\?"),
    ("Nations file", "nations.yaml", "nations:\n" + NATION.format(n="A") + "- name: B\n  static: {}\n  dynamic: {gdpp: 1}\n",
     r"nations\.yaml row 2 \(line 7, id 'B'\): field dynamic\.gdpp: 'gdpp' is not allowed; allowed values: .*'gdp'"),
    ("Nations file", "nations.yaml", "nations:\n" + NATION.format(n="A") + "- name: B\n  static: {governance: 3}\n  dynamic: {}\n",
     r"row 2 \(line 6, id 'B'\): field static: .*governance must be text"),
    ("Nations file", "nations.yaml", "nations:\n" + NATION.format(n="A"), r"nations\.yaml \(line 1\): nations: List should have at least 2 items"),
    ("Nations file", "nations.yaml", "- name: A\n", r"nations\.yaml \(line 1\): top level: Input should be an object|nations\.yaml \(line 1\): top level: Input should be a valid dictionary"),
    # YAML that does not parse is the shared loader's error (agentsim/spec/yamlio.py), naming file and line
    ("Nations file", "nations.yaml", "nations: [\n", r"nations\.yaml: 1 problem\n.*\(line \d+\): not valid YAML"),
    ("Nations file", "nations.yaml", "nations:\n" + NATION.format(n="A") + NATION.format(n="7"), r"row 2 \(line 5\): field name: 7 is a number; write a name as text"),
    ("Actions file", "actions.yaml", "actions:\n- {name: Wait, description: w, privacy: private}\n", r"actions\.yaml \(line 1\): actions: the actions need one named 'Message'"),
    ("Actions file", "actions.yaml", "actions:\n" + ACTIONS_OK + "- {name: Wait, description: again, privacy: public}\n", r"action names repeat: \['Wait'\]"),
    ("Actions file", "actions.yaml", "actions:\n" + ACTIONS_OK + "- {name: Spy, description: s, privacy: secret}\n",
     r"actions\.yaml row 3 \(line 4, id 'Spy'\): field privacy: 'secret' is not allowed; allowed values: 'public', 'private' or 'target_dependent'"),
    ("Actions file", "actions.yaml", "actions:\n" + ACTIONS_OK + "- name: Tax\n  description: t\n  privacy: public\n  effects:\n  - {variable: gdp, op: times, on: other, delta: 1}\n",
     r"actions\.yaml row 3 \(line 8, id 'Tax'\): field effects\.0\.op: 'times' is not allowed"),
]


@pytest.mark.parametrize(("name", "file", "content", "message"), BAD, ids=[f"{b[0]}:{i}" for i, b in enumerate(BAD)])
def test_bad_files_are_refused_with_file_row_id_and_field(name: str, file: str, content: str | bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / file
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    with pytest.raises((DataFileError, SpecError)) as e:
        fmt(name).read(path)
    assert re.search(message, str(e.value), re.MULTILINE), str(e.value)
    if isinstance(e.value, SpecError):
        assert e.value.source == str(path)
    else:
        assert all(str(path) in p for p in e.value.problems)


def test_files_keep_what_was_written(tmp_path: Path) -> None:
    """Cells are text as written (no NA -> NaN, no 007 -> 7), a byte-order mark is fine, ids are NFC, and an
    unquoted YAML `on:` key (the boolean true in YAML 1.1) is the effect's `on`."""
    users = tmp_path / "users.csv"
    users.write_text("\ufeffuser_id,name\nNA,\n007,Bond\njose\u0301,\n", encoding="utf-8")
    table = fmt("Users file").read(users)
    assert table.ids == ["NA", "007", "josé"] and table.names == ["NA", "Bond", "josé"]
    scores = tmp_path / "s.csv"
    scores.write_text("model,a\nNA,1\nnull,2\n", encoding="utf-8")
    assert fmt("Score table, wide").read(scores).models == ["NA", "null"]
    actions = tmp_path / "actions.yaml"
    actions.write_text("actions:\n" + ACTIONS_OK + "- {name: Tax, description: t, privacy: public, effects: [{variable: gdp, op: add, on: other, delta: -1}]}\n")
    assert fmt("Actions file").read(actions)[2].effects[0].on == "other"


def test_parquet_tables_read_like_csv(tmp_path: Path) -> None:
    import pandas as pd

    pd.DataFrame({"user_id": [7, 8], "interests": [["a", "b"], None]}).to_parquet(tmp_path / "users.parquet")
    users = fmt("Users file").read(tmp_path / "users.parquet")
    assert users.ids == ["7", "8"] and users.topics == [["a", "b"], []]
    pd.DataFrame({"model": ["x", "y", "z"], "bench": [1.5, float("nan"), float("inf")]}).to_parquet(tmp_path / "s.parquet")
    with pytest.raises(DataFileError) as e:
        fmt("Score table, wide").read(tmp_path / "s.parquet")
    assert [p.split("s.parquet ")[1] for p in e.value.problems] == [
        "row 2 (id 'y'): field bench: the score is missing", "row 3 (id 'z'): field bench: Input should be a finite number (got inf)"]


# -- through validate and run: the scenario field that names the file, and no traceback ----------------------------
def _scenario(d: Path, kind: str, field: dict[str, Any], files: dict[str, str]) -> Path:
    for name, text in files.items():
        (d / name).write_text(text, encoding="utf-8")
    base = {"wargame": {"max_actions_per_day": 1},
            "social": {"users": {"count": 5}, "network": {"generator": "none"}},
            "tournament": {"mode": "live", "participants": [{"name": "a", "model": "default"}, {"name": "b", "model": "default"}],
                           "live": {"match": "benchmark", "items": [{"question": "q", "answer": "a"}]}}}[kind]
    world = _merge(base, field)
    return write_yaml(d / "s.yaml", {"kind": kind, "name": "bad", "steps": 1, "models": {"default": {"backend": "scripted"}}, "world": world,
                                     "logging": {"dir": str(d / "runs")}})


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


THROUGH_CLI = [
    ("wargame", {"nations_file": "n.yaml"}, {"n.yaml": "nations:\n" + NATION.format(n="A") + "- {name: B, static: {}, dynamic: {gpd: 1}}\n"},
     r"world\.nations_file \(line \d+\): .*n\.yaml row 2 \(line 5, id 'B'\): field dynamic\.gpd"),
    ("wargame", {"actions_file": "a.yaml"}, {"a.yaml": "actions:\n- {name: Wait, description: w, privacy: private}\n"},
     r"world\.actions_file \(line \d+\): .*a\.yaml \(line 1\): actions: the actions need one named 'Message'"),
    ("social", {"network": {"follows_file": "f.csv"}}, {"f.csv": "follower,followee\nu1,u9\n"},
     r"world\.network\.follows_file \(line \d+\): .*f\.csv row 1 \(id 'u1'\): field followee: 'u9' is not among the users"),
    ("social", {"seed_posts": {"file": "p.csv"}}, {"p.csv": "author,content,timestamp\nu1,hi,soon\n"},
     r"world\.seed_posts\.file \(line \d+\): .*p\.csv row 1 \(id 'u1'\): field timestamp: 'soon' is neither"),
    ("social", {"users": {"count": None, "file": "u.csv"}}, {"u.csv": "user_id,bio\nanna,hi\nanna,again\n"},
     r"world\.users\.file \(line \d+\): .*u\.csv row 2 \(id 'anna'\): field user_id: 'anna' is used twice"),
    ("tournament", {"live": {"items": [], "items_file": "i.jsonl"}}, {"i.jsonl": '{"question": "q"}\n'},
     r"world\.live\.items_file \(line \d+\): .*i\.jsonl row 1: field answer: a benchmark item needs a reference answer"),
    ("tournament", {"mode": "csd", "participants": [], "live": None, "csd": {"scores_file": "s.csv"}}, {"s.csv": "model,a\nm1,1\nm2,\n"},
     r"world\.csd\.scores_file \(line \d+\): .*s\.csv row 2 \(id 'm2'\): field a: the score is missing"),
]


@pytest.mark.parametrize(("kind", "field", "files", "message"), THROUGH_CLI, ids=[f"{c[0]}-{next(iter(c[2]))}" for c in THROUGH_CLI])
def test_bad_files_are_named_by_validate_and_run(kind: str, field: dict[str, Any], files: dict[str, str], message: str, tmp_path: Path) -> None:
    f = _scenario(tmp_path, kind, field, files)
    for args in (("validate", str(f)), ("run", str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "run"), "--quiet")):
        code, out = cli(*args)
        assert code == 2 and "Traceback" not in out, out
        assert re.search(message, " ".join(out.split())), out


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
@pytest.mark.parametrize("f", FORMATS, ids=lambda f: f.name)
def test_every_format_refuses_a_device_or_pipe_at_once(f: FileFormat, special: str, tmp_path: Path) -> None:
    """A data path naming /dev/zero or a FIFO was read without end (the process grew until the kernel killed it);
    every format's reader refuses what is not a regular file, naming it."""
    import os
    import signal

    path = Path(special)
    if special == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
    signal.alarm(20)  # a reader that blocks on the pipe would hang the suite
    try:
        with pytest.raises((DataFileError, SpecError), match="not a regular file"):
            f.read(path)
    finally:
        signal.alarm(0)
