"""Benchmark: how a phase's observations should travel to shard actors.

Takes the observations a real world produces in one phase (the social world: every acting user's chat prompt,
typed view and action model) and times encoding + decoding them as (a) pickle, which Ray uses for actor arguments
(protocol 5; identical prompt strings shared by many agents are stored once because pickle memoizes objects), and
(b) an Arrow table of the chat messages (plain, and with dictionary-encoded contents so shared system prompts are
stored once), the views still pickled beside it.
"""

from __future__ import annotations

import pickle
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
MESSAGES_DICT = pa.list_(pa.struct([("role", pa.dictionary(pa.int8(), pa.string())), ("content", pa.dictionary(pa.int32(), pa.string()))]))


def phase_observations(users: int, active: float) -> list[Any]:
    import numpy as np

    from agentsim.bench.social_scale import scale_scenario
    from agentsim.core.world import StepContext

    sc = scale_scenario(users, 1, active, out=Path(tempfile.gettempdir()))
    world = sc.family.create_world(sc.spec, sc.world)
    ctx = StepContext(0, world.sim_time(0), np.random.default_rng(0), 0)
    ctx.phase = "platform"
    world.apply(ctx, "platform", [])
    return world.observe(ctx, "users")


def _time(fn: Any, repeats: int = 3) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run_transport(users: int = 100_000, active: float = 0.1) -> list[dict[str, Any]]:
    # Ray pickles actor arguments with cloudpickle (it handles dynamic classes such as action models).
    from ray import cloudpickle

    obs = phase_observations(users, active)
    rows = []
    t, blob = _time(lambda: cloudpickle.dumps(obs, protocol=5))
    t2, _ = _time(lambda: pickle.loads(blob))
    rows.append({"encoding": "cloudpickle (what Ray sends)", "observations": len(obs), "bytes": len(blob), "encode_s": t, "decode_s": t2})
    for name, typ in (("arrow messages + pickled views", MESSAGES), ("arrow, dictionary-encoded messages + pickled views", MESSAGES_DICT)):
        def enc(typ: Any = typ, cloudpickle: Any = cloudpickle) -> tuple[pa.Table, bytes]:
            table = pa.table({"agent_id": [o.agent_id for o in obs], "model": [o.model for o in obs],
                              "messages": pa.array([o.messages for o in obs], type=typ)})
            side = cloudpickle.dumps([(o.action_model, o.data, o.validation_context) for o in obs], protocol=5)
            return table, side

        t, (table, side) = _time(enc)
        t2, _ = _time(lambda table=table, side=side: (table.column("messages").to_pylist(), pickle.loads(side)))
        rows.append({"encoding": name, "observations": len(obs), "bytes": table.nbytes + len(side), "encode_s": t, "decode_s": t2})
    base = rows[0]["encode_s"] + rows[0]["decode_s"]
    for r in rows:
        r["time_vs_pickle"] = (r["encode_s"] + r["decode_s"]) / base
    return rows
