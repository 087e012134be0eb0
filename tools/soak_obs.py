"""Hours in OBS: a real OBS (headless, Xvfb, software GL) with MindFlow analysing a looping talking-face clip as the
webcam while recording, for N minutes, sampled every 10 s — beside the same OBS without MindFlow (the control).

    .venv/bin/python -m tools.soak_obs [--minutes 60 | --short] [--rate 5] [--every 10] [--stream]
                                       [--control parallel|serial|twin|none] [--size 1280x720] [--canvas 1280x720]
                                       [--out DIR] [--check]

Each sample (both runs): OBS's resident memory, CPU (% of one core over the interval), thread count and open file
descriptors (``/proc/<obs pid>``); OBS's rendered / lagged frames and its video output's encoded / skipped frames
(the test hooks' ``sample_file``: OBS's own counters read inside OBS); the machine's load average. With MindFlow
also: MindFlow's Python threads (named ``mindflow-*``) and their CPU (``/proc/<pid>/task/<tid>``), the files
MindFlow holds open (descriptors pointing into the report folder, MindFlow's code, models and packages, or
onnxruntime's cache in the home folder), and the analysis rate (its analyser's counter per interval).

``--control parallel`` (default) runs MindFlow's OBS and the control at the same time on two Xvfb displays, so both
see the same machine load (a shared machine's load changes over an hour); ``serial`` runs the control afterwards.
``--control twin`` runs two controls side by side, neither with MindFlow (``twin`` and ``without``): their
difference is the run-to-run spread that a difference with MindFlow is judged against (``figures.spread``).

At the end both OBS are closed as File > Exit does; checked: exit status 0 and 0 leaks in OBS's log, no Python
traceback (OBS 32's own exit fault, docs/obs32-shutdown.md, is reported as OBS's), and that MindFlow's report covers
the whole session — ``summary.json``'s duration against the time recorded, face + uncertain + no-face +
not-analysed time adding up to it, ``timeline.csv``'s bins back to back without gaps from 0 to the end, and the
session's row in ``history.sqlite``. ``--check`` makes a failed check the exit status (CI runs ``--short --check``
on OBS 29). An OBS that exits before the end (a crash) ends the soak there (``ended_early``): its exit fault and the
native stacks of its core dump (``obs-crash-stacks.txt`` in its folder, read with gdb by the e2e harness) are in
``soak.json``, and it is a failed check.

Output under ``--out`` (default ``out/soak/<date>``): ``soak.json`` (settings, machine, every sample, the checks and
the figures: memory growth per hour by least squares after the first 2 minutes, lagged and skipped frames, mean
CPU, the threads' and files' range) and ``soak.html`` (a self-contained page: one SVG chart per figure over time,
with and without MindFlow). The machine may be shared: the load average is in every sample — say so when reporting.
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import os
import sqlite3
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.obs_harness import (SAMPLE, TEXT, WEBCAM, ObsConfig, ObsProcess, exit_faults,  # noqa: E402
                                   obs32_exit_fault, obs_available)
from tools.bench_obs import COST_RE, make_clip, unwrap  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
WARMUP_S = 120.0          # memory growth is fitted after this (model, libraries and caches loaded)
RUNS = ("with", "without")
TWINS = ("twin", "without")     # --control twin: two OBS without MindFlow


# ==================================================================================================================
# /proc readers (Linux)
# ==================================================================================================================

def _cpu_ticks(stat_path: Path) -> int | None:
    """utime + stime (clock ticks) from a ``/proc/.../stat`` file; ``None`` when the process or thread is gone."""
    try:
        stat = stat_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "Threads"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def _fds(pid: int, roots: tuple[Path, ...]) -> tuple[int, int]:
    """OBS's open descriptors, and those pointing into ``roots`` (MindFlow's own folders)."""
    total = mine = 0
    try:
        entries = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0, 0
    for fd in entries:
        total += 1
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if any(target.startswith(str(r) + os.sep) for r in roots):
            mine += 1
    return total, mine


def _last_line(path: Path) -> dict | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


# ==================================================================================================================
# One OBS run, sampled
# ==================================================================================================================

class SoakRun:
    """One OBS (with or without MindFlow) started through the e2e harness, and its samples."""

    def __init__(self, name: str, args, clip: Path, workdir: Path, stream_url: str | None) -> None:
        self.name = name
        self.workdir = workdir
        self.reports = workdir / "reports"
        self.sample_file = workdir / "hooks-samples.jsonl"
        settings = None
        if name == "with":
            settings = {"video_source": WEBCAM, "text_source": TEXT, "report_dir": str(self.reports),
                        "rate_hz": args.rate, "min_report_s": 0}
        canvas = tuple(int(x) for x in args.canvas.lower().split("x"))
        cfg = ObsConfig(workdir=workdir, script_settings=settings, video=clip, base=canvas,
                        hooks={"sample_file": str(self.sample_file), "sample_every_s": args.every},
                        stream_server=stream_url, shared_webcam=False)   # OBS 32's exit fault needs it shared
        self.proc = ObsProcess(cfg, start_streaming=stream_url is not None, nice=args.nice)
        # MindFlow's files: its report folder, its code, models and packages, onnxruntime's cache in the home folder
        # (not the clip, the recording or the hooks' files, which the control holds too)
        self.mindflow_roots = (self.reports, ROOT / "models", ROOT / "obs_mindflow", ROOT / ".deps",
                               Path.home() / ".cache" / "Microsoft")
        self.samples: list[dict] = []
        self.pid: int | None = None
        self._last: tuple[float, int] | None = None        # (time, OBS's cpu ticks)
        self._threads: dict[int, int] = {}                  # MindFlow thread id -> its cpu ticks at the last sample
        self._mf_ticks = 0
        self._last_analysed: tuple[float, int] | None = None
        self.t_recording: float | None = None
        self.result = None

    def start(self) -> None:
        self.proc.start()

    def wait_ready(self) -> None:
        if not self.proc.wait_for(r"==== Recording Start", 180):
            raise SystemExit(f"{self.name}: OBS did not start recording; see {self.proc.log_path()}")
        if self.name == "with" and not self.proc.wait_for(r"MindFlow: first face in this session", 120):
            raise SystemExit(f"{self.name}: MindFlow analysed no face; see {self.proc.log_path()}")
        self.t_recording = time.monotonic()
        self.pid = self.proc._wait_obs_pid()
        if self.pid is None:
            raise SystemExit(f"{self.name}: OBS's pid not found")

    def sample(self, t0: float) -> None:
        now = time.monotonic()
        pid = self.pid
        assert pid is not None
        ticks = _cpu_ticks(Path(f"/proc/{pid}/stat"))
        st = _status(pid)
        fds, mine = _fds(pid, self.mindflow_roots)
        hooks = _last_line(self.sample_file) or {}
        row = {"t_s": round(now - t0, 1), "load1": round(os.getloadavg()[0], 2),
               "rss_mb": round(st.get("VmRSS", 0) / 1024, 1), "threads": st.get("Threads"), "fds": fds,
               "lagged": hooks.get("lagged_frames"), "rendered": hooks.get("total_frames"),
               "skipped": hooks.get("skipped_frames"), "encoded": hooks.get("encoded_frames"),
               "hooks_age_s": round(now - hooks["t"], 1) if "t" in hooks else None}
        if self._last is not None and ticks is not None:
            row["cpu_pct"] = round(100.0 * (ticks - self._last[1]) / TICK / (now - self._last[0]), 1)
        if ticks is not None:
            self._last = (now, ticks)
        if self.name == "with":
            mf = [(n, tid) for n, tid in hooks.get("threads", []) if str(n).startswith("mindflow-")]
            row["mindflow_threads"] = len(mf)
            row["mindflow_thread_names"] = sorted(n for n, _ in mf)
            row["mindflow_files"] = mine
            for _, tid in mf:
                t = _cpu_ticks(Path(f"/proc/{pid}/task/{tid}/stat"))
                if t is None:
                    continue
                self._mf_ticks += t - self._threads.get(tid, t)
                self._threads[tid] = t
            row["mindflow_cpu_ticks"] = self._mf_ticks
            if len(self.samples):
                prev = self.samples[-1]
                dt = row["t_s"] - prev["t_s"]
                row["mindflow_cpu_pct"] = round(100.0 * (self._mf_ticks - prev["mindflow_cpu_ticks"]) / TICK / dt, 2)
            if "analysed" in hooks:
                if self._last_analysed is not None and hooks["t"] > self._last_analysed[0]:
                    row["rate_hz"] = round((hooks["analysed"] - self._last_analysed[1])
                                           / (hooks["t"] - self._last_analysed[0]), 2)
                self._last_analysed = (hooks["t"], hooks["analysed"])
                row["analysed"] = hooks["analysed"]
                row["dropped"] = hooks.get("dropped")
        self.samples.append(row)

    def stop(self) -> dict:
        self.result = self.proc.stop(timeout=90)
        res = self.result
        lagged, skipped = res.lagged_frames(), res.skipped_frames()
        cost = COST_RE.search(unwrap(res.log))
        capture = ({"frames": int(cost.group(3)), "median_ms": float(cost.group(4)), "p99_ms": float(cost.group(5))}
                   if cost else None)
        faults = exit_faults(res)
        return {"capture_cost": capture, "exit_status": res.returncode, "leaks": res.leaks, "faults": faults,
                "obs_own_fault": obs32_exit_fault(res, faults) if faults else "",
                "traceback": "Traceback" in res.log, "log": str(self.proc.log_path()),
                "diagnostics": res.diagnostics,      # a crash's native stacks from its core dump (the harness, gdb)
                "log_lagged": lagged[-1][0] if lagged else 0, "log_skipped": skipped[-1][0] if skipped else None}


# ==================================================================================================================
# The report covers the whole session
# ==================================================================================================================

def check_report(reports: Path, recorded_s: float) -> dict:
    """MindFlow's report of the soak's one session: its duration against the time recorded, its times adding up,
    the timeline's bins back to back, its history row. Returns the figures and a list of ``problems``."""
    problems: list[str] = []
    folders = sorted(p for p in reports.iterdir() if p.is_dir()) if reports.is_dir() else []
    if len(folders) != 1:
        return {"problems": [f"expected one session folder in {reports}, found {[p.name for p in folders]}"]}
    folder = folders[0]
    out: dict = {"folder": str(folder)}
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        rows = list(csv.DictReader((folder / "timeline.csv").open(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        return {"folder": str(folder), "problems": [f"report files unreadable: {exc}"]}
    if (folder / "UNFINISHED").exists():
        problems.append("the folder is still marked UNFINISHED")
    st = summary["stats"]
    dur = st["duration_s"]
    parts = st["face_s"] + st["uncertain_s"] + st["no_face_s"] + st["not_analysed_s"]
    out.update(duration_s=round(dur, 1), recorded_s=round(recorded_s, 1), face_s=round(st["face_s"], 1),
               uncertain_s=round(st["uncertain_s"], 1), no_face_s=round(st["no_face_s"], 1),
               not_analysed_s=round(st["not_analysed_s"], 1), timeline_rows=len(rows))
    # The session starts at the first analysed frame (after OBS's start) and ends as OBS exits: it may be a few
    # seconds shorter or longer than the sampled recording time, never much.
    if not recorded_s - 30.0 <= dur <= recorded_s + 60.0:
        problems.append(f"the report's duration {dur:.0f} s does not match the {recorded_s:.0f} s recorded")
    if abs(parts - dur) > 0.01 * max(dur, 1.0):
        problems.append(f"face + uncertain + no-face + not-analysed = {parts:.1f} s, not the duration {dur:.1f} s")
    end = 0.0
    for i, r in enumerate(rows):
        start, width = float(r["seconds_since_start"]), float(r["bin_seconds"])
        if abs(start - end) > 0.01:
            problems.append(f"timeline row {i} starts at {start:.2f} s, the row before ended at {end:.2f} s")
            break
        end = start + width
    if abs(end - dur) > 0.01 + (float(rows[-1]["bin_seconds"]) if rows else 0):
        problems.append(f"the timeline ends at {end:.1f} s, the session at {dur:.1f} s")
    out["timeline_end_s"] = round(end, 1)
    try:
        with sqlite3.connect(reports / "history.sqlite") as db:
            hist = db.execute("SELECT duration_s, recovered FROM sessions WHERE report = ?",
                              (folder.name,)).fetchall()
    except sqlite3.Error as exc:
        hist = []
        problems.append(f"history unreadable: {exc}")
    if len(hist) != 1 or abs(hist[0][0] - dur) > 1.0:
        problems.append(f"history row for {folder.name}: {hist}")
    out["history_row"] = bool(hist)
    out["problems"] = problems
    return out


# ==================================================================================================================
# Figures and the page
# ==================================================================================================================

def _slope_per_hour(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 3:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return None if den == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 3600.0


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return round(sum(vals) / len(vals), 2) if vals else None


def figures(samples: list[dict]) -> dict:
    """One run's figures: memory growth per hour (least squares after the warm-up; the whole run when it is
    shorter), start → end memory, lagged and skipped frames over the run, mean CPU, the threads' and files' range."""
    samples = [s for s in samples if s.get("threads") is not None]     # a process gone between check and sample
    if not samples:
        return {}
    late = [s for s in samples if s["t_s"] >= WARMUP_S] or samples
    first, last = samples[0], samples[-1]
    out = {"minutes": round(last["t_s"] / 60, 1), "rss_mb_start": first["rss_mb"], "rss_mb_end": last["rss_mb"],
           "rss_growth_mb_per_h": _round(_slope_per_hour([s["t_s"] for s in late], [s["rss_mb"] for s in late])),
           "cpu_pct_mean": _mean([s.get("cpu_pct") for s in samples]),
           "threads": [min(s["threads"] for s in late), max(s["threads"] for s in late)],
           "fds": [min(s["fds"] for s in late), max(s["fds"] for s in late)],
           "load1_mean": _mean([s["load1"] for s in samples])}
    for key in ("lagged", "skipped"):
        if first.get(key) is not None and last.get(key) is not None:
            out[f"{key}_frames"] = last[key] - first[key]
    if "mindflow_threads" in first:
        out["mindflow_thread_names"] = sorted({n for s in samples for n in s["mindflow_thread_names"]})
        out["mindflow_threads"] = [min(s["mindflow_threads"] for s in late), max(s["mindflow_threads"] for s in late)]
        out["mindflow_files"] = [min(s["mindflow_files"] for s in late), max(s["mindflow_files"] for s in late)]
        out["mindflow_cpu_pct_mean"] = _mean([s.get("mindflow_cpu_pct") for s in samples])
        out["rate_hz_mean"] = _mean([s.get("rate_hz") for s in samples])
        out["rate_hz_min"] = min((s["rate_hz"] for s in samples if s.get("rate_hz") is not None), default=None)
    return out


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


CHARTS = (("rss_mb", "OBS resident memory (MB)"), ("cpu_pct", "OBS CPU (% of one core)"),
          ("lagged", "OBS lagged frames (cumulative)"), ("skipped", "skipped frames, encoding lag (cumulative)"),
          ("threads", "OBS threads"), ("fds", "OBS open file descriptors"),
          ("mindflow_cpu_pct", "MindFlow's threads' CPU (% of one core)"), ("rate_hz", "analysis rate (Hz)"),
          ("mindflow_threads", "MindFlow's threads"), ("mindflow_files", "files MindFlow holds open"),
          ("load1", "machine load average (1 min)"))
COLOURS = {"with": "#c0392b", "without": "#2c3e50", "twin": "#7f8c8d"}


def _svg(key: str, title: str, runs: dict[str, list[dict]]) -> str:
    w, h, pad = 640, 200, 40
    series = {n: [(s["t_s"], s[key]) for s in samples if s.get(key) is not None] for n, samples in runs.items()}
    pts = [p for s in series.values() for p in s]
    if not pts:
        return ""
    x1 = max(p[0] for p in pts) or 1.0
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1

    def xy(p):
        return f"{pad + (w - 2 * pad) * p[0] / x1:.1f},{h - pad - (h - 2 * pad) * (p[1] - y0) / (y1 - y0):.1f}"
    lines = "".join(f'<polyline fill="none" stroke="{COLOURS[n]}" stroke-width="1.5" points="{" ".join(map(xy, s))}"/>'
                    for n, s in series.items() if s)
    legend = " ".join(f'<tspan fill="{COLOURS[n]}">{"twin, without" if n == "twin" else n} MindFlow</tspan>'
                      for n, s in series.items() if s)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img">'
            f'<text x="{pad}" y="16" font-size="13">{html.escape(title)} — {legend}</text>'
            f'<rect x="{pad}" y="{pad}" width="{w - 2 * pad}" height="{h - 2 * pad}" fill="none" stroke="#bbb"/>'
            f'<text x="2" y="{pad + 4}" font-size="10">{y1:g}</text><text x="2" y="{h - pad}" font-size="10">{y0:g}'
            f'</text><text x="{w - pad - 30}" y="{h - pad + 14}" font-size="10">{x1 / 60:.0f} min</text>{lines}</svg>')


def write_page(doc: dict, path: Path) -> None:
    runs = {n: r["samples"] for n, r in doc["runs"].items()}
    charts = "".join(f"<div>{_svg(k, t, runs)}</div>" for k, t in CHARTS)
    figs = html.escape(json.dumps(doc["figures"], indent=1))
    checks = html.escape(json.dumps(doc["checks"], indent=1))
    path.write_text(f"<!doctype html><meta charset='utf-8'><title>MindFlow soak</title>"
                    f"<h1>MindFlow soak: {html.escape(doc['settings']['summary'])}</h1>{charts}"
                    f"<h2>Figures</h2><pre>{figs}</pre><h2>Checks</h2><pre>{checks}</pre>", encoding="utf-8")


# ==================================================================================================================
# Main
# ==================================================================================================================

def soak(args, out: Path) -> dict:
    clip = SAMPLE if args.size == "sample" else make_clip(tuple(int(x) for x in args.size.lower().split("x")), out)
    names = {"none": ("with",), "twin": TWINS}.get(args.control, RUNS)
    server = None
    if args.stream:
        from tests.e2e.rtmp import RtmpServer
        server = RtmpServer(out / "rtmp").start()
    url = server.url if server else None
    groups = [names] if args.control in ("parallel", "twin") else [(n,) for n in names]
    doc: dict = {"runs": {}}
    try:
        for group in groups:
            runs = [SoakRun(n, args, clip, out / n, url) for n in group]
            for r in runs:
                (out / r.name).mkdir(exist_ok=True)
                r.start()
            try:
                for r in runs:
                    r.wait_ready()
                t0 = time.monotonic()
                end = t0 + args.minutes * 60.0
                tick = t0
                while True:
                    dead = [r.name for r in runs if not r.proc.running()]
                    if dead:            # a crash ends the soak: the rest would sample a process that is gone
                        doc["ended_early"] = {"runs": dead, "at_s": round(time.monotonic() - t0, 1)}
                        print(f"soak: OBS ({', '.join(dead)}) exited {doc['ended_early']['at_s']:.0f} s into the "
                              f"soak; it ends here", flush=True)
                        break
                    for r in runs:
                        r.sample(t0)
                    print(" | ".join(_line(r) for r in runs), flush=True)
                    tick += args.every
                    if tick > end + 0.5:
                        break
                    time.sleep(max(0.0, tick - time.monotonic()))
                recorded = {r.name: time.monotonic() - r.t_recording for r in runs}
                for r in runs:
                    doc["runs"][r.name] = {"exit": r.stop(), "samples": r.samples}
                for r in runs:
                    if r.name == "with":
                        doc["runs"][r.name]["report"] = check_report(r.reports, recorded[r.name])
            finally:
                for r in runs:
                    r.proc.kill()
    finally:
        if server is not None:
            server.stop()
    return doc


def _line(r: SoakRun) -> str:
    s = r.samples[-1]
    text = (f"{r.name:7s} {s['t_s']:6.0f}s rss {s['rss_mb']:6.1f} MB cpu {s.get('cpu_pct', 0):5.1f}% "
            f"lag {s['lagged']} skip {s['skipped']} thr {s['threads']} fds {s['fds']} load {s['load1']}")
    if r.name == "with":
        text += f" mf-thr {s['mindflow_threads']} mf-cpu {s.get('mindflow_cpu_pct')}% {s.get('rate_hz')} Hz"
    return text


def checks(doc: dict, every: float) -> list[str]:
    """What must hold for the soak to pass (``--check``): clean exits, the report covers the session, samples every
    interval, MindFlow analysing throughout, its threads and files flat."""
    problems = []
    if doc.get("ended_early"):
        e = doc["ended_early"]
        problems.append(f"OBS ({', '.join(e['runs'])}) exited {e['at_s']:.0f} s into the soak, before its end: see "
                        f"the exit below and obs-crash-stacks.txt in its folder")
    for name, run in doc["runs"].items():
        ex = run["exit"]
        # The control's exit faults are OBS's own (no MindFlow there): in the figures, not a failed check.
        if ex["faults"] and name == "with" and not ex["obs_own_fault"]:
            problems.append(f"{name}: OBS did not exit cleanly: {'; '.join(ex['faults'])} ({ex['log']})")
        if ex["traceback"]:
            problems.append(f"{name}: a Python traceback in OBS's log ({ex['log']})")
        ts = [s["t_s"] for s in run["samples"]]
        gaps = [round(b - a, 1) for a, b in zip(ts, ts[1:]) if b - a > 1.5 * every]
        if gaps:
            problems.append(f"{name}: samples missing (gaps of {gaps} s)")
        stale = [s["t_s"] for s in run["samples"] if s["hooks_age_s"] is None or s["hooks_age_s"] > 2.5 * every]
        if stale:
            problems.append(f"{name}: OBS's counters were not sampled at {stale[:5]} s")
    with_run = doc["runs"].get("with")
    if with_run:
        problems += [f"report: {p}" for p in with_run["report"]["problems"]]
        f = doc["figures"]["with"]
        # The checkpoint writer ends after 30 s idle and starts again at the next checkpoint: the count may move
        # between 1 and 2; a leak shows as a name twice, or a name not seen at the start.
        late = [s for s in with_run["samples"] if s["t_s"] >= min(WARMUP_S, with_run["samples"][-1]["t_s"] / 2)]
        dup = [s["t_s"] for s in late if len(set(s["mindflow_thread_names"])) != len(s["mindflow_thread_names"])]
        if dup:
            problems.append(f"MindFlow's threads doubled (a name twice) at {dup[:5]} s")
        if f["mindflow_threads"][1] > 2:
            problems.append(f"MindFlow ran {f['mindflow_threads'][1]} threads at once (expected at most 2: the "
                            f"analyser and the checkpoint writer)")
        if f["mindflow_files"][1] - f["mindflow_files"][0] > 1:
            problems.append(f"MindFlow's open files grew: {f['mindflow_files']}")
        if f.get("rate_hz_min") is None:
            problems.append("no analysis rate measured: run longer than three sample intervals")
        elif not f["rate_hz_min"]:
            problems.append("MindFlow stopped analysing in an interval (an analysis rate of 0 Hz)")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="recording time (default 60)")
    ap.add_argument("--short", action="store_true", help="3 minutes (CI)")
    ap.add_argument("--rate", type=float, default=5.0, help="analysis rate in Hz (default 5)")
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples (default 10)")
    ap.add_argument("--stream", action="store_true", help="also stream to a loopback RTMP server (nginx-rtmp)")
    ap.add_argument("--control", choices=("parallel", "serial", "twin", "none"), default="parallel",
                    help="the run without MindFlow: beside it (default), after it, or none; twin: two runs without "
                         "MindFlow side by side (their difference is the run-to-run spread)")
    ap.add_argument("--size", default="1280x720", help="webcam stand-in resolution (default 1280x720; 'sample': the clip as it is, 480x270, "
                         "without OpenCV in this Python)")
    ap.add_argument("--canvas", default="1280x720", help="OBS canvas and recording size (default 1280x720)")
    ap.add_argument("--nice", type=int, default=0, help="run OBS at this nice level")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default out/soak/<date-time>)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a check fails (CI)")
    args = ap.parse_args(argv)
    if args.short:
        args.minutes = 3.0
    missing = obs_available()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    out = (args.out or ROOT / "out" / "soak" / datetime.now().strftime("%Y-%m-%dT%H-%M-%S")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    summary = (f"{args.minutes:g} min at {args.rate:g} Hz, control {args.control}, webcam {args.size}, canvas "
               f"{args.canvas}{', streaming to loopback RTMP' if args.stream else ''}; {os.cpu_count()} CPUs, load "
               f"{os.getloadavg()[0]:.2f} at start")
    print(f"soak: {summary}; output in {out}", flush=True)
    doc = soak(args, out)
    doc["settings"] = {"summary": summary, **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    first = next(iter(doc["runs"].values()))
    obs_version = next((ln for ln in Path(first["exit"]["log"]).read_text(errors="replace").splitlines()
                        if ": OBS " in ln and "(linux)" in ln), "")
    doc["machine"] = {"cpus": os.cpu_count(), "obs": obs_version.split(": ", 1)[-1]}
    doc["figures"] = {n: figures(r["samples"]) for n, r in doc["runs"].items()}
    if "with" in doc["figures"]:
        # MindFlow's share of OBS's graphics thread: its capture cost (median, logged at unload) times the captures
        # per second (one per analysis), beside its own threads' CPU.
        cap, f = doc["runs"]["with"]["exit"]["capture_cost"], doc["figures"]["with"]
        if cap and f.get("rate_hz_mean"):
            f["capture_cpu_pct"] = round(cap["median_ms"] * f["rate_hz_mean"] / 10.0, 2)
            f["mindflow_total_cpu_pct"] = round(f["capture_cpu_pct"] + (f["mindflow_cpu_pct_mean"] or 0), 2)
    for one, key in (("with", "difference"), ("twin", "spread")):
        if one not in doc["figures"] or "without" not in doc["figures"]:
            continue
        a, b = doc["figures"][one], doc["figures"]["without"]
        doc["figures"][key] = {
            "rss_growth_mb_per_h": _round((a["rss_growth_mb_per_h"] or 0) - (b["rss_growth_mb_per_h"] or 0)),
            "rss_mb_end": _round(a["rss_mb_end"] - b["rss_mb_end"]),
            "lagged_frames": a.get("lagged_frames", 0) - b.get("lagged_frames", 0),
            "skipped_frames": (a.get("skipped_frames") or 0) - (b.get("skipped_frames") or 0),
            "cpu_pct_mean": _round((a["cpu_pct_mean"] or 0) - (b["cpu_pct_mean"] or 0)),
            "threads": a["threads"][1] - b["threads"][1], "fds": a["fds"][1] - b["fds"][1]}
    doc["checks"] = checks(doc, args.every)
    (out / "soak.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    write_page(doc, out / "soak.html")
    print(json.dumps(doc["figures"], indent=1))
    for n, r in doc["runs"].items():
        if "report" in r:
            print(f"report ({n}): " + json.dumps({k: v for k, v in r["report"].items() if k != "problems"}))
    print("checks: " + ("all passed" if not doc["checks"] else "\n  " + "\n  ".join(doc["checks"])))
    print(f"written: {out / 'soak.json'}, {out / 'soak.html'}")
    return 1 if args.check and doc["checks"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
