"""The vLLM backend: an in-process engine per distinct model, fed one batch per call.

vLLM's continuous batching and prefix caching do the work: every request of a step goes to `LLM.chat` in a
single call, with per-request sampling parameters, seeds and structured-output constraints.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import time
from collections.abc import Callable
from typing import Any

from agentsim.llm.embedded import resolve_model
from agentsim.llm.types import BackendError, LLMRequest, LLMResult, ResponseFormat, TokenScores, fan_out
from agentsim.spec.models import ModelSpec

# The in-process engine starts in ~2 s instead of 11-36 s with a separate engine-core process, and keeps one
# process to reason about. Must be set before vllm is imported.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
# vLLM drops torch to one thread unless OMP_NUM_THREADS is set; on a CPU host we want every core.
os.environ.setdefault("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0))))
# On CUDA, vLLM (0.24) samples top-p/top-k with FlashInfer by default and its engine core fails to start when the
# flashinfer package is not installed ("No module named 'flashinfer'"; seen on an H200 with a minimal install):
# use vLLM's own sampler then.
if importlib.util.find_spec("flashinfer") is None:
    os.environ.setdefault("VLLM_USE_FLASHINFER_SAMPLER", "0")


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as e:
        raise BackendError(
            "the vllm backend needs the vllm module: pip install -e '.[cpu]' (CPU) or '.[gpu]' (CUDA); "
            "or run with --backend scripted"
        ) from e
    return vllm


def is_cpu_platform() -> bool:
    try:
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())
    except Exception:  # pragma: no cover
        return True


def engine_kwargs(spec: ModelSpec, model_path: str) -> dict[str, Any]:
    """Engine arguments shared by the in-process `LLM` and the `AsyncLLM` of engine actors."""
    kwargs: dict[str, Any] = dict(
        model=model_path,
        max_model_len=spec.max_model_len,
        enable_prefix_caching=spec.enable_prefix_caching,
        tensor_parallel_size=spec.tensor_parallel_size,
        # Engine-level JSON settings: in vLLM 0.32 the per-request whitespace flag is ignored, and without
        # this small models pad JSON with whitespace until max_tokens.
        structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True},
        disable_log_stats=True,
    )
    if spec.tensor_parallel_size > 1:
        # Inside a Ray engine actor vLLM would pick its Ray executor, whose workers lose the actor's placement
        # group in vLLM's engine-core subprocess; the multiprocessing executor uses the GPUs the actor holds.
        kwargs["distributed_executor_backend"] = "mp"
    if is_cpu_platform():
        # The default KV cache asks for most of a NUMA node and fails; size it explicitly. CUDA graphs
        # do not exist on CPU and eager mode starts much faster.
        kwargs["kv_cache_memory_bytes"] = int(spec.kv_cache_gib * 2**30)
        kwargs["enforce_eager"] = True
        # Seeded requests + chunked prefill crash the CPU sampler in vLLM 0.32 ("CPU Generator does not use
        # offset": it rewinds the generator of a partially prefilled request). Whole-prompt prefill avoids it.
        kwargs["enable_chunked_prefill"] = False
        kwargs["max_num_batched_tokens"] = max(spec.max_model_len, 8192)
    kwargs.update(spec.engine_args)
    return kwargs


class VLLMEngine:
    """One `vllm.LLM` for one ModelSpec (aliases that differ only in sampling share it)."""

    def __init__(self, spec: ModelSpec, log: Callable[[str], None] = print):
        vllm = _import_vllm()
        self.spec = spec
        self.model_path = resolve_model(spec.model, log=log)
        kwargs = engine_kwargs(spec, self.model_path)
        t0 = time.perf_counter()
        try:
            self.llm = vllm.LLM(**kwargs)
        except Exception as e:
            raise BackendError(f"vLLM could not start an engine for {spec.model!r}: {e}") from e
        self.startup_s = time.perf_counter() - t0
        self.tokenizer = self.llm.get_tokenizer()

    def sampling_params(self, req: LLMRequest) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        if req.continuation is not None:
            # Scoring: one throw-away token; the prompt log-probabilities are the result.
            return SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=req.score_top_k, seed=req.seed)
        s = req.sampling
        fmt: ResponseFormat = req.response_format
        so = None
        if fmt.kind == "json":
            so = StructuredOutputsParams(json=fmt.json_schema)
        elif fmt.kind == "choice":
            so = StructuredOutputsParams(choice=list(fmt.choices or ()))
        elif fmt.kind == "regex":
            so = StructuredOutputsParams(regex=fmt.regex)
        return SamplingParams(
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_tokens,
            seed=req.seed,
            logprobs=s.logprobs,
            structured_outputs=so,
        )

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def prepare(self, requests: list[LLMRequest]) -> tuple[list[LLMResult | None], list[tuple[int, Any, Any]], dict[int, int]]:
        """Tokenize here, so a prompt that does not fit the context fails alone (vLLM would reject the whole batch)
        and prompt tokens are counted exactly. Returns (results with errors filled in, [(index, prompt, params)],
        {index: start of the scored continuation})."""
        from vllm.inputs import TokensPrompt

        limit = self.spec.max_model_len
        results: list[LLMResult | None] = [None] * len(requests)
        todo: list[tuple[int, Any, Any]] = []
        scored_from: dict[int, int] = {}
        for i, r in enumerate(requests):
            ids = self.prompt_ids(r.messages)
            if r.continuation is not None:
                scored_from[i] = len(ids)
                ids = ids + list(self.tokenizer.encode(r.continuation, add_special_tokens=False))
            if len(ids) >= limit:
                results[i] = LLMResult(
                    r.request_id, "", len(ids), 0, "error", 0.0,
                    error=f"prompt is {len(ids)} tokens; max_model_len is {limit} (shorten the history or raise max_model_len)",
                )
                continue
            todo.append((i, TokensPrompt(prompt_token_ids=ids), self.sampling_params(r)))
        return results, todo, scored_from

    def result(self, req: LLMRequest, out: Any, latency: float, scored_from: int | None) -> LLMResult:
        if scored_from is not None:
            return self._scores(req, out, scored_from, latency)
        comp = out.outputs[0]
        lps = None
        top = None
        if req.sampling.logprobs is not None and comp.logprobs:
            lps = [float(pos[tid].logprob) for tid, pos in zip(comp.token_ids, comp.logprobs, strict=False)]
            top = [{str(v.decoded_token): float(v.logprob) for v in pos.values()} for pos in comp.logprobs]
        return LLMResult(
            request_id=req.request_id,
            text=comp.text,
            prompt_tokens=len(out.prompt_token_ids or []),
            completion_tokens=len(comp.token_ids),
            finish_reason=str(comp.finish_reason or "unknown"),
            latency_s=latency,
            logprobs=lps,
            top_logprobs=top,
            cached_tokens=int(getattr(out, "num_cached_tokens", 0) or 0),
        )

    def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        results, todo, scored_from = self.prepare(requests)
        t0 = time.perf_counter()
        outputs = self.llm.generate([p for _, p, _ in todo], [q for _, _, q in todo], use_tqdm=False) if todo else []
        latency = time.perf_counter() - t0
        for (i, _, _), out in zip(todo, outputs, strict=True):
            results[i] = self.result(requests[i], out, latency, scored_from.get(i))
        return [r for r in results if r is not None]

    def raw_generate(self, batches: list[list[LLMRequest]]) -> tuple[int, float]:
        """The benchmarks' baseline: these batches tokenized beforehand and sent straight to LLM.generate, from a
        cold prefix cache. Returns (completion tokens, seconds)."""
        from vllm.inputs import TokensPrompt

        prepared = [([TokensPrompt(prompt_token_ids=self.prompt_ids(r.messages)) for r in b], [self.sampling_params(r) for r in b])
                    for b in batches]
        self.llm.reset_prefix_cache()
        tokens, t0 = 0, time.perf_counter()
        for prompts, params in prepared:
            tokens += sum(len(o.outputs[0].token_ids) for o in self.llm.generate(prompts, params, use_tqdm=False))
        return tokens, time.perf_counter() - t0

    def _scores(self, req: LLMRequest, out: Any, start: int, latency: float) -> LLMResult:
        ids = list(out.prompt_token_ids)[start:]
        positions = (out.prompt_logprobs or [])[start:]
        lps, top = [], []
        for tid, pos in zip(ids, positions, strict=True):
            lps.append(float(pos[tid].logprob))
            top.append({int(t): float(v.logprob) for t, v in pos.items() if v.rank is not None and v.rank <= req.score_top_k})
        scores = TokenScores(ids, lps, top)
        return LLMResult(req.request_id, scores.to_json(), len(out.prompt_token_ids), 0, "scored", latency, logprobs=lps)


class VLLMBackend:
    """Routes each request to the engine of its model alias; one `LLM.chat` call per engine per batch."""

    name = "vllm"
    #: `generate` runs the engines on the event loop's thread (see there): the router starts it after the other
    #: backends (llm/types.py: fan_out).
    holds_loop = True

    def __init__(self, models: dict[str, ModelSpec], log: Callable[[str], None] = print):
        self._engines_by_key: dict[str, VLLMEngine] = {}
        self._engine_for_alias: dict[str, VLLMEngine] = {}
        for alias, spec in models.items():
            key = spec.engine_key()
            if key not in self._engines_by_key:
                self._engines_by_key[key] = VLLMEngine(spec, log=log)
            self._engine_for_alias[alias] = self._engines_by_key[key]

    def model_path(self, alias: str) -> str:
        return self._engine_for_alias[alias].model_path

    async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        # Engines are called on the thread that created them. On CPU, vLLM binds its OpenMP threads to that
        # thread; running `generate` from a worker thread (asyncio.to_thread) cost a third of the throughput
        # (`agentsim bench vllm`: ratio 0.65 vs 0.9). Progress stays live: rich refreshes from its own thread.
        async def call(engine: VLLMEngine, batch: list[LLMRequest]) -> list[LLMResult]:
            return engine.generate(batch)

        return await fan_out(requests, lambda r: self._engine_for_alias[r.alias], call)

    def close(self) -> None:
        self._engines_by_key.clear()
        self._engine_for_alias.clear()


class AsyncVLLMEngine(VLLMEngine):
    """vLLM's `AsyncLLM` for engine actors: each request enters the running engine as soon as it arrives
    (continuous batching across shard calls), instead of waiting for the next `LLM.generate` batch. Its engine core
    runs in its own process (about 25 s to start on CPU, against 2 s in-process), which a long-lived actor amortises."""

    def __init__(self, spec: ModelSpec, log: Callable[[str], None] = print):
        _import_vllm()
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        self.spec = spec
        self.model_path = resolve_model(spec.model, log=log)
        t0 = time.perf_counter()
        try:
            self.engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**engine_kwargs(spec, self.model_path)))
        except Exception as e:
            raise BackendError(f"vLLM could not start an async engine for {spec.model!r}: {e}") from e
        self.startup_s = time.perf_counter() - t0
        self.tokenizer = self.engine.get_tokenizer()
        self._ids = 0

    async def agenerate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        results, todo, scored_from = self.prepare(requests)

        async def one(i: int, prompt: Any, params: Any) -> None:
            self._ids += 1
            t0 = time.perf_counter()
            last = None
            async for out in self.engine.generate(prompt, params, request_id=f"{requests[i].request_id}#{self._ids}"):
                last = out
            results[i] = self.result(requests[i], last, time.perf_counter() - t0, scored_from.get(i))

        await asyncio.gather(*(one(i, p, q) for i, p, q in todo))
        return [r for r in results if r is not None]

    def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:  # pragma: no cover - use agenerate
        raise TypeError("AsyncVLLMEngine is asynchronous: await agenerate(requests)")

    def close(self) -> None:
        self.engine.shutdown()
