"""Names for legends, tables and titles: who answered (backend and model), and which runs a figure shows.

Every line, bar and table row of an analysis names the backend and the model behind it ("scripted baseline",
"SmolLM2-135M-Instruct via vLLM", "gpt-4o via OpenAI API", "replay of scripted baseline"), never a bare model
name: a scripted run stands in for the model its spec names, and must not be read as that model. Titles carry the
scenario, the number of runs and whether any run is partial (`runs_title`).

Reads run.json's `models.<alias>` entries (agentsim/runtime/meta.py: model_entry) and `status` /
`steps_completed`; never imports the runtime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

#: Display names of the models agentsim ships (agentsim/spec/models.py: EMBEDDED_MODEL, TINY_MODEL).
KNOWN_MODELS = {
    "embedded:smollm2-135m-instruct": "SmolLM2-135M-Instruct",
    "embedded:tiny-random-llama": "tiny random-weight Llama",
}
#: How each backend is named after the model.
VIA = {"vllm": "via vLLM", "openai": "via OpenAI API"}
SCRIPTED = "scripted baseline"


def model_name(model: Any) -> str:
    """A model as a reader knows it: the shipped models by name, a hub id or local path by its last part
    (`meta-llama/Llama-3.1-8B-Instruct` -> `Llama-3.1-8B-Instruct`); other names (`gpt-4o`, `GPT-4o (2024-08)`)
    as they are."""
    text = str(model)
    if text in KNOWN_MODELS:
        return KNOWN_MODELS[text]
    if "/" in text or "\\" in text:
        return PurePath(text.rstrip("/")).name or text
    return text


def backend_model_label(entry: Mapping[str, Any]) -> str:
    """Who answered one model alias (a run.json `models.<alias>` entry: backend, model, label): `scripted baseline`
    for the scripted backend (whatever model the spec names), `<model> via vLLM` / `via OpenAI API`, `replay of
    <the recorded run's answerer>` for replay (from the entry's `label`, `replay:<recorded label>`, and
    `recorded_backend`: `replay of SmolLM2-135M-Instruct via vLLM`), the bare model
    name for an entry without a backend (runs made before run.json named it)."""
    backend, model = entry.get("backend"), entry.get("model")
    label = str(entry.get("label") or "")
    if label and label != str(model) and not label.startswith(("scripted:", "replay:")):
        model = label  # a label someone gave the model (run.json's own labels are the model, scripted:, replay:)
    if backend == "scripted":
        return SCRIPTED
    if backend == "replay":
        recorded = str(entry.get("label") or "")
        recorded = recorded.removeprefix("replay:") if recorded.startswith("replay:") else str(model)
        via = VIA.get(str(entry.get("recorded_backend")))
        if via and not recorded.startswith(("scripted:", "replay:", "human")):
            return f"replay of {model_name(recorded)} {via}"  # the recorded run's model and backend
        return f"replay of {_recorded(recorded)}"
    if backend in VIA:
        return f"{model_name(model)} {VIA[backend]}"
    if backend:
        return f"{model_name(model)} via {backend}"
    return model_name(model)


def _recorded(label: str) -> str:
    """A run.json label (`scripted:<family>`, `replay:...`, or a model) as backend_model_label words it."""
    if label.startswith("scripted:"):
        return SCRIPTED
    if label.startswith("replay:"):
        return f"replay of {_recorded(label.removeprefix('replay:'))}"
    return model_name(label)


def run_label(log: Any, kinds: Sequence[str] | None = None) -> str:
    """Who played the agents of a run (of `kinds`, e.g. ("nation",); all agents when None): the distinct
    `backend_model_label`s of their model aliases joined by ` + `; `unknown` when the log names none."""
    agents = log.agents
    if len(agents) and kinds is not None and "kind" in agents:
        agents = agents[agents["kind"].isin(list(kinds))]
    # agents without a model (a platform's controlled voter, a world without LLM calls) play no part in the label
    aliases = sorted({a for a in agents["model"] if isinstance(a, str) and a}) if len(agents) and "model" in agents else []
    models = log.meta.get("models", {}) or {}
    return " + ".join(sorted({backend_model_label(models.get(a, {"model": a})) for a in aliases})) or "unknown"


def partial_runs(logs: Sequence[Any]) -> list[str]:
    """The runs that did not complete, as `name (k of N steps, status S)`."""
    out = []
    for log in logs:
        meta = log.meta
        done, steps = meta.get("steps_completed"), (meta.get("spec") or {}).get("steps")
        status = meta.get("status")
        if status in (None, "completed") and (done is None or steps is None or done == steps):
            continue
        out.append(f"{log.run_dir.name} ({done if done is not None else '?'} of {steps if steps is not None else '?'} steps, "
                   f"status {status or 'unknown'})")
    return out


def scenario_of(log: Any) -> str:
    """The scenario a run played: the world's `scenario` label (wargame), else the spec's name."""
    return str((log.meta.get("world") or {}).get("scenario") or (log.spec or {}).get("name") or "unknown scenario")


def runs_title(what: str, logs: Sequence[Any]) -> str:
    """A figure's title: what it shows, the scenario(s), how many runs, and how many of them are partial
    (`ES per day: invasion, 3 runs (1 partial)`)."""
    scenarios = ", ".join(sorted({scenario_of(log) for log in logs})) or "no scenario"
    n = len(logs)
    partial = len(partial_runs(logs))
    text = f"{what}: {scenarios}, {n} run{'s' if n != 1 else ''}"
    return text + (f" ({partial} partial)" if partial else "")
