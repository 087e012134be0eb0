"""The streamer's private dock on the overlay server, over plain sockets: the token (made, kept, compared), the routes
it opens and the ones it refuses (wrong token, foreign Host, any method but GET/HEAD), no CORS headers, its own
state channel (never the overlay's), live updates, and no token in the log lines."""

from __future__ import annotations

import json
import logging
import os
import stat
import time
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_overlay_server import make_state, request, send_raw

from obs_mindflow.overlay import dock
from obs_mindflow.overlay.dock import DockTokenError, default_token_path, load_or_create_token, new_token, route
from obs_mindflow.overlay.server import OverlayServer

TOKEN = "Tk0123456789abcdefghijklmnopqrstuv"          # 34 URL-safe characters
SECRET = "dock-only-7f3a"                              # a value only the dock's state carries


def dock_state(i: int = 0) -> dict:
    s = make_state(i)
    s["dock"] = {"moments": [{"id": 1, "title": SECRET}], "moments_total": 1, "rate_hz": 5.0,
                 "hidden_from_viewers": True, "error": ""}
    return s


@pytest.fixture
def srv():
    with OverlayServer(port=0, max_rate_hz=20.0, dock_token=TOKEN) as server:
        yield server


# ---------------------------------------------------------------- the token

def test_new_tokens_are_long_url_safe_and_different():
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    assert all(dock.valid_token(t) and len(t) == 32 for t in tokens)


@pytest.mark.parametrize("token", ["", "short", "x" * 21, "a" * 129, "abc/def" + "x" * 20, "é" * 30,
                                   "a b" + "c" * 25, "..%2f" + "x" * 20, 12345678901234567890123])
def test_unusable_tokens_are_refused(token):
    with pytest.raises(DockTokenError, match="22 to 128 characters"):
        OverlayServer(port=0, dock_token=token)


@pytest.mark.parametrize("env, platform, expected", [
    ({"XDG_CONFIG_HOME": "/cfg"}, "linux", "/cfg/MindFlow/dock-token"),
    ({}, "linux", "~/.config/MindFlow/dock-token"),
    ({"APPDATA": "/appdata"}, "win32", "/appdata/MindFlow/dock-token"),
    ({}, "darwin", "~/Library/Application Support/MindFlow/dock-token"),
])
def test_where_the_token_is_kept(env, platform, expected):
    assert default_token_path(env, platform) == __import__("pathlib").Path(expected).expanduser()


def test_the_token_is_made_once_and_kept(tmp_path):
    path = tmp_path / "MindFlow" / "dock-token"
    token, note = load_or_create_token(path)
    assert note == "" and dock.valid_token(token)
    assert path.read_text().strip() == token
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, "other users of the machine must not read it"
    assert load_or_create_token(path) == (token, "")        # the next OBS start: the same dock URL
    assert [p.name for p in path.parent.iterdir()] == ["dock-token"], "no temporary file left behind"


@pytest.mark.parametrize("content", ["", "short\n", "not a token at all!" * 3, "\xff\xfe"])
def test_a_damaged_token_file_gets_a_new_token(tmp_path, content):
    path = tmp_path / "dock-token"
    path.write_bytes(content.encode("latin-1"))
    token, note = load_or_create_token(path)
    assert note == "" and dock.valid_token(token) and path.read_text().strip() == token


def test_a_token_that_cannot_be_kept_still_protects_the_dock(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    token, note = load_or_create_token(blocker / "MindFlow" / "dock-token")
    assert dock.valid_token(token)
    assert "could not be saved" in note and "changes each time" in note


def test_the_default_token_file_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("APPDATA", str(tmp_path))
    token, _ = load_or_create_token()
    assert (tmp_path / "MindFlow" / "dock-token").read_text().strip() == token


@pytest.mark.parametrize("path, expected", [
    (f"/dock/{TOKEN}", ""),
    (f"/dock/{TOKEN}/events", "/events"),
    (f"/dock/{TOKEN}/state.json", "/state.json"),
    (f"/dock/{TOKEN}/other", "/other"),
    ("/dock", None),
    ("/dock/", None),
    (f"/dock/{TOKEN[:-1]}", None),
    (f"/dock/{TOKEN}x", None),
    (f"/dock/{TOKEN.lower()}", None),
    (f"/dock//{TOKEN}", None),
    ("/dock/events", None),
])
def test_routes_under_the_token(path, expected):
    assert route(path, TOKEN) == expected
    assert route(path, None) is None


# ---------------------------------------------------------------- what the server opens and refuses

def test_the_dock_serves_its_page_and_its_own_state(srv):
    srv.publish(make_state(1))
    srv.publish_dock(dock_state(2))
    page = request(srv.port, f"/dock/{TOKEN}")
    assert page.status == 200 and page.header("content-type") == "text/html; charset=utf-8"
    assert b"MindFlow dock" in page.body and b"/events" in page.body
    assert srv.dock_url == f"http://127.0.0.1:{srv.port}/dock/{TOKEN}"
    assert request(srv.port, f"/dock/{TOKEN}?theme=light").status == 200
    assert request(srv.port, f"/dock/{TOKEN}/").body == page.body          # pasted with a trailing slash
    state = json.loads(request(srv.port, f"/dock/{TOKEN}/state.json").body)
    assert state["dock"]["moments"][0]["title"] == SECRET and state["seq"] == 2
    viewers = request(srv.port, "/state.json")
    assert viewers.status == 200 and SECRET.encode() not in viewers.body and json.loads(viewers.body)["seq"] == 1
    assert request(srv.port, f"/dock/{TOKEN}/other").status == 404


@pytest.mark.parametrize("path", [
    "/dock", "/dock/", f"/dock/{TOKEN[:-1]}", f"/dock/{TOKEN}x", f"/dock/{new_token()}",
    f"/dock/{new_token()}/state.json", f"/dock/{new_token()}/events", f"/dock/{TOKEN.upper()}/state.json",
    f"/dock/%{TOKEN[1:]}", "/dock/../state.json",
])
def test_a_wrong_token_is_refused(srv, path):
    srv.publish_dock(dock_state())
    r = request(srv.port, path)
    assert r.status == 403 and b"not valid" in r.body
    assert SECRET.encode() not in r.raw and TOKEN.encode() not in r.raw


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example", "192.168.1.20",
                                  None, "localhost:1", "[::1]"])
def test_a_foreign_host_is_refused_even_with_the_token(srv, host):
    srv.publish_dock(dock_state())
    for path in (f"/dock/{TOKEN}", f"/dock/{TOKEN}/state.json", f"/dock/{TOKEN}/events"):
        r = request(srv.port, path, host=host)
        assert r.status == 403, (host, path, r.status)
        assert SECRET.encode() not in r.raw


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"])
def test_only_get_and_head_even_with_the_token(srv, method):
    srv.publish_dock(dock_state())
    r = request(srv.port, f"/dock/{TOKEN}/state.json", method=method,
                headers=[("Origin", "http://evil.example"), ("Access-Control-Request-Method", "GET")])
    assert r.status == 405 and r.header("allow") == "GET, HEAD"
    assert SECRET.encode() not in r.raw
    head = request(srv.port, f"/dock/{TOKEN}/state.json", method="HEAD")
    assert head.status == 200 and head.body == b""


def test_no_cors_headers_whatever_the_origin(srv):
    srv.publish_dock(dock_state())
    for path in (f"/dock/{TOKEN}", f"/dock/{TOKEN}/state.json", f"/dock/{new_token()}", "/state.json"):
        for origin in ("http://evil.example", "null", f"http://127.0.0.1:{srv.port}"):
            r = request(srv.port, path, headers=[("Origin", origin)])
            assert not [h for h in r.headers if h.startswith("access-control-")], (path, origin, r.headers)
            assert r.header("cross-origin-resource-policy") == "same-origin"
            assert r.header("referrer-policy") == "no-referrer"      # the token never leaves in a Referer
            assert r.header("cache-control") == "no-store"


def test_a_server_without_a_token_has_no_dock(tmp_path):
    with OverlayServer(port=0) as server:
        assert server.dock_url is None
        assert request(server.port, f"/dock/{TOKEN}").status == 404
        assert request(server.port, "/dock").status == 404


def test_the_dock_stream_is_live_and_separate(srv):
    srv.publish(make_state(0))
    srv.publish_dock(dock_state(0))
    with DockSSE(srv.port, f"/dock/{TOKEN}/events") as mine, DockSSE(srv.port, "/events") as viewers:
        assert mine.wait(1)[0]["dock"]["moments"][0]["title"] == SECRET
        assert "dock" not in viewers.wait(1)[0]
        delays = []
        for i in range(1, 6):
            time.sleep(0.12)
            sent = time.monotonic()
            srv.publish_dock(dock_state(i))
            got = mine.wait(i + 1)
            assert got[-1]["seq"] == i
            delays.append(mine.arrivals[i] - sent)
        assert max(delays) < 1.0, delays
        time.sleep(0.3)
        assert len(viewers.events) == 1, "a dock update must not reach the viewers' stream"
        assert SECRET.encode() not in viewers.raw


def test_the_token_stays_out_of_the_log(srv, caplog):
    with caplog.at_level(logging.DEBUG, logger="obs_mindflow.overlay.server"):
        request(srv.port, f"/dock/{TOKEN}/state.json")
        request(srv.port, f"/dock/{TOKEN}/nope")
        request(srv.port, f"/dock/{TOKEN}", method="POST")
        request(srv.port, f"/dock/{TOKEN}", host="evil.example")
    assert caplog.records, "the requests were logged at DEBUG"
    assert "/dock/…" in caplog.text
    assert TOKEN not in caplog.text


class DockSSE:
    """A raw-socket EventSource on ``path``: ``events`` (parsed JSON) and their ``arrivals`` (monotonic s)."""

    def __init__(self, port: int, path: str) -> None:
        import socket
        import threading

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        self.events: list[dict] = []
        self.arrivals: list[float] = []
        self.raw = b""
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buf = b""
        try:
            while chunk := self.sock.recv(65536):
                now = time.monotonic()
                self.raw += chunk
                buf += chunk
                while b"\n\n" in buf:
                    block, _, buf = buf.partition(b"\n\n")
                    for line in block.split(b"\n"):
                        if line.startswith(b"data:"):
                            self.events.append(json.loads(line[5:]))
                            self.arrivals.append(now)
        except OSError:
            pass

    def wait(self, n: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.events) < n and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(self.events) >= n, f"{len(self.events)} events after {timeout} s, wanted {n}"
        return list(self.events)

    def wait_until(self, done, timeout: float = 5.0) -> list[dict]:
        """The events once ``done(events)`` is true (``AssertionError`` after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while not done(list(self.events)) and time.monotonic() < deadline:
            time.sleep(0.005)
        events = list(self.events)
        assert done(events), f"{len(events)} events after {timeout} s; the last: {events[-1:]}"
        return events

    def __enter__(self) -> "DockSSE":
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()


def test_raw_bytes_without_a_token_never_get_the_dock(srv):
    srv.publish_dock(dock_state())
    for junk in (b"GET /dock HTTP/1.0\r\n\r\n", f"GET /dock/{TOKEN} HTTP/1.0\r\n\r\n".encode(),
                 b"GET /dock/../../dock HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"):
        assert SECRET.encode() not in send_raw(srv.port, junk).raw


@pytest.fixture(scope="module")
def fuzz_srv():
    with OverlayServer(port=0, dock_token=TOKEN) as server:
        server.publish_dock(dock_state())
        yield server


@settings(max_examples=300, deadline=None, database=None)
@given(tail=st.text(min_size=0, max_size=60).map(lambda t: urllib.parse.quote(t, safe="/.%?&=;~-_")),
       prefix=st.sampled_from(["/dock", "/dock/", f"/dock/{TOKEN}", f"/dock/{TOKEN[:-2]}", "//dock/", "/./dock/",
                               f"/dock/%2e%2e/dock/{TOKEN}", f"/dock/{TOKEN.upper()}"]))
def test_any_path_near_the_dock_is_its_route_or_refused(fuzz_srv, prefix, tail):
    target = prefix + tail
    path = target.split("?", 1)[0]
    if path in (f"/dock/{TOKEN}/state.json", f"/dock/{TOKEN}/events"):
        return                                       # the dock's own routes (tested above; a stream never ends)
    reply = send_raw(fuzz_srv.port, f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{fuzz_srv.port}\r\n\r\n".encode())
    leaked = SECRET.encode() in reply.raw
    if path in (f"/dock/{TOKEN}", f"/dock/{TOKEN}/"):
        assert reply.status == 200 and b"MindFlow dock" in reply.body and not leaked
    elif path.startswith(f"/dock/{TOKEN}/"):
        assert reply.status == 404 and not leaked, (target, reply.raw[:200])
    elif path.startswith("/dock/") or path == "/dock":
        assert reply.status == 403 and not leaked, (target, reply.raw[:200])
    else:
        assert reply.status == 404 and not leaked, (target, reply.raw[:200])
