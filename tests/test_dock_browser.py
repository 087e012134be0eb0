"""The streamer's private dock in a real headless Chromium at dock sizes (320×800, and 300 and 400 px wide), fed by a
running OverlayServer: every state renders without overflowing, a change shows within 1 s, the page says when
MindFlow is gone and comes back by itself, and the browser is refused a wrong token, a foreign Host (DNS rebinding:
a name resolved to 127.0.0.1), a POST and a read from another origin; the viewers' overlay page never gets the
dock's figures.

Skips (saying what to install) when chromium, chromedriver or selenium are missing; CI installs them.
Set ``MINDFLOW_SCREENSHOT_DIR`` to keep the screenshots (docs/dock*.png come from there).
"""

from __future__ import annotations

import http.server
import math
import threading
import time

import numpy as np
import pytest

from obs_mindflow.obs.overlayout import ViewerOverlay
from obs_mindflow.overlay.dock import new_token
from obs_mindflow.overlay.server import OverlayServer

try:
    from browser import find_browser, launch_chromium, screenshot_rgba, set_viewport, wait_until
except ImportError:  # tests/ is a package under another import mode
    from tests.browser import find_browser, launch_chromium, screenshot_rgba, set_viewport, wait_until

pytestmark = pytest.mark.browser  # `make test-fast` leaves these out

WIDTH, HEIGHT = 320, 800
REBIND = "rebind.test"                       # resolves to 127.0.0.1 in this browser only (a DNS-rebinding site)
LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt"]
NEGATIVE = ["angry", "disgust", "fear", "sad", "contempt"]

READ = """
const $ = (id) => document.getElementById(id);
const shown = (el) => !!el && getComputedStyle(el).display !== 'none' && el.getClientRects().length > 0;
const cards = Array.from(document.querySelectorAll('.card, #foot, #bar')).filter(shown);
return {
  ok: !!window.mindflowDock, conn: document.getElementById('root').dataset.conn,
  conn_text: $('conn').textContent, banner: shown($('banner')) ? $('banner-title').textContent : null,
  now: $('now-word').textContent, kind: document.getElementById('root').dataset.now || '',
  conf: $('now-conf').textContent, note: $('now-note').textContent, session: $('session').textContent,
  neg: $('neg-session').textContent, neg_label: $('neg-label').textContent, rolling: $('neg-rolling').textContent,
  rolling_label: $('rolling-label').textContent,
  trend: $('trend-word').textContent, spark: $('spark-line').getAttribute('d'),
  privacy: shown($('privacy')) ? $('privacy').textContent : null,
  calib: $('calib-word').textContent, calib_msg: $('calib-msg').textContent, calib_bar: shown($('calib-track')),
  calib_fill: parseFloat($('calib-fill').style.width) || 0,
  moments: Array.from(document.querySelectorAll('#moments li')).map((li) =>
    Array.from(li.children).map((c) => c.textContent).concat([li.classList.contains('neg')])),
  moments_count: $('moments-count').textContent, moments_none: shown($('moments-none')),
  nudge: $('nudge').textContent, error: shown($('error')) ? $('error-text').textContent : null,
  rate: $('rate').textContent, model: $('model').textContent,
  scroll_width: document.documentElement.scrollWidth,
  widest: Math.max.apply(null, cards.map((el) => el.getBoundingClientRect().right)),
  injected: document.getElementById('root').querySelectorAll('img, iframe, object, embed, script').length,
  light: document.documentElement.classList.contains('light'),
};
"""


def full_state(**changes) -> dict:
    """A running session as MindFlow's dock gets it (obs_mindflow/engine/dockview.py)."""
    probs = {label: 0.02 for label in LABELS}
    probs["happy"] = 0.83
    state = {"model": "mindflow-ferplus-r3d", "labels": LABELS, "negative_labels": NEGATIVE, "paused": False,
             "face": True, "emotion": "happy", "confidence": 0.83, "probabilities": probs,
             "session": {"active": True, "duration_s": 2534.5, "coverage": 0.93,
                         "profile": {"happy": 0.5, "neutral": 0.29, "sad": 0.21}, "negative_share": 0.21,
                         "rolling_negative_share": 0.34, "rolling_window_s": 300,
                         "trend": [[t * 20.0, round(0.2 + 0.08 * math.sin(t / 9) + t / 800, 4)] for t in range(120)]},
             "calibration": {"active": False, "progress": 1.0, "applied": True,
                             "message": "calibrated: made 2026-12-06 20:15 from 96 face frames over 20 s"},
             "moment": None, "message": "", "updated": time.time(),
             "dock": {"stale": False, "rate_hz": 4.96, "moments_total": 4, "problem": "",
                      "hidden_from_viewers": True, "error": "",
                      "nudge": {"message": "Mostly tense for 10 minutes: a short break?", "time_s": 2100.0},
                      "moments": [
                          {"id": 1, "title": "Smiles", "emotion": "happy", "negative": False, "start_s": 125.0,
                           "clock": "20:17", "seconds": 7.5, "open": False},
                          {"id": 2, "title": "Calm", "emotion": "neutral", "negative": False, "start_s": 610.0,
                           "clock": "20:25", "seconds": 42.0, "open": False},
                          {"id": 3, "title": "Tense stretch", "emotion": "angry", "negative": True,
                           "start_s": 1501.0, "clock": "20:40", "seconds": 14.0, "open": False},
                          {"id": 4, "title": "Big laugh", "emotion": "happy", "negative": False, "start_s": 2480.0,
                           "clock": "20:56", "seconds": 6.0, "open": True}]}}
    for key, value in changes.items():
        if key in ("dock", "session") and isinstance(value, dict):
            state[key] = {**state[key], **value}
        else:
            state[key] = value
    return state


@pytest.fixture(scope="module")
def driver():
    chromium, _, reason = find_browser()
    if chromium is None:
        pytest.skip(reason)
    with launch_chromium(WIDTH, HEIGHT, (f"--host-resolver-rules=MAP {REBIND} 127.0.0.1", "--no-proxy-server")) as d:
        yield d


@pytest.fixture
def srv():
    with OverlayServer(port=0, max_rate_hz=10.0, dock_token=new_token()) as server:
        yield server


def read(driver) -> dict:
    return driver.execute_script(READ)


def open_dock(driver, server: OverlayServer, query: str = "") -> dict:
    driver.get("about:blank")
    driver.get_log("browser")                  # forget what earlier pages logged
    set_viewport(driver, WIDTH, HEIGHT)
    driver.get(server.dock_url + query)
    return wait_until(lambda: (lambda d: d if d["conn"] == "live" else None)(read(driver)), 10, "the dock to connect")


def shows(driver, expected: dict, timeout: float = 5.0) -> dict:
    return wait_until(lambda: (lambda d: d if all(d[k] == v for k, v in expected.items()) else None)(read(driver)),
                      timeout, f"the dock to show {expected}")


def assert_fits(d: dict, width: int = WIDTH) -> None:
    assert d["scroll_width"] <= width, f"the dock is {d['scroll_width']} px wide in a {width}-px dock"
    assert d["widest"] <= width + 0.5, f"a card ends at {d['widest']} px in a {width}-px dock"


STATES = [
    ("no session", {"session": {"active": False}, "face": False, "emotion": ""},
     {"now": "no session", "kind": "none", "conf": "", "session": "", "neg": "21%", "neg_label": "last session"}),
    ("an emotion", {}, {"now": "happy", "kind": "emotion", "conf": "83%", "note": "confidence",
                        "session": "session 42:14 · face 93%"}),
    ("uncertain", {"emotion": "uncertain", "confidence": 0.31},
     {"now": "uncertain", "kind": "uncertain", "conf": ""}),
    ("no face", {"face": False, "emotion": ""}, {"now": "no face", "kind": "noface", "conf": ""}),
    ("paused", {"paused": True, "face": False, "emotion": ""}, {"now": "paused", "kind": "paused"}),
    ("no picture", {"dock": {"stale": True}}, {"now": "no picture", "kind": "stale"}),
    ("no new state", {"updated": time.time() - 3600}, {"now": "no picture", "kind": "stale"}),
    ("calibrating", {"calibration": {"active": True, "progress": 0.45, "applied": False, "message": ""}},
     {"calib": "calibrating 45%", "calib_bar": True, "calib_fill": 45.0}),
    ("not calibrated", {"calibration": {"active": False, "progress": 0.0, "applied": False, "message": ""}},
     {"calib": "not calibrated: press 'Calibrate to my face'", "calib_bar": False}),
    ("calibration refused", {"calibration": {"active": False, "progress": 0.0, "applied": False,
                                             "message": "calibration refused: too few face frames (12 of 30)"}},
     {"calib_msg": "calibration refused: too few face frames (12 of 30)"}),
    ("an error", {"dock": {"error": "the webcam source 'Cam' was removed"}},
     {"error": "the webcam source 'Cam' was removed"}),
    ("the engine's problem", {"dock": {"problem": "the analysis failed on 3 frames; last: boom"}},
     {"error": "the analysis failed on 3 frames; last: boom"}),
    ("shown on stream", {"dock": {"hidden_from_viewers": False}}, {"privacy": "shown on stream"}),
    ("no moments, no nudge", {"dock": {"moments": [], "moments_total": 0, "nudge": None}},
     {"moments": [], "moments_count": "0 so far", "moments_none": True, "nudge": "none"}),
    ("hostile text", {"emotion": "<img src=x onerror=alert(1)>", "dock": {
        "error": "<script>alert(1)</script>", "moments": [{"id": 1, "title": "<iframe src=//x>", "start_s": 1}]}},
     {"now": "<img src=x onerror=alert(1)>", "error": "<script>alert(1)</script>", "injected": 0}),
    ("garbage", {"session": "x", "dock": {"moments": "x", "rate_hz": "fast", "nudge": 3}, "calibration": None},
     {"now": "no session", "moments": [], "rate": "", "nudge": "none"}),
]


def test_every_state_renders_at_320_px(driver, srv):
    srv.publish_dock(full_state())
    d = open_dock(driver, srv)
    assert d["now"] == "happy" and d["neg"] == "21%" and d["rolling"] == "34%" and d["rolling_label"] == "last 5 min"
    assert d["neg_label"] == "this session"
    assert d["privacy"] == "hidden from viewers" and d["trend"] in ("rising", "steady", "falling")
    assert d["spark"].count("L") == 119
    assert d["calib"] == "calibrated to your face" and d["calib_msg"].startswith("calibrated: made")
    assert [m[:4] for m in d["moments"]] == [["41:20", "20:56", "Big laugh", "6 s…"],
                                             ["25:01", "20:40", "Tense stretch", "14 s"],
                                             ["10:10", "20:25", "Calm", "42 s"], ["2:05", "20:17", "Smiles", "8 s"]]
    assert [m[4] for m in d["moments"]] == [False, True, False, False]        # the negative one tinted
    assert d["moments_count"] == "4 so far" and not d["moments_none"]
    assert d["nudge"].startswith("Mostly tense for 10 minutes: a short break? (at 35:00, 7 min ago")
    assert d["rate"] == "analysing 5.0/s" and d["model"] == "model mindflow-ferplus-r3d" and d["error"] is None
    assert d["banner"] is None and d["conn_text"] == "live"
    assert_fits(d)
    for name, changes, expected in STATES:
        srv.publish_dock(full_state(**{"updated": time.time(), **changes}))
        seen = shows(driver, expected)
        assert_fits(seen)
        assert seen["conn"] == "live", name
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert not errors, f"the dock logged errors: {errors}"


@pytest.mark.parametrize("width", [300, 400])
def test_the_dock_fits_300_to_400_px(driver, srv, width):
    error = ("MindFlow could not write the session checkpoint in "
             "/home/someone/Documents/MindFlow/2026-12-06T20-15-03: the disk is full")
    srv.publish_dock(full_state(dock={"error": error}))
    open_dock(driver, srv)
    set_viewport(driver, width, HEIGHT)
    d = shows(driver, {"now": "happy"})
    assert_fits(d, width)
    set_viewport(driver, WIDTH, HEIGHT)


def test_a_change_shows_within_a_second(driver, srv):
    srv.publish_dock(full_state())
    open_dock(driver, srv)
    delays = []
    for emotion, share in [("sad", 0.25), ("surprise", 0.26), ("neutral", 0.27), ("angry", 0.3), ("happy", 0.31)]:
        time.sleep(0.3)
        sent = time.monotonic()
        srv.publish_dock(full_state(emotion=emotion, session={"negative_share": share}, updated=time.time()))
        shows(driver, {"now": emotion, "neg": f"{round(share * 100)}%"}, timeout=3)
        delays.append(time.monotonic() - sent)
    assert max(delays) < 1.0, f"the dock took {max(delays):.2f} s to show a change ({delays})"
    print(f"dock: a change shown after {', '.join(f'{d * 1000:.0f}' for d in delays)} ms")


def test_the_dock_says_when_mindflow_is_gone_and_comes_back(driver):
    token = new_token()
    first = OverlayServer(port=0, max_rate_hz=10.0, dock_token=token).start()
    port = first.port
    try:
        first.publish_dock(full_state())
        open_dock(driver, first)
    finally:
        first.stop()                                           # OBS closed the script
    gone = shows(driver, {"conn": "gone", "banner": "MindFlow is not running"})
    assert "comes back by itself" in driver.execute_script("return document.getElementById('banner-text').textContent")
    assert gone["conn_text"] == "offline"
    time.sleep(1.5)                                            # a few failed tries while it is down
    with OverlayServer(port=port, max_rate_hz=10.0, dock_token=token) as second:   # the script loads again
        started = time.monotonic()
        second.publish_dock(full_state(emotion="surprise", confidence=0.66))
        back = shows(driver, {"conn": "live", "now": "surprise", "conf": "66%", "banner": None}, timeout=10)
        took = time.monotonic() - started
        assert took < 5.0
        print(f"dock: live again {took:.2f} s after MindFlow came back")
        assert back["conn_text"] == "live"
        wait_until(lambda: second.sse_clients == 1, 5, "the dock's stream on the new server")
        second.publish_dock(full_state(emotion="fear"))
        shows(driver, {"now": "fear"}, timeout=1.5)


def test_a_dock_whose_token_changed_says_its_link_is_refused(driver):
    first = OverlayServer(port=0, max_rate_hz=10.0, dock_token=new_token()).start()
    port = first.port
    try:
        first.publish_dock(full_state())
        open_dock(driver, first)
    finally:
        first.stop()
    with OverlayServer(port=port, dock_token=new_token()) as second:   # another token (its file was deleted)
        second.publish_dock(full_state(emotion="sad"))
        d = shows(driver, {"conn": "refused", "banner": "This dock link is not valid any more"}, timeout=10)
        assert d["now"] == "happy", "nothing of the new server's state reached the old link"


class _OtherSite(http.server.BaseHTTPRequestHandler):
    """Another web site in the streamer's browser (no CSP of its own): a page that could try to read the dock."""

    PAGE = b"""<!DOCTYPE html><html><head><meta charset="utf-8"><style>
      body { margin: 0; background: #18181b; color: #efeff1; font: 13px/1.45 system-ui, sans-serif; }
      h1 { font-size: 12px; margin: 0; padding: 10px 12px; border-bottom: 1px solid #2f2f35; letter-spacing: .08em; }
      p { margin: 0; padding: 5px 12px; } b { font-weight: 600; }</style></head><body><h1>STREAM CHAT</h1>%s
      </body></html>"""
    LINES = [("#f87171", "pixelpaul", "that jump was insane"), ("#60a5fa", "mira_k", "hi from Lyon!"),
             ("#34d399", "slowtide", "gg"), ("#fbbf24", "n0va", "what keyboard is that?"),
             ("#c084fc", "quietfox", "first time here, love the vibe"), ("#f472b6", "drumroll", "LUL"),
             ("#60a5fa", "mira_k", "the boss has two phases right?"), ("#34d399", "slowtide", "take a break soon :)"),
             ("#f87171", "pixelpaul", "clip it!"), ("#a3e635", "jules", "how long have you been live?"),
             ("#fbbf24", "n0va", "this music is so chill"), ("#c084fc", "quietfox", "followed!"),
             ("#f472b6", "drumroll", "POG"), ("#38bdf8", "ari", "hydrate check"),
             ("#a3e635", "jules", "one more run"), ("#60a5fa", "mira_k", "you got this"),
             ("#f87171", "pixelpaul", "chat is so wholesome today"), ("#34d399", "slowtide", "o7"),
             ("#38bdf8", "ari", "what's the next game?"), ("#fbbf24", "n0va", "lol that face"),
             ("#c084fc", "quietfox", "gg wp"), ("#f472b6", "drumroll", "see you tomorrow")]

    def do_GET(self):  # noqa: N802 - http.server's name
        body = self.PAGE % b"".join(f'<p><b style="color:{c}">{n}</b> {t}</p>'.encode() for c, n, t in self.LINES)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def other_site():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OtherSite)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


TRY_TO_READ = """
const done = arguments[arguments.length - 1];
const url = arguments[0];
const out = {};
fetch(url).then((r) => r.text()).then((t) => { out.cors = 'read ' + t.length; })
  .catch((e) => { out.cors = 'refused'; })
  .then(() => fetch(url, {mode: 'no-cors'}))
  .then((r) => r.text().then((t) => { out.opaque = r.type + ':' + t.length; }))
  .catch(() => { out.opaque = 'refused'; })
  .then(() => new Promise((resolve) => {
    const es = new EventSource(url.replace('state.json', 'events'));
    es.onmessage = (ev) => { out.events = 'read'; es.close(); resolve(); };
    es.onerror = () => { out.events = out.events || 'refused'; es.close(); resolve(); };
    setTimeout(() => { out.events = out.events || 'nothing'; es.close(); resolve(); }, 3000);
  }))
  .then(() => done(out));
"""


def test_the_browser_is_refused_a_wrong_token_a_foreign_host_a_post_and_other_sites(driver, srv, other_site):
    srv.publish_dock(full_state())
    token, port = srv.dock_token, srv.port
    secret = "Tense stretch"
    for url in (f"http://127.0.0.1:{port}/dock/{new_token()}", f"http://127.0.0.1:{port}/dock",
                f"http://127.0.0.1:{port}/overlay/../dock/x", f"http://{REBIND}:{port}/dock/{token}",
                f"http://{REBIND}:{port}/dock/{token}/state.json", f"http://localhost.:{port}/dock/{token}"):
        driver.get(url)
        text = driver.execute_script("return document.body ? document.body.innerText : ''")
        assert text.startswith("403 Forbidden"), (url, text[:200])
        assert secret not in text and driver.execute_script("return !window.mindflowDock")

    open_dock(driver, srv)
    post = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(location.pathname + '/state.json', {method: 'POST', body: 'x'})"
        ".then((r) => r.text().then((t) => done([r.status, r.headers.get('allow'), t.includes(arguments[0])])))"
        ".catch((e) => done(['failed', String(e)]));", secret)
    assert post == [405, "GET, HEAD", False]

    driver.set_script_timeout(15)
    for site in (f"http://127.0.0.1:{other_site}/", f"http://{REBIND}:{other_site}/"):
        driver.get(site)
        out = driver.execute_async_script(TRY_TO_READ, f"http://127.0.0.1:{port}/dock/{token}/state.json")
        assert out["cors"] == "refused" and out["events"] in ("refused", "nothing"), (site, out)
        assert out["opaque"] in ("opaque:0", "refused"), (site, out)


def test_the_viewers_page_never_gets_the_dock_s_figures(driver, srv):
    """What the OBS side publishes while the share is hidden: the overlay page (on stream) has no negative share,
    no trend, no moments list, no error; the dock beside it has them all."""
    viewer = ViewerOverlay(srv, hide_negative=True)
    viewer.error = "the webcam source 'Cam' was removed"
    full = full_state()
    del full["dock"]
    viewer.publish(full)
    viewer.publish_dock({**full, "dock": full_state()["dock"]})
    driver.get("about:blank")
    set_viewport(driver, 420, 360)
    driver.get(srv.url)
    wait_until(lambda: driver.execute_script("return window.mindflowOverlay.mode()") == "live", 10, "the overlay")
    state = driver.execute_script("return window.mindflowOverlay.state()")
    assert state["private"] is True and "dock" not in state
    assert not {"negative_share", "rolling_negative_share", "trend", "profile"} & set(state["session"])
    text = driver.execute_script("return document.body.innerText")
    assert "21%" not in text and "Tense stretch" not in text and "removed" not in text
    assert driver.execute_script("return document.getElementById('neg-session').textContent") == "—"
    d = open_dock(driver, srv)
    assert d["neg"] == "21%" and d["error"] == "the webcam source 'Cam' was removed"
    assert d["privacy"] == "hidden from viewers" and d["moments"][1][2] == "Tense stretch"


def test_screenshots_dark_light_and_beside_a_chat(driver, srv, other_site, shot_dir):
    srv.publish_dock(full_state(updated=time.time()))
    shots = {}
    for theme, query in (("dark", ""), ("light", "?theme=light")):
        d = open_dock(driver, srv, query)
        assert d["light"] is (theme == "light")
        time.sleep(0.3)
        rgba = screenshot_rgba(driver, save_to=shot_dir / f"dock-{theme}.png")
        assert rgba.shape[:2] == (HEIGHT, WIDTH)
        rgb = rgba[..., :3].astype(np.float32)
        luma = rgb @ np.float32([0.299, 0.587, 0.114])
        assert rgb.std() > 25, f"the {theme} dock looks blank (pixel std {rgb.std():.1f})"
        assert (luma.mean() < 90) if theme == "dark" else (luma.mean() > 170), f"{theme}: mean luma {luma.mean():.0f}"
        shots[theme] = rgba
    driver.get(f"http://127.0.0.1:{other_site}/")
    chat = screenshot_rgba(driver)
    gap = np.full((HEIGHT, 4, 4), (12, 12, 14, 255), np.uint8)
    side = np.concatenate([chat, gap, shots["dark"]], axis=1)
    import cv2

    cv2.imwrite(str(shot_dir / "dock-beside-chat.png"), cv2.cvtColor(side, cv2.COLOR_RGBA2BGRA)[..., :3])
    assert side.shape[:2] == (HEIGHT, 2 * WIDTH + 4)
