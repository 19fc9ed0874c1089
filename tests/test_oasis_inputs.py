"""Small input faults met running OASIS's data: `--set key=null`, YAML 1.1 booleans where text is wanted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from agentsim.spec.errors import SpecError
from agentsim.spec.loader import load_scenario
from agentsim.spec.overrides import command_line_overrides

from conftest import SCENARIOS, write_scenario

X = SCENARIOS / "social" / "x_information_spread.yaml"


@pytest.mark.parametrize("null", ["null", "~", "", "Null", "NULL"])
def test_set_null_clears_a_field_so_another_can_replace_it(tmp_path: Path, null: str) -> None:
    users = SCENARIOS / "social" / "examples" / "users.csv"
    sc = load_scenario(X, command_line_overrides([f"world.users.count={null}", f"world.users.file={users}"], backend="scripted"))
    assert sc.world.users.count is None and sc.world.users.file == users
    assert sc.overrides["world.users.count"] is None  # recorded in run.json as given


def test_set_null_where_a_value_is_required_is_an_error_naming_the_field() -> None:
    with pytest.raises(SpecError) as e:
        load_scenario(X, command_line_overrides(["world.users.count=null"], backend="scripted"))
    assert "world.users" in str(e.value) and "exactly one of 'count'" in str(e.value)


@pytest.mark.parametrize(("word", "boolean"), [("yes", "true"), ("no", "false"), ("on", "true"), ("off", "false"),
                                              ("Yes", "true"), ("NO", "false"), ("True", "true"), ("OFF", "false")])
def test_yaml_11_booleans_where_text_is_expected_say_quote_it(tmp_path: Path, word: str, boolean: str) -> None:
    f = write_scenario(tmp_path, X)
    text = f.read_text().replace("  topic: a new city climate policy",
                                 f"  topic: {word}\n  stance: {{positive: [good, {word}], negative: [bad]}}")
    f.write_text(text)
    data = yaml.safe_load(text)
    if data["world"]["topic"] is not (boolean == "true"):
        pytest.skip(f"PyYAML reads {word!r} as {data['world']['topic']!r}, not a boolean")
    with pytest.raises(SpecError) as e:
        load_scenario(f)
    problems = {p.path: p for p in e.value.problems}
    for path in ("world.topic", "world.stance.positive.1"):
        msg = problems[path].message
        assert f"YAML read {word} as the boolean {boolean}" in msg and f"write '{word}' in quotes" in msg, msg
        assert problems[path].line is not None


def test_a_boolean_from_the_command_line_also_says_quote_it() -> None:
    with pytest.raises(SpecError) as e:
        load_scenario(X, command_line_overrides(["world.topic=yes"], backend="scripted"))
    assert "quote it" in str(e.value) and "--set world.topic=yes" in str(e.value)


def test_quoted_words_are_text(tmp_path: Path) -> None:
    f = write_scenario(tmp_path, X)
    f.write_text(f.read_text().replace("  topic: a new city climate policy",
                                       "  topic: 'yes'\n  stance: {positive: ['yes'], negative: ['no']}"))
    sc = load_scenario(f)
    assert sc.world.topic == "yes" and sc.world.stance.positive == ["yes"]
    assert json.dumps(sc.world.stance.negative) == '["no"]'
