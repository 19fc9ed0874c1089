"""The Ray runtime: same log as the local runtime, shards restarted after a kill, one call per shard."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from agentsim.runtime.local import LocalRuntime
from agentsim.runtime.ray_runtime import ShardedPolicy, make_shards
from agentsim.spec.loader import load_scenario

from conftest import SCENARIOS, write_scenario
from test_runs import assert_same_log, run_ok, wait_for_steps


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _ray_run(f: Path, run_dir: Path, shards: int = 3, replay_from: Path | None = None, during=None, **overrides):
    sc = load_scenario(f, **{"runtime.kind": "ray", "runtime.shards": shards}, **overrides)
    actors, _ = make_shards(sc.spec, sc.family.scripted_policy, str(replay_from) if replay_from else None, log=lambda m: None)
    policy = ShardedPolicy(actors)
    rt = LocalRuntime(sc, None, run_dir, policy=policy)
    if sc.family.create_mind is not None:  # each shard holds its own agents' personas, every agent in one shard
        assert len(policy.held) == shards and min(policy.held) > 0 and sum(policy.held) == rt.agents.num_rows
    if during is None:
        return rt.run(), actors
    result: dict = {}
    t = threading.Thread(target=lambda: result.setdefault("r", rt.run()))
    t.start()
    during(actors)
    t.join(timeout=600)
    return result["r"], actors


@pytest.mark.parametrize("scenario", ["wargame/neutral.yaml", "tournament/live_ipd.yaml", "drift/rewrite.yaml", "social/x_information_spread.yaml"])
def test_ray_log_equals_local_log(ray_local, tmp_path: Path, scenario: str) -> None:
    f = write_scenario(tmp_path, SCENARIOS / scenario, steps=4)
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "local"), "--quiet")
    result, actors = _ray_run(f, tmp_path / "ray", backend="scripted")
    assert result.status == "completed"
    assert_same_log(tmp_path / "local", tmp_path / "ray")
    assert len({ray_local.get(a.ping.remote()) for a in actors}) == 3  # three separate actor processes


def test_ray_replay_equals_recording(ray_local, tmp_path: Path) -> None:
    f = write_scenario(tmp_path, steps=5)
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "rec"), "--quiet")
    _ray_run(f, tmp_path / "ray", replay_from=tmp_path / "rec", backend="replay")
    assert_same_log(tmp_path / "rec", tmp_path / "ray", ignore={"llm_calls": ["backend"]})


def _kill_a_shard_mid_run(ray, f: Path, tmp_path: Path, steps: int, after: int) -> Path:
    """A local run for reference, then a Ray run of which one shard actor is killed after `after` steps; the Ray
    run must complete all steps and write the reference log. Returns the Ray run's directory."""
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "local"), "--quiet")
    run_dir = tmp_path / "ray"

    def kill_mid_run(actors) -> None:
        wait_for_steps(run_dir, after, timeout=300)
        ray.kill(actors[1], no_restart=False)

    result, _ = _ray_run(f, run_dir, backend="scripted", during=kill_mid_run)
    assert result.status == "completed" and result.steps_completed == steps
    assert_same_log(tmp_path / "local", run_dir)
    return run_dir


def test_a_killed_shard_is_restarted_and_nothing_is_lost(ray_local, tmp_path: Path) -> None:
    steps = 40
    f = write_scenario(tmp_path, steps=steps, **{"world.history_days": 1})
    run_dir = _kill_a_shard_mid_run(ray_local, f, tmp_path, steps, after=5)
    assert "rollbacks" not in json.loads((run_dir / "run.json").read_text())  # no memories: the call is just re-run


def test_a_killed_shard_holding_memories_sends_the_run_back_to_its_checkpoint(ray_local, tmp_path: Path) -> None:
    """Social users' memories live in the shards. A restarted shard actor comes back without them, so the run goes
    back to the last checkpoint (as `agentsim resume` would) and runs on: the log equals an uninterrupted run's."""
    steps = 30
    f = write_scenario(tmp_path, SCENARIOS / "social" / "x_information_spread.yaml", steps=steps,
                       **{"world.users.count": 200, "runtime.checkpoint_every": 4})
    run_dir = _kill_a_shard_mid_run(ray_local, f, tmp_path, steps, after=6)
    rollbacks = json.loads((run_dir / "run.json").read_text())["rollbacks"]
    assert len(rollbacks) == 1 and rollbacks[0]["to_step"] % 4 == 0 and rollbacks[0]["to_step"] >= 4


def test_a_sigkilled_ray_run_resumes_with_its_shards_memories(tmp_path: Path) -> None:
    """`agentsim run --runtime ray` killed with SIGKILL, then `agentsim resume`: the checkpoint's memories go back to
    the new shards (each to the shard that owns the user), and the log equals an uninterrupted local run's."""
    from test_runs import _kill_at_random_step, agentsim_cli

    steps = 14
    f = write_scenario(tmp_path, SCENARIOS / "social" / "x_information_spread.yaml", steps=steps,
                       **{"world.users.count": 200, "runtime.checkpoint_every": 3})
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "local"), "--quiet")
    killed = tmp_path / "killed"
    _kill_at_random_step(f, killed, steps, seed=3, backend=("--backend", "scripted", "--runtime", "ray", "--shards", "3"))
    assert json.loads((killed / "checkpoint.json").read_text())["memories"]
    r = agentsim_cli("resume", str(killed), "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    meta = json.loads((killed / "run.json").read_text())
    assert meta["status"] == "completed" and meta["resumed"] and meta["spec"]["runtime"]["kind"] == "ray"
    assert_same_log(tmp_path / "local", killed)


def test_engine_routing_prefix_affinity_and_least_loaded() -> None:
    from agentsim.llm.types import LLMRequest
    from agentsim.runtime.ray_runtime import EngineClient
    from agentsim.spec.models import SamplingSpec

    replicas = [object(), object(), object()]
    client = EngineClient({"m": replicas})

    def req(i: int, system: str | None) -> LLMRequest:
        msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": f"q{i}"}]
        return LLMRequest(f"r{i}", f"a{i}", "m", "m", msgs, SamplingSpec(), seed=i)

    assigned: dict[int, int] = {}
    same = {id(client._replica(req(i, "You are nation X."), assigned)) for i in range(20)}
    assert len(same) == 1  # one system prompt -> one replica (its prefix cache)
    spread = [id(client._replica(req(i, None), assigned)) for i in range(30)]
    assert sorted(spread.count(id(r)) for r in replicas) == [10, 10, 10]  # no shared prefix -> least loaded
    client.in_flight[id(replicas[0])] = 100
    assert client._replica(req(99, None), {}) is not replicas[0]


@pytest.mark.vllm
def test_vllm_through_shards_and_an_engine_actor(ray_local, tiny_model: Path, tmp_path: Path) -> None:
    from agentsim.logs.reader import RunLog

    from conftest import tiny_models

    f = write_scenario(tmp_path, steps=2, models=tiny_models(tiny_model), **{"world.world_model.enabled": False})
    sc = load_scenario(f, **{"runtime.kind": "ray", "runtime.shards": 4})
    actors, engines = make_shards(sc.spec, sc.family.scripted_policy, None, log=lambda m: None)
    result = LocalRuntime(sc, None, tmp_path / "v", policy=ShardedPolicy(actors)).run()
    assert result.status == "completed"
    calls = RunLog(tmp_path / "v").llm_calls
    assert (calls["backend"] == "vllm").all() and len(calls) >= 2 * 8
    assert (calls.groupby(["step", "attempt"])["agent_id"].count() > 0).all()
    stats = ray_local.get(engines["default"][0].stats.remote())
    # four shards call the one engine per phase; calls that arrive together share an engine batch
    assert stats["calls"] >= 2 * 4 and stats["batches"] < stats["calls"], stats
    assert stats["mode"] == "batch"  # engine_mode auto on CPU


@pytest.mark.vllm
def test_a_killed_engine_actor_is_restarted_and_its_requests_reissued(ray_local, tiny_model: Path, tmp_path: Path) -> None:
    """ray.kill of the vLLM engine actor mid-run: Ray restarts it (the model loads again) and re-issues the calls
    it lost; the run completes with each step's requests answered once, as in an uninterrupted run."""
    import time

    from agentsim.logs.reader import RunLog

    from conftest import tiny_models

    steps = 5
    f = write_scenario(tmp_path, steps=steps, models=tiny_models(tiny_model, max_tokens=24), **{"world.world_model.enabled": False})
    sc = load_scenario(f, **{"runtime.kind": "ray", "runtime.shards": 2})

    def run(run_dir: Path, kill: bool) -> None:
        actors, engines = make_shards(sc.spec, sc.family.scripted_policy, None, log=lambda m: None)
        rt = LocalRuntime(sc, None, run_dir, policy=ShardedPolicy(actors))
        t = threading.Thread(target=rt.run)
        t.start()
        if kill:
            wait_for_steps(run_dir, 2, timeout=600)
            time.sleep(0.2)  # into the next step's generation
            ray_local.kill(engines["default"][0], no_restart=False)
        t.join(timeout=900)
        assert not t.is_alive()
        for a in actors + engines["default"]:
            ray_local.kill(a)

    run(tmp_path / "whole", kill=False)
    run(tmp_path / "killed", kill=True)
    whole, killed = RunLog(tmp_path / "whole"), RunLog(tmp_path / "killed")
    assert killed.meta["status"] == "completed" and killed.meta["steps_completed"] == steps
    # 24 tokens cut every JSON answer short, so each agent is asked twice whatever the text: the set of requests
    # is fixed, and any lost or doubled request shows.
    cols = ["request_id", "step", "agent_id", "seed", "request_hash"]
    a, b = whole.llm_calls[cols], killed.llm_calls[cols]
    assert b["request_id"].is_unique and a.equals(b)  # nothing lost, nothing answered twice
    assert whole.table("events").drop(["payload"]).equals(killed.table("events").drop(["payload"]))


@pytest.mark.vllm
def test_async_engine_mode_batches_continuously(ray_local, tiny_model: Path, tmp_path: Path) -> None:
    """runtime.engine_mode: async — vLLM's AsyncLLM in the engine actor: each shard call goes straight into the running
    engine (one engine call per shard call), and the run logs the same requests as the batch mode."""
    from agentsim.logs.reader import RunLog

    from conftest import tiny_models

    f = write_scenario(tmp_path, steps=2, models=tiny_models(tiny_model, max_tokens=24), **{"world.world_model.enabled": False})
    logs = {}
    for mode in ("batch", "async"):
        sc = load_scenario(f, **{"runtime.kind": "ray", "runtime.shards": 4, "runtime.engine_mode": mode})
        actors, engines = make_shards(sc.spec, sc.family.scripted_policy, None, log=lambda m: None)
        result = LocalRuntime(sc, None, tmp_path / mode, policy=ShardedPolicy(actors)).run()
        assert result.status == "completed"
        stats = ray_local.get(engines["default"][0].stats.remote())
        if mode == "async":
            assert stats["calls"] == stats["batches"] >= 2 * 4, stats
        for a in actors + engines["default"]:
            ray_local.kill(a)
        logs[mode] = RunLog(tmp_path / mode).llm_calls
    cols = ["request_id", "step", "agent_id", "seed", "request_hash"]
    assert logs["async"][cols].equals(logs["batch"][cols])
    assert (logs["async"]["completion_tokens"] > 0).all()


def test_runtime_benchmark_runs_both_runtimes_on_the_same_world(ray_local) -> None:
    """`agentsim bench runtime` at a small size: both runtimes complete the same agent-steps (no timing asserted)."""
    from agentsim.bench.runtime_overhead import run_runtime_overhead
    from agentsim.core.registry import families

    r = run_runtime_overhead(agents=3000, steps=2, shards=3, log=lambda m: None)
    assert "echo" not in families()  # the benchmark's private family is gone afterwards
    assert r["local_agent_steps_per_s"] > 0 and r["ray_agent_steps_per_s"] > 0
    assert r["ratio"] == pytest.approx(r["ray_agent_steps_per_s"] / r["local_agent_steps_per_s"])
    assert r["ray_shard_base_bytes"] > 10 * 2**20 and r["ray_shard_bytes_per_agent"] >= 0


def test_engine_placement_gives_each_engine_its_gpus_on_one_node(tmp_path: Path) -> None:
    """runtime.gpus_per_engine: each engine actor gets one placement-group bundle holding all tensor_parallel_size
    GPUs of one node, and sees exactly those GPUs. Run on a Ray instance that declares 4 (logical) GPUs, in a
    subprocess so it does not disturb this module's Ray instance; no GPU is needed."""
    import subprocess
    import sys

    script = tmp_path / "place.py"
    script.write_text('''
import json, os, ray
from agentsim.llm.types import BackendError
from agentsim.runtime.ray_runtime import engine_placement

ray.init(num_cpus=4, num_gpus=4, include_dashboard=False, log_to_driver=False)

@ray.remote
class Probe:
    def gpus(self):
        return sorted(str(g) for g in ray.get_gpu_ids()), os.environ.get("CUDA_VISIBLE_DEVICES")

engines = [Probe.options(**engine_placement(ray, 2, 1)).remote() for _ in range(2)]
seen = ray.get([e.gpus.remote() for e in engines])
try:
    engine_placement(ray, 2, 1, timeout=3)
    third = "placed"
except BackendError as e:
    third = str(e)
print(json.dumps({"seen": seen, "third": third}))
''')
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    (a, va), (b, vb) = out["seen"]
    assert len(a) == len(b) == 2 and not set(a) & set(b)  # two GPUs each, none shared
    assert sorted(va.split(",")) == a and sorted(vb.split(",")) == b
    assert "no node could give an engine 2 GPU(s)" in out["third"] and "4 GPUs" in out["third"]
