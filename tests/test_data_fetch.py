"""`agentsim data fetch`: a real download from a local HTTP server of an archive built here from the study's data,
checked file by file and installed all or nothing; the resolver's order; tests skip where the data is missing."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from http_archive import Server, tar_gz

from agentsim.analysis.escalation import (
    escalation_by_day,
    load_study_logs,
    study_data_dir,
    study_log_paths,
    study_scores,
)
from agentsim.data import (
    DataIncomplete,
    DataNotFound,
    FetchError,
    IntegrityError,
    Place,
    UnknownDataset,
    fetch,
    get_dataset,
    locate,
    problems,
)
from agentsim.data.fetch import STAMP
from agentsim.data.sources import build_manifest

from conftest import REPO

DS = get_dataset("escalaition")
COMMIT = DS.commit
OTHER_COMMIT = "d478116fc7227aed37976ac5c11477483062d628"  # an older commit of the same repository
RENAMED = "evals/json_v6_exponential/Claude-2.0 Neutral A4_raw.json"
ALIAS = "evals/json_v6_exponential/Claude-2.0 Neutral A4_claude-2.0_raw.json"  # its name elsewhere in the history
CORRUPTED = "results/actions_v3/GPT-4 Neutral A3.csv"
# Files of the repository that the fetch must not keep (one of them matches an include pattern but is not listed).
EXTRAS = {"README.md": b"# EscalAItion\n", "results/actions_v3/Unlisted Model Neutral A1.csv": b"day,self\n1,Red\n",
          "results/actions_v3/notes.txt": b"not data\n", "src/run.py": b"print('hi')\n"}


# -- the study's files and GitHub-like archives of them ------------------------------------------------------------
@pytest.fixture(scope="module")
def study_files(study_data: Path) -> dict[str, bytes]:
    """The manifest's files, read from the copy the resolver found (skips without one), checked against it."""
    bad = problems(DS, study_data, checksums=True)
    assert not bad, f"the copy at {study_data} does not match the manifest: {bad[:5]}"
    return {rel: (study_data / rel).read_bytes() for rel in DS.manifest}


def make_archive(files: dict[str, bytes], commit: str | None = COMMIT, top: str | None = None) -> bytes:
    """The study's archive as GitHub's codeload serves it, with files it does not use beside them."""
    return tar_gz({**EXTRAS, **files}, top or f"EscalAItion-{commit or 'main'}", commit)


@pytest.fixture()
def cache(data_cache: Path) -> Path:
    return data_cache


def assert_nothing_written(cache: Path) -> None:
    left = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*")) if cache.exists() else []
    assert left == [], f"a failed fetch left {left[:5]} in the cache"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- a good archive ------------------------------------------------------------------------------------------------
def test_fetch_verifies_installs_and_the_importer_reads_it(study_files, server: Server, cache: Path) -> None:
    url = server.serve("/good.tar.gz", make_archive(study_files))
    r = fetch("escalaition", url=url)
    target = cache / "data" / "escalaition"
    assert r.fetched and r.path == target and r.files == 332 and r.renamed == {}
    assert problems(DS, target, checksums=True) == []
    kept = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    assert kept == set(DS.manifest) | {STAMP}  # the repository's other files are not kept
    assert json.loads((target / STAMP).read_text())["commit"] == COMMIT
    assert sorted(p.name for p in target.parent.iterdir()) == ["escalaition"]  # no temp file or folder left
    # The one resolver finds it in the cache, and the importer reads it through the resolver.
    assert locate("escalaition").source == "cache" and study_data_dir() == target
    assert len(study_log_paths()) == 165
    events = load_study_logs("GPT-4 Neutral A1")
    ours = escalation_by_day(events, n_nations=8, mode="study", days=range(1, 15)).set_index("day")
    assert [int(ours.loc[d["Day"], "total"]) for d in study_scores("GPT-4 Neutral A1")] == \
           [d["Total"] for d in study_scores("GPT-4 Neutral A1")]


def test_a_second_fetch_is_a_no_op_and_force_fetches_again(study_files, server: Server, cache: Path) -> None:
    good = server.serve("/again.tar.gz", make_archive(study_files))
    assert fetch("escalaition", url=good).fetched
    assert server.hits["/again.tar.gz"] == 1
    # Already there and verified: no request at all (the URL would 404 if asked).
    r = fetch("escalaition", url=server.base + "/never-asked.tar.gz")
    assert not r.fetched and server.hits["/never-asked.tar.gz"] == 0
    r = fetch("escalaition", url=good, force=True)
    assert r.fetched and server.hits["/again.tar.gz"] == 2
    # A damaged copy in place is not "already there": a plain fetch repairs it.
    (r.path / CORRUPTED).write_bytes(b"x" + (r.path / CORRUPTED).read_bytes()[1:])
    assert fetch("escalaition", url=good).fetched and server.hits["/again.tar.gz"] == 3
    assert problems(DS, r.path, checksums=True) == []


@pytest.mark.parametrize("how", ["renamed", "renamed-and-other-bytes-at-the-path"])
def test_a_file_under_another_name_is_found_by_its_checksum(how: str, study_files, server: Server, cache: Path) -> None:
    files = dict(study_files)
    files[ALIAS] = files.pop(RENAMED)
    if how == "renamed-and-other-bytes-at-the-path":
        files[RENAMED] = b'[{"Day": 1, "Total": 0}]'
    r = fetch("escalaition", url=server.serve(f"/{how}.tar.gz", make_archive(files)))
    assert r.renamed == {RENAMED: ALIAS}
    assert (r.path / RENAMED).read_bytes() == study_files[RENAMED]
    assert not (r.path / ALIAS).exists()
    assert problems(DS, r.path, checksums=True) == []


# -- every way a download can go wrong: an error naming what, and nothing written ------------------------------------
def _corrupt(files: dict[str, bytes]) -> dict[str, bytes]:
    data = bytearray(files[CORRUPTED])
    data[len(data) // 2] ^= 0x01
    return {**files, CORRUPTED: bytes(data)}


def _without(files: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if k != CORRUPTED}


FAILURES: dict[str, tuple[Callable[[dict[str, bytes]], tuple[bytes, int, str]], type[Exception], tuple[str, ...]]] = {
    "corrupted byte": (lambda f: (make_archive(_corrupt(f)), 200, "full"), IntegrityError, (CORRUPTED, "sha256")),
    "missing file": (lambda f: (make_archive(_without(f)), 200, "full"), IntegrityError, (CORRUPTED, "missing")),
    "wrong commit": (lambda f: (make_archive(f, OTHER_COMMIT), 200, "full"), IntegrityError, (OTHER_COMMIT, COMMIT)),
    "no commit": (lambda f: (make_archive(f, None), 200, "full"), IntegrityError, ("cannot tell which commit",)),
    "not an archive": (lambda f: (b"<html>rate limited</html>", 200, "full"), IntegrityError, ("not a .tar.gz",)),
    "shorter than Content-Length": (lambda f: (make_archive(f), 200, "short-length"), FetchError, ("broke off",)),
    "closed early without a length": (lambda f: (make_archive(f), 200, "short-close"), IntegrityError, ("truncated",)),
    "HTTP 404": (lambda f: (b"Not Found", 404, "full"), FetchError, ("HTTP 404",)),
    "HTTP 500": (lambda f: (b"oops", 500, "full"), FetchError, ("HTTP 500",)),
    "stalled": (lambda f: (make_archive(f), 200, "stall"), FetchError, ("no answer", "within 0.5 s")),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_a_bad_download_names_the_fault_and_writes_nothing(case: str, study_files, server: Server, cache: Path) -> None:
    build, error, needles = FAILURES[case]
    body, status, mode = build(study_files)
    url = server.serve(f"/{case.replace(' ', '-')}.tar.gz", body, status, mode)
    with pytest.raises(error) as e:
        fetch("escalaition", url=url, timeout=0.5)
    for needle in needles:
        assert needle in str(e.value), str(e.value)
    assert e.value.exit_code == 3
    assert_nothing_written(cache)


def test_an_unreachable_host_is_a_clear_error(cache: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/x.tar.gz"
    with pytest.raises(FetchError, match=r"cannot reach 127\.0\.0\.1:\d+"):
        fetch("escalaition", url=url, timeout=2)
    assert_nothing_written(cache)


def test_a_failed_forced_fetch_keeps_the_copy_in_place(study_files, server: Server, cache: Path) -> None:
    r = fetch("escalaition", url=server.serve("/keep.tar.gz", make_archive(study_files)))
    before = {p: p.read_bytes() for p in r.path.rglob("*") if p.is_file()}
    with pytest.raises(IntegrityError, match="GPT-4 Neutral A3.csv"):
        fetch("escalaition", url=server.serve("/keep-bad.tar.gz", make_archive(_corrupt(study_files))), force=True)
    assert {p: p.read_bytes() for p in r.path.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in r.path.parent.iterdir()) == ["escalaition"]


@pytest.mark.parametrize(("kwargs", "error", "needle"), [
    ({"name": "escalation"}, UnknownDataset, "unknown dataset 'escalation'; known: escalaition"),
    ({"url": "ftp://example.org/x.tar.gz"}, Exception, "expected an http:// or https:// address"),
])
def test_bad_arguments_are_exit_code_2(kwargs: dict, error: type[Exception], needle: str, cache: Path) -> None:
    with pytest.raises(error) as e:
        fetch(**{"name": "escalaition", **kwargs})
    assert needle in str(e.value) and e.value.exit_code == 2
    assert_nothing_written(cache)


# -- the CLI -----------------------------------------------------------------------------------------------------------
def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agentsim", "data", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


def test_cli_fetch_path_list_and_exit_codes(study_files, server: Server, cache: Path) -> None:
    env = {"AGENTSIM_CACHE": str(cache), DS.url_env: server.serve("/cli.tar.gz", make_archive(study_files))}
    r = cli("fetch", "escalaition", env=env)  # the URL from the environment variable
    assert r.returncode == 0, r.stderr
    assert "332 files verified" in r.stdout and str(cache / "data" / "escalaition") in r.stdout
    r = cli("fetch", "escalaition", env=env)
    assert r.returncode == 0 and "already in place and verified" in r.stdout
    r = cli("path", "escalaition", env=env)
    assert r.returncode == 0 and r.stdout.strip() == str(cache / "data" / "escalaition")
    r = cli("list", env=env)
    assert r.returncode == 0 and "found (cache)" in r.stdout and COMMIT in r.stdout
    for args, code, needle in [
        (("fetch", "escalaition", "--force", "--url", server.base + "/missing.tar.gz"), 3, "HTTP 404"),
        (("fetch", "escalaition", "--force", "--url", f"http://127.0.0.1:{free_port()}/x"), 3, "cannot reach"),
        (("fetch", "nosuch"), 2, "unknown dataset 'nosuch'"),
        (("path", "nosuch"), 2, "unknown dataset 'nosuch'"),
    ]:
        r = cli(*args, env=env)
        assert r.returncode == code, (args, r.stdout, r.stderr)
        assert needle in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


# -- the resolver ------------------------------------------------------------------------------------------------------
def _link_copy(src: Path, dst: Path, drop: str | None = None) -> Path:
    for rel in DS.manifest:
        if rel != drop:
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(src / rel, dst / rel)
    return dst


@pytest.mark.parametrize("present", [("argument", "env", "cache"), ("env", "cache"), ("cache",), ()])
def test_resolver_order(present: tuple[str, ...], study_data: Path, tmp_path: Path, cache: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = _link_copy(study_data, tmp_path / "mine") if "argument" in present else None
    if "env" in present:
        _link_copy(study_data, tmp_path / "datahome" / "escalaition")
        monkeypatch.setenv("AGENTSIM_DATA", str(tmp_path / "datahome"))
    if "cache" in present:
        _link_copy(study_data, cache / "data" / "escalaition")
    expected = {"argument": explicit, "env": tmp_path / "datahome" / "escalaition",
                "cache": cache / "data" / "escalaition"}
    if present:
        place = locate("escalaition", explicit)
        assert place.path == expected[present[0]]
        assert place.source == {"env": "AGENTSIM_DATA"}.get(present[0], present[0])
        return
    shared = REPO.parent / "shared" / "data" / "escalaition"  # the developers' copy, last
    if shared.is_dir():
        assert locate("escalaition") == Place("checkout", shared)
    else:  # a user's clone whose data is in the (here emptied) user cache
        with pytest.raises(DataNotFound, match="fetch it with: agentsim data fetch escalaition"):
            locate("escalaition")


def test_resolver_reports_an_incomplete_copy_and_a_bad_path(study_data: Path, tmp_path: Path, cache: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTSIM_DATA", str(tmp_path / "datahome"))
    _link_copy(study_data, tmp_path / "datahome" / "escalaition", drop=CORRUPTED)
    with pytest.raises(DataIncomplete, match=rf"{CORRUPTED} \(missing\).*agentsim data fetch escalaition --force"):
        locate("escalaition")
    with pytest.raises(DataNotFound, match="is not a folder"):
        locate("escalaition", tmp_path / "nowhere")


def test_the_shipped_manifest_is_the_copy_s(study_data: Path) -> None:
    shipped = json.loads((REPO / "agentsim" / "data" / "manifests" / "escalaition.json").read_text())
    assert shipped == build_manifest(DS, study_data)
    assert shipped["commit"] == COMMIT and len(shipped["files"]) == 332


def test_without_the_data_the_study_tests_skip_naming_the_fetch_command(tmp_path: Path) -> None:
    """`git clone && make test` on a machine without the data: the study's tests skip, none errors."""
    clone = tmp_path / "clone"
    shutil.copytree(REPO / "agentsim", clone / "agentsim", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in ("tests", "scenarios"):
        shutil.copytree(REPO / folder, clone / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", clone / "pyproject.toml")
    env = {k: v for k, v in os.environ.items() if k not in ("AGENTSIM_DATA", "PYTHONPATH")}
    env.update(PYTHONPATH=str(clone), AGENTSIM_CACHE=str(tmp_path / "empty-cache"))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                        "tests/test_escalation.py", "tests/test_wargame_rules.py", "-k", "study or bootstrap"],
                       cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    skipped = int(re.search(r"(\d+) skipped", out).group(1)) if re.search(r"(\d+) skipped", out) else 0
    assert skipped >= 4 and "error" not in out.lower().split("short test summary")[-1], out[-3000:]
    assert out.count("fetch it with: agentsim data fetch escalaition") == skipped, out[-3000:]
