"""agentsim installed from its wheel (not `pip install -e`) has every file it reads, and its commands work.

The wheel is built offline (`pip wheel --no-build-isolation`, setuptools of this environment) from a copy of the
source, and installed into a fresh virtual environment whose site-packages borrows this environment's through
a `.pth` line. The `.pth` files of a folder added that way are not processed, so the editable install's finder
of the source tree stays inactive: the fresh environment imports agentsim from the wheel only.
About 15 s, plus about 40 s for the vLLM benchmark (marked `vllm`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, has_vllm

pytestmark = pytest.mark.wheel


def source_data_files() -> set[str]:
    """Every non-Python file of the package in the source tree (tracked, or new and not ignored by git)."""
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "agentsim"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.splitlines()
        files = [f for f in out if (REPO / f).is_file()]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (a source archive)
        files = [p.relative_to(REPO).as_posix() for p in (REPO / "agentsim").rglob("*") if p.is_file()]
    return {f for f in files if not f.endswith((".py", ".pyc")) and "__pycache__" not in f}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("setuptools", reason="building the wheel offline needs setuptools in this environment")
    src = tmp_path_factory.mktemp("src")
    # A copy, so the build's build/ and *.egg-info never land in the checkout.
    shutil.copytree(REPO / "agentsim", src / "agentsim", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(REPO / "scenarios", src / "scenarios", ignore=shutil.ignore_patterns("__pycache__", "runs", "experiments"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                        "-q", str(src), "-w", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    (whl,) = out.glob("agentsim-*.whl")
    return whl


def test_the_wheel_ships_every_data_file_of_the_package(wheel: Path) -> None:
    shipped = set(zipfile.ZipFile(wheel).namelist())
    data = source_data_files()
    # The files this test exists for: each is read at run time through importlib.resources.
    assert {"agentsim/llm/data/tiny_corpus.txt", "agentsim/data/manifests/escalaition.json",
            "agentsim/scenarios/wargame/data/actions.yaml"} <= data
    assert sorted(data - shipped) == [], "add these to [tool.setuptools.package-data] in pyproject.toml"
    # and the shipped scenarios with the files they name (setup.py copies scenarios/ into agentsim/shipped_scenarios)
    scenarios = {f"agentsim/shipped_scenarios/{p.relative_to(REPO / 'scenarios')}" for p in (REPO / "scenarios").rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts}
    assert scenarios and sorted(scenarios - shipped) == []


@dataclass
class Fresh:
    root: Path
    work: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=self.work, env=self.env, capture_output=True, text=True, timeout=timeout)

    def agentsim(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        r = self.run(str(self.root / "bin" / "agentsim"), *args, timeout=timeout)
        return r


@pytest.fixture(scope="module")
def fresh(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Fresh:
    root = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    here = sysconfig.get_paths()
    (Path(site) / "_borrowed_site_packages.pth").write_text(
        "\n".join(dict.fromkeys([here["purelib"], here["platlib"]])) + "\n")
    work = tmp_path_factory.mktemp("work")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AGENTSIM_DATA", "VIRTUAL_ENV")}
    env.update(AGENTSIM_CACHE=str(work / "cache"), TMPDIR=str(work))  # the tiny model is built anew from the corpus
    f = Fresh(root, work, env)
    # --ignore-installed: never touch this environment's own (editable) agentsim, which pip can see through the .pth.
    r = f.run(str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q", str(wheel))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return f


def test_the_fresh_env_imports_agentsim_from_the_wheel(fresh: Fresh) -> None:
    r = fresh.run(str(fresh.root / "bin" / "python"), "-c",
                  "import agentsim, agentsim.data; print(agentsim.__file__); "
                  "print(len(agentsim.data.get_dataset('escalaition').manifest))")
    assert r.returncode == 0, r.stderr[-3000:]
    path, files = r.stdout.split()
    assert Path(path).is_relative_to(fresh.root) and not Path(path).is_relative_to(REPO), path
    assert files == "332"


def test_scripted_run_schema_and_data_from_the_wheel(fresh: Fresh) -> None:
    run_dir = fresh.work / "run"
    # a shipped scenario by name: the wheel carries them (agentsim/shipped_scenarios), no checkout needed
    r = fresh.agentsim("run", "wargame/neutral.yaml", "--backend", "scripted", "--steps", "2",
                       "--run-dir", str(run_dir), "--quiet")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "completed" and Path(meta["source"]).is_relative_to(fresh.root), meta["source"]
    r = fresh.agentsim("validate", "social/x_information_spread.yaml", "tournament/csd_example.yaml")
    assert r.returncode == 0, r.stderr[-3000:]  # the CSD scenario's score table travels with it
    r = fresh.agentsim("sweep", "wargame/study.yaml", "--backend", "scripted", "--set", "steps=1", "--repeats", "1",
                       "--dir", str(fresh.work / "study"), "--quiet")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    r = fresh.agentsim("schema")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "wargame" in json.dumps(json.loads(r.stdout))
    # Installed, agentsim has no checkout beside it: the data is missing until fetched, and it says how.
    r = fresh.agentsim("data", "path", "escalaition")
    assert r.returncode == 1 and "agentsim data fetch escalaition" in r.stderr, r.stderr
    assert "../shared" not in r.stderr


@pytest.mark.vllm
@pytest.mark.skipif(not has_vllm(), reason="needs vllm (the cpu or gpu extra)")
def test_bench_vllm_tiny_from_the_wheel(fresh: Fresh) -> None:
    """The tiny model is built from agentsim/llm/data/tiny_corpus.txt, which the wheel once lacked; the default
    scenario is the shipped neutral wargame, from the wheel."""
    r = fresh.agentsim("bench", "vllm", "--model", "tiny", "--steps", "1", "--repeats", "1", "--max-tokens", "8", timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert "median ratio simulated/raw tokens/s" in r.stdout
