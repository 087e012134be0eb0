"""The overlay's hardened HTTP layer: a bounded threading server and a request handler that reads the request head
under a deadline and size limits, serves only fixed routes, and streams Server-Sent Events. Used only by the
:class:`~obs_mindflow.overlay.server.OverlayServer` (routes, limits, security: there), through :class:`Site`."""

from __future__ import annotations

import http.server
import logging
import select
import socket
import sys
import threading
import time
from http import HTTPStatus
from io import BytesIO
from typing import Any, Protocol

from .dock import DOCK_PREFIX, redact, route

log = logging.getLogger("obs_mindflow.overlay.server")

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


class Site(Protocol):
    """What the HTTP layer serves and obeys (the ``OverlayServer``): limits, pages, latest states, ``/healthz``."""

    max_connections: int
    max_clients: int
    io_timeout_s: float
    request_timeout_s: float
    max_rate_hz: float
    heartbeat_s: float
    allowed_hosts: frozenset[str]
    dock_token: str | None

    def page(self, for_dock: bool = False) -> bytes: ...
    def snapshot(self, for_dock: bool = False) -> tuple[int, bytes]: ...
    def wait_newer(self, version: int, for_dock: bool, timeout: float, stopping: threading.Event) -> int: ...
    def health(self) -> bytes: ...


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

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, overlay: Site) -> None:
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
        if path == DOCK_PREFIX or path.startswith(DOCK_PREFIX + "/"):
            self._dock(path)
        elif path in ROUTES_PAGE:
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", overlay.page())
        elif path == "/state.json":
            self._send(HTTPStatus.OK, "application/json; charset=utf-8", overlay.snapshot()[1])
        elif path == "/healthz":
            self._send(HTTPStatus.OK, "application/json; charset=utf-8", overlay.health())
        elif path == "/events":
            self._events()
        else:
            self.send_error(HTTPStatus.NOT_FOUND, "the overlay serves /overlay, /state.json, /events and /healthz")

    def _dock(self, path: str) -> None:
        """The streamer's private dock (:mod:`.dock`): only with the server's token, only the dock's own state."""
        overlay = self.server.overlay
        if overlay.dock_token is None:
            self.send_error(HTTPStatus.NOT_FOUND, "this server has no dock")
            return
        sub = route(path, overlay.dock_token)
        if sub is None:
            self.send_error(HTTPStatus.FORBIDDEN, "this dock link is not valid: copy the Dock URL from MindFlow's "
                                                  "panel (Tools > Scripts > MindFlow) again")
        elif sub in ("", "/"):
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", overlay.page(for_dock=True))
        elif sub == "/state.json":
            self._send(HTTPStatus.OK, "application/json; charset=utf-8", overlay.snapshot(for_dock=True)[1])
        elif sub == "/events":
            self._events(for_dock=True)
        else:
            self.send_error(HTTPStatus.NOT_FOUND, "the dock serves its page, state.json and events")

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
        log.debug("overlay: %d %s for %r", code, message, redact(self.requestline[:200]))
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

    def _events(self, for_dock: bool = False) -> None:
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
            self._stream(overlay, server, for_dock)
        except OSError as e:  # the client went away (or stop() shut the socket)
            log.debug("overlay: SSE client ended: %r", e)
        finally:
            server.release_sse()

    def _stream(self, overlay: Site, server: _Httpd, for_dock: bool) -> None:
        interval = 1.0 / overlay.max_rate_hz
        heartbeat = overlay.heartbeat_s
        stopping = server.stopping
        version, data = overlay.snapshot(for_dock)
        self.wfile.write(b"id: %d\ndata: %s\n\n" % (version, data))
        last_send = last_write = time.monotonic()
        while not stopping.is_set():
            newest = overlay.wait_newer(version, for_dock,
                                        max(0.0, min(1.0, last_write + heartbeat - time.monotonic())), stopping)
            if stopping.is_set() or self._client_gone():
                return
            now = time.monotonic()
            if newest != version:
                wait = last_send + interval - now
                if wait > 0 and stopping.wait(wait):  # rate limit; later publishes coalesce meanwhile
                    return
                version, data = overlay.snapshot(for_dock)  # newest wins
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
        log.debug("overlay: %s - %s", self.address_string(), redact(format % args))

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        log.debug("overlay: %r %s", redact(self.requestline[:200]), code)
