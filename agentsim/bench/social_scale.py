"""Benchmark: the social platform at a million users, and cascade analysis of ten million events.

- Step time: 1,000,000 synthetic users (1% active per step, feeds from the hot and follow recommenders), the
  scripted backend through the full observe -> policy -> apply -> log path of the local runtime.
- Base-state memory: the world's resident-set growth on construction, per user, next to the sum of its numpy
  buffers (what the columnar design promises).
- Cascade analysis: a log of 10,000,000 events (a forest of repost trees with preferential attachment) written as
  Parquet parts, then `analysis.social.cascade_table` on it (read + rebuild + metrics).
- Roles: `analysis.social.roles_from_edges` (network features + k-means) on random follow graphs of growing size,
  with python-igraph where installed and with networkx (which takes a seeded sample of 20,000 users beyond that),
  timed side by side and drawn as a figure.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def scale_scenario(users: int, steps: int, active: float, out: Path) -> Any:
    from agentsim.spec.loader import parse_scenario

    return parse_scenario({
        "kind": "social", "name": "bench-social", "seed": 0, "steps": steps,
        "models": {"default": {"backend": "scripted"}},
        "world": {
            "mode": "x", "users": {"count": users, "groups": [
                {"name": "left", "interests": ["policy", "climate", "transit"], "stance": 0.6},
                {"name": "right", "interests": ["economy", "jobs", "cars"], "stance": -0.6}]},
            "network": {"generator": "random_follows", "k": 10, "homophily": 0.7},
            "recommender": {"sources": [{"kind": "hot", "slots": 5}, {"kind": "follow", "slots": 5}]},
            "time": {"activity": {"probability": active}}, "seed_posts": {"count": 10_000}, "memory": 0,
        },
        "runtime": {"checkpoint_every": None},
        "logging": {"dir": str(out), "record_completions": False},
    })


def run_scale(users: int = 1_000_000, steps: int = 3, active: float = 0.01, log: Any = print) -> dict[str, float]:
    from agentsim.llm.router import build_backend
    from agentsim.runtime.local import LocalRuntime

    with tempfile.TemporaryDirectory() as tmp:
        sc = scale_scenario(users, steps, active, Path(tmp))
        router = build_backend(sc.spec.models, sc.family.scripted_policy)
        gc.collect()
        rss0 = rss_bytes()
        t0 = time.perf_counter()
        rt = LocalRuntime(sc, router, Path(tmp) / "run")  # builds the world
        build_s = time.perf_counter() - t0
        gc.collect()
        base = rss_bytes() - rss0
        w: Any = rt.world
        arrays = sum(a.nbytes for a in (w.follows.keys, w.pop.vec, w.pop.group, w.pop.interests, w.pop.stance, w.latest_post, w.alias))
        log(f"world of {users:,} users built in {build_s:.1f} s")
        t0 = time.perf_counter()
        rt.run()
        total = time.perf_counter() - t0
        steps_s = rt.step_wall
    return {"users": users, "build_s": build_s, "base_bytes_per_user": base / users, "array_bytes_per_user": arrays / users,
            "run_s": total, "step_p50_s": float(np.median(steps_s)), "step_max_s": float(np.max(steps_s)),
            "active_per_step": users * active}


def synthetic_cascade_log(run_dir: Path, events: int, roots: int, seed: int = 0) -> None:
    """A run directory whose events table holds `roots` original posts and `events - roots` reposts; each repost
    picks its parent by preferential attachment (an existing node of a random tree, chosen with probability
    rising with that tree's size), so cascade sizes are heavy-tailed."""
    from agentsim.logs.schema import EVENTS, SCHEMA_VERSION, SCHEMA_VERSION_KEY, TABLE_KEY

    rng = np.random.default_rng(seed)
    n_share = events - roots
    # Parent of share i: a uniformly chosen earlier node (Yule/Simon process: preferential at the tree level).
    ids = np.arange(events, dtype=np.int64)
    parent = np.full(events, -1, np.int64)
    k = np.arange(roots, events)
    parent[roots:] = (rng.random(n_share) * k).astype(np.int64)
    step = np.minimum(ids * 100 // events, 99).astype(np.int32)
    action = np.where(parent >= 0, "repost", "create_post")
    (run_dir / "events").mkdir(parents=True)
    schema = EVENTS.with_metadata({SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode(), TABLE_KEY: b"events"})
    per = 1_000_000
    for j, lo in enumerate(range(0, events, per)):
        hi = min(events, lo + per)
        t = pa.table({
            "event_id": ids[lo:hi], "step": step[lo:hi], "sim_time": step[lo:hi].astype(np.float64), "phase": pa.array(["users"] * (hi - lo)),
            "agent_id": pa.array(np.char.add("u", (ids[lo:hi] % 1_000_000).astype(str))), "action": pa.array(action[lo:hi]),
            "target": pa.nulls(hi - lo, pa.string()), "payload": pa.nulls(hi - lo, pa.string()),
            "parent_event_id": pa.array(np.where(parent[lo:hi] >= 0, parent[lo:hi], 0), mask=parent[lo:hi] < 0),
            "request_id": pa.nulls(hi - lo, pa.string()),
        }, schema=schema)
        pq.write_table(t, run_dir / "events" / f"part-{j:06d}.parquet", compression="zstd")


def run_cascades(events: int = 10_000_000, roots: int = 1_000_000, log: Any = print) -> dict[str, float]:
    from agentsim.analysis.social import cascade_table
    from agentsim.logs.reader import RunLog

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "run"
        t0 = time.perf_counter()
        synthetic_cascade_log(d, events, roots)
        log(f"wrote {events:,} synthetic events in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        table = cascade_table(RunLog(d))
        s = time.perf_counter() - t0
    return {"events": events, "cascades": len(table), "analysis_s": s, "largest": int(table["size"].max()),
            "max_depth": int(table["depth"].max())}


def run_roles(sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000), k: int = 5, engines: tuple[str, ...] = ("igraph", "networkx"),
              figure: Path | None = None, log: Any = print) -> list[dict[str, Any]]:
    """Seconds for the roles analysis (features + k-means for k = 2..6) on random follow graphs of `sizes` users
    with `k` follows each, per engine (an engine that is not installed is reported as such); a log-log PNG at
    `figure`."""
    import pandas as pd

    from agentsim.analysis.social import graph_engine, roles_from_edges

    have_igraph = graph_engine() == "igraph"
    rows = []
    for n in sizes:
        rng = np.random.default_rng(0)
        edges = pd.DataFrame({"follower": np.repeat(np.arange(n), k), "followee": rng.integers(0, n, n * k)})
        for engine in engines:
            if engine == "igraph" and not have_igraph:
                rows.append({"users": n, "engine": engine, "seconds": float("nan"), "note": "not installed (pip install igraph)"})
                continue
            t0 = time.perf_counter()
            out = roles_from_edges(edges, range(n), engine=engine)
            s = time.perf_counter() - t0
            sampled = any("betweenness, clustering and PageRank of a seeded sample" in m for m in out["silhouette"].attrs.get("notes", []))
            rows.append({"users": n, "engine": engine, "seconds": s, "note": "features of a 20,000-user sample" if sampled else "every user"})
            log(f"roles: {n:,} users, {engine}: {s:.1f} s")
    if figure is not None:
        _roles_figure(rows, figure)
    return rows


def _roles_figure(rows: list[dict[str, Any]], path: Path) -> Path:
    from agentsim.analysis.plots import new_figure, save

    fig, ax = new_figure((6, 4))
    for engine in dict.fromkeys(r["engine"] for r in rows):
        pts = [(r["users"], r["seconds"]) for r in rows if r["engine"] == engine and r["seconds"] == r["seconds"]]
        if pts:
            ax.loglog(*zip(*pts, strict=True), "o-", label=f"{engine} (1 timing per size)")
    ax.set_xlabel("users (5 follows each)")
    ax.set_ylabel("roles analysis, seconds")
    ax.set_title("Roles analysis time (features + k-means)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    save(fig, path)
    return path
