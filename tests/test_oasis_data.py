"""`agentsim data fetch oasis`: OASIS's files through the study-data mechanism (pinned commit and checksums once a
maintainer pins them; until then, fetched at a chosen commit with --unverified), `data:oasis/...` paths in
scenarios, and the shipped OASIS scenario (skipped, naming the fetch command, without the real files)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from http_archive import Server, tar_gz

from agentsim.data import DataError, DataNotFound, IntegrityError, fetch, get_dataset, locate
from agentsim.data.fetch import STAMP
from agentsim.data.sources import build_manifest
from agentsim.spec.errors import SpecError
from agentsim.spec.loader import load_scenario

from conftest import REPO, SCENARIOS, write_scenario
from test_runs import agentsim_cli

DS = get_dataset("oasis")
SHA = "3f0c2b9e5d7a41c68e2f9b0a1d4c7e6f5a8b9c0d"
EXAMPLES = SCENARIOS / "social" / "examples"
# Files at OASIS's paths, in OASIS's formats (the small synthetic examples), and files the fetch must leave out.
FILES = {
    "data/twitter_dataset/anonymous_topic_200_1h/False_Business_0.csv": (EXAMPLES / "oasis_twitter_users.csv").read_bytes(),
    "data/twitter_dataset/all_topics.csv": b",label,id,source,num_users,max_depth,source_tweet,topic_name\n0,False,1,twitter15,12,2,x,False_Business_0\n",
    "data/reddit/user_data_36.json": (EXAMPLES / "oasis_reddit_users.json").read_bytes(),
    "data/reddit/counterfactual_36.json": (EXAMPLES / "oasis_counterfactual.json").read_bytes(),
}
OTHERS = {"README.md": b"# OASIS\n", "oasis/social_platform/platform.py": b"class Platform: ...\n", "data/reddit/notes.txt": b"x\n"}


def archive(files: dict[str, bytes], commit: str = SHA) -> bytes:
    return tar_gz(files, f"oasis-{commit}", commit)


@pytest.fixture()
def cache(data_cache: Path) -> Path:
    return data_cache


def test_the_oasis_dataset_is_declared_and_its_manifest_is_pending_until_pinned() -> None:
    assert DS.repository == "camel-ai/oasis" and DS.license == "Apache-2.0"
    assert all(DS.wanted(rel) for rel in FILES) and not any(DS.wanted(rel) for rel in OTHERS)
    if DS.pending:  # nothing pinned yet: fetch says how to get the files and how to pin them
        with pytest.raises(DataError) as e:
            fetch("oasis")
        assert "--commit SHA --unverified" in str(e.value) and "scripts/pin_dataset.py oasis" in str(e.value)
        assert e.value.exit_code == 2


def test_an_unverified_fetch_keeps_only_oasis_files_and_is_found_by_the_resolver(server: Server, cache: Path) -> None:
    if not DS.pending:
        pytest.skip("the oasis manifest is pinned: tests/test_data_fetch.py's checks apply")
    url = server.serve("/oasis.tar.gz", archive({**FILES, **OTHERS}))
    r = fetch("oasis", url=url, commit=SHA, unverified=True)
    assert r.fetched and not r.verified and r.files == len(FILES)
    kept = {p.relative_to(r.path).as_posix() for p in r.path.rglob("*") if p.is_file()}
    assert kept == set(FILES) | {STAMP}
    stamp = json.loads((r.path / STAMP).read_text())
    assert stamp["commit"] == SHA and stamp["verified"] is False
    assert locate("oasis").path == r.path
    # A maintainer pins from that copy: the manifest lists exactly those files with their checksums.
    manifest = build_manifest(DS, r.path, commit=SHA)
    assert manifest["commit"] == SHA and set(manifest["files"]) == set(FILES)


@pytest.mark.parametrize(("case", "kwargs", "error", "needle"), [
    ("another commit", {"body": archive(FILES, commit="a" * 40)}, IntegrityError, "not the requested commit"),
    ("no oasis files", {"body": archive(OTHERS)}, IntegrityError, "holds none of the files oasis takes"),
    ("no commit", {"commit": None}, DataError, "--unverified needs --commit"),
    ("a short commit", {"commit": "abc123"}, DataError, "40-hex-digit commit"),
])
def test_a_bad_unverified_fetch_names_the_fault_and_writes_nothing(case: str, kwargs: dict, error: type, needle: str,
                                                                   server: Server, cache: Path) -> None:
    if not DS.pending:
        pytest.skip("the oasis manifest is pinned")
    url = server.serve(f"/bad-{case.replace(' ', '-')}.tar.gz", kwargs.get("body", archive(FILES)))
    with pytest.raises(error, match=needle):
        fetch("oasis", url=url, commit=kwargs.get("commit", SHA), unverified=True)
    assert not cache.exists() or not any(cache.rglob("*"))


def test_cli_fetch_of_a_pending_dataset_exits_2_and_says_how(cache: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "agentsim", "data", "fetch", "oasis"], capture_output=True, text=True, timeout=120)
    if not DS.pending:
        pytest.skip("the oasis manifest is pinned")
    assert r.returncode == 2 and "--unverified" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "agentsim", "data", "list"], capture_output=True, text=True, timeout=120)
    assert "oasis" in r.stdout and "not pinned yet" in r.stdout


def test_data_paths_in_a_scenario_name_dataset_files(server: Server, cache: Path, tmp_path: Path, monkeypatch) -> None:
    f = write_scenario(tmp_path, X_SCENARIO, **{"world.users": {"file": "data:oasis/data/twitter_dataset/anonymous_topic_200_1h/False_Business_0.csv"},
                                                "world.interventions": []})
    with pytest.raises(SpecError) as e:
        load_scenario(f)
    assert "world.users.file" in str(e.value) and "agentsim data fetch oasis" in str(e.value)
    if DS.pending:
        url = server.serve("/oasis-ok.tar.gz", archive(FILES))
        fetch("oasis", url=url, commit=SHA, unverified=True)
        sc = load_scenario(f)
        assert sc.world.users.file == locate("oasis").path / "data/twitter_dataset/anonymous_topic_200_1h/False_Business_0.csv"
        r = agentsim_cli("validate", str(f), "--backend", "scripted")
        assert r.returncode == 0, r.stderr
        bad = write_scenario(tmp_path, X_SCENARIO, **{"world.users": {"file": "data:oasis/../../etc/passwd"}})
        with pytest.raises(SpecError, match="leaves the dataset's folder"):
            load_scenario(bad)


X_SCENARIO = SCENARIOS / "social" / "x_information_spread.yaml"


# -- the shipped scenario on the real files -------------------------------------------------------------------
@pytest.fixture(scope="module")
def oasis_data() -> Path:
    try:
        return locate("oasis").path
    except DataNotFound as e:
        pytest.skip(str(e))


def test_the_shipped_oasis_scenario_validates_on_the_real_files(oasis_data: Path) -> None:
    r = agentsim_cli("validate", str(SCENARIOS / "social" / "oasis_alignment.yaml"), "--backend", "scripted")
    assert r.returncode == 0, r.stderr


def test_without_the_files_the_oasis_tests_skip_naming_the_fetch_command(tmp_path: Path) -> None:
    env = {"AGENTSIM_CACHE": str(tmp_path / "empty"), "PATH": "/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
    env.pop("AGENTSIM_DATA", None)
    r = subprocess.run([sys.executable, "-m", "pytest", str(REPO / "tests" / "test_oasis_data.py"), "-q", "-rs",
                        "-k", "shipped_oasis_scenario", "-p", "no:cacheprovider"], capture_output=True, text=True, env=env, timeout=300,
                       cwd=REPO / "tests")
    if "1 passed" in r.stdout:
        pytest.skip("the OASIS files are beside this checkout (../shared/data/oasis)")
    assert "1 skipped" in r.stdout and "agentsim data fetch oasis" in r.stdout, r.stdout[-2000:]
