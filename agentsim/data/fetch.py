"""Fetch a dataset the user's way: the pinned commit's archive over HTTPS, checked file by file, installed whole.

Nothing is ever half-written where the resolver looks: the archive is streamed to a temporary file beside the
target, its commit is checked, the wanted files are extracted into a temporary folder beside the target and
checked against the manifest's SHA-256 sums, and only then does one rename put the folder in place. Any error
removes the temporary file and folder and leaves an existing copy as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from agentsim.data.errors import DataError, FetchError, IntegrityError
from agentsim.data.resolve import cache_dir, problems, summarize
from agentsim.data.sources import CHUNK, Dataset, get_dataset

STAMP = ".agentsim-source.json"  # written beside the files: where and when they came from
_TOP_COMMIT = re.compile(r"^.+-([0-9a-f]{40})$")


@dataclass
class FetchResult:
    """What `fetch` did. `fetched` is False when a verified copy was already there (nothing downloaded).
    `renamed`: manifest path -> archive path, for files found under another name (same folder, same SHA-256)."""

    name: str
    path: Path
    fetched: bool
    url: str | None = None
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    renamed: dict[str, str] = field(default_factory=dict)
    verified: bool = True  # False: a pending dataset fetched with --unverified (no checksums to check against)


def fetch(
    name: str = "escalaition",
    *,
    url: str | None = None,
    dest: str | Path | None = None,
    force: bool = False,
    timeout: float = 30.0,
    console=None,
    commit: str | None = None,
    unverified: bool = False,
) -> FetchResult:
    """Download dataset `name` at its pinned commit and install it under `dest/<name>` (default: the user cache).

    `url` overrides the archive's address (else `$AGENTSIM_<NAME>_URL`, else GitHub's codeload). `timeout`:
    seconds for connecting and between two reads. `console`: a rich Console to draw a progress bar on.
    A verified copy already in place is kept (nothing downloaded) unless `force`.

    A dataset whose manifest is still pending (no pinned commit or checksums yet, `Dataset.pending`) is fetched
    only with `unverified` and a `commit` the user chooses: the archive's commit is checked, the files the dataset
    includes are kept, nothing is checked against checksums, and the copy's stamp says so.

    Raises DataError subclasses: UnknownDataset or a bad URL or commit (exit code 2), FetchError (host
    unreachable, HTTP error, timeout, short body) and IntegrityError (another commit, damaged archive, missing or
    changed file), both exit code 3. After an error nothing new exists under `dest`.
    """
    dataset = get_dataset(name)
    target = (Path(dest).expanduser() / name) if dest is not None else cache_dir(name)
    if dataset.pending:
        if not unverified:
            raise DataError(
                f"{name}: no pinned commit or checksums yet ({dataset.pending}). Fetch a commit of {dataset.repository} "
                f"you choose, unchecked: {dataset.fetch_command} --commit SHA --unverified; a maintainer pins it from a "
                f"trusted copy with: python scripts/pin_dataset.py {name} --commit SHA --from DIR")
        if commit is None or not re.fullmatch(r"[0-9a-f]{40}", commit):
            raise DataError(f"{name}: --unverified needs --commit, the 40-hex-digit commit of {dataset.repository} to fetch"
                            + (f" (got {commit!r})" if commit is not None else ""))
        return _fetch_unverified(dataset, target, commit, url, timeout, console)
    if unverified or commit is not None:
        raise DataError(f"{name} is pinned to {dataset.repository}@{dataset.pinned} with checksums; --commit and --unverified "
                        "are only for datasets whose manifest is pending")
    if not force and target.is_dir() and not problems(dataset, target, checksums=True):
        return FetchResult(name, target, fetched=False, files=len(dataset.manifest))
    source = dataset.url(url)
    start = time.perf_counter()
    with _downloaded(name, source, target, timeout, console) as (archive, staging, size):
        renamed = _extract(dataset, archive, staging, source)
        bad = problems(dataset, staging, checksums=True)
        if bad:
            raise IntegrityError(
                f"the archive from {source} is not the pinned {name} data ({dataset.repository}@{str(dataset.pinned)[:12]}): "
                f"{len(bad)} file(s) differ from the manifest: {summarize(bad)}"
            )
        (staging / STAMP).write_text(json.dumps(
            {"dataset": name, "repository": dataset.repository, "commit": dataset.pinned, "url": source, "verified": True,
             "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "renamed": renamed}, indent=1))
        _install(staging, target)
    return FetchResult(name, target, True, source, len(dataset.manifest), size, time.perf_counter() - start, renamed)


@contextlib.contextmanager
def _downloaded(name: str, source: str, target: Path, timeout: float, console) -> Iterator[tuple[Path, Path, int]]:
    """Download `source` into a temp file beside `target`; yields (archive, an empty staging folder, bytes). The
    caller fills the staging folder and installs it (`_install`); whatever is left afterwards (the archive, a
    staging folder not installed, the cache folder a failed first fetch made) is removed, so a failure leaves nothing."""
    if urlsplit(source).scheme not in ("http", "https"):
        raise DataError(f"--url {source!r}: expected an http:// or https:// address of a .tar.gz archive")
    made_parent = not target.parent.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}-download-", suffix=".tar.gz", dir=target.parent)
    archive = Path(tmp_name)
    staging: Path | None = None
    try:
        with os.fdopen(fd, "wb") as out:
            size = _download(source, out, timeout, console)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-staging-", dir=target.parent))
        yield archive, staging, size
    finally:
        archive.unlink(missing_ok=True)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)  # gone already once installed
        if made_parent and not target.exists():
            with contextlib.suppress(OSError):  # only when empty: a failed first fetch leaves no trace
                target.parent.rmdir()


def _download(url: str, out: IO[bytes], timeout: float, console) -> int:
    """Stream `url` into `out`; returns the byte count. The body is taken as sent (`iter_raw`: no
    Content-Encoding decoding), so Content-Length, when given, must match it exactly."""
    import httpx  # here: resolving paths (the analyses) should not pay for the HTTP client's import

    host = urlsplit(url).netloc
    try:
        with httpx.stream("GET", url, timeout=httpx.Timeout(timeout), follow_redirects=True) as r:
            if r.status_code != 200:
                raise FetchError(f"{url}: HTTP {r.status_code} {r.reason_phrase}")
            expected = int(r.headers["content-length"]) if "content-length" in r.headers else None
            got = 0
            with _progress(console, expected, url) as advance:
                for chunk in r.iter_raw(CHUNK):
                    out.write(chunk)
                    got += len(chunk)
                    advance(len(chunk))
    except httpx.TimeoutException as e:
        raise FetchError(f"{url}: no answer from {host} within {timeout:g} s ({type(e).__name__})") from None
    except httpx.ConnectError as e:
        raise FetchError(f"{url}: cannot reach {host}: {e}") from None
    except (httpx.RemoteProtocolError, httpx.ReadError) as e:
        raise FetchError(f"{url}: the download broke off: {e}") from None
    except httpx.HTTPError as e:
        raise FetchError(f"{url}: {type(e).__name__}: {e}") from None
    if expected is not None and got != expected:
        raise FetchError(f"{url}: the download broke off after {got} of {expected} bytes")
    return got


class _progress:
    """A rich progress bar for the download, when a console is given (a no-op otherwise)."""

    def __init__(self, console, total: int | None, url: str):
        self.console, self.total, self.url = console, total, url
        self.bar = None

    def __enter__(self) -> Callable[[int], None]:
        if self.console is None:
            return lambda n: None
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        self.bar = Progress(TextColumn("downloading"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                            TimeElapsedColumn(), console=self.console, transient=True)
        self.bar.start()
        task = self.bar.add_task("download", total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _archive_commit(tar: tarfile.TarFile, top: str | None) -> list[tuple[str, str]]:
    """The commit(s) an archive says it is of: GitHub's and `git archive`'s pax global header `comment=<sha>`,
    and GitHub's top folder `<repo>-<sha>/`. Returns (where, sha) pairs."""
    found = []
    if re.fullmatch(r"[0-9a-f]{40}", comment := tar.pax_headers.get("comment", "").strip()):
        found.append(("pax header comment", comment))
    if top and (m := _TOP_COMMIT.match(top)):
        found.append((f"top folder {top}/", m.group(1)))
    return found


def _extract(dataset: Dataset, archive: Path, staging: Path, url: str) -> dict[str, str]:
    """Copy the manifest's files out of `archive` into `staging`; returns the files found under another name.

    Each manifest file is looked up by its path first. The repository's history names some evals both
    `X A4_raw.json` and `X A4_claude-2.0_raw.json`; the manifest uses the former. So when the path is absent or
    holds other bytes, a file of the same folder with the manifest's SHA-256 is taken instead and stored under
    the manifest's name. Files the manifest does not list are never written.
    """
    by_folder: dict[str, dict[str, list[str]]] = {}  # folder -> sha256 -> manifest paths
    for e in dataset.manifest.values():
        by_folder.setdefault(e.folder, {}).setdefault(e.sha256, []).append(e.path)
    blobs = staging / ".candidates"
    candidates: dict[tuple[str, str], tuple[Path, str]] = {}  # (folder, sha256) -> (blob, archive path)
    placed: set[str] = set()
    blob_ids = itertools.count()
    top: str | None = None
    try:
        with tarfile.open(archive, "r|*") as tar:
            checked = False
            for member in tar:
                if not checked:
                    # The pax global header precedes the first member, so it is known once one has been read.
                    top = member.name.split("/", 1)[0]
                    _check_commit(dataset, _archive_commit(tar, top), url)
                    checked = True
                head, _, rel = member.name.partition("/")
                if head != top:
                    raise IntegrityError(f"{url}: not a GitHub archive: {member.name!r} is outside the top folder {top}/")
                if not member.isfile() or rel.rpartition("/")[0] not in by_folder:
                    continue
                entry = dataset.manifest.get(rel)
                src = tar.extractfile(member)
                assert src is not None
                # Write into the staging folder under a private name, hashing on the way.
                blob = blobs / str(next(blob_ids))
                blob.parent.mkdir(parents=True, exist_ok=True)
                digest = _copy_hashing(src, blob)
                if entry is not None and digest == entry.sha256:
                    dst = staging / rel
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(blob, dst)
                    placed.add(rel)
                elif digest in by_folder[rel.rpartition("/")[0]]:
                    candidates.setdefault((rel.rpartition("/")[0], digest), (blob, rel))
                elif entry is not None:
                    # The path is the manifest's but the bytes are not; kept so the check names the file.
                    dst = staging / rel
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(blob, dst)
                else:
                    blob.unlink()
            if not checked:
                raise IntegrityError(f"{url}: the archive is empty")
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise IntegrityError(f"{url}: the archive is damaged, truncated or not a .tar.gz ({e})") from None
    renamed = {}
    for e in dataset.manifest.values():
        if e.path in placed or (e.folder, e.sha256) not in candidates:
            continue
        blob, original = candidates[(e.folder, e.sha256)]
        dst = staging / e.path
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(blob, dst)
        renamed[e.path] = original
    shutil.rmtree(blobs, ignore_errors=True)
    return renamed


def _check_commit(dataset: Dataset, found: list[tuple[str, str]], url: str, commit: str | None = None) -> None:
    expected = commit or dataset.pinned
    if not found:
        raise IntegrityError(f"{url}: cannot tell which commit the archive is of (no pax `comment=` header and no "
                             f"`<repo>-<commit>/` top folder); expected {dataset.repository}@{expected}")
    for where, sha in found:
        if sha != expected:
            raise IntegrityError(f"{url}: the archive is of commit {sha} ({where}), not the {'requested' if commit else 'pinned'} "
                                 f"commit {expected} of {dataset.repository}")


def _fetch_unverified(dataset: Dataset, target: Path, commit: str, url: str | None, timeout: float, console) -> FetchResult:
    """A pending dataset at a commit the user chose: the archive's commit is checked and the included files kept,
    installed as fetch() installs (all or nothing); the stamp records `"verified": false`."""
    source = url or os.environ.get(dataset.url_env) or dataset.archive_url(commit)
    start = time.perf_counter()
    with _downloaded(dataset.name, source, target, timeout, console) as (archive, staging, size):
        kept = 0
        try:
            with tarfile.open(archive, "r|*") as tar:
                top = None
                for member in tar:
                    if top is None:
                        top = member.name.split("/", 1)[0]
                        _check_commit(dataset, _archive_commit(tar, top), source, commit)
                    head, _, rel = member.name.partition("/")
                    if head != top:
                        raise IntegrityError(f"{source}: not a GitHub archive: {member.name!r} is outside the top folder {top}/")
                    if not member.isfile() or not dataset.wanted(rel):
                        continue
                    src = tar.extractfile(member)
                    assert src is not None
                    dst = staging / rel
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    _copy_hashing(src, dst)
                    kept += 1
                if top is None:
                    raise IntegrityError(f"{source}: the archive is empty")
        except (tarfile.TarError, EOFError, zlib.error) as e:
            raise IntegrityError(f"{source}: the archive is damaged, truncated or not a .tar.gz ({e})") from None
        if not kept:
            raise IntegrityError(f"{source}: the archive of {dataset.repository}@{commit} holds none of the files {dataset.name} "
                                 f"takes ({', '.join(dataset.include)})")
        (staging / STAMP).write_text(json.dumps(
            {"dataset": dataset.name, "repository": dataset.repository, "commit": commit, "url": source, "verified": False,
             "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=1))
        _install(staging, target)
    return FetchResult(dataset.name, target, True, source, kept, size, time.perf_counter() - start, {}, verified=False)


def _copy_hashing(src: IO[bytes], dst: Path) -> str:
    h = hashlib.sha256()
    with open(dst, "wb") as out:
        while chunk := src.read(CHUNK):
            h.update(chunk)
            out.write(chunk)
    return h.hexdigest()


def _install(staging: Path, target: Path) -> None:
    """Put `staging` in place of `target` by renames (same folder, so each is atomic); an old copy is moved
    aside first and removed only once the new one is in place."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
        os.replace(target, old / target.name)
    try:
        os.replace(staging, target)
    except OSError:
        if old is not None:
            os.replace(old / target.name, target)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
