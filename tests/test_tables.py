"""Tables as a reader sees them: `--out` CSVs keep every row (the terminal shows the first rows and says how many
more), numbers formatted per column with units in headers, warnings as notes (unstable fits, n=1, reductions over
100 %, incomplete runs), no LLM tokens/s for a scripted run, and tables that do not apply hidden in the terminal."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from agentsim.analysis.display import MISSING, format_number, header
from agentsim.analysis.drift import compare_arms, fit_recurrence
from agentsim.analysis.escalation import compare_runs, escalation_tables
from agentsim.analysis.social import (
    fit_exposure_hazard,
    herd_from_events,
    herd_table,
    power_law_table,
    saturation_test,
)
from agentsim.analysis.tables import notes_of, why_not_applicable
from agentsim.cli import app
from agentsim.logs.reader import RunLog
from agentsim.runtime.summary import df_table, token_line

from conftest import SCENARIOS, write_run_log

ROOT = Path(__file__).parents[1]


def _run(scenario: Path, run_dir: Path, *args: str) -> Path:
    r = subprocess.run([sys.executable, "-m", "agentsim", "run", str(scenario), "--backend", "scripted", "--run-dir", str(run_dir),
                        "--quiet", *args], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return run_dir


def _analyze(*args: str):
    r = CliRunner().invoke(app, ["analyze", *args])
    assert r.exit_code == 0, r.output[-3000:]
    return r.output


def _render(table: object, width: int = 200) -> str:
    c = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    c.print(table)
    return c.export_text()


# -- every row in --out; "N more rows" in the terminal, per family ------------------------------------------------
def _social_roots(log: RunLog) -> int:
    return int((log.events["action"] == "create_post").sum())


def _wargame_days(log: RunLog) -> int:
    return int(log.metrics["step"].nunique())


def _tournament_players(log: RunLog) -> int:
    m = log.events[log.events["action"] == "match"]
    return len(set(m["agent_id"]) | set(m["target"]))


def _drift_arm_turns(log: RunLog) -> int:
    t = log.events[log.events["action"] == "turn"]
    return len({(json.loads(p)["arm"], json.loads(p)["turn"]) for p in t["payload"]})


FAMILIES = [
    # scenario, extra run args, analysis, table, independent count of its rows from the log
    ("social/x_information_spread.yaml", ["--steps", "3"], "social", "cascades", _social_roots),
    ("wargame/neutral.yaml", ["--steps", "3"], "escalation", "per_day", _wargame_days),
    ("tournament/live_ipd.yaml", [], "tournament", "standings", _tournament_players),
    ("drift/customer_service.yaml", ["--steps", "3"], "drift", "satisfaction", _drift_arm_turns),
]


@pytest.mark.parametrize(("scenario", "run_args", "analysis", "table", "count"), FAMILIES, ids=[f[2] for f in FAMILIES])
def test_out_csv_has_every_row_and_terminal_says_how_many_more(tmp_path, scenario, run_args, analysis, table, count):
    run = _run(SCENARIOS / scenario, tmp_path / "run", *run_args)
    expected = count(RunLog(run))
    assert expected > 2, f"the run is too small to cut its {table} table ({expected} rows)"
    out = _analyze(str(run), analysis, "--rows", "2", "--out", str(tmp_path / "out"))
    csv = pd.read_csv(tmp_path / "out" / f"{analysis}_{table}.csv")
    assert len(csv) == expected
    # The printed table: its title, 2 rows, then how many more rows exist.
    after = out.split(f"{analysis}: {table}\n", 1)[1]
    assert f"{expected - 2} more row{'s' if expected - 2 != 1 else ''} (2 of {expected} shown); --out writes them all" in after.split(f"{analysis}: ", 1)[0]


def test_social_cascades_csv_keeps_more_than_the_twenty_largest(tmp_path):
    """The case of the issue: social_cascades.csv kept the top 20; every cascade is there, largest first."""
    run = _run(SCENARIOS / "social/x_information_spread.yaml", tmp_path / "run", "--steps", "3")
    _analyze(str(run), "social", "--out", str(tmp_path / "out"))
    csv = pd.read_csv(tmp_path / "out" / "social_cascades.csv")
    roots = _social_roots(RunLog(run))
    assert roots > 20 and len(csv) == roots
    assert csv["size"].is_monotonic_decreasing and csv["root"].is_unique


# -- number formats ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "shown"), [
    (3, "3"), (np.int64(-12), "-12"), (3.0, "3"), (1234.0, "1234"), (-0.0, "0"), (0.0, "0"), (np.float32(-0.0), "0"),
    (0.123456, "0.1235"), (12.3456, "12.35"), (0.5, "0.5"), (-0.00012346, "-0.0001235"), (1.2346e-5, "1.235e-05"),
    (-3e-9, "-3.000e-09"), (12345.6, "12346"), (9.99996, "10"), (0.099996, "0.1"), (float("nan"), MISSING),
    (None, MISSING), (pd.NA, MISSING), (np.nan, MISSING), (float("inf"), "inf"), (float("-inf"), "-inf"),
    (True, "True"), (np.bool_(False), "False"), ("x", "x"),
])
def test_format_number(value, shown):
    assert format_number(value) == shown


@settings(max_examples=400, deadline=None)
@given(st.floats(min_value=-1e300, max_value=1e300, width=64))
def test_format_number_never_negative_zero_and_round_trips(x):
    text = format_number(x)
    assert not re.fullmatch(r"-0(\.0*)?(e[+-]?\d+)?", text), text
    back = float(text)
    if x.is_integer() and abs(x) < 1e16:
        assert "." not in text and "e" not in text and back == x
    else:
        # within half a unit of the 4th significant figure (plus the rounding of large values to integers)
        assert abs(back - x) <= 0.5 * 10 ** (math.floor(math.log10(abs(x))) - 3) * 1.0001 + (0.5 if abs(x) >= 1e4 else 0), (x, text)


@given(st.integers(min_value=-10**18, max_value=10**18))
def test_integers_never_get_decimals(n):
    assert format_number(n) == str(n)
    assert format_number(np.int64(n)) == str(n)


@pytest.mark.parametrize(("column", "shown"), [
    ("d_mc_mean", "d_mc_mean (nats/token)"), ("d_topk", "d_topk (nats/token)"), ("es_mean", "es_mean (points/nation)"),
    ("wall_s", "wall_s (s)"), ("reduction_pct", "reduction_pct (%)"), ("tokens/s", "tokens/s"), ("runs", "runs"),
    ("hr_low", "hr_low"), ("share", "share"), ("_s", "_s"),
])
def test_units_in_headers(column, shown):
    assert header(column) == shown


def test_df_table_formats_per_column_and_says_how_many_more_rows():
    df = pd.DataFrame({"n": pd.array([1, None, 3, 4, 5], dtype="Int64"), "x": [-0.0, 0.123456, np.nan, 2.0, -1e-7],
                       "wall_s": [1.5, 2.0, 3.0, 4.0, 5.0], "name": ["a", "[/b]x", "c", "d", "e"]})
    text = _render(df_table(df, "t", max_rows=3))
    assert "wall_s (s)" in text and "[/b]x" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("│")]
    cells = [[c.strip() for c in ln.strip("│").split("│")] for ln in rows]
    assert cells == [["1", "0", "1.5", "a"], [MISSING, "0.1235", "2", "[/b]x"], ["3", MISSING, "3", "c"]]
    assert "2 more rows (3 of 5 shown)" in text
    assert "more row" not in _render(df_table(df, "t", max_rows=5))


# -- warnings as notes ---------------------------------------------------------------------------------------------
def _intervals(events: int, subjects: int = 40, seed: int = 0) -> pd.DataFrame:
    """Counting-process rows: each subject exposed to 1 adopter, then (from t=2) to 2-4; the first `events` adopt."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(subjects):
        adopt = i < events
        rows.append({"id": i, "start": 0, "stop": 2, "exposure": 1, "event": int(adopt and rng.random() < 0.3)})
        if not rows[-1]["event"]:
            rows.append({"id": i, "start": 2, "stop": 3 + int(rng.integers(0, 3)), "exposure": int(rng.integers(2, 5)), "event": int(adopt)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("events", "warned"), [(4, True), (9, True), (10, False), (25, False)])
def test_cox_fit_on_few_events_is_flagged_unstable(events, warned):
    iv = _intervals(events)
    out = fit_exposure_hazard(iv)
    assert out["events"] == events
    few = [n for n in out["notes"] if n.startswith("unstable fit")]
    assert bool(few) is warned
    if warned:
        assert f"{events} events for 1 parameter" in few[0] and "Peduzzi" in few[0]


def test_saturation_test_on_few_events_is_flagged_unstable():
    sat = saturation_test(_intervals(12))
    assert any("unstable fit: the saturation test" in n and "for 2 parameters" in n for n in sat["notes"])


@pytest.mark.parametrize(("sizes", "warned"), [
    ([1] * 30 + [2] * 10 + [3] * 5 + [5, 8, 13], True),
    (list(np.floor(1 / (1 - np.random.default_rng(0).random(400)) ** 1.2).astype(int)), False),
])
def test_power_law_on_a_short_tail_is_flagged_unstable(sizes, warned):
    table = power_law_table(pd.DataFrame({"size": sizes}))
    few = [n for n in notes_of(table) if n.startswith("unstable fit: the power law")]
    assert bool(few) is warned and bool(table["n_tail"].iloc[0] < 50) is warned
    if warned:
        assert f"rests on {table['n_tail'].iloc[0]} cascade size" in few[0]


def _conversations(n: int, turns: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n):
        d = 1.0
        for t in range(1, turns + 1):
            d = d + 0.3 * (0.5 - d) + rng.normal(0, 0.05)
            rows.append({"conversation": f"c{c}", "arm": "none", "turn": t, "reminder": False, "d_mc": d})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("conversations", "warned"), [(1, True), (3, True), (4, False), (10, False)])
def test_recurrence_fit_on_few_transitions_is_flagged_unstable(conversations, warned):
    fit = fit_recurrence(_conversations(conversations), bootstrap=0)
    n = int(fit["transitions"].iloc[0])
    assert n == 5 * conversations
    few = [x for x in notes_of(fit) if x.startswith("unstable fit: the recurrence")]
    assert bool(few) is warned
    if warned:
        assert f"rests on {n} transitions for 2 parameters" in few[0]


def test_n_equals_one_has_no_interval_and_says_so():
    ev = pd.DataFrame([
        {"agent_id": "bot", "action": "treatment", "target": "p1", "payload": json.dumps({"treatment": "up"})},
        {"agent_id": "bot", "action": "treatment", "target": "p2", "payload": json.dumps({"treatment": "control"})},
        {"agent_id": "bot", "action": "treatment", "target": "p3", "payload": json.dumps({"treatment": "control"})},
        {"agent_id": "u1", "action": "like_post", "target": "p1", "payload": None},
        {"agent_id": "u1", "action": "like_post", "target": "p3", "payload": None},
    ])
    herd = herd_from_events(ev)
    up = herd[herd["treatment"] == "up"].iloc[0]
    assert up["posts"] == 1 and np.isnan(up["low"]) and np.isnan(up["high"])
    assert any("got 1" in n and "up: all votes" in n for n in notes_of(herd))


def test_one_run_per_group_has_no_interval_over_runs(tmp_path):
    by_day = compare_runs([RunLog(_wargame_log(tmp_path / "one"))])["es_by_day"]
    assert by_day["runs"].eq(1).all() and by_day["ci_low"].isna().all()
    assert any("needs at least 2 observations per sample; got 1" in n for n in notes_of(by_day))


def _turns(after: dict[str, float]) -> pd.DataFrame:
    rows = []
    for arm, value in after.items():
        for conv in range(2):
            for turn in (1, 2, 3):
                rows.append({"conversation": f"{arm}{conv}", "arm": arm, "turn": turn, "reminder": arm != "none" and turn == 2,
                             "d_mc": 0.5 if turn < 2 else value, "satisfied": True})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("after", "flagged"), [(-0.1, True), (0.2, False), (0.0, False)])
def test_reduction_over_100_percent_is_explained(after, flagged):
    arms = compare_arms(_turns({"none": 0.5, "t2": after}))
    red = float(arms.loc[arms["arm"] == "t2", "reduction_pct"].iloc[0])
    assert (red > 100) is flagged
    notes = [n for n in notes_of(arms) if "reduction over 100 %" in n]
    assert bool(notes) is flagged
    if flagged:
        assert f"t2 ({red:.0f} %)" in notes[0] and "negative" in notes[0]


def _wargame_log(run_dir: Path, **meta) -> Path:
    agents = [{"agent_id": a} for a in ("A", "B")]
    events = [{"step": s, "agent_id": a, "action": "Wait", "target": a} for s in range(2) for a in ("A", "B")]
    metrics = [{"step": s, "metric": "es", "value": 0.0} for s in range(2)]
    return write_run_log(run_dir, events=events, agents=agents, metrics=metrics, **meta)


@pytest.mark.parametrize(("status", "done", "steps", "incomplete"), [
    ("interrupted", 2, 5, True), ("running", 2, 5, True), ("failed", 2, 5, True), ("completed", 2, 2, False),
    ("no_valid_answers", 2, 2, False),
])
def test_every_table_of_an_incomplete_run_says_so(tmp_path, status, done, steps, incomplete):
    log = RunLog(_wargame_log(tmp_path / "run", status=status, steps_completed=done, spec={"steps": steps}))
    tables = escalation_tables(log)
    for name, df in tables.items():
        said = [n for n in notes_of(df) if n.startswith("incomplete run")]
        assert bool(said) is incomplete, name
        if incomplete:
            assert f"completed {done} of {steps} steps" in said[0] and "the first 2 steps only (steps 0 to 1)" in said[0]
            assert f"status {status!r}" in said[0] or status == "running"
    compared = compare_runs([log, RunLog(_wargame_log(tmp_path / "done"))])
    for df in compared.values():
        assert any(n.startswith("run: incomplete run") for n in notes_of(df)) is incomplete


@pytest.mark.parametrize(("scenario", "run_args", "analysis"), [(f[0], f[1], f[2]) for f in FAMILIES], ids=[f[2] for f in FAMILIES])
def test_incomplete_run_in_the_terminal_and_notes_csv(tmp_path, scenario, run_args, analysis):
    """Every family: a run whose run.json says it stopped early has the note on every table, printed and in --out."""
    run = _run(SCENARIOS / scenario, tmp_path / "run", *run_args)
    meta = json.loads((run / "run.json").read_text())
    done = meta["steps_completed"]
    meta.update(status="interrupted", spec={**meta["spec"], "steps": done + 5})
    (run / "run.json").write_text(json.dumps(meta))
    out = _analyze(str(run), analysis, "--out", str(tmp_path / "out"))
    line = (f"incomplete run: the run completed {done} of {done + 5} steps (status 'interrupted'); its tables cover "
            f"the first {done} steps only (steps 0 to {done - 1})")
    notes = pd.read_csv(tmp_path / "out" / f"{analysis}_notes.csv")
    tables = {p.stem.removeprefix(f"{analysis}_") for p in (tmp_path / "out").glob(f"{analysis}_*.csv")} - {"notes"}
    assert set(notes.loc[notes["note"] == line, "table"]) == tables
    shown = [t for t in tables if f"{analysis}: {t}\n" in out]
    assert out.count(line) == len(shown) and shown


# -- scripted runs report no LLM tokens/s --------------------------------------------------------------------------
@pytest.mark.parametrize(("scenario", "hidden"), [("wargame/neutral.yaml", None), ("drift/customer_service.yaml", "Drift: kl (D_t unavailable")])
def test_scripted_run_summary_reports_no_llm_tokens_per_second(tmp_path, scenario, hidden):
    r = subprocess.run([sys.executable, "-m", "agentsim", "run", str(SCENARIOS / scenario), "--backend", "scripted",
                        "--steps", "1", "--run-dir", str(tmp_path / "run")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    text = " ".join(r.stdout.split())
    assert "scripted backend: no LLM" in text and "no tokens/s" in text
    assert "tok/s" not in text and not re.search(r"\d tokens/s", text)
    if hidden:  # the summary hides a table that does not apply, as `analyze` does
        assert f"hidden (do not apply to this run): {hidden}" in text


@pytest.mark.parametrize(("backends", "by_model", "expect", "absent"), [
    ({"default": "scripted"}, {"default": {"completion_tokens": 50}}, "scripted backend: no LLM", "tokens/s)"),
    ({"default": "replay"}, {"default": {"completion_tokens": 50}}, "replay backend: recorded answers, no LLM ran", "tokens/s)"),
    ({"default": "vllm"}, {"default": {"completion_tokens": 50}}, "completion 50 (5.0 tokens/s)", "no LLM"),
    ({"a": "vllm", "b": "scripted"}, {"a": {"completion_tokens": 30}, "b": {"completion_tokens": 20}},
     "LLM completion tokens 30 (3.0 tokens/s, models a; no LLM behind b (scripted))", "(5.0 tokens/s"),
])
def test_token_line_counts_tokens_per_second_only_for_llms(backends, by_model, expect, absent):
    totals = {"prompt_tokens": 100, "completion_tokens": 50}
    line = token_line(totals, by_model, backends, wall_s=10.0)
    assert expect in line and absent not in line


# -- tables that do not apply --------------------------------------------------------------------------------------
def test_herd_table_of_a_run_without_herd_experiment_is_hidden_but_written(tmp_path):
    run = _run(SCENARIOS / "social/x_information_spread.yaml", tmp_path / "run", "--steps", "2")
    out = _analyze(str(run), "social", "--out", str(tmp_path / "out"))
    assert "social: herd\n" not in out
    hidden = [ln for ln in out.splitlines() if ln.startswith("hidden (do not apply to this run):")]
    assert len(hidden) == 1 and "herd (no herd-effect experiment in this run" in hidden[0]
    assert (tmp_path / "out" / "social_herd.csv").exists()
    notes = pd.read_csv(tmp_path / "out" / "social_notes.csv")
    assert notes.loc[notes["table"] == "herd", "note"].str.contains("no herd_votes or counterfactual_posts intervention").any()


def test_herd_table_applies_when_the_scenario_has_a_herd_experiment(tmp_path):
    """A herd run killed before its first treatment: the table applies (empty, with its note), so it is shown."""
    spec = {"steps": 3, "world": {"interventions": [{"kind": "herd_votes"}]}}
    log = RunLog(write_run_log(tmp_path / "run", agents=[{"agent_id": "u1", "kind": "user"}],
                               events=[{"step": 0, "agent_id": "u1", "action": "create_post"}], spec=spec))
    herd = herd_table(log)
    assert herd.empty and not why_not_applicable(herd) and notes_of(herd)
    plain = RunLog(write_run_log(tmp_path / "plain", agents=[{"agent_id": "u1", "kind": "user"}],
                                 events=[{"step": 0, "agent_id": "u1", "action": "create_post"}]))
    assert why_not_applicable(herd_table(plain))


def test_end_of_run_summary_says_how_many_more_cascades(tmp_path):
    """The summary shows the 5 largest cascades (no longer a silent nlargest(5)) and how many more the run has."""
    r = subprocess.run([sys.executable, "-m", "agentsim", "run", str(SCENARIOS / "social/x_information_spread.yaml"), "--backend",
                        "scripted", "--steps", "3", "--run-dir", str(tmp_path / "run")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    roots = _social_roots(RunLog(tmp_path / "run"))
    assert roots > 5
    after = r.stdout.split("Largest repost cascades", 1)[1]
    assert f"{roots - 5} more rows (5 of {roots} shown)" in after.split("Action counts", 1)[0]


@pytest.mark.parametrize(("values", "shown"), [
    ([0.7, -0.7, 3e-13], ["0.7", "-0.7", "0"]),            # a centred strength: rounding error around zero
    ([1.2, -0.4, -8e-13, 1.5e-12], ["1.2", "-0.4", "0", "1.500e-12"]),  # noise is relative to the column's scale
    ([0.5, 1e-13], ["0.5", "1.000e-13"]),                  # a p-value column (no negatives): tiny values are data
    ([1e-14, -2e-14], ["1.000e-14", "-2.000e-14"]),        # all tiny: nothing is noise relative to the rest
    ([float("nan"), -1.0, 1e-15], ["–", "-1", "0"]),
])
def test_rounding_error_around_zero_shows_as_zero_only_in_signed_columns(values: list[float], shown: list[str]) -> None:
    from agentsim.analysis.display import column_formatter

    s = pd.Series(values)
    assert [column_formatter(s)(v) for v in s] == shown
