"""Where the viewer and the seat pages listen, and who may open their session websocket (both serve Panel pages)."""

from __future__ import annotations

import socket
from typing import Any


def free_port(host: str) -> int:
    """A port free on `host` now (the OS picks it). Bokeh's allowed websocket origins name the port, so it must
    be known before the server starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def url_host(host: str) -> str:
    """How the printed URL names the host: a wildcard address is reached as 127.0.0.1 from this machine."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def websocket_origins(host: str, port: int) -> list[str]:
    """The origins whose pages may open the session websocket: this host and port (and localhost's names for a
    loopback host); any host at this port for a wildcard address, which serves other machines on purpose."""
    if host in ("0.0.0.0", "", "::"):
        return [f"*:{port}"]
    names = {host, "localhost", "127.0.0.1"} if host in ("127.0.0.1", "localhost", "::1") else {host}
    return sorted(f"{n}:{port}" for n in names if ":" not in n) + (["[::1]:" + str(port)] if host == "::1" else [])


def panel_server(routes: dict[str, Any], host: str, port: int, *, title: str, **options: Any) -> tuple[Any, int, str]:
    """`panel.serve` of `routes` on `host`:`port` (0: a free port), letting pages of that address open their
    session websocket (`websocket_origins`), without opening a browser or printing Panel's own lines. `options` go
    to `panel.serve` (`start=False`, `threaded=True`, ...). Returns (what `panel.serve` returns, the port, the base
    URL ending in "/"). Raises OSError when the port cannot be bound."""
    import panel as pn

    port = port or free_port(host)
    server = pn.serve(routes, port=port, address=host, websocket_origin=websocket_origins(host, port), show=False,
                      verbose=False, title=title, **options)
    return server, port, f"http://{url_host(host)}:{port}/"
