"""MindFlow's cost inside a real OBS: runs OBS headless (Xvfb, software GL) recording the sample clip, without and with
the script, and prints what OBS and the script log.

    .venv/bin/python -m tools.bench_obs [--seconds 60] [--rate 5] [--runs 1] [--hidden] [--size 1280x720]
                                        [--canvas 1280x720] [--nice N] [--keep DIR]

Figures:
- the script's graphics-thread cost per capture (render into the small texrender + stage, plus map + copy of the
  surface staged on an earlier tick), median / p99, from the line the script logs at unload (``time.perf_counter``
  around the capture work in ``script_tick``);
- OBS's "Number of lagged frames due to rendering lag/stalls" and "skipped frames due to encoding lag" lines, and its
  profiler's ``obs_graphics_thread`` / ``tick_sources`` (where ``script_tick`` runs) / ``render_video`` medians and
  p99s, with and without the script;
- the load average before and after each run (the machine may be shared: say so when reporting).

The webcam stand-in is the sample clip upscaled to ``--size`` (default 1280x720, so the capture is 640x360 as on a
real 720p webcam). ``--hidden`` leaves the webcam out of the current scene (the script keeps it showing). Needs
``obs``, ``xvfb-run`` and the run-time packages for OBS's Python (``tools/install_obs_deps.py``).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.obs_harness import SAMPLE, TEXT, WEBCAM, ObsConfig, ObsProcess, obs_available  # noqa: E402

PROFILER_RE = {
    # OBS writes a no-break space before "ms"
    name: re.compile(rf"{re.escape(name)}(?:\([\d.]+\sms\))?: min=[\d.]+\sms, median=([\d.]+)\sms, "
                     rf"max=([\d.]+)\sms, 99th percentile=([\d.]+)\sms")
    for name in ("obs_graphics_thread", "tick_sources", "render_video")
}
COST_RE = re.compile(r"MindFlow capture cost per frame.*?\((\d+x\d+) from (\d+x\d+), (\d+) frames\): total median "
                     r"([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms.*?render\+stage median ([\d.]+) ms.*?map\+copy "
                     r"median ([\d.]+) ms")
DRAWN_RE = re.compile(r"Total drawn frames: (\d+)(?: \((\d+) attempted\))?")   # "(N attempted)" only after a lag
RESULTS_RE = re.compile(r"MindFlow: first face in this session")


def unwrap(log: str) -> str:
    """OBS's log with the script's wrapped lines joined back: OBS splits a long script line into several log lines
    (each with its timestamp and ``[Python: mindflow_obs.py]``), which :data:`COST_RE` must read as one."""
    return re.sub(r"\n[\d:.]+: \[Python: mindflow_obs\.py\]\s+", " ", log)


def make_clip(size: tuple[int, int], folder: Path) -> Path:
    """The sample clip resized to ``size`` (mp4v), the stand-in for a webcam of that resolution."""
    import cv2

    if size == (480, 270):
        return SAMPLE
    out = folder / f"sample-{size[0]}x{size[1]}.mp4"
    cap = cv2.VideoCapture(str(SAMPLE))
    fps = cap.get(cv2.CAP_PROP_FPS) or 12.0
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR))
    writer.release()
    cap.release()
    return out


def run_once(with_script: bool, args, clip: Path, workdir: Path) -> dict:
    settings = None
    if with_script:
        settings = {"video_source": WEBCAM, "text_source": TEXT, "report_dir": str(workdir / "reports"),
                    "rate_hz": args.rate}
    canvas = tuple(int(x) for x in args.canvas.lower().split("x"))
    cfg = ObsConfig(workdir=workdir, script_settings=settings, video=clip, webcam_in_scene=not args.hidden,
                    base=canvas)
    load_before = os.getloadavg()
    proc = ObsProcess(cfg, nice=args.nice)
    with proc:
        if not proc.wait_for(r"==== Recording Start", 120):
            raise SystemExit(f"OBS did not start recording; see {proc.log_path()}")
        if with_script and not proc.wait_for(r"MindFlow: OBS finished loading", 60):
            raise SystemExit(f"the script did not load; see {proc.log_path()}")
        time.sleep(args.seconds)
        result = proc.stop(timeout=60)
    load_after = os.getloadavg()
    log = result.log
    row: dict = {"script": with_script, "rc": result.returncode, "leaks": result.leaks,
                 "load": (load_before[0], load_after[0]), "log": str(proc.log_path())}
    lagged = result.lagged_frames()
    drawn = DRAWN_RE.findall(log)
    row["drawn"] = (int(drawn[-1][0]), int(drawn[-1][1] or drawn[-1][0])) if drawn else None
    # OBS prints the lagged-frames line only when frames lagged
    row["lagged"] = lagged[-1] if lagged else ((0, 0.0) if drawn else None)
    skipped = result.skipped_frames()
    row["skipped"] = skipped[-1] if skipped else None
    for name, rx in PROFILER_RE.items():
        m = rx.findall(log)
        row[name] = (float(m[0][0]), float(m[0][2])) if m else None   # the first block: times per call
    m = COST_RE.search(unwrap(log))
    if m:
        row["capture"] = {"size": m.group(1), "source": m.group(2), "frames": int(m.group(3)),
                          "median": float(m.group(4)), "p99": float(m.group(5)), "max": float(m.group(6)),
                          "stage_median": float(m.group(7)), "map_median": float(m.group(8))}
    row["traceback"] = "Traceback" in log
    return row


def fmt(row: dict) -> str:
    def pair(v, unit="ms"):
        return "n/a" if v is None else f"{v[0]:.2f}/{v[1]:.2f} {unit}"
    lag = "n/a" if row["lagged"] is None else f"{row['lagged'][0]} ({row['lagged'][1]:.1f} %)"
    skip = "n/a" if row["skipped"] is None else f"{row['skipped'][0]}/{row['skipped'][1]} ({row['skipped'][2]:.1f} %)"
    drawn = "n/a" if row["drawn"] is None else f"{row['drawn'][0]}/{row['drawn'][1]}"
    text = (f"{'with' if row['script'] else 'without':7s} lagged {lag:14s} skipped(enc) {skip:14s} drawn {drawn:10s} "
            f"graphics {pair(row['obs_graphics_thread'])}  tick_sources {pair(row['tick_sources'])}  "
            f"render_video {pair(row['render_video'])}  load {row['load'][0]:.1f}->{row['load'][1]:.1f}  "
            f"exit {row['rc']} leaks {row['leaks']}")
    cap = row.get("capture")
    if cap:
        text += (f"\n        capture {cap['size']} from {cap['source']}: {cap['frames']} frames, median "
                 f"{cap['median']:.2f} ms, p99 {cap['p99']:.2f} ms, max {cap['max']:.2f} ms (render+stage "
                 f"{cap['stage_median']:.2f}, map+copy {cap['map_median']:.2f})")
    if row["traceback"]:
        text += "\n        a Python traceback is in the log: " + row["log"]
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="recording time per run (default 60)")
    ap.add_argument("--rate", type=float, default=5.0, help="analysis rate in Hz (default 5)")
    ap.add_argument("--runs", type=int, default=1, help="alternating without/with pairs (default 1)")
    ap.add_argument("--size", default="1280x720", help="webcam stand-in resolution (default 1280x720)")
    ap.add_argument("--canvas", default="1280x720",
                    help="OBS canvas and recording size (default 1280x720; smaller leaves a loaded machine headroom)")
    ap.add_argument("--hidden", action="store_true", help="webcam not in the current scene")
    ap.add_argument("--only", choices=("with", "without"), help="run one configuration only")
    ap.add_argument("--nice", type=int, default=0,
                    help="run OBS at this nice level (e.g. -5 on a machine shared with other jobs; needs root)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the OBS folders (logs, config) under this folder")
    args = ap.parse_args(argv)
    missing = obs_available()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    size = tuple(int(x) for x in args.size.lower().split("x"))
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; OBS software GL "
          f"(llvmpipe) under Xvfb; {args.seconds:g} s recording per run; rate {args.rate:g} Hz; webcam stand-in "
          f"{size[0]}x{size[1]}{' (not in the current scene)' if args.hidden else ''}; canvas {args.canvas}"
          f"{f'; OBS at nice {args.nice}' if args.nice else ''}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mindflow-bench-") as tmp_dir:
        tmp = str(args.keep) if args.keep else tmp_dir
        Path(tmp).mkdir(parents=True, exist_ok=True)
        clip = make_clip(size, Path(tmp))
        for i in range(args.runs):
            for with_script in (False, True):
                if args.only and args.only != ("with" if with_script else "without"):
                    continue
                work = Path(tmp) / f"run{i}-{'with' if with_script else 'without'}"
                work.mkdir()
                row = run_once(with_script, args, clip, work)
                rows.append(row)
                print(fmt(row), flush=True)
    caps = [r["capture"] for r in rows if r.get("capture")]
    if caps:
        print(f"capture median over runs: {statistics.median(c['median'] for c in caps):.2f} ms; "
              f"p99 {statistics.median(c['p99'] for c in caps):.2f} ms")
    for label, want in (("without", False), ("with", True)):
        lags = [r["lagged"][0] for r in rows if r["script"] is want and r["lagged"]]
        if lags:
            print(f"lagged frames {label} the script: {lags}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
