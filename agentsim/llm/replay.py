"""The replay backend: answers each request with the completion recorded for the same request and seed.

A recorded run can only answer the requests it made. Requests are keyed by their content and seed, so a run of
another family or with another seed cannot match a single one: `check_source` refuses those at the start. Other
differences (a changed world field) are found when a phase finds no recorded answer at all; such misses are
marked as outages ("unrecorded") so that the run stops there and says which fields differ, instead of logging a
whole run of invalid answers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agentsim.llm.human import HUMAN_TIMEOUT, TIMEOUT_ERROR
from agentsim.llm.types import ATTEMPT_SUFFIX, LLMRequest, LLMResult, ReplaySourceError

# Spec fields that do not change what a run asks its models. Not `steps`: a wargame's prompt names the number of
# days, so a replay with another number of steps asks other questions from its first step on.
_NOT_IN_REQUESTS = ("logging", "runtime", "name", "policy")


def _flat(x: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(x, dict):
        out: dict[str, Any] = {}
        for k, v in x.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: x}


def spec_differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Dotted paths of the fields that differ between two scenario specs (as run.json stores them), leaving out
    the fields that do not enter requests and each model's backend (the replayed run used another one)."""
    a, b = _flat(recorded), _flat(current)
    keep = [k for k in sorted(set(a) | set(b))
            if not k.startswith(_NOT_IN_REQUESTS) and not (k.startswith("models.") and k.endswith(".backend"))]
    return [k for k in keep if a.get(k) != b.get(k)]


def check_source(run_dir: str | Path, expect: dict[str, Any]) -> list[str]:
    """Refuse a recorded run whose requests cannot match a run of `expect` (a spec as run.json stores it):
    another family (`kind`) or another seed. Returns the other differing fields (see `spec_differences`).

    Raises ReplaySourceError naming both scenarios."""
    from agentsim.logs.reader import LogError, RunLog

    try:
        log = RunLog(run_dir)
        recorded = log.spec
    except LogError as e:
        raise ReplaySourceError(f"--replay-from: {e}") from e
    if not recorded:
        return []
    theirs = f"a {recorded.get('kind')} run of scenario '{recorded.get('name')}' (seed {recorded.get('seed')})"
    ours = f"this scenario is {expect.get('kind')} '{expect.get('name')}' (seed {expect.get('seed')})"
    if recorded.get("kind") != expect.get("kind"):
        raise ReplaySourceError(
            f"--replay-from {run_dir}: {theirs}; {ours}: none of its recorded answers can match. Replay a run of "
            f"the same scenario."
        )
    if recorded.get("seed") != expect.get("seed"):
        raise ReplaySourceError(
            f"--replay-from {run_dir}: {theirs}; {ours}: request seeds derive from the run seed, so none can match. "
            f"Run with --seed {recorded.get('seed')} to replay it."
        )
    held = log.complete_steps
    wanted = expect.get("steps")
    if isinstance(wanted, int) and wanted > held:
        raise ReplaySourceError(
            f"--replay-from {run_dir}: the recorded run holds {held} step{'s' if held != 1 else ''} and this run asks for "
            f"{wanted}: a replay can run at most as many steps as its source (--steps {held})"
        )
    return spec_differences(recorded, expect)


class ReplayBackend:
    name = "replay"

    def __init__(self, run_dir: str | Path, expect: dict[str, Any] | None = None):
        """`expect`: the spec of the run that will replay (as run.json stores it), to refuse a source that
        cannot match (see `check_source`) and to name the differing fields when requests find no answer."""
        from agentsim.logs.reader import LogError, RunLog

        self.differences = check_source(run_dir, expect) if expect is not None else []
        try:
            calls = RunLog(run_dir).table("llm_calls")
        except LogError as e:
            raise ReplaySourceError(f"--replay-from: {e}") from e
        cols = calls.column_names
        if "completion_text" not in cols or calls.num_rows and calls.column("completion_text").null_count == calls.num_rows:
            raise ReplaySourceError(
                f"--replay-from {run_dir}: the run recorded no completion texts (logging.record_completions: false)"
            )
        self.source = str(run_dir)
        self._answers: dict[tuple[str, int], LLMResult] = {}
        steps = calls.column("step").to_pylist() if "step" in cols else []
        #: The last step the recorded run has answers for (-1: none).
        self.last_step = max(steps, default=-1)
        rows = calls.select(
            ["request_id", "request_hash", "seed", "completion_text", "prompt_tokens", "completion_tokens", "finish_reason",
             "latency_s", "logprobs", "error"] + (["cached_tokens"] if "cached_tokens" in cols else [])
        ).to_pylist()
        ids = {row["request_id"] for row in rows}
        for row in rows:
            # A backend's error is answered as recorded (a scripted backend asked for scores, a server's refusal), and
            # is asked again only where the recorded run asked again: the next attempt's request id is recorded
            # (agentsim/core/policy.py: LLMPolicy.request names attempts "-a<attempt>").
            failed = row["finish_reason"] == "error"
            attempt = re.search(ATTEMPT_SUFFIX, str(row["request_id"]))
            retried = bool(attempt) and f"{row['request_id'][:attempt.start()]}-a{int(attempt[1]) + 1}" in ids
            self._answers[(row["request_hash"], row["seed"])] = LLMResult(
                "",
                row["completion_text"] or "",
                row["prompt_tokens"],
                row["completion_tokens"],
                row["finish_reason"],
                row["latency_s"],
                logprobs=row["logprobs"],
                cached_tokens=row.get("cached_tokens") or 0,
                error=(row["error"] or "the recorded call failed") if failed else None,
                retryable=retried if failed else True,
            )
        differ = f"; the recorded scenario differs in {', '.join(self.differences[:8])}" if self.differences else ""
        self._miss = f"no recorded answer in {self.source} for this request{differ}"

    def __len__(self) -> int:
        return len(self._answers)

    async def generate(self, requests: list[LLMRequest]) -> list[LLMResult]:
        out = []
        for r in requests:
            rec = self._answers.get((r.content_hash(), r.seed))
            if rec is None:
                beyond = (f"; step {r.step} is past the recorded run's last answered step ({self.last_step}): a replay "
                          f"can run at most as many steps as its source" if r.step > self.last_step else "")
                out.append(
                    LLMResult(
                        r.request_id, "", 0, 0, "error", 0.0,
                        error=f"{self._miss}{beyond} (hash {r.content_hash()}, seed {r.seed})", retryable=False,
                        outage="unrecorded",
                    )
                )
            else:
                # A person's timeout was final when recorded (agentsim/llm/human.py: HumanBackend._result): the same here,
                # so the policy logs the same decision.
                timed_out = rec.finish_reason == HUMAN_TIMEOUT
                error = TIMEOUT_ERROR if timed_out and not rec.text else rec.error
                out.append(
                    LLMResult(r.request_id, rec.text, rec.prompt_tokens, rec.completion_tokens, rec.finish_reason,
                              rec.latency_s, logprobs=rec.logprobs, cached_tokens=rec.cached_tokens,
                              error=error, retryable=rec.retryable and not timed_out)
                )
        return out

    def close(self) -> None:
        pass
