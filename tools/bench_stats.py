"""Benchmark: session statistics and the session recorder over a long simulated session.

A 12-hour session at 30 results/s (≈1.3 M results: label runs of a few seconds, short face-loss flickers, longer
no-face gaps, analysis hiccups and one 10-minute pause) goes through, each in its own process so RSS figures are
independent:

- ``generator``  — the simulated results only (the baseline every peer pays);
- ``naive-list`` — the naive peer: appending every ``(timestamp, emotion)`` to a list, as a per-result log would;
- ``stats``      — ``SessionStats.update``;
- ``recorder``   — ``SessionRecorder.add`` with checkpoints every 60 s of session time into a temporary folder.

Each peer runs three times: plain, for the RSS growth (peak resident size of the process minus its size before
the session); timing every call (``time.perf_counter_ns``; the timer's own cost is measured and shown); and under
``tracemalloc`` for the peak of Python allocations. For the recorder it also times forced checkpoints of the final 12-hour
state (JSON + fsync + ``os.replace``) and the state capture done on the caller's thread.

The recorder is fed a light stand-in with the three attributes it reads (``timestamp``, ``emotion``, ``labels``);
building 1.3 M real ``AnalysisResult`` objects would measure numpy, not the recorder.

Usage: ``python tools/bench_stats.py [--hours 12] [--rate 30] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from obs_mindflow.engine.reports.recorder import SessionRecorder  # noqa: E402
from obs_mindflow.engine.session.stats import SessionStats  # noqa: E402

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NEGATIVE = ("angry", "disgust", "fear", "sad")
WEIGHTS = np.array([4, 2, 3, 25, 8, 8, 50], float)
PEERS = ("generator", "naive-list", "stats", "recorder")


class Card:
    name = "bench"
    labels = LABELS
    negative_labels = NEGATIVE


class Result:
    """What ``SessionRecorder.add`` reads from an ``AnalysisResult``."""

    __slots__ = ("timestamp", "emotion", "labels")

    def __init__(self, timestamp: float, emotion: str) -> None:
        self.timestamp = timestamp
        self.emotion = emotion
        self.labels = LABELS


def simulate(hours: float, rate: float, seed: int = 7) -> Iterator[tuple[float, str]]:
    """``(timestamp, emotion)`` on a monotonic-like clock, chunk by chunk (flat memory)."""
    rng = np.random.default_rng(seed)
    end = hours * 3600.0
    pause_at = end * 0.6
    t = 12345.678
    t_session = 0.0
    paused = False
    p = WEIGHTS / WEIGHTS.sum()
    while t_session < end:
        r = rng.random()
        if r < 0.03:
            label, dur = "", rng.uniform(5, 90)             # the streamer leaves the frame
        elif r < 0.15:
            label, dur = "", rng.uniform(0.2, 1.0)          # a detector flicker
        else:
            label, dur = LABELS[rng.choice(len(LABELS), p=p)], rng.exponential(6.0) + 0.3
        n = max(1, int(dur * rate))
        steps = rng.uniform(0.8, 1.2, n) / rate
        hiccups = rng.random(n) < 2e-4
        steps[hiccups] += rng.uniform(0.5, 4.0, int(hiccups.sum()))   # OBS hiccups, some beyond the 2 s cap
        if not paused and t_session >= pause_at:
            steps[0] += 600.0                                          # analysis paused for 10 minutes
            paused = True
        times = t + np.cumsum(steps) - steps[0]
        for ts in times.tolist():
            yield ts, label
        t = float(times[-1] + steps[-1])
        t_session = t - 12345.678


def _rss_kib() -> int:
    """Current resident set size in KiB (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def _peak_rss_kib() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def _make_peer(name: str, tmp: str) -> tuple[Callable[[float, str], Any], Callable[[], dict[str, Any]]]:
    if name == "generator":
        return (lambda t, e: None), dict
    if name == "naive-list":
        log: list[tuple[float, str]] = []
        return (lambda t, e: log.append((t, e))), (lambda: {"kept": len(log)})
    if name == "stats":
        s = SessionStats(LABELS, NEGATIVE)
        return s.update, (lambda: {"bins": len(s.snapshot().timeline), "bin_seconds": s.snapshot().bin_seconds})
    if name == "recorder":
        rec = SessionRecorder(tmp, Card(), checkpoint_every_s=60.0)

        def add(t: float, e: str) -> Any:
            return rec.add(Result(t, e))

        def done() -> dict[str, Any]:
            rec.flush(60)
            return {"checkpoints_written": rec.checkpoints_written, "bg_checkpoint_max_ms": rec.max_checkpoint_ms,
                    "recorder": rec}
        return add, done
    raise SystemExit(f"unknown peer {name!r}; one of {PEERS}")


def run_peer(name: str, hours: float, rate: float) -> dict[str, Any]:
    out: dict[str, Any] = {"peer": name}
    # pass 1: RSS growth of a plain run (first, in a fresh process: the peak resident size only goes up)
    with tempfile.TemporaryDirectory() as tmp:
        fn, done = _make_peer(name, tmp)
        rss0 = _rss_kib()
        for t, e in simulate(hours, rate):
            fn(t, e)
        done()
        out["rss_growth_mib"] = (_peak_rss_kib() - rss0) / 1024
        del fn, done
    # pass 2: per-call timing
    with tempfile.TemporaryDirectory() as tmp:
        fn, done = _make_peer(name, tmp)
        n = int(hours * 3600 * rate * 1.02) + 1000
        ns = np.zeros(n, np.int64)
        clock = time.perf_counter_ns
        i = 0
        t_all = time.perf_counter()
        for t, e in simulate(hours, rate):
            a = clock()
            fn(t, e)
            ns[i] = clock() - a
            i += 1
        wall = time.perf_counter() - t_all
        extra = done()
        rec = extra.pop("recorder", None)
        out.update(extra)
        if rec is not None:
            snap = rec.snapshot()
            out["session_hours"] = snap.duration_s / 3600
            times = []
            for _ in range(20):
                a = time.perf_counter()
                rec.checkpoint()
                times.append((time.perf_counter() - a) * 1e3)
            caps = []
            for _ in range(20):
                a = time.perf_counter()
                with rec._lock:
                    rec._capture_locked()
                caps.append((time.perf_counter() - a) * 1e3)
            out["state_kib"] = (rec.folder / "state.json").stat().st_size / 1024
            out["checkpoint_ms"] = {"median": statistics.median(times), "p90": float(np.percentile(times, 90)),
                                    "max": max(times)}
            out["capture_ms_median"] = statistics.median(caps)
            fin = time.perf_counter()
            res = rec.finish()
            out["finish_ms"] = (time.perf_counter() - fin) * 1e3
            out["finish_ok"] = res.ok
            out["report_kib"] = {p.name: p.stat().st_size / 1024 for p in res.folder.iterdir()}
        ns = ns[:i]
        # the timer's own cost, to read the figures honestly
        k = np.zeros(200_000, np.int64)
        for j in range(len(k)):
            a = clock()
            k[j] = clock() - a
        out.update(updates=i, wall_s=wall, mean_us=float(ns.mean() / 1e3), p50_us=float(np.percentile(ns, 50) / 1e3),
                   p99_us=float(np.percentile(ns, 99) / 1e3), max_ms=float(ns.max() / 1e6),
                   timer_us=float(np.median(k) / 1e3))
        del ns, fn, done, rec
    # pass 3: tracemalloc peak (slower; Python allocations only)
    with tempfile.TemporaryDirectory() as tmp:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        fn, done = _make_peer(name, tmp)
        for t, e in simulate(hours, rate):
            fn(t, e)
        done()
        cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["tracemalloc_peak_mib"] = (peak - base) / 2 ** 20
        out["tracemalloc_end_mib"] = (cur - base) / 2 ** 20
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=12.0, help="simulated session length in hours (default 12)")
    ap.add_argument("--rate", type=float, default=30.0, help="results per second (default 30)")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    ap.add_argument("--peer", choices=PEERS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer:
        print(json.dumps(run_peer(args.peer, args.hours, args.rate)))
        return
    results = []
    for peer in PEERS:
        print(f"running {peer} …", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, __file__, "--peer", peer, "--hours", str(args.hours),
                               "--rate", str(args.rate)], capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"peer {peer} failed:\n{proc.stderr}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    base = results[0]
    print(f"\nSimulated session: {args.hours:g} h at {args.rate:g} results/s = {base['updates']:,} results "
          f"(Python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs)\n")
    head = (f"{'peer':<12} {'µs/call mean':>12} {'p50':>7} {'p99':>7} {'max ms':>8} "
            f"{'tracemalloc peak':>17} {'held at end':>12} {'RSS growth':>11}")
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['peer']:<12} {r['mean_us']:>12.2f} {r['p50_us']:>7.2f} {r['p99_us']:>7.2f} {r['max_ms']:>8.2f} "
              f"{r['tracemalloc_peak_mib']:>13.2f} MiB {r['tracemalloc_end_mib']:>8.2f} MiB "
              f"{r['rss_growth_mib']:>7.1f} MiB")
    print(f"\n(per-call times include the timer itself: ≈{base['timer_us']:.2f} µs; the generator row is the cost of "
          f"the simulation loop with a no-op consumer)")
    st = next(r for r in results if r["peer"] == "stats")
    print(f"stats: {st['bins']} timeline bins of {st['bin_seconds']:g} s")
    rec = next(r for r in results if r["peer"] == "recorder")
    cp = rec["checkpoint_ms"]
    print(f"recorder: {rec['checkpoints_written']} background checkpoints written during the run "
          f"(slowest {rec['bg_checkpoint_max_ms']:.1f} ms, off the caller's thread)")
    print(f"checkpoint of the final {rec['session_hours']:.1f}-hour state ({rec['state_kib']:.0f} KiB state.json), "
          f"forced, JSON + fsync + os.replace: median {cp['median']:.1f} ms, p90 {cp['p90']:.1f} ms, "
          f"max {cp['max']:.1f} ms; capture on the caller's thread: {rec['capture_ms_median']:.2f} ms")
    print(f"finish(): {rec['finish_ms']:.0f} ms, ok={rec['finish_ok']}; files: "
          + ", ".join(f"{k} {v:.0f} KiB" for k, v in sorted(rec["report_kib"].items())))
    if args.json:
        args.json.write_text(json.dumps({"hours": args.hours, "rate": args.rate, "peers": results}, indent=1))


if __name__ == "__main__":
    main()
