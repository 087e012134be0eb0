"""Screenshots of MindFlow's panel (Tools > Scripts > MindFlow) in a real OBS under Xvfb, for docs/ and install.md.

    .venv/bin/python -m tools.panel_screenshots [--out docs] [--before REV]

Runs OBS headless with the e2e harness (tests/e2e/obs_harness.py), opens Tools > Scripts with the mouse (xdotool),
enlarges the dialog, clicks the panel's buttons found by their caption (tesseract's word boxes) and grabs the screen
(ffmpeg x11grab); each PNG is the dialog's right half, reduced to 64 colours. ``--before REV`` also shoots the panel
of an earlier commit (exported with ``git archive``) after a recording started while it was open.

Needs obs, xvfb-run, xdotool, tesseract and ffmpeg (Debian: apt install xdotool tesseract-ocr ffmpeg). The menu
position is OBS 29's (Debian 12's OBS, 1280x800 screen); a documentation aid, not a test.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.obs_harness import TEXT, WEBCAM, ObsConfig, ObsProcess  # noqa: E402
from tests.e2e.panel_driver import PanelDriver, panel_hooks  # noqa: E402

TOOLS_MENU = (378, 13)          # OBS 29, 1280x800: the Tools menu in the main window's menu bar
CROP = "730:790:525:0"          # w:h:x:y of the dialog's right half once it is moved to 0,0 and enlarged


class Screen:
    def __init__(self, run: ObsProcess) -> None:
        pid = run._wait_obs_pid()
        env = dict(x.split("=", 1) for x in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in x)
        self.env = {**os.environ, "DISPLAY": env["DISPLAY"], "XAUTHORITY": env.get("XAUTHORITY", "")}

    def xdotool(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=30).stdout

    def grab(self, path: Path, crop: str | None = None) -> Path:
        """The screen (cropped to ``crop``, w:h:x:y) as a 64-colour PNG."""
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "screen.png"
            subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "x11grab", "-video_size", "1280x800", "-i",
                            self.env["DISPLAY"], "-frames:v", "1", str(raw)], env=self.env, check=True, timeout=60)
            vf = ((f"crop={crop}," if crop else "") +
                  "split[a][b];[a]palettegen=max_colors=64[p];[b][p]paletteuse=dither=none")
            subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(raw), "-vf", vf, str(path)], check=True,
                           timeout=60)
        return path

    def lines(self) -> list[tuple[str, int, int]]:
        """``(text, x, y)`` of every line tesseract reads on the screen (``x, y``: its centre)."""
        with tempfile.TemporaryDirectory() as tmp:
            shot = Path(tmp) / "screen.png"
            subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "x11grab", "-video_size", "1280x800", "-i",
                            self.env["DISPLAY"], "-frames:v", "1", str(shot)], env=self.env, check=True, timeout=60)
            tsv = subprocess.run(["tesseract", str(shot), "-", "tsv"], capture_output=True, text=True,
                                 timeout=120).stdout
        groups: dict[tuple, list[dict]] = {}
        for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
            if row.get("text", "").strip():
                groups.setdefault((row["block_num"], row["par_num"], row["line_num"]), []).append(row)
        out = []
        for words in groups.values():
            left = min(int(w["left"]) for w in words)
            right = max(int(w["left"]) + int(w["width"]) for w in words)
            top = min(int(w["top"]) for w in words)
            bottom = max(int(w["top"]) + int(w["height"]) for w in words)
            out.append((" ".join(w["text"].strip() for w in words), (left + right) // 2, (top + bottom) // 2))
        return out

    def click_text(self, caption: str, min_x: int = 525) -> None:
        """Click the line that reads exactly ``caption`` (a button or a menu item) right of ``min_x``."""
        lines = self.lines()
        for text, x, y in lines:
            if text == caption and x >= min_x:
                self.xdotool("mousemove", str(x), str(y), "click", "1")
                time.sleep(1.5)
                return
        raise RuntimeError(f"'{caption}' not found on the screen: {[t for t, _, _ in lines]}")

    def open_scripts(self, scripts: str = "Scripts") -> None:
        """Tools > Scripts (``scripts``: the menu item and the dialog's title in OBS's language: "Skripte" in German,
        whose menu bar is wider — the Tools menu is then opened with its Alt key, T in both)."""
        if scripts == "Scripts":
            self.xdotool("mousemove", *map(str, TOOLS_MENU), "click", "1")
        else:
            self.xdotool("mousemove", "640", "400", "click", "1", "key", "alt+t")
        time.sleep(1.0)
        self.click_text(scripts, min_x=0)
        time.sleep(1.5)
        win = self.xdotool("search", "--onlyvisible", "--name", f"^{scripts}$").split()
        if not win:
            raise RuntimeError("the Scripts dialog did not open")
        self.xdotool("windowmove", win[0], "0", "0", "windowsize", win[0], "1270", "790")
        time.sleep(1.5)


def _settings(work: Path, **extra) -> dict:
    return {"video_source": WEBCAM, "text_source": TEXT, "report_dir": str(work / "reports"), "rate_hz": 5.0,
            "idle_text": "MindFlow ready", **extra}


def shoot_after(out: Path, work: Path) -> list[Path]:
    shots = []
    cfg = ObsConfig(workdir=work / "setup", record=False, script_settings={"report_dir": str(work / "reports")})
    (work / "setup").mkdir(parents=True)
    with ObsProcess(cfg) as run:
        run.wait_for(r"MindFlow: OBS finished loading", 90)
        screen = Screen(run)
        screen.open_scripts()
        shots.append(screen.grab(out / "panel-first-setup.png", CROP))
        run.stop()
    cfg = ObsConfig(workdir=work / "session", record=False, script_settings=_settings(work))
    (work / "session").mkdir(parents=True)
    with ObsProcess(cfg) as run:
        run.wait_for(r"MindFlow: OBS finished loading", 90)
        screen = Screen(run)
        screen.open_scripts()
        screen.click_text("Start session")
        run.wait_for(r"MindFlow: first face in this session", 60)
        time.sleep(2.0)
        screen.click_text("Refresh status")
        shots.append(screen.grab(out / "panel-session.png", CROP))
        time.sleep(3.0)
        screen.click_text("Stop session")
        shots.append(screen.grab(out / "panel-result.png", CROP))
        run.stop()
    return shots


def shoot_install(out: Path, work: Path) -> list[Path]:
    copy = work / "MindFlow"
    shutil.copytree(ROOT / "obs_mindflow", copy / "obs_mindflow", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tools", copy / "tools", ignore=shutil.ignore_patterns("__pycache__", "train", "dan"))
    shutil.copy(ROOT / "requirements.txt", copy / "requirements.txt")
    cfg = ObsConfig(workdir=work / "install", record=False, script_path=copy / "obs_mindflow" / "mindflow_obs.py",
                    script_settings=_settings(work))
    (work / "install").mkdir(parents=True)
    with ObsProcess(cfg) as run:
        run.wait_for(r"MindFlow needs", 90)
        time.sleep(2.0)
        screen = Screen(run)
        screen.open_scripts()
        shot = screen.grab(out / "panel-install.png", CROP)
        run.stop()
    return [shot]


def shoot_before(out: Path, work: Path, rev: str) -> list[Path]:
    """The panel of ``rev``, opened before a recording started (OBS's frontend event) while it stays open."""
    old = work / "before"
    old.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "obs_mindflow", "models", "requirements.txt"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(old)
    (old / ".deps").symlink_to(ROOT / ".deps")
    cfg = ObsConfig(workdir=work / "old", record=False, script_path=old / "obs_mindflow" / "mindflow_obs.py",
                    script_settings={**_settings(work), "template": "{emotion} · {negative_share} negative"},
                    hooks=panel_hooks(work / "old"))
    (work / "old").mkdir(parents=True)
    with ObsProcess(cfg) as run:
        run.wait_for(r"MindFlow: OBS finished loading", 90)
        screen = Screen(run)
        screen.open_scripts()
        PanelDriver(run, cfg).send("record start")
        run.wait_for(r"MindFlow: session started \(recording started\)", 60)
        time.sleep(3.0)             # the old panel: "no session running", "Start session" (its Refresh: below the fold)
        shot = screen.grab(out / "panel-before.png", CROP)
        run.stop()
    return [shot]


def shoot_languages(out: Path, work: Path) -> list[Path]:
    """OBS in German with a Japanese audience: the panel in German, first with a text source whose font has no
    Japanese letters (the panel says so), then with one that has them (IPAGothic: apt install fonts-ipafont-gothic)
    during a session; and a frame of the recording — what viewers see — with the Japanese emotion name."""
    shots = []
    settings = _settings(work, viewer_language="ja-JP", idle_text="")
    for name, font in (("lacks", "DejaVu Sans"), ("session", "IPAGothic")):
        cfg = ObsConfig(workdir=work / f"de-{name}", record=False, language="de-DE", text_font=font,
                        script_settings=settings, hooks=panel_hooks(work / f"de-{name}"))
        (work / f"de-{name}").mkdir(parents=True)
        with ObsProcess(cfg) as run:
            run.wait_for(r"MindFlow: OBS finished loading", 90)
            screen = Screen(run)
            screen.open_scripts("Skripte")
            if name == "lacks":
                shots.append(screen.grab(out / "panel-de-font.png", CROP))
                screen.xdotool("mousemove", "900", "600", "click", "--repeat", "12", "--delay", "80", "5")
                time.sleep(1.0)                       # the settings further down (the wheel scrolls the panel)
                shots.append(screen.grab(out / "panel-de-settings.png", CROP))
            else:
                screen.click_text("Sitzung starten")
                run.wait_for(r"MindFlow: first face in this session", 60)
                PanelDriver(run, cfg).send("record start")
                time.sleep(4.0)
                screen.click_text("Status aktualisieren")
                shots.append(screen.grab(out / "panel-de.png", CROP))
                PanelDriver(run, cfg).send("record stop")
                time.sleep(2.0)
            run.stop()
        if name == "session":
            (recording,) = sorted(cfg.recordings.glob("*.mkv"))[-1:]
            frame = out / "onstream-ja.png"
            subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-sseof", "-1.5", "-i", str(recording), "-frames:v",
                            "1", "-vf", "crop=640:200:0:0", str(frame)], check=True, timeout=60)
            shots.append(frame)
    shots.append(shoot_german_error(out, work))
    return shots


def shoot_german_error(out: Path, work: Path) -> Path:
    """The panel in German during a session whose webcam setting names a source that is not there: its red line
    says so, and what to do, in German."""
    cfg = ObsConfig(workdir=work / "de-error", record=False, language="de-DE",
                    script_settings=_settings(work, video_source="Kamera 2"), hooks=panel_hooks(work / "de-error"))
    (work / "de-error").mkdir(parents=True)
    with ObsProcess(cfg) as run:
        run.wait_for(r"MindFlow: OBS finished loading", 90)
        screen = Screen(run)
        screen.open_scripts("Skripte")
        screen.click_text("Sitzung starten")
        run.wait_for(r"MindFlow source: ", 60)
        time.sleep(1.0)
        screen.click_text("Status aktualisieren")
        shot = screen.grab(out / "panel-de-error.png", CROP)
        run.stop()
    return shot


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    ap.add_argument("--before", default="", help="also shoot the panel of this git revision")
    ap.add_argument("--languages", action="store_true",
                    help="only the German panel and the Japanese on-stream text (docs/translations.md)")
    args = ap.parse_args(argv)
    missing = [t for t in ("obs", "xvfb-run", "xdotool", "tesseract", "ffmpeg") if shutil.which(t) is None]
    if missing:
        print(f"missing: {', '.join(missing)}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mindflow-shots-") as tmp:
        work = Path(tmp)
        if args.languages:
            shots = shoot_languages(args.out, work)
        else:
            shots = shoot_after(args.out, work) + shoot_install(args.out, work)
        if args.before:
            shots += shoot_before(args.out, work, args.before)
    for p in shots:
        print(f"{p} ({p.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
