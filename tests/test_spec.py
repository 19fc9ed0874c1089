"""Scenario validation: every bad file gets an error naming the field path, the bad value and what is allowed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agentsim.spec.errors import SpecError
from agentsim.spec.loader import load_scenario, scenario_json_schema

from conftest import SCENARIOS

GOOD = yaml.safe_load((SCENARIOS / "wargame" / "neutral.yaml").read_text())


def _with(change: dict | None = None, drop: tuple[str, ...] = (), raw: str | None = None) -> str:
    if raw is not None:
        return raw
    data = json.loads(json.dumps(GOOD))
    for dotted in drop:
        node = data
        *parents, last = dotted.split(".")
        for p in parents:
            node = node[p]
        del node[last]
    for dotted, value in (change or {}).items():
        node = data
        *parents, last = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return yaml.safe_dump(data, sort_keys=False)


# (id, file text, expected path, expected fragments of the message)
BAD_FILES = [
    ("unknown-kind", _with({"kind": "wargmae"}), "kind", ["unknown scenario kind 'wargmae'", "did you mean 'wargame'"]),
    ("missing-kind", _with(drop=("kind",)), "kind", ["required field is missing"]),
    ("missing-steps", _with(drop=("steps",)), "steps", ["required field is missing"]),
    ("zero-steps", _with({"steps": 0}), "steps", ["greater than or equal to 1", "got 0"]),
    ("steps-not-int", _with({"steps": "many"}), "steps", ["valid integer", "'many'"]),
    ("negative-seed", _with({"seed": -1}), "seed", ["greater than or equal to 0"]),
    ("bad-name", _with({"name": "my run!"}), "name", ["should match pattern"]),
    ("bad-backend", _with({"models.default.backend": "vlm"}), "models.default.backend", ["'vlm' is not allowed", "'vllm'", "'scripted'", "'replay'"]),
    ("bad-temperature", _with({"models.default.sampling.temperature": 5}), "models.default.sampling.temperature", ["less than or equal to 2"]),
    ("bad-max-tokens", _with({"models.default.sampling.max_tokens": 0}), "models.default.sampling.max_tokens", ["greater than or equal to 1"]),
    ("typo-field", _with({"models.default.sampling.temprature": 0.5}), "models.default.sampling.temprature", ["unknown field", "did you mean 'temperature'"]),
    ("unknown-top-level", _with({"stepz": 3}), "stepz", ["unknown field", "did you mean 'steps'"]),
    ("unknown-alias", _with({"population.model": "gpt"}), "population.model", ["unknown model alias 'gpt'", "default"]),
    ("override-unknown-agent", _with({"population.overrides": {"Atlantis": "default"}}), "population.overrides.Atlantis", ["no agent named 'Atlantis'", "Purple"]),
    ("world-typo", _with({"world.max_action_per_day": 3}), "world.max_action_per_day", ["unknown field", "did you mean 'max_actions_per_day'"]),
    ("world-cap-too-high", _with({"world.max_actions_per_day": 99}), "world.max_actions_per_day", ["less than or equal to 27"]),
    ("world-model-alias", _with({"world.world_model": {"model": "judge"}}), "world.world_model.model", ["unknown model alias 'judge'"]),
    ("nations-file-missing", _with({"world.nations_file": "nope.yaml"}), "world.nations_file", ["file not found"]),
    ("runtime-kind", _with({"runtime": {"kind": "slurm"}}), "runtime.kind", ["'slurm' is not allowed", "'local'"]),
    ("not-a-mapping", _with(raw="- just\n- a list\n"), "", ["must be a mapping"]),
    ("bad-yaml", _with(raw="kind: wargame\nname: [unclosed\n"), "", ["not valid YAML"]),
    ("empty-file", _with(raw=""), "", ["the file is empty"]),
    ("python-tag", _with(raw="kind: !!python/object/apply:os.system ['echo hi']\n"), "", ["'!!python/object/apply:os.system' is not allowed"]),
    ("no-models", _with({"models": {}}), "models", ["at least one model alias"]),
]


@pytest.mark.parametrize("text,path,fragments", [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_bad_file_names_the_problem(tmp_path: Path, text: str, path: str, fragments: list[str]) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(SpecError) as info:
        load_scenario(f)
    problems = info.value.problems
    matching = [p for p in problems if p.path == path]
    assert matching, f"no problem at {path!r}: {info.value.render()}"
    message = str(matching[0])
    for frag in fragments:
        assert frag in message, f"{frag!r} not in {message!r}"


def test_errors_point_to_the_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(_with({"models.default.backend": "vlm"}))
    with pytest.raises(SpecError) as info:
        load_scenario(f)
    line = info.value.problems[0].line
    assert line is not None and "backend: vlm" in f.read_text().splitlines()[line - 1]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(_with({"steps": 0, "seed": -2, "world.max_actions_per_day": -1}))
    with pytest.raises(SpecError) as info:
        load_scenario(f)
    assert {p.path for p in info.value.problems} >= {"steps", "seed", "world.max_actions_per_day"}


def test_shipped_scenarios_validate() -> None:
    files = sorted(f for f in (SCENARIOS / "wargame").glob("*.yaml") if f.stem != "study")  # study.yaml: an experiment
    assert {f.stem for f in files} >= {"neutral", "invasion", "cyberattack"}
    for f in files:
        sc = load_scenario(f)
        assert sc.spec.kind == "wargame" and sc.spec.steps == 14
    assert "Orange launched an aggressive assault" in load_scenario(SCENARIOS / "wargame" / "invasion.yaml").world.day0


def test_validate_cli_exit_code_and_no_traceback(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(_with({"models.default.backend": "vlm", "steps": 0}))
    r = subprocess.run([sys.executable, "-m", "agentsim", "validate", str(f)], capture_output=True, text=True)
    assert r.returncode == 2
    out = r.stdout + r.stderr
    assert "Traceback" not in out
    assert "models.default.backend" in out and "'vlm' is not allowed" in out and "steps" in out
    ok = subprocess.run([sys.executable, "-m", "agentsim", "validate", str(SCENARIOS / "wargame" / "neutral.yaml")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr


def test_overrides_switch_backend_for_every_alias(tmp_path: Path) -> None:
    sc = load_scenario(SCENARIOS / "wargame" / "neutral.yaml", backend="scripted", seed=7, steps=2)
    assert {m.backend for m in sc.spec.models.values()} == {"scripted"}
    assert (sc.spec.seed, sc.spec.steps) == (7, 2)


def test_json_schema_covers_families() -> None:
    schema = scenario_json_schema()
    assert schema["properties"]["kind"]["enum"] == ["drift", "social", "tournament", "wargame"]
    assert "recommender" in schema["$defs"]["world_social"]["properties"]
    world = schema["$defs"]["world_wargame"]
    assert "max_actions_per_day" in world["properties"]
    assert world["properties"]["max_actions_per_day"]["description"]
    r = subprocess.run([sys.executable, "-m", "agentsim", "schema"], capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["title"] == "agentsim scenario"


# -- YAML: one bounded loader for every user file (agentsim/spec/yamlio.py) -------------------------------------------
def _billion_laughs(levels: int = 9) -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for prev, name in zip("abcdefghij", "bcdefghijk"[: levels - 1], strict=False):
        text += f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    return text


def test_billion_laughs_is_refused_fast_and_small(tmp_path: Path) -> None:
    import time
    import tracemalloc

    from agentsim.spec.yamlio import read_yaml

    f = tmp_path / "bomb.yaml"
    f.write_text(_billion_laughs())
    assert f.stat().st_size < 1024
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(SpecError) as info:
        read_yaml(f)
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 0.5 and peak < 20 * 2**20, (elapsed, peak)
    assert info.value.source == str(f)
    (p,) = info.value.problems
    assert "more than 1,000,000 nodes" in p.message and p.line is not None
    # The same through load_scenario and the scenario's own keys: a bomb inside a valid-looking scenario.
    g = tmp_path / "scenario.yaml"
    g.write_text(GOOD_TEXT + _billion_laughs())
    with pytest.raises(SpecError, match="more than 1,000,000 nodes"):
        load_scenario(g)


GOOD_TEXT = (SCENARIOS / "wargame" / "neutral.yaml").read_text()


# (id, YAML text, expected problem path, fragments of the message, line)
BAD_YAML = [
    ("deep-flow", "a: " + "[" * 5000 + "]" * 5000 + "\n", "", ["nesting deeper than 100 levels"], 1),
    ("deep-block", "".join(f"{'  ' * i}k{i}:\n" for i in range(150)) + "  " * 150 + "v: 1\n", "", ["nesting deeper than 100"], 100),
    ("dup-top", "kind: wargame\nsteps: 3\nsteps: 4\n", "steps", ["the key 'steps' appears twice in the top level", "lines 2 and 3"], 3),
    ("dup-nested", "world:\n  users:\n    count: 1\n    count: 2\n", "world.users.count", ["appears twice in the mapping at world.users", "lines 3 and 4"], 4),
    ("dup-in-list-item", "groups:\n  - {name: a, share: 1, share: 2}\n", "groups.0.share", ["'share' appears twice", "lines 2 and 2"], 2),
    ("dup-deep", "a:\n  b:\n    - c:\n        d: 1\n        e: 2\n        d: 3\n", "a.b.0.c.d", ["'d' appears twice", "lines 4 and 6"], 6),
    ("dup-number-keys", "1: a\n0x1: b\n", "1", ["appears twice", "lines 1 and 2"], 2),
    ("recursive-alias", "a: &x [1, *x]\n", "", ["refers to a node that contains it"], 1),
    ("python-object", "a: !!python/object:os.system {}\n", "", ["'!!python/object:os.system' is not allowed"], 1),
    ("python-name", "a: !!python/name:os.system\n", "", ["'!!python/name:os.system' is not allowed"], 1),
    ("two-documents", "a: 1\n---\nb: 2\n", "", ["expected a single document", "found another document"], 2),
    ("undefined-alias", "a: *nope\n", "", ["undefined alias"], 1),
    ("duplicate-anchor", "a: &x 1\nb: &x 2\n", "", ["duplicate anchor 'x'; first occurrence (line 1), second occurrence"], 2),
]


@pytest.mark.parametrize("text,path,fragments,line", [b[1:] for b in BAD_YAML], ids=[b[0] for b in BAD_YAML])
def test_yaml_loader_refuses(tmp_path: Path, text: str, path: str, fragments: list[str], line: int) -> None:
    from agentsim.spec.yamlio import read_yaml

    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(SpecError) as info:
        read_yaml(f)
    (p,) = info.value.problems
    assert info.value.source == str(f)
    assert p.path == path, p
    for frag in fragments:
        assert frag in p.message, (frag, p.message)
    assert p.line == line, p


@pytest.mark.parametrize("text,expected", [
    ("base: &b {x: 1, y: 2}\nc: {<<: *b, x: 3}\n", {"base": {"x": 1, "y": 2}, "c": {"x": 3, "y": 2}}),  # merge keys still override
    ("a: &a [1, 2]\nb: *a\nc: *a\n", {"a": [1, 2], "b": [1, 2], "c": [1, 2]}),  # aliases of small nodes are fine
    ("a: {x: 1}\nb: {x: 1}\n", {"a": {"x": 1}, "b": {"x": 1}}),  # the same key in different mappings
    ("\ufeffa: 1\n", {"a": 1}),  # a byte-order mark
])
def test_yaml_loader_accepts(tmp_path: Path, text: str, expected: object) -> None:
    from agentsim.spec.yamlio import read_yaml

    f = tmp_path / "ok.yaml"
    f.write_text(text, encoding="utf-8")
    assert read_yaml(f).data == expected


def test_yaml_size_limits_are_the_limits(tmp_path: Path) -> None:
    """Just under each limit loads; just over is refused (so the limits are what the docstring says)."""
    from agentsim.spec.yamlio import YamlLimits, parse_yaml

    limits = YamlLimits(max_bytes=10_000, max_depth=5, max_nodes=50)
    parse_yaml("[" * 5 + "]" * 5, "t", limits)
    with pytest.raises(SpecError, match="deeper than 5"):
        parse_yaml("[" * 6 + "]" * 6, "t", limits)
    parse_yaml("[" + ", ".join(["1"] * 49) + "]", "t", limits)  # 1 sequence + 49 scalars = 50 nodes
    with pytest.raises(SpecError, match="more than 50 nodes"):
        parse_yaml("[" + ", ".join(["1"] * 50) + "]", "t", limits)
    with pytest.raises(SpecError, match="more than 50 nodes"):  # 1 + 10 + 4 aliases x 10 nodes each
        parse_yaml("a: &a [" + ", ".join(["1"] * 9) + "]\nb: [*a, *a, *a, *a]\n", "t", limits)
    with pytest.raises(SpecError, match="larger than"):
        parse_yaml("a: " + "x" * 20_000, "t", YamlLimits(max_bytes=10_000))


@pytest.mark.parametrize("content,fragment", [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not a text file: byte 0x89 at offset 0 is not UTF-8"),
    (b"kind: wargame\x00\n", "character #x0000 is not allowed"),
])
def test_binary_files_are_refused(tmp_path: Path, content: bytes, fragment: str) -> None:
    f = tmp_path / "bin.yaml"
    f.write_bytes(content)
    with pytest.raises(SpecError, match=fragment):
        load_scenario(f)


def test_a_directory_is_not_a_scenario(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="is a directory"):
        load_scenario(tmp_path)


# -- wargame data files go through the same loader and errors ---------------------------------------------------------
NATION_B = "  - {name: B, static: {}, dynamic: {gdp: 1}}\n"
BAD_NATIONS = [
    ("python-tag", "nations: !!python/object/apply:os.system ['echo hi']\n", "", "'!!python/object/apply:os.system' is not allowed", 1),
    ("wrong-shape", "nations:\n  - name: A\n    static: {}\n    dynamic: {gdp: lots}\n" + NATION_B, "nations.0.dynamic.gdp", "valid number", 4),
    ("not-a-list", "nations: {A: 1}\n", "nations", "valid list", 1),
    ("unknown-field", "nations:\n  - {name: A, static: {}, dynamic: {}, colour: red}\n" + NATION_B, "nations.0.colour", "unknown field", 2),
    ("dup-key", "nations:\n  - {name: A, static: {}, dynamic: {}}\n" + NATION_B + "nations: []\n", "nations", "appears twice", 4),
]


@pytest.mark.parametrize("text,path,fragment,line", [b[1:] for b in BAD_NATIONS], ids=[b[0] for b in BAD_NATIONS])
def test_bad_nations_file_is_a_spec_error_naming_the_file(tmp_path: Path, text: str, path: str, fragment: str, line: int) -> None:
    nations = tmp_path / "nations.yaml"
    nations.write_text(text)
    f = tmp_path / "s.yaml"
    f.write_text(_with({"world.nations_file": "nations.yaml"}))
    with pytest.raises(SpecError) as info:
        load_scenario(f)
    p = info.value.problems[0]
    assert fragment in p.message, p
    if info.value.source == str(nations.resolve()):  # the YAML itself is wrong: the loader names file and line
        assert (p.path, p.line) == (path, line), p
    else:  # a row is wrong: at the field naming the file, core/datafile.py names file, row, line and field
        assert info.value.source == str(f) and p.path == "world.nations_file", info.value
        assert str(nations.resolve()) in p.message and f"line {line}" in p.message and path.split(".")[-1] in p.message, p


# -- booleans are not numbers, in every user-facing model --------------------------------------------------------------
def _user_models() -> list[type]:
    """ScenarioSpec, every installed family's world config, and every model nested in them."""
    import typing

    from pydantic import BaseModel

    from agentsim.core.registry import families, get_family
    from agentsim.spec.errors import _unwrap
    from agentsim.spec.models import ScenarioSpec

    todo: list[type] = [ScenarioSpec] + [get_family(n).config_model for n in families()]
    seen: list[type] = []

    def inner(tp: object) -> list[object]:
        out = []
        for t in _unwrap(tp):
            out.append(t)
            for a in typing.get_args(t):
                out.extend(inner(a))
        return out

    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.append(m)
        for f in m.model_fields.values():
            todo.extend(t for t in inner(f.annotation) if isinstance(t, type) and issubclass(t, BaseModel))
    return seen


def _numeric_fields() -> list[tuple[type, str, object]]:
    """(model, field, a value with a boolean where a number goes) for every int/float field, also inside lists
    and dicts of numbers."""
    import typing

    from agentsim.spec.errors import _unwrap

    out = []
    for m in _user_models():
        for name, f in m.model_fields.items():
            types = _unwrap(f.annotation)
            if bool in types:
                continue
            if any(t in (int, float) for t in types):
                out.append((m, name, True))
            for t in types:
                origin, args = typing.get_origin(t), typing.get_args(t)
                if origin in (list, tuple, set) and any(a in (int, float) for a in _unwrap(args[0])):
                    out.append((m, name, [True]))
                if origin is dict and any(a in (int, float) for a in _unwrap(args[1])):
                    out.append((m, name, {"k": True}))
    return out


NUMERIC_FIELDS = _numeric_fields()


@pytest.mark.parametrize("model,name,value", NUMERIC_FIELDS, ids=[f"{m.__name__}.{n}{'[]' if not isinstance(v, bool) else ''}" for m, n, v in NUMERIC_FIELDS])
def test_booleans_are_not_numbers(model: type, name: str, value: object) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        model.model_validate({name: value}, context={"base_dir": None})
    errs = [e for e in info.value.errors() if e["loc"][0] == name]
    assert any(e["type"] == "bool_not_number" for e in errs), errs


def test_the_numeric_field_walk_covers_every_family() -> None:
    """The table above is not empty by accident: it reaches the nested models of every family."""
    names = {m.__name__ for m, _, _ in NUMERIC_FIELDS}
    assert {"ScenarioSpec", "SamplingSpec", "ModelSpec", "RuntimeSpec", "LoggingSpec", "PolicySpec", "WargameConfig", "WorldModelSpec",
            "CSDSpec", "SocialConfig", "UsersSpec", "GroupSpec", "DriftConfig"} <= names, names
    assert len(NUMERIC_FIELDS) > 60


@pytest.mark.parametrize("change,path", [
    ({"steps": True}, "steps"),
    ({"seed": False}, "seed"),
    ({"models.default.sampling.max_tokens": True}, "models.default.sampling.max_tokens"),
    ({"world.max_actions_per_day": True}, "world.max_actions_per_day"),
    ({"world.history_days": True}, "world.history_days"),
])
def test_boolean_numbers_in_a_scenario_name_the_field_and_line(tmp_path: Path, change: dict, path: str) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(_with(change))
    with pytest.raises(SpecError) as info:
        load_scenario(f)
    (p,) = [p for p in info.value.problems if p.path == path]
    assert "a boolean, not a number" in p.message and p.line is not None


def test_a_boolean_does_not_hide_other_problems(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(_with({"steps": True, "seed": -1, "models.default.sampling.temperature": 9}))
    with pytest.raises(SpecError) as info:
        load_scenario(f)
    assert {p.path for p in info.value.problems} == {"steps", "seed", "models.default.sampling.temperature"}


# -- overrides: one mechanism, dotted paths (agentsim/spec/overrides.py) -----------------------------------------------
def _apply(data: dict, *sets: str, **flags: object) -> tuple[dict, dict]:
    from agentsim.spec.overrides import apply_to_data, command_line_overrides

    data = json.loads(json.dumps(data))
    applied = apply_to_data(data, command_line_overrides(list(sets), **flags))  # type: ignore[arg-type]
    return data, applied.paths


#: (flag keyword, its value, the dotted path it is sugar for, a different value for --set)
FLAGS = [
    ("steps", 3, "steps", 5),
    ("seed", 4, "seed", 9),
    ("out", "some/dir", "logging.dir", "other"),
    ("runtime", "ray", "runtime.kind", "local"),
    ("address", "auto", "runtime.address", "host:6379"),
    ("shards", 16, "runtime.shards", 8),
    ("backend", "scripted", "models.default.backend", "vllm"),
]


@pytest.mark.parametrize("flag,value,path,other", FLAGS, ids=[f[0] for f in FLAGS])
@pytest.mark.parametrize("mode", ["flag-only", "set-only", "same-value", "different-value", "other-key"])
def test_flags_are_sugar_for_dotted_paths(flag: str, value: object, path: str, other: object, mode: str) -> None:
    data = {"kind": "wargame", "steps": 14, "models": {"default": {"backend": "vllm"}}, "runtime": {"kind": "local"}}
    set_value = {"same-value": value, "different-value": other, "set-only": value}.get(mode)
    sets = [f"{path}={set_value}"] if set_value is not None else ["world.day0=hello"] if mode == "other-key" else []
    flags = {} if mode == "set-only" else {flag: value}
    if mode == "different-value":
        with pytest.raises(SpecError) as info:
            _apply(data, *sets, **flags)
        (p,) = info.value.problems
        assert p.path == path and f"--{flag} {value}" in p.message and f"--set {path}={other}" in p.message
        return
    out, paths = _apply(data, *sets, **flags)
    node: object = out
    for part in path.split("."):
        node = node[part]  # type: ignore[index]
    assert node == value
    assert path in paths
    if flag == "address" and mode != "set-only":
        assert out["runtime"]["kind"] == "ray"  # --address implies the ray runtime


def test_backend_reaches_every_alias_including_added_ones() -> None:
    data = {"models": {"a": {"backend": "vllm"}, "b": {}}}
    out, paths = _apply(data, "models.c.model=x", backend="scripted")
    assert {k: v["backend"] for k, v in out["models"].items()} == {"a": "scripted", "b": "scripted", "c": "scripted"}
    assert set(paths) == {"models.a.backend", "models.b.backend", "models.c.backend", "models.c.model"}
    out, _ = _apply({"kind": "wargame"}, backend="scripted")  # no models: section: the default alias
    assert out["models"] == {"default": {"backend": "scripted"}}
    with pytest.raises(SpecError) as info:
        _apply(data, "models.a.backend=vllm", backend="scripted")
    (p,) = info.value.problems
    assert p.path == "models.a.backend" and "--backend scripted" in p.message and "--set models.a.backend=vllm" in p.message


def test_shallow_paths_apply_first_whatever_the_order() -> None:
    for sets in (["w.users={count: 5}", "w.users.count=6"], ["w.users.count=6", "w.users={count: 5}"]):
        out, _ = _apply({"w": {}}, *sets)
        assert out["w"]["users"] == {"count": 6}


@pytest.mark.parametrize("item,fragment", [
    ("steps", "is not KEY=VALUE"),
    ("=3", "is not KEY=VALUE"),
    ("world..x=1", "has an empty part"),
    ("world.x=[1", "not valid YAML"),
])
def test_malformed_set_items(item: str, fragment: str) -> None:
    from agentsim.spec.overrides import parse_set

    with pytest.raises(SpecError, match=re.escape(fragment)):
        parse_set(item)


# Path shapes: through a mapping, a list index, an index out of range, not an index, through a scalar, `*`.
SHAPE_DATA = {"world": {"day0": "text", "n": 3, "groups": [{"share": 1}, {"share": 2}], "empty": None, "flag": True, "none": []}}
SHAPES = [
    ("world.groups.1.share=5", ("world", "groups", 1, "share"), 5, None),
    ("world.groups.*.share=7", ("world", "groups", 0, "share"), 7, None),
    ("world.empty.x=1", ("world", "empty", "x"), 1, None),
    ("world.new.deep.x=1", ("world", "new", "deep", "x"), 1, None),
    ("world.groups.2.share=5", None, None, ("world.groups", "has 2 item(s); index 2 is out of range (0..1)")),
    ("world.none.0=5", None, None, ("world.none", "has 0 item(s); index 0 is out of range (the list is empty)")),
    ("world.groups.x.share=5", None, None, ("world.groups", "is a list; 'x' is not an index")),
    ("world.groups.-1.share=5", None, None, ("world.groups", "is a list; '-1' is not an index")),
    ("world.day0.x=1", None, None, ("world.day0", "is a string ('text'), not a mapping or a list, so it has no 'x'")),
    ("world.n.x=1", None, None, ("world.n", "is a number (3)")),
    ("world.flag.x=1", None, None, ("world.flag", "is a boolean (True)")),
    ("world.day0.*=1", None, None, ("world.day0", "'*' needs a mapping or a list")),
]


@pytest.mark.parametrize("item,loc,value,error", [s for s in SHAPES], ids=[s[0] for s in SHAPES])
def test_override_path_shapes(item: str, loc: tuple | None, value: object, error: tuple[str, str] | None) -> None:
    if error is not None:
        with pytest.raises(SpecError) as info:
            _apply(SHAPE_DATA, item)
        (p,) = info.value.problems
        assert p.path == error[0] and error[1] in p.message and f"--set {item}" in p.message, p
        return
    out, _ = _apply(SHAPE_DATA, item)
    node: object = out
    for part in loc:  # type: ignore[union-attr]
        node = node[part]  # type: ignore[index]
    assert node == value


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text("ab", max_size=3))
_trees = st.recursive(_scalars, lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(st.sampled_from("abc"), kids, max_size=3)), max_leaves=12)
_parts = st.lists(st.one_of(st.sampled_from("abc"), st.sampled_from(["0", "1", "2", "x"])), min_size=1, max_size=4)


def _leaves(node: object, loc: tuple = ()) -> dict[tuple, object]:
    if isinstance(node, dict) and node:
        return {k: v for key, child in node.items() for k, v in _leaves(child, (*loc, key)).items()}
    if isinstance(node, list) and node:
        return {k: v for i, child in enumerate(node) for k, v in _leaves(child, (*loc, i)).items()}
    return {loc: node}


@settings(max_examples=300, deadline=None)
@given(tree=st.dictionaries(st.sampled_from("abc"), _trees, max_size=3), parts=_parts, value=st.integers(100, 200))
def test_override_property(tree: dict, parts: list[str], value: int) -> None:
    """Either the value lands at the path and nothing else changes, or the error stops at a prefix of the path
    where the next part cannot be followed (a scalar, a list and not a valid index)."""
    path = ".".join(parts)
    try:
        out, _ = _apply(tree, f"{path}={value}")
    except SpecError as e:
        (p,) = e.problems
        stop = p.path.split(".") if p.path else []
        assert parts[: len(stop)] == stop and len(stop) < len(parts), (p, parts)
        node: object = tree
        for part in stop:
            node = node[int(part)] if isinstance(node, list) else node[part]  # type: ignore[index]
        nxt = parts[len(stop)]
        if isinstance(node, list):
            assert not nxt.isdigit() or int(nxt) >= len(node), (node, nxt)
        else:
            assert node is not None and not isinstance(node, dict), node
        return
    node = out
    loc: list = []
    for part in parts:
        key: object = int(part) if isinstance(node, list) else part
        loc.append(key)
        node = node[key]  # type: ignore[index]
    assert node == value
    for leaf, v in _leaves(tree).items():
        if tuple(leaf[: len(loc)]) != tuple(loc) and tuple(loc[: len(leaf)]) != tuple(leaf):
            cur: object = out
            for k in leaf:
                cur = cur[k]  # type: ignore[index]
            assert cur == v, (leaf, v, cur)


def test_a_star_value_is_copied_to_each_place() -> None:
    out, _ = _apply({"models": {"a": {}, "b": {}}}, "models.*.sampling={temperature: 1}", "models.a.sampling.max_tokens=5")
    assert out["models"]["a"]["sampling"] == {"temperature": 1, "max_tokens": 5}
    assert out["models"]["b"]["sampling"] == {"temperature": 1}


def test_prepare_builds_the_world_once_and_hands_it_over(tmp_path: Path) -> None:
    """`prepare_scenario` (what `validate` and `run` share) builds the world; the runtime's first create_world gets
    that world (no second read of the data files), later ones (a rollback to step 0) build a new one."""
    from agentsim.spec.loader import prepare_scenario

    users = tmp_path / "users.csv"
    users.write_text("user_id,group\nalice,remote\nbob,office\n")
    data = yaml.safe_load((SCENARIOS / "social" / "reddit_herd_effect.yaml").read_text())
    data["world"]["users"] = {"file": "users.csv", "groups": data["world"]["users"]["groups"]}
    data["logging"] = {"dir": str(tmp_path / "runs")}
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(data))
    sc = prepare_scenario(f)
    users.unlink()
    first = sc.family.create_world(sc.spec, sc.world)  # built before the file went away
    assert len(first.pop) == 2
    with pytest.raises(ValueError, match="users.csv"):
        sc.family.create_world(sc.spec, sc.world)
