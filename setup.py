"""Build hook: the wheel carries the shipped scenarios (the top-level scenarios/ folder) as
agentsim/shipped_scenarios, so `agentsim run wargame/neutral.yaml` and the benchmarks' default scenarios work from an
installed wheel as from a checkout (agentsim/spec/shipped.py finds them in either place). Everything else is in
pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithScenarios(build_py):
    def run(self) -> None:
        super().run()
        src = Path(__file__).parent / "scenarios"
        if src.is_dir():
            shutil.copytree(src, Path(self.build_lib) / "agentsim" / "shipped_scenarios", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "runs", "experiments"))


setup(cmdclass={"build_py": BuildWithScenarios})
