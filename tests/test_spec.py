"""Scenario validation: every bad file gets an error naming the field path, the bad value and what is allowed."""

from __future__ import annotations

import json
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
    ("python-tag", _with(raw="kind: !!python/object/apply:os.system ['echo hi']\n"), "", ["not valid YAML"]),
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
    files = sorted((SCENARIOS / "wargame").glob("*.yaml"))
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
