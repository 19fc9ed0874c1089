"""The README's "writing your own scenario family" example, run exactly as written: the family module, its
scenario and its conformance test are cut out of README.md into a temporary package."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


def readme_files() -> dict[str, str]:
    text = (REPO / "README.md").read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", text, re.S)}


def test_readme_has_the_three_example_files() -> None:
    assert set(readme_files()) == {"publicgoods/__init__.py", "publicgoods.yaml", "test_publicgoods.py"}


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, body in readme_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    from agentsim.core import registry

    registry.families()  # discover the installed families first, so the restored registry still has them
    monkeypatch.setattr(registry, "_entry_points", dict(registry._entry_points))
    monkeypatch.setattr(registry, "_loaded", dict(registry._loaded))
    registry.register("publicgoods", "publicgoods:FAMILY")
    return tmp_path


def test_example_family_passes_its_conformance_test(example: Path) -> None:
    ns: dict = {}
    exec(compile((example / "test_publicgoods.py").read_text(), "test_publicgoods.py", "exec"), ns)
    ns["test_publicgoods_conforms"]()


def test_example_family_runs_and_resumes(example: Path) -> None:
    from agentsim.llm.router import build_backend
    from agentsim.logs.reader import RunLog
    from agentsim.runtime.local import LocalRuntime
    from agentsim.spec.loader import load_scenario

    sc = load_scenario("publicgoods.yaml", backend="scripted")
    LocalRuntime(sc, build_backend(sc.spec.models, sc.family.scripted_policy), example / "run").run()
    log = RunLog(example / "run")
    assert (log.events["action"] == "contribute").sum() == 6 * 10
    mean = log.metrics[log.metrics["metric"] == "mean_contribution"]["value"]
    assert len(mean) == 10 and mean.iloc[0] == pytest.approx(4.5, abs=0.6)
    # The CLI sees it too once the package is importable and registered (here: through a registering shim).
    shim = example / "shim.py"
    shim.write_text("import sys\nfrom agentsim.core.registry import register\nregister('publicgoods', 'publicgoods:FAMILY')\n"
                    "from agentsim.cli import app\nsys.argv[0] = 'agentsim'\napp()\n")
    r = subprocess.run([sys.executable, str(shim), "validate", "publicgoods.yaml"], capture_output=True, text=True, cwd=example,
                       env={**__import__("os").environ, "PYTHONPATH": str(example)})
    assert r.returncode == 0 and "publicgoods 'pgg'" in r.stdout, r.stderr
