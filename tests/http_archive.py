"""A local HTTP server that serves archives the way GitHub's codeload does (and the ways a download goes wrong),
and the archives themselves: the data-fetch tests' fixtures (tests/conftest.py: `server`, `data_cache`)."""

from __future__ import annotations

import io
import tarfile
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def tar_gz(files: dict[str, bytes], top: str, commit: str | None) -> bytes:
    """A .tar.gz laid out as GitHub's codeload serves it: everything under `top/`, the commit in the pax global
    header's `comment` (as `git archive` writes it); `commit=None`: no comment."""
    buf = io.BytesIO()
    headers = {"comment": commit} if commit else {}
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT, pax_headers=headers, compresslevel=1) as tar:
        d = tarfile.TarInfo(top)
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(d)
        for rel, data in sorted(files.items()):
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Route:
    body: bytes
    status: int = 200
    mode: str = "full"  # full | short-length (Content-Length, then half and close) | short-close | stall


class Server:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.hits[self.path] += 1
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404, "no such archive")
                    return
                body, half = route.body, route.body[: len(route.body) // 2]
                self.send_response(route.status)
                self.send_header("Content-Type", "application/x-gzip")
                if route.mode == "short-close":  # no length: the body ends when the connection closes
                    self.send_header("Connection", "close")
                else:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if route.mode == "full":
                    self.wfile.write(body)
                    return
                self.wfile.write(half)
                self.wfile.flush()
                if route.mode == "stall":
                    time.sleep(2.0)
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def serve(self, path: str, body: bytes, status: int = 200, mode: str = "full") -> str:
        self.routes[path] = Route(body, status, mode)
        return self.base + path


