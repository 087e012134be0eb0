"""Fuzz the overlay server: thousands of malformed requests over raw sockets (``tools/fuzz_overlay.py``), then
it must still answer correctly and leave no thread behind. Plus a hypothesis property over request paths."""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
import urllib.parse

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from obs_mindflow.overlay.server import OverlayServer
from tools.fuzz_overlay import EXPECT, make_case, run_fuzz

REQUESTS = 4000
BUDGET_S = 30.0


def test_thousands_of_malformed_requests_leave_the_server_healthy():
    seed = int(os.environ.get("MINDFLOW_FUZZ_SEED", "20261124"))
    before = threading.active_count()
    report = run_fuzz(requests=REQUESTS, seconds=BUDGET_S, workers=4, seed=seed, slowloris=4)
    print(f"\n(seed {seed})\n" + report.summary())
    assert not report.failures, report.summary()
    assert not report.server_errors, report.summary()
    assert report.requests == REQUESTS, f"only {report.requests} of {REQUESTS} requests in {BUDGET_S} s"
    assert report.seconds <= BUDGET_S + 5
    assert set(report.kinds) == set(EXPECT), f"kinds never generated: {set(EXPECT) - set(report.kinds)}"
    assert report.slowloris == 4
    assert report.healthy_after, "the server stopped answering /healthz or /state.json correctly"
    assert report.connections_after == 0, "connection threads were still running after the fuzz"
    assert threading.active_count() <= before, "threads leaked"


@pytest.mark.parametrize("seed", range(3))
def test_generated_cases_are_reproducible_from_the_seed(seed):
    rng_a, rng_b, rng_c = random.Random(seed), random.Random(seed), random.Random(seed + 100)
    a = [make_case(rng_a, 8765) for _ in range(50)]
    assert a == [make_case(rng_b, 8765) for _ in range(50)]
    assert len({c.data for c in a}) > 40, "the generator repeats itself"
    assert a != [make_case(rng_c, 8765) for _ in range(50)]


@pytest.fixture(scope="module")
def server():
    with OverlayServer(port=0) as srv:
        srv.publish({"emotion": "happy"})
        yield srv


def _get(port: int, target: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: localhost:%d\r\n\r\n" % port)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


ROUTES = {"/", "/overlay", "/state.json", "/healthz"}


@settings(max_examples=300, deadline=None, database=None)
@given(path=st.text(min_size=0, max_size=80).map(lambda t: "/" + urllib.parse.quote(t, safe="/.%?&=;~")),
       dots=st.sampled_from(["", "/..", "/../..", "/%2e%2e", "/./", "//"]))
def test_any_path_is_a_known_route_or_404(server, path, dots):
    target = (dots + path) if dots else path
    reply = _get(server.port, target.encode("ascii"))
    status = int(reply[9:12])
    route = target.split("?", 1)[0]  # exact match: "//overlay" or "/./overlay" is not a route
    if route in ROUTES:
        assert status == 200, (target, reply[:200])
    else:
        assert status == 404, (target, reply[:200])
        assert b"root:" not in reply and b"<html" not in reply


@pytest.fixture(scope="module")
def impatient_server():
    with OverlayServer(port=0, request_timeout_s=0.3) as srv:
        srv.publish({"emotion": "secret-state"})
        yield srv


@settings(max_examples=300, deadline=None, database=None)
@given(junk=st.binary(min_size=1, max_size=600))
def test_bytes_without_a_host_header_never_get_data(impatient_server, junk):
    assume(b"host" not in junk.lower())  # without Host, nothing may be served, whatever else arrives
    port = impatient_server.port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(junk + b"\r\n\r\n")
        reply = b""
        t0 = time.monotonic()
        try:
            while chunk := s.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
        assert time.monotonic() - t0 < 3
    assert b"secret-state" not in reply
    if reply:
        assert reply[:10] in (b"HTTP/1.0 4", b"HTTP/1.0 5"), reply[:100]
    assert json.loads(_get(port, b"/healthz").split(b"\r\n\r\n", 1)[1])["status"] == "ok"
