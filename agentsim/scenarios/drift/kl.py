"""Turn-wise drift D_t: the KL divergence between the token distributions of the model under test (q, test
context) and the goal-consistent reference (p, reference context), over the tokens of the test model's reply.

Two estimators, both per token (averaged over the reply's positions):

- Monte Carlo: mean over the sampled reply tokens y_t of log q(y_t) - log p(y_t). Unbiased for KL(q||p) when the
  reply is sampled from q at temperature 1; at other temperatures it measures the log-ratio on the tokens the
  test model actually produced. One reply's estimate can be negative (a sample of a noisy quantity); it is kept
  as it is, since clipping it would bias the mean, and the drift analysis counts such replies.
- Top-k (lumped): at each position the scorer returns q's and p's k most likely tokens (and the reply's token).
  Over S, the tokens whose probability is known under both, plus one bucket for all other tokens,
  KL_S = sum_{v in S} q(v) log(q(v)/p(v)) + q_rest log(q_rest / p_rest), with q_rest = 1 - q(S), p_rest = 1 - p(S).
  Merging tokens into one bucket never increases a KL divergence (the log-sum inequality), so 0 <= KL_S <= KL:
  a lower bound, exact when S covers the vocabulary (k = vocabulary size). The plain truncated sum
  sum_{v in top_k(q)} q(v) log(q(v)/p(v)) is not a bound in either direction: with q = (.5, .3, .15, .05) and
  p = (.1, .6, .2, .1) the exact KL is 0.519 and the top-3 sum 0.554 (it drops a negative term), and substituting
  p's k-th probability for tokens outside p's top k (as this module did before) gives -0.091 at k = 1.
  How loose the bound may be shows in two masses per measurement: `q_mass`, q's mass in its top k, and
  `shared_mass`, q's mass on S; everything outside S is only seen through the bucket.

A reply with no tokens has no drift to measure: both estimators give NaN and `Drift.note` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from agentsim.llm.types import TokenScores

NO_TOKENS = "the reply has no tokens: no measurement"


@dataclass(frozen=True)
class Drift:
    mc: float  # NaN without tokens
    topk: float  # lumped top-k lower bound; NaN without tokens
    tokens: int
    q_mass: float  # mean probability mass of q inside its top k
    shared_mass: float  # mean mass of q on the tokens scored under both contexts (S)
    note: str | None = None  # why there is no measurement

    @property
    def measured(self) -> bool:
        return self.tokens > 0


class TopK(NamedTuple):
    kl: float  # mean lumped KL per position (a lower bound on the KL)
    q_mass: float  # mean q mass in its top k
    shared_mass: float  # mean q mass on the tokens known under both


def mc_kl(q_logprobs: list[float], p_logprobs: list[float]) -> float:
    """Mean log q - log p over the reply's tokens; NaN for a reply without tokens (no measurement, not 0)."""
    q, p = np.asarray(q_logprobs, float), np.asarray(p_logprobs, float)
    if q.shape != p.shape:
        raise ValueError(f"the two scorings cover different tokens ({len(q)} vs {len(p)})")
    return float((q - p).mean()) if len(q) else float("nan")


def lumped_kl(q: dict[int, float], p: dict[int, float]) -> tuple[float, float, float]:
    """One position: (lumped KL over the tokens in both dicts plus a rest bucket, q's mass in its dict, q's mass on
    the shared tokens). Dicts map token id -> log-probability under the full distribution."""
    shared = [t for t in q if t in p]
    lq = np.fromiter((q[t] for t in shared), float, len(shared))
    lp = np.fromiter((p[t] for t in shared), float, len(shared))
    wq, wp = np.exp(lq), np.exp(lp)
    kl = float((wq * (lq - lp)).sum())
    q_rest = max(0.0, 1.0 - float(wq.sum()))
    p_rest = max(0.0, 1.0 - float(wp.sum()))
    if q_rest > 1e-12:
        # p_rest can round to 0 when q's rest is a rounding residue too; the floor keeps the term finite
        kl += q_rest * (np.log(q_rest) - np.log(max(p_rest, 1e-300)))
    # rounding in the log-probabilities can leave a bound of 0 a hair below it
    return max(kl, 0.0), float(np.exp(np.fromiter(q.values(), float, len(q))).sum()), float(wq.sum())


def topk_kl(q_top: list[dict[int, float]], p_top: list[dict[int, float]]) -> TopK:
    """Mean over positions of the lumped top-k KL (see the module docstring), of q's top-k mass and of q's mass
    on the tokens known under both. NaN for no positions."""
    if len(q_top) != len(p_top):
        raise ValueError(f"the two scorings cover different positions ({len(q_top)} vs {len(p_top)})")
    if not q_top:
        nan = float("nan")
        return TopK(nan, nan, nan)
    per = np.array([lumped_kl(qd, pd_) for qd, pd_ in zip(q_top, p_top, strict=True)])
    return TopK(float(per[:, 0].mean()), float(per[:, 1].mean()), float(per[:, 2].mean()))


def drift(q: TokenScores, p: TokenScores) -> Drift:
    if q.token_ids != p.token_ids:
        raise ValueError("the reply was tokenized differently under the two scorings")
    t = topk_kl(q.top, p.top)
    n = len(q.token_ids)
    return Drift(mc_kl(q.logprobs, p.logprobs), t.kl, n, t.q_mass, t.shared_mass, None if n else NO_TOKENS)
