"""A tiny loopback HTTP server that feeds the MindFlow overlay page to an OBS *Browser* source.

Add a Browser source in OBS with the URL from :attr:`OverlayServer.url` (``http://127.0.0.1:8765/overlay``),
about 420×360 px, and the page shows the latest published state. Nothing leaves the machine: the server only
binds loopback addresses, never serves frames or images, and refuses requests whose ``Host`` header is not
this server (DNS rebinding).

Usage (the integration, from OBS's script thread; ``publish`` from the engine worker)::

    server = OverlayServer(port=8765)
    server.start()                 # OverlayPortError (naming a free port) when 8765 is taken
    server.publish(state)          # any thread, cheap: stores the latest state, wakes the SSE senders
    server.stop()                  # idempotent

Routes (fixed; the request path is only ever compared with these strings, never touches the filesystem;
query strings are allowed and ignored by the server, the page reads its own options from them):

- ``GET /`` and ``GET /overlay`` — the page (``page.html`` beside this module, read once).
  Page options: ``?theme=dark|light&panels=emotion,probs,profile,trend&scale=1.0``.
- ``GET /state.json`` — the latest state as JSON.
- ``GET /events`` — Server-Sent Events: ``retry: 1000``, then the latest state at connect, then at most
  ``max_rate_hz`` updates per second (newest wins: intermediate states are dropped, never queued), plus a
  ``: keep-alive`` comment every ``heartbeat_s`` seconds so dead clients are noticed. At most ``max_clients``
  concurrent streams; more get ``503``.
- ``GET /healthz`` — ``{"status": "ok", "sse_clients": N, "state_version": V, "uptime_s": S}`` (S in whole seconds).
- ``HEAD`` of the same paths — the same headers, no body. Other paths ``404``; other methods ``405``.
- With ``dock_token``: ``GET /dock/<token>`` (the streamer's private dock page, ``dock.html``), ``…/state.json`` and
  ``…/events`` serve what :meth:`OverlayServer.publish_dock` got, never the overlay's state; any other token gets
  ``403`` (:mod:`obs_mindflow.overlay.dock`). The overlay's routes never serve the dock's state.

State: what :func:`obs_mindflow.engine.views.overlay_state` builds (its schema is documented there, the one home of
it); the page copes with any labels and any missing field.

Security: loopback-only bind (:class:`OverlayHostError` otherwise); ``Host`` must be
``localhost``/``127.0.0.1`` (``[::1]`` on IPv6) with or without this port, else ``403``; one request per
connection (HTTP/1.0 semantics); the request head is read with a total deadline of ``request_timeout_s``
seconds and limits of :data:`MAX_REQUEST_LINE` / :data:`MAX_HEADER_LINE` / :data:`MAX_HEAD_BYTES` bytes and
:data:`MAX_HEADERS` header lines (``414``/``431``; ``408`` at the deadline), so a slowloris cannot pin
threads; writes time out after ``io_timeout_s``; at most ``max_connections`` connections are handled at once
(more are closed at accept); request bodies are refused (``413``); every response carries
``Cache-Control: no-store``, ``X-Content-Type-Options: nosniff``, a CSP allowing only self and inline
code, ``Referrer-Policy: no-referrer`` and ``Cross-Origin-Resource-Policy: same-origin``. Logging goes to
the ``obs_mindflow.overlay.server`` logger: per-request lines at DEBUG, unexpected errors at ERROR.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Mapping
from importlib import resources
from typing import Any

from ..errors import MindFlowError
from . import dock
from .http import MAX_HEAD_BYTES, MAX_HEADER_LINE, MAX_HEADERS, MAX_REQUEST_LINE, _Httpd

__all__ = ["OverlayServer", "OverlayError", "OverlayPortError", "OverlayHostError",
           "MAX_REQUEST_LINE", "MAX_HEADER_LINE", "MAX_HEAD_BYTES", "MAX_HEADERS"]

log = logging.getLogger(__name__)

_INITIAL_STATE: dict[str, Any] = {"face": False, "emotion": "", "paused": False,
                                  "message": "Waiting for MindFlow to start…", "updated": None}

class OverlayError(MindFlowError, RuntimeError):
    """Base class of the overlay server's errors."""


class OverlayPortError(OverlayError, OSError):
    """The port is taken. ``.port`` is the one asked for, ``.free_port`` one that was free a moment ago."""

    def __init__(self, message: str, port: int, free_port: int | None) -> None:
        super().__init__(message)
        self.port = port
        self.free_port = free_port


class OverlayHostError(OverlayError, ValueError):
    """The overlay was asked to bind a non-loopback address (it shows face-derived data: loopback only)."""


def _encode_state(state: Mapping[str, Any]) -> bytes:
    """``state`` as compact UTF-8 JSON; non-finite floats become ``null`` (the browser's JSON has no NaN)."""
    if not isinstance(state, Mapping):
        raise TypeError(f"OverlayServer.publish() takes a dict (see the schema in obs_mindflow.engine.views), "
                        f"got {type(state).__name__}")
    try:
        text = json.dumps(state, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:  # NaN/inf somewhere: replace them rather than lose the whole update
        text = json.dumps(_finite(state), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except TypeError as e:
        raise TypeError(f"OverlayServer.publish(): the state must contain only JSON types (dict, list, str, "
                        f"int, float, bool, None) — convert numpy values with float()/int()/.tolist(): {e}"
                        ) from None
    return text.encode("utf-8")


def _finite(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def _read_page(name: str = "page.html") -> bytes:
    try:
        return resources.files(__package__).joinpath(name).read_bytes()
    except (OSError, ModuleNotFoundError) as e:
        raise OverlayError(f"cannot read the overlay page {__package__}/{name} ({e}); "
                           f"reinstall MindFlow so the file is beside {__file__}") from e


def _loopback_host(host: str) -> tuple[str, socket.AddressFamily]:
    """Validate ``host``; return the literal address to bind and its family."""
    if not isinstance(host, str):
        raise OverlayHostError(f"host must be a string such as '127.0.0.1', got {host!r}")
    literal = "127.0.0.1" if host.strip().lower() == "localhost" else host.strip().strip("[]")
    try:
        addr = ipaddress.ip_address(literal)
    except ValueError:
        addr = None
    if addr is None or not addr.is_loopback:
        raise OverlayHostError(
            f"refusing to serve the overlay on {host!r}: it shows live face-derived data and must stay on "
            f"this machine. Use host='127.0.0.1' (OBS's Browser source runs on the same computer).")
    return str(addr), (socket.AF_INET6 if addr.version == 6 else socket.AF_INET)


def _free_port(address: str, family: socket.AddressFamily) -> int | None:
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((address, 0))
            return s.getsockname()[1]
    except OSError:
        return None

class OverlayServer:
    """The overlay's HTTP server (see the module docstring for routes, schema and security).

    - ``port``: TCP port, 1..65535, or 0 for any free port (see :attr:`port` after :meth:`start`).
    - ``host``: a loopback address (``127.0.0.1``, ``localhost``, ``::1``, ``127.x.y.z``); anything else
      raises :class:`OverlayHostError`.
    - ``max_clients``: most concurrent ``/events`` streams (each OBS browser source holds one).
    - ``max_rate_hz``: most SSE updates per second per client (coalescing: the newest state wins).
    - ``heartbeat_s``: seconds between SSE keep-alive comments.
    - ``request_timeout_s``: total seconds a client has to send its request head.
    - ``io_timeout_s``: seconds a single write to a client may block before the connection is dropped.
    - ``max_connections``: most connections handled at once (streams included); more are closed at accept.
    - ``dock_token``: serve the streamer's private dock under ``/dock/<dock_token>`` (``None``: no dock); see
      :mod:`obs_mindflow.overlay.dock` (``DockTokenError`` for an unusable token).
    """

    def __init__(self, port: int = 8765, host: str = "127.0.0.1", max_clients: int = 8, max_rate_hz: float = 5.0,
                 *, heartbeat_s: float = 15.0, request_timeout_s: float = 5.0, io_timeout_s: float = 10.0,
                 max_connections: int = 64, dock_token: str | None = None) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer 1..65535 (or 0 for any free port), got {port!r}")
        self._address, self._family = _loopback_host(host)
        for name, value in (("max_clients", max_clients), ("max_connections", max_connections)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if max_connections <= max_clients:
            raise ValueError(f"max_connections ({max_connections}) must exceed max_clients ({max_clients}) so "
                             f"the page and /state.json stay reachable while every stream is open")
        for name, value, hi in (("max_rate_hz", max_rate_hz, 60.0), ("heartbeat_s", heartbeat_s, 3600.0),
                                ("request_timeout_s", request_timeout_s, 600.0),
                                ("io_timeout_s", io_timeout_s, 600.0)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= hi:
                raise ValueError(f"{name} must be a number in (0, {hi:g}], got {value!r}")
        self.requested_port = port
        self.max_clients = max_clients
        self.max_rate_hz = float(max_rate_hz)
        self.heartbeat_s = float(heartbeat_s)
        self.request_timeout_s = float(request_timeout_s)
        self.io_timeout_s = float(io_timeout_s)
        self.max_connections = max_connections
        self.dock_token = None if dock_token is None else dock.check_token(dock_token)
        self._cond = threading.Condition()
        self._version = 0
        self._data = _encode_state(_INITIAL_STATE)
        self._dock_version = 0       # the dock's state: its own channel, never sent on the overlay's routes
        self._dock_data = _encode_state(_INITIAL_STATE)
        self._page = b""
        self._dock_page = b""
        self._lifecycle = threading.Lock()
        self._httpd: _Httpd | None = None
        self._thread: threading.Thread | None = None
        self._started_at = 0.0
        self.allowed_hosts: frozenset[str] = frozenset()

    # ---- lifecycle

    def start(self) -> OverlayServer:
        """Bind and serve in a daemon thread. Raises :class:`OverlayPortError` (naming a free port) if the port
        is taken, :class:`OverlayError` if already running or the page file is missing. Returns ``self``."""
        with self._lifecycle:
            if self._httpd is not None:
                raise OverlayError(f"the overlay server is already running at {self.url}; call stop() first")
            self._page = _read_page()
            self._dock_page = _read_page("dock.html") if self.dock_token is not None else b""
            try:
                httpd = _Httpd((self._address, self.requested_port), self._family, self)
            except OSError as e:
                free = _free_port(self._address, self._family)
                hint = (f"port {free} is free: use OverlayServer(port={free})" if free
                        else "no free port was found either")
                raise OverlayPortError(
                    f"cannot serve the overlay on {self._address}:{self.requested_port}: {e.strerror or e} "
                    f"(another MindFlow or program is using it?); {hint} and point the OBS Browser source at "
                    f"the new port, or close the other program.", self.requested_port, free) from e
            port = httpd.server_port
            names = ["127.0.0.1", "localhost"] if self._family == socket.AF_INET else ["[::1]", "localhost"]
            if self._address not in ("127.0.0.1", "::1"):
                names.append(self._address)
            self.allowed_hosts = frozenset([n for n in names] + [f"{n}:{port}" for n in names])
            self._httpd = httpd
            self._started_at = time.monotonic()
            self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                            name="mindflow-overlay", daemon=True)
            self._thread.start()
            log.debug("overlay: serving %s", self.url)
            return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop serving, close every connection (SSE streams included) and join the threads within ``timeout``
        seconds. Idempotent; call it from any thread but a request handler's. Returns True when every thread
        ended in time (False is logged as a warning)."""
        with self._lifecycle:
            httpd, thread = self._httpd, self._thread
            if httpd is None:
                return True
            deadline = time.monotonic() + timeout
            httpd.stopping.set()
            with self._cond:
                self._cond.notify_all()
            httpd.shutdown()  # serve_forever returns: no more accepts
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
            httpd.abort_connections()
            with httpd.lock:
                threads = list(httpd.threads)
            for t in threads:
                if t is not threading.current_thread():
                    t.join(max(0.0, deadline - time.monotonic()))
            httpd.server_close()
            self._httpd = self._thread = None
            left = [t for t in threads if t.is_alive() and t is not threading.current_thread()] + ([thread] if thread and thread.is_alive() else [])
            if left:
                log.warning("overlay: %d thread(s) still running %.1f s after stop()", len(left), timeout)
            return not left

    def __enter__(self) -> OverlayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- state

    def publish(self, state: Mapping[str, Any]) -> None:
        """Make ``state`` (schema: :mod:`obs_mindflow.engine.views`) the latest one and wake the SSE senders.

        Thread-safe and cheap (one ``json.dumps``): it stores a JSON snapshot, so later changes to ``state``
        are not seen. Non-finite floats become ``null``. Raises ``TypeError`` for non-JSON values."""
        data = _encode_state(state)
        with self._cond:
            self._data = data
            self._version += 1
            self._cond.notify_all()

    def publish_dock(self, state: Mapping[str, Any]) -> None:
        """Make ``state`` (schema: :mod:`obs_mindflow.engine.dockview`) the dock's latest state, as :meth:`publish`
        does for the overlay. Only the dock's token-protected routes serve it."""
        data = _encode_state(state)
        with self._cond:
            self._dock_data = data
            self._dock_version += 1
            self._cond.notify_all()

    # ---- what the HTTP layer (:mod:`.http`) serves

    def page(self, for_dock: bool = False) -> bytes:
        """The overlay's page (the dock's with ``for_dock``), read at :meth:`start`."""
        return self._dock_page if for_dock else self._page

    def snapshot(self, for_dock: bool = False) -> tuple[int, bytes]:
        """``(version, JSON)`` of the latest state published (the dock's with ``for_dock``)."""
        with self._cond:
            return (self._dock_version, self._dock_data) if for_dock else (self._version, self._data)

    def wait_newer(self, version: int, for_dock: bool, timeout: float, stopping: threading.Event) -> int:
        """Wait (at most ``timeout`` seconds) for a state newer than ``version`` unless ``stopping`` is set; the
        newest version."""
        with self._cond:
            if self.snapshot(for_dock)[0] == version and not stopping.is_set():
                self._cond.wait(timeout=timeout)
            return self.snapshot(for_dock)[0]

    def health(self) -> bytes:
        """``/healthz``'s JSON: status, open streams, state version, uptime (whole seconds)."""
        httpd = self._httpd
        return json.dumps({"status": "ok", "sse_clients": httpd.sse_clients if httpd else 0,
                           "state_version": self._version,
                           "uptime_s": int(time.monotonic() - self._started_at)}).encode()   # whole seconds

    # ---- information

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        """The bound port while running, else the requested one."""
        httpd = self._httpd
        return httpd.server_port if httpd is not None else self.requested_port

    @property
    def sse_clients(self) -> int:
        """Number of open ``/events`` streams."""
        httpd = self._httpd
        return httpd.sse_clients if httpd is not None else 0

    @property
    def url(self) -> str:
        """The page's URL for the OBS Browser source, e.g. ``http://127.0.0.1:8765/overlay``."""
        if self.port == 0:
            raise OverlayError("port=0 picks a port at start(); read .url after start()")
        host = f"[{self._address}]" if self._family == socket.AF_INET6 else self._address
        return f"http://{host}:{self.port}/overlay"

    @property
    def dock_url(self) -> str | None:
        """The private dock's URL for an OBS Custom Browser Dock (``None`` without ``dock_token``), e.g.
        ``http://127.0.0.1:8765/dock/<token>``. Keep it out of logs: it opens the streamer's private figures."""
        if self.dock_token is None:
            return None
        return self.url.rsplit("/", 1)[0] + f"{dock.DOCK_PREFIX}/{self.dock_token}"
