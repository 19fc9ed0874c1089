"""A two-node Ray cluster on one machine (`ray start --head` + a worker node with its own resources):
`agentsim run --address` spreads the shards over both nodes and writes the same log as the local runtime."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_scenario
from test_runs import assert_same_log, run_ok

RAY = str(Path(sys.executable).parent / "ray")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # A throw-away cluster on loopback: no token authentication (every process here, agentsim's too, agrees).
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    port = _port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    import tempfile

    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short (unix sockets), private to this cluster
    head = subprocess.run([RAY, "start", "--head", "--port", str(port), "--num-cpus", "1", "--node-ip-address", "127.0.0.1",
                           "--temp-dir", str(temp), "--include-dashboard", "false", "--disable-usage-stats"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert head.returncode == 0, head.stderr[-2000:]
    address = f"127.0.0.1:{port}"
    try:
        worker = subprocess.run([RAY, "start", "--address", address, "--num-cpus", "2", "--node-ip-address", "127.0.0.1",
                                 "--resources", '{"second_node": 1}', "--disable-usage-stats"],
                                capture_output=True, text=True, env=env, timeout=300)
        assert worker.returncode == 0, worker.stderr[-2000:]
        yield address
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, env=env, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def test_run_spreads_shards_over_two_nodes(two_nodes: str, tmp_path: Path) -> None:
    f = write_scenario(tmp_path, steps=3)
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "local"), "--quiet")
    r = run_ok(str(f), "--backend", "scripted", "--address", two_nodes, "--shards", "4", "--run-dir", str(tmp_path / "cluster"))
    assert "Ray: joined" in r.stderr and "4 shards on 2 node(s)" in r.stderr, r.stderr[-2000:]
    assert_same_log(tmp_path / "local", tmp_path / "cluster")
