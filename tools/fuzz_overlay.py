"""Fuzz the overlay server with malformed requests over raw loopback sockets and print the figures.

    python -m tools.fuzz_overlay                      # 20,000 requests or 300 s, whichever comes first
    python -m tools.fuzz_overlay --requests 100000 --seconds 600 --workers 8 --seed 7

Each case is one connection with one kind of abuse: garbage request lines, binary junk, huge request lines and
headers, too many headers, invalid methods, foreign/missing/duplicate Host headers, path traversal (plain and
percent-encoded), HTTP/0.9, absurd Content-Length and Transfer-Encoding, header junk, half-open connections,
streams dropped at once, and a slowloris group that trickles bytes — mixed with valid requests whose answers
are checked (``/healthz``, ``/state.json`` against the published state, the page, HEAD). A case fails when the
server answers with the wrong kind of status, a valid request gets a wrong body, a connection hangs past its
timeout, or the server logs an unexpected error. Afterwards the server must still answer ``/healthz`` and
``/state.json`` correctly and its connection threads must be gone (back to the baseline thread count).

Traffic goes only to 127.0.0.1 and is bounded in count and time. Exit status 1 when anything failed.
``run_fuzz()`` is what ``tests/test_overlay_fuzz.py`` calls with a smaller budget.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from obs_mindflow.overlay.server import (MAX_HEAD_BYTES, MAX_HEADER_LINE, MAX_HEADERS,  # noqa: E402
                                         MAX_REQUEST_LINE, OverlayServer)

STATE = {"model": "fuzz", "labels": ["a", "b"], "negative_labels": ["b"], "paused": False, "face": True,
         "emotion": "a", "confidence": 0.75, "probabilities": {"a": 0.75, "b": 0.25},
         "session": {"active": True, "duration_s": 12.5, "coverage": 1.0, "profile": {"a": 1.0},
                     "negative_share": 0.0, "rolling_negative_share": 0.0, "rolling_window_s": 300,
                     "trend": [[0.0, 0.0]]},
         "message": "fuzz ünïcode ✓", "updated": 1764000000.0}

TRAVERSAL = ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2f..%2fetc%2fpasswd", "/%252e%252e/",
             "/..\\..\\windows\\win.ini", "/....//....//etc/passwd", "/overlay/../../../etc/shadow",
             "//etc/passwd", "/./page.html", "/%2E%2E%5C", "/obs_mindflow/overlay/server.py", "/page.html",
             "/state.json/../../etc/passwd", "/%c0%ae%c0%ae/", "/events%00", "/\x00", "/~root", "/.git/config",
             "/overlay%2f..%2f..", "/static/../../../", "file:///etc/passwd", "http://evil.com/", "*",
             "/overlay;/../../", "/%u002e%u002e/"]
METHODS = ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "MKCOL", "LOCK", "BREW",
           "get", "Get", "G\x00ET", "GET\x7f", "\xffGET", "PRI", "M-SEARCH", "QUERY"]
BAD_HOSTS = ["evil.com", "evil.com:{port}", "127.0.0.1:{other}", "localhost:{other}", "localhost.evil.com:{port}",
             "127.0.0.1.nip.io", "", " ", "127.0.0.1:{port}@evil.com", "[::1]:{port}", "0:{port}", "2130706433",
             "LOCALHOST:{port}.", "localhost:{port}:{port}", "\x00localhost", "localhost:{port}\x00",
             "xn--lcalhost-9wa:{port}", "127.000.000.001:{port}", "127.1:{port}"]
VALID_PATHS = ["/healthz", "/state.json", "/", "/overlay", "/overlay?theme=light&scale=2", "/state.json?x=%00"]

#: Which statuses each kind may get back. "none" = closed without a reply; "reset" = the connection was reset.
EXPECT = {
    "valid": {200},
    "valid_head": {200},
    "traversal": {404, 400},
    "bad_method": {405, 400},
    "bad_host": {403, 400},
    "missing_host": {403},
    "duplicate_host": {403},
    "http09": {400},
    "huge_line": {414, "reset"},
    "huge_header": {431, "reset"},
    "many_headers": {431, "reset"},
    "content_length": {400, 413},
    "transfer_encoding": {400},
    "garbage_line": {400, 403, 404, 405, 408, 414, 431, 505},
    "binary": {400, 403, 404, 405, 408, 414, 431, 505},
    "header_junk": {200, 400, 403, 404, 405, 413, 431},
    "half_open": {"none", 400, 403, 404, 405, 408},
    "sse_drop": {"none", 200, 503, "reset"},  # 503: slots of dropped streams are freed within ~1 s
}


@dataclass
class Case:
    kind: str
    data: bytes
    half_close: bool = False     # shut our write side after sending
    read: bool = True            # read the reply (False: drop the connection at once)


@dataclass
class Report:
    requests: int = 0
    seconds: float = 0.0
    kinds: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    slowloris: int = 0
    threads_before: int = 0
    threads_after: int = 0
    connections_after: int = 0
    healthy_after: bool = False

    @property
    def ok(self) -> bool:
        return (not self.failures and not self.server_errors and self.healthy_after
                and self.connections_after == 0 and self.threads_after <= self.threads_before)

    def summary(self) -> str:
        rate = self.requests / self.seconds if self.seconds else 0.0
        lines = [f"fuzz: {self.requests} requests in {self.seconds:.1f} s ({rate:.0f}/s), "
                 f"{len(self.failures)} failures, {len(self.server_errors)} server errors logged, "
                 f"{self.slowloris} slowloris connections cut off",
                 f"  threads: {self.threads_before} before, {self.threads_after} after stop(); "
                 f"{self.connections_after} connection threads left before stop(); "
                 f"healthy after: {self.healthy_after}",
                 "  kinds: " + ", ".join(f"{k} {n}" for k, n in sorted(self.kinds.items())),
                 "  outcomes: " + ", ".join(f"{k} {n}" for k, n in sorted(self.outcomes.items(), key=str))]
        lines += [f"  FAIL {f}" for f in self.failures[:20]]
        lines += [f"  SERVER ERROR {e}" for e in self.server_errors[:10]]
        return "\n".join(lines)


def _request(method: str, path: str, host: str | None, headers: list[str] = (), version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {path} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines += list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


def make_case(rng: random.Random, port: int) -> Case:
    """One random abusive (or, one time in eight, valid) request for a server on ``port``."""
    good = rng.choice([f"127.0.0.1:{port}", f"localhost:{port}", "localhost", "127.0.0.1"])
    other = port + 1 if port < 65535 else port - 1
    kind = rng.choice(list(EXPECT) + ["valid"] * 2)
    if kind == "valid":
        return Case(kind, _request("GET", rng.choice(VALID_PATHS), good))
    if kind == "valid_head":
        return Case(kind, _request("HEAD", rng.choice(VALID_PATHS + ["/events"]), good))
    if kind == "traversal":
        path = rng.choice(TRAVERSAL)
        return Case(kind, _request(rng.choice(["GET", "HEAD"]), path if " " not in path else path.replace(" ", ""),
                                   good))
    if kind == "bad_method":
        method = rng.choice(METHODS + ["".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ_-")
                                               for _ in range(rng.randint(1, 40)))])
        return Case(kind, _request(method, rng.choice(VALID_PATHS + TRAVERSAL[:3]), good))
    if kind == "bad_host":
        host = rng.choice(BAD_HOSTS).format(port=port, other=other)
        return Case(kind, _request("GET", rng.choice(VALID_PATHS + ["/events"]), host))
    if kind == "missing_host":
        return Case(kind, _request("GET", rng.choice(VALID_PATHS + ["/events"]), None,
                                   version=rng.choice(["HTTP/1.0", "HTTP/1.1"])))
    if kind == "duplicate_host":
        return Case(kind, _request("GET", "/state.json", good, [f"Host: {rng.choice(BAD_HOSTS).format(port=port, other=other)}"]))
    if kind == "http09":
        return Case(kind, f"{rng.choice(['GET', 'POST', 'HEAD'])} {rng.choice(VALID_PATHS)}\r\n".encode())
    if kind == "huge_line":
        return Case(kind, _request("GET", "/" + "a" * rng.randint(MAX_REQUEST_LINE, MAX_REQUEST_LINE * 4), good))
    if kind == "huge_header":
        size = rng.randint(MAX_HEADER_LINE, MAX_HEADER_LINE * 8)
        return Case(kind, _request("GET", "/healthz", good, [f"X-Big: {'b' * size}"]))
    if kind == "many_headers":
        if rng.random() < 0.5:
            headers = [f"X-{i}: {i}" for i in range(MAX_HEADERS + 1 + rng.randint(0, 500))]
        else:  # under the count limit, over the byte limit
            headers = [f"X-{i}: {'c' * (MAX_HEADER_LINE - 64)}" for i in range(MAX_HEAD_BYTES // (MAX_HEADER_LINE - 64) + 1)]
        return Case(kind, _request("GET", "/healthz", good, headers))
    if kind == "content_length":
        value = rng.choice(["99999999999999999999999", "-1", "abc", "1e9", "0x10", " ", "5, 5", "+5",
                            str(rng.randint(1, 10 ** 12)), "18446744073709551616"])
        extra = [f"Content-Length: {value}"] + (["Content-Length: 0"] if rng.random() < 0.2 else [])
        return Case(kind, _request("GET", rng.choice(VALID_PATHS), good, extra) + b"x" * rng.randint(0, 100))
    if kind == "transfer_encoding":
        te = rng.choice(["chunked", "gzip, chunked", "identity", "xchunked", ""])
        return Case(kind, _request("GET", "/healthz", good, [f"Transfer-Encoding: {te}"]) + b"5\r\nhello\r\n0\r\n\r\n")
    if kind == "garbage_line":
        alphabet = "GETPOST /HTP1.0?%&=\t:" + "".join(map(chr, range(33, 127)))
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 300)))
        return Case(kind, line.encode("latin-1") + b"\r\n" + rng.choice([b"", f"Host: {good}\r\n".encode()]) + b"\r\n")
    if kind == "binary":
        junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2048)))
        if not junk.strip(b"\r\n"):
            junk = b"\x00" + junk
        return Case(kind, junk + b"\r\n\r\n")
    if kind == "header_junk":
        junk = rng.choice([b"NoColonHere", b": empty-name", b" folded continuation", b"X-\x00: \x01\x02",
                           bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200))).replace(b"\n", b" "),
                           b"Host:", b"X: " + b"\xff" * 50])
        return Case(kind, f"GET /healthz HTTP/1.1\r\nHost: {good}\r\n".encode() + junk + b"\r\n\r\n")
    if kind == "half_open":
        full = _request("GET", rng.choice(VALID_PATHS), good)
        return Case(kind, full[:rng.randint(0, len(full) - 2)], half_close=True)
    if kind == "sse_drop":
        return Case(kind, _request("GET", "/events", good), read=rng.random() < 0.3)
    raise AssertionError(kind)


def _exchange(case: Case, port: int, timeout: float) -> tuple[object, bytes]:
    """Send a case; return (outcome, body) — outcome is a status int, "none", "reset" or "timeout"."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(case.data)
            if case.half_close:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed (e.g. 431 mid-upload); read what it sent
        if not case.read:
            return "none", b""
        chunks: list[bytes] = []
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                return "timeout", b"".join(chunks)
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                if not chunks:
                    return "reset", b""
                break
            except (TimeoutError, socket.timeout):
                return "timeout", b"".join(chunks)
            if not chunk:
                break
            chunks.append(chunk)
            if case.kind in ("sse_drop", "valid_head") and b"\r\n\r\n" in b"".join(chunks):
                break  # a stream never ends by itself; HEAD /events either
        raw = b"".join(chunks)
    finally:
        s.close()
    if not raw:
        return "none", b""
    if not raw.startswith(b"HTTP/1.0 ") or b"\r\n\r\n" not in raw:
        return "malformed", raw
    head, _, body = raw.partition(b"\r\n\r\n")
    try:
        status = int(head[9:12])
    except ValueError:
        return "malformed", raw
    for required in (b"\r\nCache-Control: no-store", b"\r\nX-Content-Type-Options: nosniff"):
        if required not in head:
            return "no-security-headers", raw
    return status, body


def _check(case: Case, outcome: object, body: bytes, expected_state: bytes) -> str | None:
    if outcome not in EXPECT[case.kind]:
        return f"{case.kind}: got {outcome!r}, expected one of {sorted(EXPECT[case.kind], key=str)}; " \
               f"sent {case.data[:120]!r}; reply {body[:120]!r}"
    if case.kind == "valid":
        first = case.data.split(b" ", 2)[1]
        if first.startswith(b"/state.json") and body != expected_state:
            return f"/state.json answered {body[:120]!r}, not the published state"
        if first.startswith(b"/healthz") and json.loads(body).get("status") != "ok":
            return f"/healthz answered {body[:120]!r}"
        if first in (b"/", b"/overlay") and b"EventSource" not in body:
            return "the page was not served"
    if case.kind == "valid_head" and body and not case.data.startswith(b"HEAD /events"):
        return f"HEAD answered with a body: {body[:80]!r}"
    return None


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


def _slowloris(port: int, stop: threading.Event, report: Report, lock: threading.Lock) -> None:
    """One connection that trickles a request head a byte at a time; it must be cut off with 408."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError as e:
        with lock:
            report.failures.append(f"slowloris: cannot connect: {e!r}")
        return
    try:
        t0 = time.monotonic()
        payload = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"z" * 10_000
        got = b""
        s.settimeout(0.05)
        for byte in payload:
            if stop.is_set() or time.monotonic() - t0 > 8:
                break
            try:
                s.sendall(bytes([byte]))
            except OSError:
                break
            try:
                chunk = s.recv(4096)
                got += chunk
                if not chunk:
                    break
            except (TimeoutError, socket.timeout):
                pass
            except OSError:
                break
        s.settimeout(2)
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except OSError:
            pass
        with lock:
            report.slowloris += 1
            if not got.startswith(b"HTTP/1.0 408 "):
                report.failures.append(f"slowloris: not cut off with 408 after {time.monotonic() - t0:.1f} s: "
                                       f"{got[:80]!r}")
    finally:
        s.close()


def run_fuzz(requests: int = 3200, seconds: float = 30.0, workers: int = 4, seed: int = 20261124,
             slowloris: int = 4, request_timeout_s: float = 1.0, settle_s: float = 10.0) -> Report:
    """Fuzz a fresh server on a free loopback port with at most ``requests`` cases within ``seconds``.

    ``workers`` client threads; ``slowloris`` trickling connections in a side thread; the server's
    ``request_timeout_s`` (seconds) bounds how long those may hold a thread; ``settle_s`` is how long the
    server's threads get to wind down afterwards."""
    report = Report()
    lock = threading.Lock()
    counter = iter(range(requests))
    errors = _ErrorLog()
    logger = logging.getLogger("obs_mindflow.overlay.server")
    logger.addHandler(errors)
    report.threads_before = threading.active_count()
    server = OverlayServer(port=0, max_clients=8, max_connections=64, request_timeout_s=request_timeout_s,
                           heartbeat_s=1.0)
    server.start()
    try:
        server.publish(STATE)
        expected_state = json.dumps(STATE, ensure_ascii=False, separators=(",", ":")).encode()
        port = server.port
        t0 = time.monotonic()
        deadline = t0 + seconds
        stop = threading.Event()

        def worker(index: int) -> None:
            rng = random.Random(seed * 1000 + index)
            while not stop.is_set() and time.monotonic() < deadline:
                with lock:
                    if next(counter, None) is None:
                        return
                case = make_case(rng, port)
                try:
                    outcome, body = _exchange(case, port, timeout=max(5.0, request_timeout_s * 3))
                except OSError as e:
                    outcome, body = f"connect: {e!r}", b""
                problem = _check(case, outcome, body, expected_state) if isinstance(outcome, int) or \
                    outcome in ("none", "reset") else f"{case.kind}: {outcome}; sent {case.data[:120]!r}"
                with lock:
                    report.requests += 1
                    report.kinds[case.kind] += 1
                    report.outcomes[outcome if isinstance(outcome, (int, str)) else repr(outcome)] += 1
                    if problem:
                        report.failures.append(problem)

        threads = [threading.Thread(target=worker, args=(i,), name=f"fuzz-{i}") for i in range(workers)]
        threads += [threading.Thread(target=_slowloris, args=(port, stop, report, lock), name=f"fuzz-slow-{i}")
                    for i in range(slowloris)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()) + 15)
        stop.set()
        report.seconds = time.monotonic() - t0

        # still healthy and correct afterwards
        health = _exchange(Case("valid", _request("GET", "/healthz", f"127.0.0.1:{port}")), port, 5)
        state = _exchange(Case("valid", _request("GET", "/state.json", f"localhost:{port}")), port, 5)
        report.healthy_after = (health[0] == 200 and json.loads(health[1])["status"] == "ok"
                                and state[0] == 200 and state[1] == expected_state)
        # connection threads wind down by themselves (each is bounded by request_timeout_s / io_timeout_s)
        settle = time.monotonic() + settle_s
        while time.monotonic() < settle and server._httpd.threads:
            time.sleep(0.05)
        report.connections_after = len(server._httpd.threads)
    finally:
        server.stop()
        logger.removeHandler(errors)
    settle = time.monotonic() + settle_s
    while time.monotonic() < settle and threading.active_count() > report.threads_before:
        time.sleep(0.05)
    report.threads_after = threading.active_count()
    report.server_errors = errors.records
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="most cases to send (default 20000)")
    parser.add_argument("--seconds", type=float, default=300.0, help="time budget in seconds (default 300)")
    parser.add_argument("--workers", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--slowloris", type=int, default=16, help="trickling connections (default 16)")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="random seed (default: the time)")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.seconds <= 0 or args.workers < 1:
        parser.error("--requests, --seconds and --workers must be positive")
    print(f"fuzzing the overlay server: up to {args.requests} requests in {args.seconds:g} s, "
          f"{args.workers} workers, seed {args.seed}", flush=True)
    report = run_fuzz(args.requests, args.seconds, args.workers, args.seed, args.slowloris)
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
