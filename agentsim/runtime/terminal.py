"""Keep the terminal to agentsim's own output: third-party logs of a run go to `<run_dir>/third_party.log`.

vLLM, torch, Triton and Ray write while an engine starts and runs: Python warnings (FutureWarning), their loggers
(vLLM's INFO lines, "Triton is installed, but ..."), progress bars ("Loading safetensors checkpoint shards"), and
C++ code writing to file descriptor 2 directly (torch's "NUMA binding" warning). Inside `third_party_output`:

- file descriptor 2 (stderr) points at the log file, so all of that lands there, whatever wrote it;
- the loggers THIRD_PARTY_LOGGERS write to stderr (so to the file) at INFO, whatever handlers and levels their
  library gave them (vLLM's own logging set-up is held off while inside: VLLM_CONFIGURE_LOGGING=0);
- agentsim's own consoles (the progress bar, notes, messages) are handed a stream to the real terminal (the
  progress bar must not redirect sys.stderr through itself meanwhile: RunProgress(redirect_stderr=False)).

With `verbose`, stderr goes through a pipe whose reader copies every line to the file and to the terminal.
Everything is put back on exit (also on an exception, before its traceback is printed).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

THIRD_PARTY_LOG = "third_party.log"
THIRD_PARTY_LOGGERS = ("vllm", "torch", "triton", "ray", "transformers", "xgrammar", "huggingface_hub")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of the record (a plain StreamHandler keeps the stream it got)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _tee(read_fd: int, file: Any, terminal_fd: int) -> None:
    with os.fdopen(read_fd, "rb", buffering=0) as r:
        while chunk := r.read(65536):
            file.write(chunk)
            file.flush()
            with contextlib.suppress(OSError):
                os.write(terminal_fd, chunk)


@contextlib.contextmanager
def third_party_output(run_dir: Path, verbose: bool = False, consoles: tuple[Any, ...] = ()) -> Iterator[Path]:
    """Send third-party output to `run_dir/third_party.log` (appended; a line marks each start) for the duration;
    `verbose` copies it to the terminal too. `consoles`: rich Consoles of agentsim's own that print to stderr; they
    print to the terminal meanwhile. Yields the log file's path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / THIRD_PARTY_LOG
    log_file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in finally, after the tee thread ends
    log_file.write(f"--- agentsim {' '.join(sys.argv[1:2])} at {datetime.now(UTC).isoformat(timespec='seconds')}\n".encode())
    with contextlib.suppress(ValueError, OSError):
        sys.stderr.flush()
    terminal_fd = os.dup(2)
    terminal = io.TextIOWrapper(os.fdopen(os.dup(terminal_fd), "wb", buffering=0), write_through=True,
                                encoding=getattr(sys.stderr, "encoding", None) or "utf-8", errors="replace")
    thread = None
    if verbose:
        read_fd, write_fd = os.pipe()
        thread = threading.Thread(target=_tee, args=(read_fd, log_file, terminal_fd), daemon=True, name="agentsim-tee")
        thread.start()
        os.dup2(write_fd, 2)
        os.close(write_fd)
    else:
        os.dup2(log_file.fileno(), 2)
    saved_loggers = []
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(asctime)s [%(name)s] %(message)s"))
    for name in THIRD_PARTY_LOGGERS:
        lg = logging.getLogger(name)
        saved_loggers.append((lg, list(lg.handlers), lg.level, lg.propagate))
        for h in list(lg.handlers):
            lg.removeHandler(h)
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.propagate = False
    saved_env = {k: os.environ.get(k) for k in ("VLLM_CONFIGURE_LOGGING",)}
    os.environ["VLLM_CONFIGURE_LOGGING"] = "0"  # a vllm imported in here keeps the handler set above
    saved_files = [(c, c._file) for c in consoles]
    for c in consoles:
        c.file = terminal
    try:
        yield path
    finally:
        for c, f in saved_files:
            c._file = f
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for lg, handlers, level, propagate in saved_loggers:
            lg.removeHandler(handler)
            for h in handlers:
                lg.addHandler(h)
            lg.setLevel(level)
            lg.propagate = propagate
        with contextlib.suppress(ValueError, OSError):
            sys.stderr.flush()
        os.dup2(terminal_fd, 2)  # closes the pipe's last write end: the tee reads to its end
        if thread is not None:
            thread.join(timeout=10)
        os.close(terminal_fd)
        with contextlib.suppress(OSError):
            terminal.close()
        log_file.close()

