"""Builds the backend for a scenario and routes each request to the backend of its model alias."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentsim.llm.replay import ReplayBackend
from agentsim.llm.scripted import ScriptedBackend, ScriptedPolicy
from agentsim.llm.types import Backend, BackendError, LLMRequest, LLMResult, fan_out
from agentsim.spec.models import ModelSpec


class BackendRouter:
    """One entry point for a mixed population: requests are grouped by backend, sent as one batch each,
    concurrently, and the results come back in request order."""

    name = "router"

    def __init__(self, backend_for_alias: dict[str, Backend]):
        self.backend_for_alias = backend_for_alias

    def backend_name(self, alias: str) -> str:
        return self.backend_for_alias[alias].name

    async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        return await fan_out(requests, lambda r: self.backend_for_alias[r.alias], lambda b, batch: b.generate(batch))

    def close(self) -> None:
        for b in {id(b): b for b in self.backend_for_alias.values()}.values():
            b.close()


def build_backend(
    models: dict[str, ModelSpec],
    scripted_policy: ScriptedPolicy,
    replay_from: str | Path | None = None,
    log: Callable[[str], None] = print,
    expect: dict[str, Any] | None = None,
    run_dir: Path | None = None,
) -> BackendRouter:
    """One backend instance per kind, shared by the aliases that use it. `expect`: the run's spec as run.json
    stores it, so that a replay source that cannot match it is refused here (ReplaySourceError). `run_dir`: where
    the human backend keeps its seats' queues (BackendError without one, when an alias is human)."""
    kinds = {alias: spec.backend for alias, spec in models.items()}
    shared: dict[str, Backend] = {}
    if "scripted" in kinds.values():
        shared["scripted"] = ScriptedBackend(scripted_policy)
    if "replay" in kinds.values():
        if replay_from is None:
            raise BackendError("the replay backend needs a recorded run: pass --replay-from RUN_DIR")
        shared["replay"] = ReplayBackend(replay_from, expect)
    if "human" in kinds.values():
        from agentsim.llm.human import HumanBackend, require_run_dir

        shared["human"] = HumanBackend({a: s for a, s in models.items() if s.backend == "human"}, require_run_dir(run_dir))
    if "openai" in kinds.values():
        from agentsim.llm.openai_backend import OpenAIBackend

        shared["openai"] = OpenAIBackend({a: s for a, s in models.items() if s.backend == "openai"})
    vllm_models = {a: s for a, s in models.items() if s.backend == "vllm"}
    if vllm_models:
        from agentsim.llm.vllm_backend import VLLMBackend

        shared["vllm"] = VLLMBackend(vllm_models, log=log)
    return BackendRouter({alias: shared[kind] for alias, kind in kinds.items()})
