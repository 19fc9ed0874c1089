"""The replay backend: answers each request with the completion recorded for the same request and seed."""

from __future__ import annotations

from pathlib import Path

from agentsim.llm.types import BackendError, LLMRequest, LLMResult


class ReplayBackend:
    name = "replay"

    def __init__(self, run_dir: str | Path):
        from agentsim.logs.reader import LogError, RunLog

        try:
            calls = RunLog(run_dir).table("llm_calls")
        except LogError as e:
            raise BackendError(f"--replay-from: {e}") from e
        cols = calls.column_names
        if "completion_text" not in cols or calls.num_rows and calls.column("completion_text").null_count == calls.num_rows:
            raise BackendError(
                f"--replay-from {run_dir}: the run recorded no completion texts (logging.record_completions: false)"
            )
        self.source = str(run_dir)
        self._answers: dict[tuple[str, int], LLMResult] = {}
        rows = calls.select(
            ["request_hash", "seed", "completion_text", "prompt_tokens", "completion_tokens", "finish_reason", "latency_s", "logprobs"]
            + (["cached_tokens"] if "cached_tokens" in cols else [])
        ).to_pylist()
        for row in rows:
            self._answers[(row["request_hash"], row["seed"])] = LLMResult(
                "",
                row["completion_text"] or "",
                row["prompt_tokens"],
                row["completion_tokens"],
                row["finish_reason"],
                row["latency_s"],
                logprobs=row["logprobs"],
                cached_tokens=row.get("cached_tokens") or 0,
            )

    def __len__(self) -> int:
        return len(self._answers)

    async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        out = []
        for r in requests:
            rec = self._answers.get((r.content_hash(), r.seed))
            if rec is None:
                out.append(
                    LLMResult(
                        r.request_id, "", 0, 0, "error", 0.0,
                        error=f"no recorded answer in {self.source} for this request (hash {r.content_hash()}, seed {r.seed})",
                    )
                )
            else:
                out.append(
                    LLMResult(r.request_id, rec.text, rec.prompt_tokens, rec.completion_tokens, rec.finish_reason,
                              rec.latency_s, logprobs=rec.logprobs, cached_tokens=rec.cached_tokens)
                )
        return out

    def close(self) -> None:
        pass
