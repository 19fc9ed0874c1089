"""Turn-wise drift D_t: the KL divergence between the token distributions of the model under test (q, test
context) and the goal-consistent reference (p, reference context), over the tokens of the test model's reply.

Two estimators, both per token (averaged over the reply's positions):

- Monte Carlo: mean over the sampled reply tokens y_t of log q(y_t) - log p(y_t). Unbiased for KL(q||p) when the
  reply is sampled from q at temperature 1; at other temperatures it measures the log-ratio on the tokens the
  test model actually produced.
- Top-k: at each position, sum over q's k most likely tokens v of q(v) (log q(v) - log p(v)). A token outside p's
  top k gets p's k-th log-probability, an upper bound on p(v): the truncation drops q's mass outside its top k
  (reported as `q_mass`) and can only under-state the divergence. With k = vocabulary size it is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agentsim.llm.types import TokenScores


@dataclass(frozen=True)
class Drift:
    mc: float
    topk: float
    tokens: int
    q_mass: float  # mean probability mass of q inside its top k


def mc_kl(q_logprobs: list[float], p_logprobs: list[float]) -> float:
    q, p = np.asarray(q_logprobs, float), np.asarray(p_logprobs, float)
    if q.shape != p.shape:
        raise ValueError(f"the two scorings cover different tokens ({len(q)} vs {len(p)})")
    return float((q - p).mean()) if len(q) else 0.0


def topk_kl(q_top: list[dict[int, float]], p_top: list[dict[int, float]]) -> tuple[float, float]:
    """(mean truncated KL per position, mean q mass in the top k)."""
    if len(q_top) != len(p_top):
        raise ValueError(f"the two scorings cover different positions ({len(q_top)} vs {len(p_top)})")
    if not q_top:
        return 0.0, 1.0
    kls, masses = [], []
    for qd, pd_ in zip(q_top, p_top, strict=True):
        floor = min(pd_.values()) if pd_ else -np.inf
        ids = np.fromiter(qd.keys(), int)
        lq = np.fromiter(qd.values(), float)
        lp = np.array([pd_.get(int(t), floor) for t in ids])
        w = np.exp(lq)
        kls.append(float((w * (lq - lp)).sum()))
        masses.append(float(w.sum()))
    return float(np.mean(kls)), float(np.mean(masses))


def drift(q: TokenScores, p: TokenScores) -> Drift:
    if q.token_ids != p.token_ids:
        raise ValueError("the reply was tokenized differently under the two scorings")
    t, mass = topk_kl(q.top, p.top)
    return Drift(mc_kl(q.logprobs, p.logprobs), t, len(q.token_ids), mass)
