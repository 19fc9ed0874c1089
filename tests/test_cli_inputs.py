"""Bad input through the real command line: `validate` and `run` give the same verdict, exit 2, one clear message
naming the file, field and line, and never a traceback. Runs use the scripted backend (seconds, no LLM)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from agentsim.cli import app

from conftest import SCENARIOS, write_scenario

NEUTRAL = SCENARIOS / "wargame" / "neutral.yaml"
SOCIAL = SCENARIOS / "social" / "reddit_herd_effect.yaml"
CSD = SCENARIOS / "tournament" / "csd_example.yaml"


def cli(*args: object) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_input_error(r: Result, *fragments: str) -> str:
    """Exit 2, no traceback, every fragment in the output; returns the output."""
    out = r.output
    assert r.exit_code == 2, (r.exit_code, out, r.exception)
    assert isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in out
    for f in fragments:
        assert f in out, (f, out)
    return out


def assert_ok(r: Result) -> str:
    assert r.exit_code == 0, (r.exit_code, r.output, r.exception)
    return r.output


def _problem(out: str) -> str:
    """The SpecError text of a `validate` ("invalid ...") or `run` ("error: ...") output."""
    text = out.strip()
    for prefix in ("invalid ", "error: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    raise AssertionError(f"no error in {out!r}")


# -- 1. --set and the flags: one mechanism ----------------------------------------------------------------------------
def test_readme_set_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`agentsim run scenarios/wargame/neutral.yaml --backend scripted --set steps=3` (rc 1 TypeError before), and
    the cluster example's `--set runtime.shards=16`; the run says where it went, absolute, at start and at the end."""
    monkeypatch.chdir(tmp_path)
    out = assert_ok(cli("run", NEUTRAL, "--backend", "scripted", "--set", "steps=3", "--set", "runtime.shards=16"))
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert f"Run directory: {run_dir}" in out and f"Logs: {run_dir}" in out
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["spec"]["steps"] == 3 and meta["steps_completed"] == 3 and meta["spec"]["runtime"]["shards"] == 16
    assert meta["overrides"] == {"steps": 3, "runtime.shards": 16, "models.default.backend": "scripted"}


#: (flag, its value, the dotted path it stands for, another value)
FLAGS = [
    ("--steps", "3", "steps", "5"),
    ("--seed", "4", "seed", "9"),
    ("--out", "runs-a", "logging.dir", "runs-b"),
    ("--runtime", "ray", "runtime.kind", "local"),
    ("--address", "auto", "runtime.address", "host:6379"),
    ("--shards", "16", "runtime.shards", "8"),
    ("--backend", "scripted", "models.default.backend", "vllm"),
]


@pytest.mark.parametrize("flag,value,path,other", FLAGS, ids=[f[0] for f in FLAGS])
def test_flag_and_set_of_one_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: str, value: str, path: str, other: str) -> None:
    """Same value: fine. Different values: an error naming both (before: TypeError 'multiple values' for steps,
    seed, logging.dir, runtime.kind, runtime.shards)."""
    monkeypatch.chdir(tmp_path)
    f = write_scenario(tmp_path)
    assert_ok(cli("validate", f, flag, value, "--set", f"{path}={value}"))
    assert_input_error(cli("validate", f, flag, value, "--set", f"{path}={other}"),
                       f"{path}: ", f"{flag} {value}", f"--set {path}={other}", "different values")
    assert_input_error(cli("run", f, flag, value, "--set", f"{path}={other}"), f"{flag} {value}", f"--set {path}={other}")


def test_run_json_records_every_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    f = write_scenario(tmp_path)
    assert_ok(cli("run", f, "--backend", "scripted", "--seed", "3", "--steps", "2", "--out", "rel", "--shards", "2",
                  "--set", "world.max_actions_per_day=2", "--set", "policy.max_retries=0", "--quiet"))
    (run_dir,) = (tmp_path / "rel").iterdir()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["overrides"] == {
        "seed": 3, "steps": 2, "models.default.backend": "scripted", "logging.dir": str(tmp_path / "rel"),
        "runtime.shards": 2, "world.max_actions_per_day": 2, "policy.max_retries": 0,
    }
    assert (meta["spec"]["seed"], meta["spec"]["world"]["max_actions_per_day"]) == (3, 2)
    # A run without overrides records an empty object, so runs group by it.
    assert_ok(cli("run", write_scenario(tmp_path, steps=1, **{"models.default.backend": "scripted"}), "--run-dir", tmp_path / "plain", "--quiet"))
    assert json.loads((tmp_path / "plain" / "run.json").read_text())["overrides"] == {}


def test_runtime_and_address_overrides_are_recorded(tmp_path: Path) -> None:
    from agentsim.spec.loader import load_scenario
    from agentsim.spec.overrides import command_line_overrides

    f = write_scenario(tmp_path)
    sc = load_scenario(f, command_line_overrides([], address="auto"))
    assert sc.overrides == {"runtime.address": "auto", "runtime.kind": "ray"}
    sc = load_scenario(f, command_line_overrides([], runtime="ray", address="h:1"))
    assert sc.overrides == {"runtime.address": "h:1", "runtime.kind": "ray"}


SHAPES = [
    (NEUTRAL, "world.day0.x=1", 2, ["world.day0 (line", "--set world.day0.x=1: world.day0 is a string", "no 'x' inside it"]),
    (NEUTRAL, "world.groups.0.share=2", 2, ["world.groups: unknown field 'groups'", "(from --set world.groups.0.share=2)"]),
    (NEUTRAL, "world.nope=1", 2, ["world.nope: unknown field 'nope'"]),
    (SOCIAL, "world.users.groups.0.share=2", 0, []),
    (SOCIAL, "world.users.groups.*.stance=0", 0, []),
    (SOCIAL, "world.users.groups.2.share=2", 2, ["world.users.groups has 2 item(s); index 2 is out of range (0..1)"]),
    (SOCIAL, "world.users.groups.first.share=2", 2, ["world.users.groups is a list; 'first' is not an index"]),
    (SOCIAL, "world.users.count.x=2", 2, ["world.users.count is a number (40)"]),
    (SOCIAL, "world.users.groups.0.share=true", 2, ["world.users.groups.0.share: a boolean, not a number"]),
]


@pytest.mark.parametrize("scenario,item,code,fragments", SHAPES, ids=[s[1] for s in SHAPES])
def test_set_path_shapes(tmp_path: Path, scenario: Path, item: str, code: int, fragments: list[str]) -> None:
    f = write_scenario(tmp_path, scenario)
    r = cli("validate", f, "--set", item)
    if code == 0:
        assert_ok(r)
    else:
        assert_input_error(r, *fragments)


# -- 3. validate and run give the same verdict ------------------------------------------------------------------------
def _nations(text: str | None) -> Callable[[Path], tuple[Path, list[str]]]:
    """A scenario whose nations_file holds `text` (None: is a directory)."""
    def make(tmp: Path) -> tuple[Path, list[str]]:
        if text is None:
            (tmp / "nations.yaml").mkdir()
        else:
            (tmp / "nations.yaml").write_text(text)
        return write_scenario(tmp, **{"world.nations_file": "nations.yaml"}), []
    return make


def _actions(text: str) -> Callable[[Path], tuple[Path, list[str]]]:
    def make(tmp: Path) -> tuple[Path, list[str]]:
        (tmp / "actions.yaml").write_text(text)
        return write_scenario(tmp, **{"world.actions_file": "actions.yaml"}), []
    return make


def _raw(text: str | bytes) -> Callable[[Path], tuple[Path, list[str]]]:
    def make(tmp: Path) -> tuple[Path, list[str]]:
        f = tmp / "raw.yaml"
        f.write_bytes(text if isinstance(text, bytes) else text.encode())
        return f, []
    return make


def _social_users(tmp: Path) -> tuple[Path, list[str]]:
    (tmp / "users.csv").write_text("user_id,group\nalice,remote\nbob,office\nalice,office\n")
    data = yaml.safe_load(SOCIAL.read_text())
    data["world"]["users"] = {"file": "users.csv", "groups": data["world"]["users"]["groups"]}
    data["logging"] = {"dir": str(tmp / "runs")}
    f = tmp / "social.yaml"
    f.write_text(yaml.safe_dump(data))
    return f, []


def _scores_without_models(tmp: Path) -> tuple[Path, list[str]]:
    (tmp / "scores.csv").write_text("name,b1,b2\nm1,1,2\nm2,2,1\n")
    return write_scenario(tmp, CSD, **{"world.csd.scores_file": "scores.csv", "world.csd.eliminations": 0}), []


def _args(*args: str, scenario: Path = NEUTRAL) -> Callable[[Path], tuple[Path, list[str]]]:
    def make(tmp: Path) -> tuple[Path, list[str]]:
        (tmp / "afile").write_text("not a directory")
        return write_scenario(tmp, scenario), [a.replace("{tmp}", str(tmp)) for a in args]
    return make


def _replay_source(**spec: Any) -> Callable[[Path], tuple[Path, list[str]]]:
    """A recorded run (written by agentsim's writer) whose spec differs from the scenario's by `spec`."""
    def make(tmp: Path) -> tuple[Path, list[str]]:
        from conftest import write_run_log

        f = write_scenario(tmp)
        recorded = {**yaml.safe_load(f.read_text()), **spec}
        write_run_log(tmp / "source", calls=[{"request_id": "r", "step": 0, "completion_text": "{}"}], spec=recorded)
        return f, ["--backend", "replay", "--replay-from", str(tmp / "source")]
    return make


BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))

# (id, build(tmp) -> (scenario, extra args), fragments the message must hold)
SAME_VERDICT = [
    ("steps-true", lambda tmp: (write_scenario(tmp, steps=True), []), ["steps (line", "a boolean, not a number"]),
    ("seed-string", lambda tmp: (write_scenario(tmp, seed="x"), []), ["seed (line", "valid integer"]),
    ("nations-python-tag", _nations("nations: !!python/object/apply:os.system ['echo hi']\n"), ["nations.yaml: 1 problem", "'!!python/object/apply:os.system' is not allowed"]),
    ("nations-wrong-shape", _nations("nations:\n  - {name: A, static: {}, dynamic: {gdp: lots}}\n  - {name: B, static: {}, dynamic: {}}\n"),
     ["world.nations_file", "nations.yaml row 1 (line 2, id 'A'): field dynamic.gdp", "valid number"]),
    ("nations-not-a-mapping", _nations("- just a list\n"), ["world.nations_file", "nations.yaml (line 1): top level", "valid dictionary"]),
    ("nations-duplicate-key", _nations("nations: []\nnations: []\n"), ["nations.yaml", "the key 'nations' appears twice", "lines 1 and 2"]),
    ("nations-file-is-a-directory", _nations(None), ["nations.yaml: 1 problem", "is a directory"]),
    ("actions-python-tag", _actions("actions: !!python/name:os.system\n"), ["actions.yaml: 1 problem", "'!!python/name:os.system' is not allowed"]),
    ("actions-wrong-shape", _actions("actions:\n  - {name: wait, description: x, privacy: secret}\n"),
     ["world.actions_file", "actions.yaml row 1 (line 2, id 'wait'): field privacy", "'secret' is not allowed"]),
    ("scenario-duplicate-key", _raw(NEUTRAL.read_text() + "steps: 3\n"), ["raw.yaml", "the key 'steps' appears twice"]),
    ("alias-bomb", _raw(NEUTRAL.read_text() + BOMB), ["raw.yaml", "more than 1,000,000 nodes"]),
    ("binary-scenario", _raw(b"\x7fELF\x02\x01\x01\x00\x00\xff\xfe"), ["raw.yaml", "not a text file"]),
    ("directory-scenario", lambda tmp: (tmp, []), ["is a directory"]),
    ("missing-scenario", lambda tmp: (tmp / "nope.yaml", []), ["nope.yaml", "scenario file not found"]),
    ("social-duplicate-user-ids", _social_users, ["social.yaml", "world.users.file", "first at", "users.csv row 1 (id 'alice'): field user_id"]),
    ("csd-scores-without-model-column", _scores_without_models, ["world.csd.scores_file (line", "scores.csv: needs a 'model' column"]),
    ("out-is-a-file", _args("--out", "{tmp}/afile"), ["logging.dir: {tmp}/afile is a file, not a directory (from the command line)"]),
    ("out-inside-a-file", _args("--out", "{tmp}/afile/runs"), ["{tmp}/afile/runs is inside {tmp}/afile, which is a file"]),
    ("out-on-a-virtual-file-system", _args("--out", "/proc/agentsim-runs"), ["logging.dir: cannot create the run log in /proc: "]),
    ("run-dir-inside-a-file", _args("--run-dir", "{tmp}/afile/run"), ["--run-dir: {tmp}/afile/run is inside {tmp}/afile, which is a file"]),
    ("run-dir-not-empty", _args("--run-dir", "{tmp}"), ["{tmp} exists and is not empty; choose another --run-dir"]),
    ("set-through-a-string", _args("--set", "world.day0.x=1"), ["world.day0 is a string"]),
    ("flag-and-set-disagree", _args("--steps", "2", "--set", "steps=3"), ["command line: 1 problem", "--steps 2", "--set steps=3"]),
    ("set-unknown-field", _args("--set", "world.max_action_per_day=1"), ["unknown field 'max_action_per_day'"]),
    ("set-malformed", _args("--set", "steps"), ["'steps' is not KEY=VALUE"]),
    ("set-bad-yaml-value", _args("--set", "world.day0=[unclosed"), ["the value is not valid YAML"]),
    ("human-not-a-seat", _args("--human", "Atlantis"), ["--human", "'Atlantis' is neither an agent nor a model alias"]),
    ("replay-without-source", _args("--backend", "replay"), ["--backend replay needs --replay-from RUN_DIR"]),
    ("replay-from-missing", _args("--backend", "replay", "--replay-from", "{tmp}/nope"), ["--replay-from", "{tmp}/nope"]),
    ("replay-from-another-family", _replay_source(kind="drift"), ["--replay-from {tmp}/source: a drift run", "none of its recorded answers can match"]),
    ("replay-from-another-seed", _replay_source(seed=7), ["--replay-from {tmp}/source", "(seed 7)", "Run with --seed 7"]),
]


@pytest.mark.parametrize("build,fragments", [c[1:] for c in SAME_VERDICT], ids=[c[0] for c in SAME_VERDICT])
def test_validate_and_run_give_the_same_verdict(tmp_path: Path, build: Callable, fragments: list[str]) -> None:
    scenario, args = build(tmp_path)
    v = assert_input_error(cli("validate", scenario, "--backend", "scripted", *args), *(f.replace("{tmp}", str(tmp_path)) for f in fragments))
    r = assert_input_error(cli("run", scenario, "--backend", "scripted", "--quiet", *args))
    assert _problem(v) == _problem(r)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing started


def test_alias_bomb_through_the_real_cli_is_quick(tmp_path: Path) -> None:
    f = tmp_path / "bomb.yaml"
    f.write_text(BOMB)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "agentsim", "validate", str(f)], capture_output=True, text=True, timeout=60)
    assert time.perf_counter() - t0 < 30  # interpreter start included; before: past 60 s and 3.7 GB
    assert r.returncode == 2 and "more than 1,000,000 nodes" in r.stderr and "Traceback" not in r.stderr + r.stdout


# -- 5. resume of a damaged run directory -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scripted run of 7 steps stopped after its checkpoint at step 5 (made as a 5-step run whose run.json then
    asks for 7: what a run killed after step 5 leaves)."""
    tmp = tmp_path_factory.mktemp("stopped")
    f = write_scenario(tmp, steps=5)
    assert_ok(cli("run", f, "--backend", "scripted", "--run-dir", tmp / "run", "--quiet"))
    meta = json.loads((tmp / "run" / "run.json").read_text())
    meta["spec"]["steps"] = 7
    meta.update(status="interrupted")
    (tmp / "run" / "run.json").write_text(json.dumps(meta))
    assert json.loads((tmp / "run" / "checkpoint.json").read_text())["next_step"] == 5
    return tmp / "run"


def _copy(run: Path, tmp: Path) -> Path:
    return Path(shutil.copytree(run, tmp / "copy"))


def test_resume_of_an_intact_copy_works(stopped_run: Path, tmp_path: Path) -> None:
    run = _copy(stopped_run, tmp_path)
    assert_ok(cli("resume", run, "--quiet"))
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


RUN_JSON = [
    ("empty-object", "{}", "lacks 'spec' (the scenario of the run)"),
    ("a-list", "[1, 2]", "expected a JSON object with the run's spec, found list"),
    ("spec-not-object", '{"spec": 3}', "'spec' should be an object, found 3"),
    ("status-not-string", '{"spec": {}, "status": 1}', "'status' should be a string, found 1"),
    ("not-json", "{'spec':", "not valid JSON"),
    ("truncated", None, "not valid JSON"),
    ("bad-spec", "steps0", "run.json (spec): 1 problem"),
    ("missing", "", "not a run directory (no run.json)"),
]


@pytest.mark.parametrize("text,fragment", [c[1:] for c in RUN_JSON], ids=[c[0] for c in RUN_JSON])
def test_resume_with_a_bad_run_json(stopped_run: Path, tmp_path: Path, text: str | None, fragment: str) -> None:
    run = _copy(stopped_run, tmp_path)
    meta = run / "run.json"
    if text is None:
        meta.write_text(meta.read_text()[: len(meta.read_text()) // 2])
    elif text == "steps0":
        m = json.loads(meta.read_text())
        m["spec"]["steps"] = 0
        meta.write_text(json.dumps(m))
    elif text == "":
        meta.unlink()
    else:
        meta.write_text(text)
    out = assert_input_error(cli("resume", run), fragment)
    assert "run.json" in out


CHECKPOINTS = [
    ("not-json", lambda ck: "{not json", "not valid JSON"),
    ("truncated", lambda ck: json.dumps(ck)[:100], "not valid JSON"),
    ("a-list", lambda ck: "[]", "JSON a list, not an object"),
    ("no-next-step", lambda ck: json.dumps({k: v for k, v in ck.items() if k != "next_step"}), "no 'next_step'"),
    ("next-step-string", lambda ck: json.dumps({**ck, "next_step": "5"}), "'next_step' is \"5\", not an integer"),
    ("missing-arrays", lambda ck: json.dumps({**ck, "world_arrays": "checkpoint-000005.npz"}), "names world arrays 'checkpoint-000005.npz' that are not in"),
    ("wrong-world-state", lambda ck: json.dumps({**ck, "world": {"bogus": 1}}), "the checkpoint cannot be restored"),
]


@pytest.mark.parametrize("damage,fragment", [c[1:] for c in CHECKPOINTS], ids=[c[0] for c in CHECKPOINTS])
def test_resume_with_a_damaged_checkpoint(stopped_run: Path, tmp_path: Path, damage: Callable, fragment: str) -> None:
    """The checkpoint is named (before: blamed on the scenario, "cannot build the wargame world"), with what to do;
    doing it works."""
    run = _copy(stopped_run, tmp_path)
    ck = run / "checkpoint.json"
    ck.write_text(damage(json.loads(ck.read_text())))
    out = assert_input_error(cli("resume", run), "checkpoint.json", fragment, "delete")
    assert "cannot build" not in out
    ck.unlink()
    assert_ok(cli("resume", run, "--quiet"))  # the advice: without the checkpoint the run starts again from step 0
    assert json.loads((run / "run.json").read_text())["steps_completed"] == 7


def test_resume_of_a_missing_directory(tmp_path: Path) -> None:
    assert_input_error(cli("resume", tmp_path / "nope"), "not a run directory (not found)")


# -- 6. relative paths: relative to where they are written ------------------------------------------------------------
def test_relative_paths_follow_where_they_are_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In the scenario file: relative to the file. On the command line: relative to the working directory."""
    home, work = tmp_path / "scenarios", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.chdir(work)
    data = yaml.safe_load(NEUTRAL.read_text())
    data["logging"] = {"dir": "../logs"}
    data["world"]["nations_file"] = "nations.yaml"
    shutil.copy(Path(__import__("agentsim.scenarios.wargame", fromlist=["x"]).__file__).parent / "data" / "nations.yaml", home / "nations.yaml")
    f = home / "s.yaml"
    f.write_text(yaml.safe_dump(data))
    out = assert_ok(cli("run", f, "--backend", "scripted", "--steps", "1"))
    (run_dir,) = (tmp_path / "logs").iterdir()  # ../logs from scenarios/, not from work/
    assert f"Run directory: {run_dir}" in out and f"Logs: {run_dir}" in out
    # --out and --set logging.dir: from the working directory.
    assert_ok(cli("run", f, "--backend", "scripted", "--steps", "1", "--out", "mine", "--quiet"))
    assert len(list((work / "mine").iterdir())) == 1
    assert_ok(cli("run", f, "--backend", "scripted", "--steps", "1", "--set", "logging.dir=also", "--quiet"))
    assert len(list((work / "also").iterdir())) == 1
    # --set world.nations_file=...: from the working directory, so the file beside the scenario is not found ...
    assert_input_error(cli("validate", f, "--set", "world.nations_file=nations.yaml"), f"file not found: {work / 'nations.yaml'}")
    # ... and one in the working directory is.
    shutil.copy(home / "nations.yaml", work / "nations.yaml")
    assert "logs under" in assert_ok(cli("validate", f, "--set", "world.nations_file=nations.yaml"))
    assert f"log in {tmp_path / 'fresh'}" in assert_ok(cli("validate", f, "--set", "world.nations_file=nations.yaml",
                                                           "--run-dir", str(tmp_path / "fresh")))


def test_schema_still_works() -> None:
    r = cli("schema")
    assert r.exit_code == 0
    schema = json.loads(r.stdout)
    assert "Relative to the scenario file's folder when written in the file" in schema["$defs"]["LoggingSpec"]["properties"]["dir"]["description"]


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    import agentsim

    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"agentsim {agentsim.__version__}"
    assert agentsim.__version__ == version("agentsim")
