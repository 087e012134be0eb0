"""The overlay's HTTP server over plain sockets: routes, errors, Host check, SSE delivery and rate limit,
client cap, request limits, port errors and the start/stop life cycle."""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from obs_mindflow.overlay import server as server_module
from obs_mindflow.overlay.server import (MAX_HEAD_BYTES, MAX_HEADER_LINE, MAX_HEADERS, MAX_REQUEST_LINE,
                                         OverlayError, OverlayHostError, OverlayPortError, OverlayServer)

LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
DEFAULT_HOST = object()


def make_state(i: int = 0, emotion: str = "happy") -> dict:
    probs = {label: 0.01 for label in LABELS}
    probs[emotion] = 0.94
    return {"model": "fer-mini-xception", "labels": LABELS, "negative_labels": ["angry", "disgust", "fear", "sad"],
            "paused": False, "face": True, "emotion": emotion, "confidence": 0.94, "probabilities": probs,
            "session": {"active": True, "duration_s": 10.0 + i, "coverage": 0.9, "profile": {"happy": 1.0},
                        "negative_share": 0.0, "rolling_negative_share": 0.0, "rolling_window_s": 300,
                        "trend": [[0.0, 0.0], [10.0, 0.0]]},
            "message": "", "updated": 1764000000.0 + i, "seq": i}


@dataclass
class Response:
    status: int | None          # None: the connection closed without a status line
    reason: str
    headers: dict[str, list[str]]
    body: bytes
    raw: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


def parse_response(raw: bytes) -> Response:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"HTTP/"):
        return Response(None, "", {}, raw, raw)
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return Response(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, body, raw)


def send_raw(port: int, data: bytes, timeout: float = 5.0) -> Response:
    """Send ``data`` on a fresh connection, read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return parse_response(b"".join(chunks))


def request(port: int, path: str = "/", method: str = "GET", host=DEFAULT_HOST, headers=(),
            version: str = "HTTP/1.1", timeout: float = 5.0) -> Response:
    lines = [f"{method} {path} {version}"]
    if host is DEFAULT_HOST:
        lines.append(f"Host: 127.0.0.1:{port}")
    elif host is not None:
        lines.append(f"Host: {host}")
    lines += [f"{k}: {v}" for k, v in headers]
    return send_raw(port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), timeout)


class SSEClient:
    """A raw-socket EventSource: collects ``(arrival monotonic s, parsed JSON)`` per ``data:`` event."""

    def __init__(self, port: int, host: str | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        host = host or f"127.0.0.1:{port}"
        self.sock.sendall(f"GET /events HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
        self.raw = b""
        self.events: list[tuple[float, dict]] = []
        self.comments = 0
        self.closed = threading.Event()
        self.status: int | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buf = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                now = time.monotonic()
                self.raw += chunk
                buf += chunk
                if self.status is None and b"\r\n\r\n" in buf:
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    self.status = int(head.split(b" ", 2)[1])
                while self.status is not None and b"\n\n" in buf:
                    block, _, buf = buf.partition(b"\n\n")
                    data = [line[5:].strip() for line in block.split(b"\n") if line.startswith(b"data:")]
                    with self._lock:
                        if data:
                            self.events.append((now, json.loads(b"\n".join(data))))
                        elif block.startswith(b":"):
                            self.comments += 1
        except OSError:
            pass
        finally:
            self.closed.set()

    def snapshot(self) -> list[tuple[float, dict]]:
        with self._lock:
            return list(self.events)

    def wait_events(self, n: int, timeout: float = 5.0) -> list[tuple[float, dict]]:
        deadline = time.monotonic() + timeout
        while len(self.snapshot()) < n and time.monotonic() < deadline and not self.closed.is_set():
            time.sleep(0.01)
        events = self.snapshot()
        assert len(events) >= n, f"expected {n} SSE events within {timeout} s, got {len(events)}: {self.raw[:300]!r}"
        return events

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(5)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {value!r})")
        time.sleep(0.02)


def overlay_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("mindflow-overlay") and t.is_alive()]


def port_is_free(port: int) -> bool:
    """Whether a new listener (with SO_REUSEADDR, as the server's own, so TIME_WAIT leftovers don't count) can
    take ``port``."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
            return True
        except OSError:
            return False


@pytest.fixture
def server():
    srv = OverlayServer(port=0, max_rate_hz=5.0)
    srv.start()
    try:
        yield srv
    finally:
        assert srv.stop(), "stop() did not join its threads"


# ---------------------------------------------------------------- routes

@pytest.mark.parametrize("path, content_type, marker", [
    ("/", "text/html; charset=utf-8", b"EventSource('/events')"),
    ("/overlay", "text/html; charset=utf-8", b"EventSource('/events')"),
    ("/overlay?theme=light&panels=emotion,trend&scale=1.5", "text/html; charset=utf-8", b"<title>MindFlow overlay"),
    ("/state.json", "application/json; charset=utf-8", b'"seq":7'),
    ("/state.json?t=123", "application/json; charset=utf-8", b'"seq":7'),
    ("/healthz", "application/json; charset=utf-8", b'"status": "ok"'),
])
def test_routes_serve_their_content(server, path, content_type, marker):
    server.publish(make_state(7))
    r = request(server.port, path)
    assert r.status == 200, r.raw[:300]
    assert r.header("Content-Type") == content_type
    assert int(r.header("Content-Length")) == len(r.body)
    assert marker in r.body


@pytest.mark.parametrize("path, status", [
    ("/", 200), ("/state.json", 200), ("/healthz", 200), ("/nope", 404),
    ("/events", 200), ("/overlay", 403), ("/state.json", 405)])
def test_every_response_carries_the_security_headers(server, path, status):
    method = "POST" if status == 405 else "GET"
    host = "evil.com" if status == 403 else DEFAULT_HOST
    if path == "/events":
        r = request(server.port, path, method="HEAD")
    else:
        r = request(server.port, path, method=method, host=host)
    assert r.status == status
    assert r.header("Cache-Control") == "no-store"
    assert r.header("X-Content-Type-Options") == "nosniff"
    csp = r.header("Content-Security-Policy")
    assert csp and "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert "http:" not in csp and "*" not in csp  # nothing from other origins
    assert r.header("Referrer-Policy") == "no-referrer"
    assert "Python" not in (r.header("Server") or "")


def test_state_json_is_the_latest_published_state(server):
    before = json.loads(request(server.port, "/state.json").body)
    assert before["emotion"] == "" and before["face"] is False  # the waiting state before any publish
    for i in range(3):
        server.publish(make_state(i, emotion=LABELS[i]))
    assert json.loads(request(server.port, "/state.json").body) == make_state(2, emotion=LABELS[2])


def test_publish_takes_a_snapshot(server):
    state = make_state(1)
    server.publish(state)
    state["emotion"] = "sad"  # later changes by the caller are not seen
    assert json.loads(request(server.port, "/state.json").body)["emotion"] == "happy"


def test_publish_replaces_non_finite_numbers_with_null(server):
    server.publish({"confidence": math.nan, "session": {"trend": [[0.0, math.inf], [1.0, 0.5]]}, "ok": 1.5})
    state = json.loads(request(server.port, "/state.json").body)
    assert state == {"confidence": None, "session": {"trend": [[0.0, None], [1.0, 0.5]]}, "ok": 1.5}


@pytest.mark.parametrize("bad, words", [
    ([1, 2], "takes a dict"),
    ("happy", "takes a dict"),
    ({"confidence": np.float32(0.5)}, "float()"),
    ({"x": object()}, "JSON types"),
])
def test_publish_rejects_what_json_cannot_carry(server, bad, words):
    with pytest.raises(TypeError, match=words.replace("(", r"\(").replace(")", r"\)")):
        server.publish(bad)


def test_healthz_counts_streams_and_versions(server):
    server.publish(make_state(1))
    health = json.loads(request(server.port, "/healthz").body)
    assert health["status"] == "ok" and health["sse_clients"] == 0 and health["state_version"] == 1
    client = SSEClient(server.port)
    try:
        client.wait_events(1)
        assert json.loads(request(server.port, "/healthz").body)["sse_clients"] == 1
    finally:
        client.close()


@pytest.mark.parametrize("path", [
    "/index.html", "/page.html", "/overlay/", "/overlay/page.html", "/server.py", "/favicon.ico", "/frame.jpg",
    "/snapshot.png", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd",
    "//etc/passwd", "/events/../state.json", "/obs_mindflow/overlay/page.html", "/STATE.JSON", "/state.json/",
    "http://127.0.0.1/etc/passwd", "*", "/%00", "/state.json%00",
])
def test_unknown_paths_are_404_and_leak_nothing(server, path):
    r = request(server.port, path)
    assert r.status == 404, (path, r.raw[:200])
    assert b"root:" not in r.body and b"<html" not in r.body and b"import " not in r.body
    assert r.header("Content-Type") == "text/plain; charset=utf-8"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND",
                                    "get", "FOO"])
@pytest.mark.parametrize("path", ["/", "/state.json", "/nope"])
def test_other_methods_are_405(server, method, path):
    r = request(server.port, path, method=method)
    assert r.status == 405, r.raw[:200]
    assert r.header("Allow") == "GET, HEAD"


@pytest.mark.parametrize("path", ["/", "/overlay", "/state.json", "/healthz", "/events"])
def test_head_sends_headers_without_body(server, path):
    r = request(server.port, path, method="HEAD")
    assert r.status == 200 and r.body == b""
    assert r.header("Content-Type")
    if path != "/events":
        get = request(server.port, path)
        assert int(r.header("Content-Length")) == len(get.body)
    assert server.sse_clients == 0  # HEAD /events opens no stream


# ---------------------------------------------------------------- Host check (DNS rebinding)

@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LocalHost:{port}", "127.0.0.1",
                                  "localhost", " localhost:{port} "])
def test_own_host_names_are_accepted(server, host):
    assert request(server.port, "/state.json", host=host.format(port=server.port)).status == 200


@pytest.mark.parametrize("host", ["evil.com:{port}", "evil.com", "127.0.0.1:{other}", "localhost:{other}",
                                  "localhost.evil.com:{port}", "127.0.0.1.nip.io:{port}", "127.0.0.2:{port}",
                                  "[::1]:{port}", "0.0.0.0:{port}", "", "127.0.0.1:{port}@evil.com",
                                  "localhost:{port}, evil.com", None])
@pytest.mark.parametrize("path", ["/", "/state.json", "/events", "/healthz", "/nope"])
def test_foreign_or_missing_host_is_403(server, host, path):
    other = server.port + 1 if server.port < 65535 else server.port - 1
    r = request(server.port, path, host=None if host is None else host.format(port=server.port, other=other))
    assert r.status == 403, (host, path, r.raw[:200])
    assert b"happy" not in r.body and b"<html" not in r.body
    assert server.sse_clients == 0


def test_two_host_headers_are_403(server):
    r = request(server.port, "/state.json", headers=[("Host", "evil.com")])  # plus the good default one
    assert r.status == 403


# ---------------------------------------------------------------- request limits

@pytest.mark.parametrize("name, data, status", [
    ("long request line", b"GET /" + b"a" * (MAX_REQUEST_LINE + 10) + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414),
    ("long request line, no newline yet", b"GET /" + b"a" * (MAX_REQUEST_LINE + 10), 414),
    ("long header line", b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"b" * MAX_HEADER_LINE + b"\r\n\r\n", 431),
    ("too many headers", b"GET / HTTP/1.1\r\nHost: localhost\r\n" + b"X-A: 1\r\n" * (MAX_HEADERS + 1) + b"\r\n", 431),
    ("head too large", b"GET / HTTP/1.1\r\nHost: localhost\r\n"
     + b"".join(b"X-%d: %s\r\n" % (i, b"c" * 4000) for i in range(MAX_HEAD_BYTES // 4000 + 1)) + b"\r\n", 431),
    ("HTTP/0.9", b"GET /\r\n", 400),
    ("HTTP/0.9 POST", b"POST /\r\n", 400),
    ("garbage line", b"\x00\x01\x02\xff\xfe\r\n\r\n", 400),
    ("four words", b"GET / HTTP/1.1 extra\r\nHost: localhost\r\n\r\n", 400),
    ("bad version", b"GET / HTTX/1.1\r\nHost: localhost\r\n\r\n", 400),
    ("HTTP/2", b"GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", 505),
    ("HTTP/0.0", b"GET /healthz HTTP/0.0\r\nHost: localhost\r\n\r\n", 505),
    ("HTTP/1.2", b"GET /healthz HTTP/1.2\r\nHost: localhost\r\n\r\n", 505),
    ("body", b"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello", 413),
    ("absurd Content-Length", b"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999999999999999\r\n\r\n",
     400),
    ("negative Content-Length", b"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n", 400),
    ("chunked", b"GET / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("zero Content-Length is fine", b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n", 200),
    ("bare LF line ends are fine", b"GET /healthz HTTP/1.0\nHost: localhost\n\n", 200),
])
def test_malformed_requests_get_a_specific_error(server, name, data, status):
    r = send_raw(server.port, data)
    assert r.status == status, (name, r.raw[:300])
    assert r.header("Cache-Control") == "no-store"


@pytest.mark.parametrize("trickle", [b"", b"GET / HTTP/1.1\r\nHost: local", b"G"])
def test_slow_request_heads_are_cut_off_at_the_deadline(trickle):
    with OverlayServer(port=0, request_timeout_s=0.5) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            t0 = time.monotonic()
            s.sendall(trickle)
            got = b""
            while True:  # keep sending one byte every 0.1 s (a slowloris) until the server gives up
                try:
                    s.sendall(b"x")
                except OSError:
                    break
                s.settimeout(0.1)
                try:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                except (TimeoutError, socket.timeout):   # one class since Python 3.10; two in 3.9
                    pass
                except OSError:
                    break
                assert time.monotonic() - t0 < 6.0, "the server let a slowloris hold a connection"
            elapsed = time.monotonic() - t0
        assert got.startswith(b"HTTP/1.0 408 "), got[:100]
        assert 0.4 <= elapsed < 4.0, f"cut off after {elapsed:.2f} s; the deadline is 0.5 s"
        wait_for(lambda: len(srv._httpd.threads) == 0, 2.0, "the connection thread to end")


def test_connections_beyond_max_connections_are_refused():
    with OverlayServer(port=0, max_clients=1, max_connections=3, request_timeout_s=5.0) as srv:
        idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(3)]
        try:
            wait_for(lambda: len(srv._httpd.threads) == 3, 2.0, "3 connection threads")
            r = request(srv.port, "/healthz")
            assert r.status == 503 and r.header("Retry-After") == "5"
        finally:
            for s in idle:
                s.close()
        wait_for(lambda: request(srv.port, "/healthz").status == 200, 3.0, "service after the idle ones left")


# ---------------------------------------------------------------- Server-Sent Events

def test_sse_sends_retry_then_the_current_state_at_connect(server):
    server.publish(make_state(3))
    client = SSEClient(server.port)
    try:
        events = client.wait_events(1)
        assert client.status == 200
        head = client.raw.split(b"\r\n\r\n", 1)
        assert b"Content-Type: text/event-stream" in head[0] and b"Cache-Control: no-store" in head[0]
        assert head[1].startswith(b"retry: 1000\n\n")
        assert events[0][1]["seq"] == 3
    finally:
        client.close()


def test_sse_delivers_each_published_state_in_order(server):
    client = SSEClient(server.port)
    try:
        client.wait_events(1)
        for i in range(1, 5):
            time.sleep(0.25)  # slower than max_rate_hz=5: nothing to coalesce
            server.publish(make_state(i, emotion=LABELS[i]))
            events = client.wait_events(i + 1, timeout=3)
            assert events[-1][1] == make_state(i, emotion=LABELS[i])
        assert [e[1].get("seq") for e in client.snapshot()] == [None, 1, 2, 3, 4]
    finally:
        client.close()


@pytest.mark.parametrize("rate_hz", [2.0, 5.0, 10.0])
def test_sse_rate_limit_coalesces_and_the_newest_wins(rate_hz):
    with OverlayServer(port=0, max_rate_hz=rate_hz) as srv:
        clients = [SSEClient(srv.port) for _ in range(2)]
        try:
            for c in clients:
                c.wait_events(1)
            t0 = time.monotonic()
            for i in range(100):  # 100 states in 1 s
                srv.publish(make_state(i))
                time.sleep(max(0.0, t0 + (i + 1) * 0.01 - time.monotonic()))
            burst = time.monotonic() - t0
            time.sleep(2.0 / rate_hz + 0.3)  # the last pending update goes out
            for c in clients:
                events = [e for e in c.snapshot()[1:]]
                seqs = [e[1]["seq"] for e in events]
                limit = math.ceil(burst * rate_hz) + 1
                assert 2 <= len(seqs) <= limit, f"{len(seqs)} updates for {burst:.2f} s at {rate_hz} Hz: {seqs}"
                assert seqs[-1] == 99, f"the newest state must be delivered last: {seqs}"
                assert seqs == sorted(seqs)
                print(f"{rate_hz} Hz: {len(seqs)} of 100 states delivered in {burst:.2f} s: {seqs}")
        finally:
            for c in clients:
                c.close()


def test_sse_heartbeat_comments():
    with OverlayServer(port=0, heartbeat_s=0.2) as srv:
        client = SSEClient(srv.port)
        try:
            client.wait_events(1)
            wait_for(lambda: client.comments >= 3, 3.0, "3 keep-alive comments")
            assert b": keep-alive\n\n" in client.raw
            assert len(client.snapshot()) == 1  # heartbeats are not state updates
        finally:
            client.close()


def test_sse_client_cap_and_slot_release():
    with OverlayServer(port=0, max_clients=2) as srv:
        a, b = SSEClient(srv.port), SSEClient(srv.port)
        try:
            a.wait_events(1)
            b.wait_events(1)
            r = request(srv.port, "/events")
            assert r.status == 503 and r.header("Retry-After") == "5" and b"max_clients" in r.body
            assert request(srv.port, "/state.json").status == 200  # the rest still works at the cap
            a.close()  # a client that goes away frees its slot within about a second
            wait_for(lambda: srv.sse_clients == 1, 3.0, "the closed stream's slot to be released")
            c = SSEClient(srv.port)
            try:
                assert c.wait_events(1) and c.status == 200
            finally:
                c.close()
        finally:
            a.close()
            b.close()


# ---------------------------------------------------------------- life cycle, ports, construction

def test_port_in_use_error_names_a_free_port():
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        busy = squatter.getsockname()[1]
        srv = OverlayServer(port=busy)
        with pytest.raises(OverlayPortError) as info:
            srv.start()
        err = info.value
        assert isinstance(err, OSError) and err.port == busy
        assert err.free_port and err.free_port != busy and port_is_free(err.free_port)
        assert f"port={err.free_port}" in str(err) and str(busy) in str(err)
        assert not srv.running
        with OverlayServer(port=err.free_port) as other:  # the suggestion works
            assert request(other.port, "/healthz").status == 200


def test_a_second_server_on_a_running_port_is_refused(server):
    with pytest.raises(OverlayPortError, match="is free"):
        OverlayServer(port=server.port).start()
    assert request(server.port, "/healthz").status == 200  # the first one is unharmed


def test_stop_closes_streams_joins_threads_and_frees_the_port():
    baseline = len(overlay_threads())
    srv = OverlayServer(port=0, request_timeout_s=30.0)
    srv.start()
    port = srv.port
    clients = [SSEClient(port) for _ in range(3)]
    for c in clients:
        c.wait_events(1)
    half_open = socket.create_connection(("127.0.0.1", port))
    half_open.sendall(b"GET / HTTP/1.1\r\n")  # never finishes its head
    wait_for(lambda: len(srv._httpd.threads) == 4, 2.0, "4 connection threads")
    t0 = time.monotonic()
    assert srv.stop(timeout=5.0) is True
    assert time.monotonic() - t0 < 3.0, "stop() should not wait for streams or half-open heads to end"
    for c in clients:
        assert c.closed.wait(2.0), "an SSE stream stayed open after stop()"
        c.close()
    half_open.close()
    assert len(overlay_threads()) == baseline
    assert port_is_free(port)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_start_stop_twice_and_restart_on_the_same_port():
    srv = OverlayServer(port=0)
    assert srv.stop() is True  # stopping a server that never started is fine
    srv.start()
    port = srv.port
    with pytest.raises(OverlayError, match="already running"):
        srv.start()
    srv.publish(make_state(5))
    assert srv.stop() and srv.stop()
    assert not srv.running
    restarted = OverlayServer(port=port)
    restarted.start()  # the port is immediately reusable
    restarted.stop()
    srv.requested_port = port
    srv.start()  # the same object starts again and keeps its latest state
    try:
        assert srv.port == port
        assert json.loads(request(port, "/state.json").body)["seq"] == 5
    finally:
        srv.stop()
        srv.stop()
    assert not overlay_threads()


def test_context_manager_and_url():
    with OverlayServer(port=0) as srv:
        assert srv.running and srv.url == f"http://127.0.0.1:{srv.port}/overlay"
        assert request(srv.port, "/overlay").status == 200
    assert not srv.running
    assert OverlayServer(port=8765).url == "http://127.0.0.1:8765/overlay"
    with pytest.raises(OverlayError, match="after start"):
        _ = OverlayServer(port=0).url


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "192.168.1.10", "10.0.0.1", "8.8.8.8", "example.com",
                                  "localhost.example.com", "127.0.0.1:8765", "127.0.0.1.evil.com", None, 127])
def test_non_loopback_hosts_are_refused(host):
    with pytest.raises(OverlayHostError, match="127.0.0.1"):
        OverlayServer(port=0, host=host)


@pytest.mark.parametrize("host, url_host", [("localhost", "127.0.0.1"), ("127.0.0.1", "127.0.0.1"),
                                            ("::1", "[::1]"), ("LOCALHOST", "127.0.0.1")])
def test_loopback_hosts_are_accepted(host, url_host):
    assert OverlayServer(port=8765, host=host).url == f"http://{url_host}:8765/overlay"


def test_ipv6_loopback_serves_with_its_own_host_names():
    try:
        srv = OverlayServer(port=0, host="::1").start()
    except OverlayPortError as e:
        pytest.skip(f"no IPv6 loopback on this machine: {e}")
    try:
        with socket.create_connection(("::1", srv.port), timeout=5) as s:
            s.sendall(f"GET /healthz HTTP/1.1\r\nHost: [::1]:{srv.port}\r\n\r\n".encode())
            assert s.recv(100).startswith(b"HTTP/1.0 200 ")
        with socket.create_connection(("::1", srv.port), timeout=5) as s:
            s.sendall(f"GET /healthz HTTP/1.1\r\nHost: evil.com:{srv.port}\r\n\r\n".encode())
            assert s.recv(100).startswith(b"HTTP/1.0 403 ")
    finally:
        srv.stop()


@pytest.mark.parametrize("kwargs, words", [
    ({"port": -1}, "port must be"), ({"port": 70000}, "port must be"), ({"port": "8765"}, "port must be"),
    ({"port": True}, "port must be"), ({"max_clients": 0}, "max_clients"), ({"max_clients": 2.5}, "max_clients"),
    ({"max_rate_hz": 0}, "max_rate_hz"), ({"max_rate_hz": math.nan}, "max_rate_hz"),
    ({"max_rate_hz": 1000}, "max_rate_hz"), ({"heartbeat_s": -1}, "heartbeat_s"),
    ({"request_timeout_s": 0}, "request_timeout_s"), ({"max_clients": 8, "max_connections": 8}, "must exceed"),
])
def test_constructor_rejects_bad_settings(kwargs, words):
    with pytest.raises(ValueError, match=words):
        OverlayServer(**kwargs)


def test_requests_and_errors_do_not_write_to_stderr(server, capfd, caplog):
    server.publish(make_state(1))
    for path, method, host in [("/", "GET", DEFAULT_HOST), ("/nope", "GET", DEFAULT_HOST),
                               ("/", "POST", DEFAULT_HOST), ("/", "GET", "evil.com")]:
        request(server.port, path, method=method, host=host)
    send_raw(server.port, b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
    client = SSEClient(server.port)
    client.wait_events(1)
    client.close()
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], "client mistakes are not server errors"


def test_server_errors_are_logged_not_printed(server, capfd, caplog, monkeypatch):
    def boom(self):
        raise RuntimeError("simulated bug")
    monkeypatch.setattr(OverlayServer, "health", boom)
    r = request(server.port, "/healthz")
    assert r.status is None  # the connection is closed without a reply
    wait_for(lambda: any("simulated bug" in str(rec.exc_info) for rec in caplog.records), 2.0, "the error log")
    assert [rec.levelno for rec in caplog.records if rec.exc_info] == [logging.ERROR]
    assert capfd.readouterr().err == ""


MEDICAL_WORDS = ["diagnos", "disorder", "depress", "anxiety", "symptom", "patient", "therap", "clinical", "medical",
                 "mental health", "illness", "treatment", "condition"]


def test_page_is_self_contained_and_plainly_worded():
    page = (Path(server_module.__file__).with_name("page.html")).read_text("utf-8")
    lowered = page.lower()
    assert not [w for w in MEDICAL_WORDS if w in lowered], "the overlay must not use medical wording"
    assert "http://" not in page and "https://" not in page and "//cdn" not in lowered, "nothing from the network"
    assert "<img" not in lowered and "<video" not in lowered and "<canvas" not in lowered
    assert "EventSource('/events')" in page and "'/state.json'" in page
    assert "innerHTML" not in page, "state values must only ever reach the DOM as text"
    assert "background: transparent" in page
