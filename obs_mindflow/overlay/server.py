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
- ``GET /healthz`` — ``{"status": "ok", "sse_clients": N, "state_version": V, "uptime_s": S}``.
- ``HEAD`` of the same paths — the same headers, no body. Other paths ``404``; other methods ``405``.

State schema (built by the integration; the page copes with any labels and any missing field)::

    {"model": "fer-mini-xception",                    # model card name
     "labels": ["angry", ..., "neutral"],             # the model's classes, display order
     "negative_labels": ["angry", "disgust", "fear", "sad"],
     "paused": false,                                 # analysis paused by the streamer
     "face": true,                                    # a face is being tracked now
     "emotion": "happy",                              # smoothed emotion; "" when no face
     "confidence": 0.83,                              # probability of "emotion", 0..1
     "probabilities": {"angry": 0.01, ...},           # label -> smoothed probability, 0..1
     "session": {"active": true,
                 "duration_s": 1234.5,                # seconds since the session started
                 "coverage": 0.93,                    # share of the session with a face, 0..1
                 "profile": {"happy": 0.51, ...},     # label -> share of face time, 0..1
                 "negative_share": 0.21,              # share of face time on negative labels, 0..1
                 "rolling_negative_share": 0.30,      # the same over the last rolling_window_s seconds
                 "rolling_window_s": 300,
                 "trend": [[t_s, negative_share], ...]},   # <= 120 points, t_s seconds since start
     "message": "",                                   # a short note shown small (a nudge, an error)
     "updated": 1764000000.0}                         # time.time() of the state, seconds

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

import http.server
import ipaddress
import json
import logging
import math
import select
import socket
import sys
import threading
import time
from collections.abc import Mapping
from http import HTTPStatus
from importlib import resources
from io import BytesIO
from typing import Any

__all__ = ["OverlayServer", "OverlayError", "OverlayPortError", "OverlayHostError",
           "MAX_REQUEST_LINE", "MAX_HEADER_LINE", "MAX_HEAD_BYTES", "MAX_HEADERS"]

log = logging.getLogger(__name__)

#: Longest accepted request line, bytes (longer: 414).
MAX_REQUEST_LINE = 8192
#: Longest accepted header line, bytes (longer: 431).
MAX_HEADER_LINE = 8192
#: Largest accepted request head (request line + headers), bytes (larger: 431).
MAX_HEAD_BYTES = 32768
#: Most header lines accepted (more: 431).
MAX_HEADERS = 64

SSE_RETRY_MS = 1000
ROUTES_PAGE = ("/", "/overlay")
ALLOWED_METHODS = ("GET", "HEAD")

_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; font-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'self'")
_SECURITY_HEADERS = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", _CSP),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
_BUSY_BODY = b"503 Service Unavailable\ntoo many connections; try again in a few seconds\n"
_BUSY_REPLY = ("HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
               + "".join(f"{k}: {v}\r\n" for k, v in _SECURITY_HEADERS)
               + f"Retry-After: 5\r\nConnection: close\r\nContent-Length: {len(_BUSY_BODY)}\r\n\r\n"
               ).encode() + _BUSY_BODY
_INITIAL_STATE: dict[str, Any] = {"face": False, "emotion": "", "paused": False,
                                  "message": "Waiting for MindFlow to start…", "updated": None}


class OverlayError(RuntimeError):
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
        raise TypeError(f"OverlayServer.publish() takes a dict (see the schema in {__name__}), "
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


def _read_page() -> bytes:
    try:
        return resources.files(__package__).joinpath("page.html").read_bytes()
    except (OSError, ModuleNotFoundError) as e:
        raise OverlayError(f"cannot read the overlay page {__package__}/page.html ({e}); "
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


class _HeadError(Exception):
    def __init__(self, status: HTTPStatus | None, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Httpd(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer with its own thread/connection bookkeeping (bounded, joinable with a timeout)."""

    daemon_threads = True
    block_on_close = False  # we join our own threads, with a timeout
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, overlay: OverlayServer) -> None:
        self.address_family = family
        self.overlay = overlay
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads: set[threading.Thread] = set()
        self.connections: set[socket.socket] = set()
        self.sse_clients = 0
        self.allow_reuse_address = sys.platform != "win32"  # on Windows SO_REUSEADDR would steal a busy port
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        if sys.platform == "win32" and hasattr(socket, "SO_EXCLUSIVEADDRUSE"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        # TCPServer.server_bind, without HTTPServer's socket.getfqdn() (a reverse DNS lookup)
        if self.allow_reuse_address:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        with self.lock:
            refuse = self.stopping.is_set() or len(self.threads) >= self.overlay.max_connections
            if not refuse:
                t = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                                     name="mindflow-overlay-conn", daemon=True)
                self.threads.add(t)
                self.connections.add(request)
        if refuse:
            log.debug("overlay: refusing a connection (%d open, limit %d)",
                      len(self.threads), self.overlay.max_connections)
            try:
                request.setblocking(False)
                request.send(_BUSY_REPLY)
            except OSError:
                pass
            self._close(request, linger_s=0.0)  # never wait in the accept loop
            return
        try:
            t.start()
        except RuntimeError:  # cannot start a new thread: drop this connection, keep serving
            log.error("overlay: cannot start a thread for a connection (%d open)", len(self.threads))
            with self.lock:
                self.threads.discard(t)
                self.connections.discard(request)
            self._close(request, linger_s=0.0)

    def process_request_thread(self, request: socket.socket, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.lock:
                self.threads.discard(threading.current_thread())

    def shutdown_request(self, request: socket.socket) -> None:
        with self.lock:  # once out of the set, abort_connections() no longer touches this socket
            self.connections.discard(request)
        self._close(request)

    @staticmethod
    def _close(request: socket.socket, linger_s: float = 0.25) -> None:
        """Half-close, then read what the client still sends for up to ``linger_s`` seconds before closing:
        closing with unread input makes the kernel send a reset, which can destroy the reply in flight."""
        try:
            request.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + linger_s
            drained = 0
            while drained < 262144:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                request.settimeout(remaining)
                chunk = request.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:
            pass
        request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout)) or self.stopping.is_set():
            log.debug("overlay: connection ended: %r", exc)
        else:
            log.error("overlay: error while handling a request", exc_info=True)

    def abort_connections(self) -> None:
        """Shut every open connection down so blocked reads/writes return at once (used by stop())."""
        with self.lock:
            for conn in list(self.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def acquire_sse(self) -> bool:
        with self.lock:
            if self.sse_clients >= self.overlay.max_clients:
                return False
            self.sse_clients += 1
            return True

    def release_sse(self) -> None:
        with self.lock:
            self.sse_clients -= 1


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Httpd
    protocol_version = "HTTP/1.0"        # one request per connection
    default_request_version = "HTTP/1.0"  # error replies to unparsable requests get a status line
    server_version = "MindFlowOverlay/1"
    sys_version = ""
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s\n%(explain)s\n"

    def setup(self) -> None:
        self.timeout = self.server.overlay.io_timeout_s
        super().setup()

    # ---- reading the request head, with limits and a total deadline

    def _read_head(self) -> tuple[bytes, bytes]:
        """Read the request line and header lines. Returns (request line, header bytes incl. the blank line).

        Raises _HeadError(None) for a silent close (EOF, reset), or with a status to answer.
        """
        sock = self.connection
        deadline = time.monotonic() + self.server.overlay.request_timeout_s
        buf = b""
        lines: list[bytes] = []
        total = 0
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                limit = MAX_REQUEST_LINE if not lines else MAX_HEADER_LINE
                if len(buf) > limit:
                    raise self._too_long(bool(lines))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _HeadError(HTTPStatus.REQUEST_TIMEOUT, "the request head took too long to arrive")
                sock.settimeout(remaining)
                try:
                    chunk = sock.recv(4096)
                except (TimeoutError, socket.timeout):
                    raise _HeadError(HTTPStatus.REQUEST_TIMEOUT,
                                     "the request head took too long to arrive") from None
                except OSError:
                    raise _HeadError(None) from None
                if not chunk:
                    raise _HeadError(None)
                buf += chunk
                continue
            line, buf = buf[:nl + 1], buf[nl + 1:]
            if len(line) > (MAX_HEADER_LINE if lines else MAX_REQUEST_LINE):
                raise self._too_long(bool(lines))
            total += len(line)
            if total > MAX_HEAD_BYTES:
                raise _HeadError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                                 f"the request head is larger than {MAX_HEAD_BYTES} bytes")
            if not lines:
                if not line.strip():  # tolerate (and skip) blank lines before the request line
                    total -= len(line)
                    continue
                lines.append(line)
                if len(line.split()) != 3:  # HTTP/0.9 or garbage: no headers follow; answer now
                    return line, b""
                continue
            lines.append(line)
            if line in (b"\r\n", b"\n"):
                return lines[0], b"".join(lines[1:])
            if len(lines) - 1 > MAX_HEADERS:
                raise _HeadError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                                 f"more than {MAX_HEADERS} header lines")

    @staticmethod
    def _too_long(in_headers: bool) -> _HeadError:
        if in_headers:
            return _HeadError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                              f"a header line is longer than {MAX_HEADER_LINE} bytes")
        return _HeadError(HTTPStatus.REQUEST_URI_TOO_LONG, f"the request line is longer than {MAX_REQUEST_LINE} bytes")

    def handle(self) -> None:
        self.close_connection = True
        self.command = None
        self.request_version = self.default_request_version
        self.requestline = ""
        try:
            self.raw_requestline, head = self._read_head()
        except _HeadError as e:
            if e.status is not None:
                self.send_error(e.status, e.message)
            return
        finally:
            self.connection.settimeout(self.server.overlay.io_timeout_s)
        words = self.raw_requestline.split()
        if len(words) == 2:
            self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
            self.send_error(HTTPStatus.BAD_REQUEST, "HTTP/0.9 requests are not supported; use HTTP/1.0 or later")
            return
        self.rfile = BytesIO(head)
        if not self.parse_request():  # it has sent the error reply
            return
        if self.request_version not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "use HTTP/1.0 or HTTP/1.1")
            return
        self._dispatch()

    # ---- routing

    def _dispatch(self) -> None:
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1 or hosts[0].strip().lower() not in self.server.overlay.allowed_hosts:
            self.send_error(HTTPStatus.FORBIDDEN,
                            "the Host header must be this server (127.0.0.1 or localhost with its port); "
                            "open the overlay through its own URL")
            return
        if self.command not in ALLOWED_METHODS:
            self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, "only GET and HEAD are served")
            return
        if self.headers.get("Transfer-Encoding") is not None:
            self.send_error(HTTPStatus.BAD_REQUEST, "request bodies are not accepted (Transfer-Encoding)")
            return
        lengths = self.headers.get_all("Content-Length") or []
        if lengths:
            if len(lengths) > 1 or not lengths[0].strip().isdigit() or len(lengths[0].strip()) > 18:
                self.send_error(HTTPStatus.BAD_REQUEST, "invalid Content-Length")
                return
            if int(lengths[0]) > 0:
                self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "this server accepts no request body")
                return
        # the raw request target, not self.path: some Python versions rewrite a leading "//"
        path = self.requestline.split()[1].split("?", 1)[0]
        overlay = self.server.overlay
        if path in ROUTES_PAGE:
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", overlay._page)
        elif path == "/state.json":
            self._send(HTTPStatus.OK, "application/json; charset=utf-8", overlay._snapshot()[1])
        elif path == "/healthz":
            self._send(HTTPStatus.OK, "application/json; charset=utf-8", overlay._health())
        elif path == "/events":
            self._events()
        else:
            self.send_error(HTTPStatus.NOT_FOUND, "the overlay serves /overlay, /state.json, /events and /healthz")

    def _headers(self, status: int, content_type: str, length: int | None, extra: tuple = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for name, value in _SECURITY_HEADERS + tuple(extra):
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()

    def _send(self, status: int, content_type: str, body: bytes, extra: tuple = ()) -> None:
        self._headers(status, content_type, len(body), extra)
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Every error reply: plain text, security headers, ``Allow`` on 405, ``Retry-After`` on 503."""
        try:
            status = HTTPStatus(code)
            phrase = status.phrase
        except ValueError:
            phrase = ""
        log.debug("overlay: %d %s for %r", code, message, self.requestline[:200])
        body = f"{code} {phrase}\n{message or ''}\n".encode("utf-8", "replace")
        extra: tuple = ()
        if code == HTTPStatus.METHOD_NOT_ALLOWED:
            extra = (("Allow", ", ".join(ALLOWED_METHODS)),)
        elif code == HTTPStatus.SERVICE_UNAVAILABLE:
            extra = (("Retry-After", "5"),)
        self.close_connection = True
        try:
            self._send(code, "text/plain; charset=utf-8", body, extra)
        except OSError:
            pass

    def _events(self) -> None:
        server = self.server
        overlay = server.overlay
        if self.command == "HEAD":
            self._headers(HTTPStatus.OK, "text/event-stream; charset=utf-8", None)
            return
        if not server.acquire_sse():
            self.send_error(HTTPStatus.SERVICE_UNAVAILABLE,
                            f"too many overlay streams open (limit {overlay.max_clients}); close unused "
                            f"browser sources or raise max_clients")
            return
        try:
            self._headers(HTTPStatus.OK, "text/event-stream; charset=utf-8", None,
                          (("X-Accel-Buffering", "no"),))
            self.wfile.write(f"retry: {SSE_RETRY_MS}\n\n".encode())
            self._stream(overlay, server)
        except OSError as e:  # the client went away (or stop() shut the socket)
            log.debug("overlay: SSE client ended: %r", e)
        finally:
            server.release_sse()

    def _stream(self, overlay: OverlayServer, server: _Httpd) -> None:
        interval = 1.0 / overlay.max_rate_hz
        heartbeat = overlay.heartbeat_s
        stopping = server.stopping
        version, data = overlay._snapshot()
        self.wfile.write(b"id: %d\ndata: %s\n\n" % (version, data))
        last_send = last_write = time.monotonic()
        while not stopping.is_set():
            with overlay._cond:
                if overlay._version == version and not stopping.is_set():
                    overlay._cond.wait(timeout=max(0.0, min(1.0, last_write + heartbeat - time.monotonic())))
                newest = overlay._version
            if stopping.is_set() or self._client_gone():
                return
            now = time.monotonic()
            if newest != version:
                wait = last_send + interval - now
                if wait > 0 and stopping.wait(wait):  # rate limit; later publishes coalesce meanwhile
                    return
                version, data = overlay._snapshot()  # newest wins
                self.wfile.write(b"id: %d\ndata: %s\n\n" % (version, data))
                last_send = last_write = time.monotonic()
            elif now >= last_write + heartbeat:
                self.wfile.write(b": keep-alive\n\n")
                last_write = now

    def _client_gone(self) -> bool:
        """True when the client closed its side (EOF pending) or the socket failed."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1024) == b""  # any bytes a client sends now are ignored
        except (OSError, ValueError):
            return True

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("overlay: %s - %s", self.address_string(), format % args)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        log.debug("overlay: %r %s", self.requestline[:200], code)


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
    """

    def __init__(self, port: int = 8765, host: str = "127.0.0.1", max_clients: int = 8, max_rate_hz: float = 5.0,
                 *, heartbeat_s: float = 15.0, request_timeout_s: float = 5.0, io_timeout_s: float = 10.0,
                 max_connections: int = 64) -> None:
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
        self._cond = threading.Condition()
        self._version = 0
        self._data = _encode_state(_INITIAL_STATE)
        self._page = b""
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
            log.info("overlay: serving %s", self.url)
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
        """Make ``state`` (the schema in the module docstring) the latest one and wake the SSE senders.

        Thread-safe and cheap (one ``json.dumps``): it stores a JSON snapshot, so later changes to ``state``
        are not seen. Non-finite floats become ``null``. Raises ``TypeError`` for non-JSON values."""
        data = _encode_state(state)
        with self._cond:
            self._data = data
            self._version += 1
            self._cond.notify_all()

    def _snapshot(self) -> tuple[int, bytes]:
        with self._cond:
            return self._version, self._data

    def _health(self) -> bytes:
        httpd = self._httpd
        return json.dumps({"status": "ok", "sse_clients": httpd.sse_clients if httpd else 0,
                           "state_version": self._version,
                           "uptime_s": round(time.monotonic() - self._started_at, 3)}).encode()

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
