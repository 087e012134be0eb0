"""The overlay page in a real headless Chromium, fed by a running OverlayServer with scripted states.

Skips (saying what to install) when chromium, chromedriver or selenium are missing; CI installs them.
Set ``MINDFLOW_SCREENSHOT_DIR`` to keep the screenshots.
"""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from obs_mindflow.overlay.server import OverlayServer

try:
    from browser import chromium_driver, screenshot_rgba, wait_until  # noqa: F401  (fixture)
except ImportError:  # tests/ is a package under another import mode
    from tests.browser import chromium_driver, screenshot_rgba, wait_until  # noqa: F401

pytestmark = pytest.mark.browser  # `make test-fast` leaves these out

LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
NEGATIVE = ["angry", "disgust", "fear", "sad"]

READ_DOM = """
const $ = (id) => document.getElementById(id);
const visible = (el) => !!el && getComputedStyle(el).display !== 'none' && el.getClientRects().length > 0;
return {
  emotion: $('emotion').textContent, confidence: $('confidence').textContent,
  neg_session: $('neg-session').textContent, neg_rolling: $('neg-rolling').textContent,
  rolling_label: $('rolling-label').textContent, duration: $('duration').textContent,
  coverage: $('coverage').textContent, face_on: $('face').classList.contains('on'),
  face_text: $('face-text').textContent, paused: visible($('paused')),
  conn: document.getElementById('root').dataset.conn, conn_visible: visible($('conn')),
  conn_text: $('conn').textContent, message: visible($('message')) ? $('message').textContent : '',
  probs: Array.from(document.querySelectorAll('#probs .p-name')).map((el, i) => ({
    label: el.textContent, negative: el.classList.contains('neg'),
    width: parseFloat(document.querySelectorAll('#probs .fill')[i].style.width),
    value: document.querySelectorAll('#probs .p-val')[i].textContent})),
  profile_segments: document.querySelectorAll('#profile-bar > div').length,
  spark: $('spark-line').getAttribute('d'),
  panels: Array.from(document.querySelectorAll('section[data-panel]')).filter(visible).map((el) => el.dataset.panel),
  root_width: document.getElementById('root').getBoundingClientRect().width,
  root_height: document.getElementById('root').getBoundingClientRect().height,
  light: document.getElementById('root').classList.contains('light'),
  images: document.querySelectorAll('img, iframe, object, embed').length,
};
"""


def state(emotion: str = "happy", confidence: float = 0.83, negative: float = 0.21, rolling: float = 0.30,
          face: bool = True, paused: bool = False, message: str = "", labels=LABELS, negatives=NEGATIVE) -> dict:
    probs = {label: round((1 - confidence) / (len(labels) - 1), 4) for label in labels}
    if emotion:
        probs[emotion] = confidence
    return {"model": "fer-mini-xception", "labels": labels, "negative_labels": negatives, "paused": paused,
            "face": face, "emotion": emotion, "confidence": confidence if emotion else 0.0,
            "probabilities": probs,
            "session": {"active": True, "duration_s": 1234.5, "coverage": 0.93,
                        "profile": {"happy": 0.51, "neutral": 0.30, "sad": 0.09, "angry": 0.05, "surprise": 0.05},
                        "negative_share": negative, "rolling_negative_share": rolling, "rolling_window_s": 300,
                        "trend": [[t * 10.0, 0.2 + 0.1 * np.sin(t / 8)] for t in range(120)]},
            "message": message, "updated": time.time()}


def dom(driver) -> dict:
    return driver.execute_script(READ_DOM)


def open_page(driver, srv: OverlayServer, query: str = "") -> None:
    driver.get(srv.url + query)
    wait_until(lambda: dom(driver)["conn"] in ("live", "polling"), 10, "the page to connect")


@pytest.fixture
def server():
    with OverlayServer(port=0, max_rate_hz=10.0) as srv:
        yield srv


FEED = [
    (state("happy", 0.83, 0.21, 0.30), {"emotion": "happy", "confidence": "83%", "neg_session": "21%",
                                        "neg_rolling": "30%", "face_on": True, "paused": False}),
    (state("sad", 0.612, 0.254, 0.5), {"emotion": "sad", "confidence": "61%", "neg_session": "25%",
                                       "neg_rolling": "50%", "face_on": True, "paused": False}),
    (state("", 0.0, 0.26, 0.45, face=False), {"emotion": "—", "confidence": "", "neg_session": "26%",
                                              "neg_rolling": "45%", "face_on": False, "face_text": "no face"}),
    (state("neutral", 0.995, 0.0, 1.0, paused=True, message="Paused by the streamer"),
     {"emotion": "neutral", "confidence": "100%", "neg_session": "0%", "neg_rolling": "100%", "paused": True,
      "message": "Paused by the streamer"}),
]


def test_the_page_follows_the_feed(chromium_driver, server):
    server.publish(FEED[0][0])
    open_page(chromium_driver, server)
    for sent, expected in FEED:
        server.publish(sent)
        seen = wait_until(lambda: (lambda d: d if all(d[k] == v for k, v in expected.items()) else None)(
            dom(chromium_driver)), 5, f"the page to show {expected}")
        assert seen["conn"] == "live" and not seen["conn_visible"]
        assert [p["label"] for p in seen["probs"]] == LABELS
        assert [p["label"] for p in seen["probs"] if p["negative"]] == NEGATIVE  # negative labels tinted
        top = max(sent["probabilities"], key=sent["probabilities"].get)
        for p in seen["probs"]:
            assert p["width"] == pytest.approx(sent["probabilities"][p["label"]] * 100, abs=0.11)
        if sent["emotion"]:
            assert next(p for p in seen["probs"] if p["label"] == top)["value"] == expected["confidence"]
        assert seen["rolling_label"] == "last 5 min" and seen["duration"] == "20:34" and seen["coverage"] == "93%"
        assert seen["profile_segments"] == 5 and seen["spark"].count("L") == 119


@pytest.mark.parametrize("sent, expected", [
    ({"emotion": "sad"}, {"emotion": "sad", "confidence": "—", "neg_session": "—", "duration": "—", "probs": []}),
    ({}, {"emotion": "—", "confidence": "", "face_on": False, "probs": []}),
    ({"labels": ["calm", "tense", "joy", "bored", "excited", "content", "focused", "x"],
      "negative_labels": ["tense"], "emotion": "focused", "confidence": 0.5, "face": True,
      "probabilities": {"focused": 0.5, "tense": 0.25, "zzz": 0.25}},
     {"emotion": "focused", "confidence": "50%", "face_on": True}),
    ({"labels": "not a list", "probabilities": {"a": 0.4, "b": 2.5, "c": "x"}, "emotion": 7, "confidence": None,
      "session": {"trend": [[0, 0.1], "junk", [1], [2, None], [3, 0.9]], "negative_share": -3,
                  "rolling_negative_share": 7, "rolling_window_s": 90}},
     {"emotion": "—", "neg_session": "0%", "neg_rolling": "100%", "rolling_label": "last 90 s"}),
    ({"message": "<img src=x onerror=alert(1)><script>x()</script>", "emotion": "<b>x</b>", "confidence": 0.5},
     {"message": "<img src=x onerror=alert(1)><script>x()</script>", "emotion": "<b>x</b>", "images": 0}),
])
def test_the_page_copes_with_any_labels_and_missing_fields(chromium_driver, server, sent, expected):
    server.publish(sent)
    chromium_driver.get("about:blank")  # the previous test's page may still be retrying its stopped server
    chromium_driver.get_log("browser")  # forget what earlier pages logged
    open_page(chromium_driver, server)
    seen = wait_until(lambda: (lambda d: d if all(d[k] == v for k, v in expected.items()) else None)(
        dom(chromium_driver)), 5, f"the page to show {expected}")
    if "labels" in sent and isinstance(sent["labels"], list):
        assert [p["label"] for p in seen["probs"]] == sent["labels"]
        assert [p["label"] for p in seen["probs"] if p["negative"]] == sent["negative_labels"]
    elif "probabilities" in sent:
        assert [p["label"] for p in seen["probs"]] == list(sent["probabilities"])
        assert [p["value"] for p in seen["probs"]] == ["40%", "100%", "—"]
    errors = [e for e in chromium_driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert not errors, f"the page logged errors: {errors}"


@pytest.mark.parametrize("query, expected_panels, light, width", [
    ("", ["emotion", "probs", "profile", "trend"], False, 420),
    ("?theme=light", ["emotion", "probs", "profile", "trend"], True, 420),
    ("?panels=trend,emotion", ["trend", "emotion"], False, 420),
    ("?panels=probs,bogus,probs", ["probs"], False, 420),
    ("?panels=bogus", ["emotion", "probs", "profile", "trend"], False, 420),
    ("?scale=0.5&theme=dark", ["emotion", "probs", "profile", "trend"], False, 210),
    ("?scale=1.5", ["emotion", "probs", "profile", "trend"], False, 630),
    ("?scale=-2", ["emotion", "probs", "profile", "trend"], False, 420),
])
def test_query_string_options(chromium_driver, server, query, expected_panels, light, width):
    server.publish(state())
    open_page(chromium_driver, server, query)
    seen = dom(chromium_driver)
    assert seen["panels"] == expected_panels
    assert seen["light"] is light
    assert seen["root_width"] == pytest.approx(width, abs=1)
    if not query:
        assert seen["root_height"] <= 360, "the default layout must fit a 420×360 browser source"


def test_screenshot_is_transparent_legible_and_not_blank(chromium_driver, server, shot_dir):
    server.publish(state(message="You have been live for 20 minutes"))
    open_page(chromium_driver, server)
    wait_until(lambda: dom(chromium_driver)["emotion"] == "happy", 5, "the state to render")
    time.sleep(0.5)  # bar transitions settle
    root = chromium_driver.execute_script(
        "const r = document.getElementById('root').getBoundingClientRect(); return [r.width, r.height];")

    # 1. transparent background: where no panel is drawn the page leaves alpha 0 for OBS to composite;
    #    the panels themselves are translucent so the video shows through
    rgba = screenshot_rgba(chromium_driver, transparent=True, save_to=shot_dir / "overlay-transparent.png")
    assert rgba.shape[:2] == (360, 420)
    alpha = rgba[..., 3]
    assert root[1] < 352, f"the default layout is {root[1]:.0f} px tall; keep it inside 360 px"
    assert alpha[int(root[1]) + 2:, :].max() == 0, "the area below the panels must stay transparent"
    assert (alpha > 0).mean() > 0.5, "the panels should cover most of the source"
    x0, y0, x1, y1 = chromium_driver.execute_script(
        "const r = document.getElementById('panel-profile').getBoundingClientRect();"
        "return [Math.floor(r.left), Math.floor(r.top), Math.ceil(r.right), Math.ceil(r.bottom)];")
    panel_alpha = np.median(alpha[y0 + 4:y1 - 4, x0 + 4:x1 - 4])
    assert 120 <= panel_alpha <= 235, f"panels should be translucent, median alpha {panel_alpha}"

    # 2. not blank: Chromium's default white backdrop, real content on top
    rgb = screenshot_rgba(chromium_driver, save_to=shot_dir / "overlay-default.png")[..., :3].astype(np.float32)
    assert rgb.std() > 30, f"the screenshot looks blank (pixel std {rgb.std():.1f})"
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 200, "too few colours for a rendered overlay"

    # 3. over a dark, video-like background the text is there: bright, thin strokes inside the panels
    chromium_driver.execute_script(
        "document.body.style.background = 'linear-gradient(135deg, #0b1d33, #303030 50%, #3d2a16)';")
    dark = screenshot_rgba(chromium_driver, save_to=shot_dir / "overlay-dark.png")[..., :3].astype(np.float32)
    chromium_driver.execute_script("document.body.style.background = '';")
    luma = dark @ np.float32([0.299, 0.587, 0.114])
    emotion_box = chromium_driver.execute_script(
        "const r = document.getElementById('emotion').getBoundingClientRect();"
        "return [Math.floor(r.left), Math.floor(r.top), Math.ceil(r.right), Math.ceil(r.bottom)];")
    x0, y0, x1, y1 = emotion_box
    word = dark[y0:y1, x0:x1]
    assert word.size and (word[..., 0] > 180).mean() > 0.08, "the emotion word is not drawn in its colour"
    probs_box = chromium_driver.execute_script(
        "const r = document.getElementById('probs').getBoundingClientRect();"
        "return [Math.floor(r.left), Math.floor(r.top), Math.ceil(r.right), Math.ceil(r.bottom)];")
    x0, y0, x1, y1 = probs_box
    region = luma[y0:y1, x0:x1]
    bright = (region > 170).mean()
    dark_share = (region < 60).mean()
    assert bright > 0.03 and dark_share > 0.3, f"no legible text over the panel: {bright:.3f} bright, " \
                                               f"{dark_share:.3f} dark"
    rows = (region > 170).any(axis=1)
    assert rows.sum() > 7 * 5, "fewer text rows than the 7 labels"
    print(f"screenshots in {shot_dir}: pixel std {rgb.std():.1f}, text pixels {bright:.1%} of the bars panel")


def test_the_page_reconnects_after_a_server_restart(chromium_driver):
    first = OverlayServer(port=0, max_rate_hz=10.0).start()
    port = first.port
    try:
        first.publish(state("happy", 0.83, 0.21, 0.30))
        open_page(chromium_driver, first)
        wait_until(lambda: dom(chromium_driver)["emotion"] == "happy", 5, "the first state")
    finally:
        first.stop()
    seen = wait_until(lambda: (lambda d: d if d["conn_visible"] and d["conn"] == "reconnecting" else None)(
        dom(chromium_driver)), 5, "the 'reconnecting…' notice")
    assert seen["conn_text"] == "reconnecting…"
    time.sleep(1.5)  # a few failed retries while the server is down
    with OverlayServer(port=port, max_rate_hz=10.0) as second:
        second.publish(state("surprise", 0.66, 0.12, 0.18))
        seen = wait_until(lambda: (lambda d: d if d["emotion"] == "surprise" and d["conn"] == "live" else None)(
            dom(chromium_driver)), 20, "the new server's state over a live stream")
        assert seen["confidence"] == "66%" and seen["neg_session"] == "12%" and seen["neg_rolling"] == "18%"
        assert not seen["conn_visible"]
        wait_until(lambda: second.sse_clients == 1, 5, "the page's stream on the new server")
        second.publish(state("fear", 0.4, 0.3, 0.35))
        wait_until(lambda: dom(chromium_driver)["emotion"] == "fear", 5, "updates after the reconnect")


def test_the_page_polls_when_every_stream_slot_is_taken(chromium_driver):
    with OverlayServer(port=0, max_clients=1, max_rate_hz=10.0) as srv:
        srv.publish(state("angry", 0.7, 0.4, 0.5))
        hog = socket.create_connection(("127.0.0.1", srv.port))
        hog.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n\r\n".encode())
        try:
            wait_until(lambda: srv.sse_clients == 1, 5, "the stream slot to be taken")
            chromium_driver.get(srv.url)
            seen = wait_until(lambda: (lambda d: d if d["emotion"] == "angry" else None)(dom(chromium_driver)),
                              10, "the state through polling")
            assert seen["conn"] == "polling" and not seen["conn_visible"]
            srv.publish(state("disgust", 0.55, 0.45, 0.5))
            wait_until(lambda: dom(chromium_driver)["emotion"] == "disgust", 5, "the next state through polling")
        finally:
            hog.close()
        # once the slot is free the page goes back to a live stream by itself (EventSource recreated)
        wait_until(lambda: dom(chromium_driver)["conn"] == "live", 20, "the page to get its stream back")
        chromium_driver.get("about:blank")


READ_CALIBRATION = """
const $ = (id) => document.getElementById(id);
const visible = (el) => !!el && getComputedStyle(el).display !== 'none' && el.getClientRects().length > 0;
return {chip: visible($('calib')) ? $('calib-text').textContent : null, bar: parseFloat($('calib-bar').style.width) || 0,
        note: visible($('calib-msg')) ? $('calib-msg').textContent : null,
        trend: visible($('panel-trend')), profile_bar: visible($('profile-bar')),
        duration: $('duration').textContent, neg: $('neg-session').textContent};
"""


def test_the_page_shows_the_calibration_and_hides_private_numbers(chromium_driver, server):
    s = state()
    s["calibration"] = {"active": True, "progress": 0.45, "applied": False, "message": ""}
    server.publish(s)
    chromium_driver.get("about:blank")
    open_page(chromium_driver, server)

    def seen(expected):
        return wait_until(lambda: (lambda d: d if all(d[k] == v for k, v in expected.items()) else None)(
            chromium_driver.execute_script(READ_CALIBRATION)), 5, f"the page to show {expected}")

    d = seen({"chip": "calibrating 45%", "trend": True, "profile_bar": True})
    assert d["bar"] == pytest.approx(45, abs=0.2) and "look at the camera" in d["note"]
    s["calibration"] = {"active": False, "progress": 1.0, "applied": True,
                        "message": "calibrated: made 2026-11-28 20:15 from 96 face frames over 20 s"}
    server.publish(s)
    seen({"chip": "calibrated", "note": "calibrated: made 2026-11-28 20:15 from 96 face frames over 20 s"})
    s["calibration"] = {"active": True, "progress": 0.1, "applied": True, "message": ""}
    server.publish(s)
    seen({"chip": "calibrating 10%"})
    s["calibration"] = {"active": False, "progress": 0.0, "applied": True,
                        "message": "calibration refused: the calibration read 'happy' on 90 % of the face frames"}
    server.publish(s)
    seen({"chip": "calibrated", "note": s["calibration"]["message"]})    # the earlier baseline still applies

    private = state()                                  # what MindFlow publishes while the share is hidden
    private["session"] = {"active": True, "duration_s": 1234.5, "coverage": 0.93}
    private["private"] = True
    server.publish(private)
    d = seen({"trend": False, "profile_bar": False, "chip": None})
    assert d["duration"] == "20:34" and d["neg"] == "—"


def test_the_negative_share_stays_hidden_while_the_page_connects(chromium_driver, server):
    """Until MindFlow's first state says whether the share is private, the page shows no negative share (issue 23:
    the "negative · session" and "recent" panels showed while connecting with the share hidden from viewers)."""
    chromium_driver.get("about:blank")
    chromium_driver.get(server.url)                    # nothing published yet: connecting, then live with no state
    for _ in range(6):
        assert chromium_driver.execute_script(READ_CALIBRATION)["trend"] is False
        time.sleep(0.25)
    private = state()
    private["session"] = {"active": True, "duration_s": 12.0, "coverage": 0.9}
    private["private"] = True
    server.publish(private)
    wait_until(lambda: chromium_driver.execute_script(READ_CALIBRATION)["duration"] == "0:12", 5, "the state")
    assert chromium_driver.execute_script(READ_CALIBRATION)["trend"] is False
    server.publish(state())                            # the streamer shows the share: the panel appears
    wait_until(lambda: chromium_driver.execute_script(READ_CALIBRATION)["trend"], 5, "the trend panel")


READ_MOMENT = """
var m = document.getElementById('moment');
return {shown: !m.classList.contains('hidden'), text: m.textContent};
"""


def test_a_moment_toast_only_when_the_url_asks_for_it(chromium_driver, server):
    """A moment that has just started (the state's ``moment``) shows its title as a toast with ``?moments=1``, once
    per moment, and goes away; without the option the page never shows it."""
    s = state()
    s["moment"] = {"id": 1, "title": "Big laugh", "emotion": "happy", "negative": False, "start_s": 12.0}
    server.publish(s)
    chromium_driver.get("about:blank")
    open_page(chromium_driver, server)
    time.sleep(0.6)
    assert chromium_driver.execute_script(READ_MOMENT) == {"shown": False, "text": ""}

    chromium_driver.get("about:blank")
    open_page(chromium_driver, server, "?moments=1")
    wait_until(lambda: chromium_driver.execute_script(READ_MOMENT) == {"shown": True, "text": "Big laugh"}, 5,
               "the moment's toast")
    wait_until(lambda: not chromium_driver.execute_script(READ_MOMENT)["shown"], 8, "the toast to go away")
    server.publish({**s, "updated": time.time()})          # the same moment again: no second toast
    time.sleep(0.6)
    assert not chromium_driver.execute_script(READ_MOMENT)["shown"]
    s2 = {**s, "moment": {**s["moment"], "id": 2, "title": "Surprise!"}, "updated": time.time()}
    server.publish(s2)
    wait_until(lambda: chromium_driver.execute_script(READ_MOMENT) == {"shown": True, "text": "Surprise!"}, 5,
               "the next moment's toast")
    wait_until(lambda: not chromium_driver.execute_script(READ_MOMENT)["shown"], 8, "the toast to go away")
    server.publish({**s, "moment": None, "updated": time.time()})     # the moment is over; the session ends
    time.sleep(0.6)
    server.publish({**s, "updated": time.time()})          # the next session: its moment 1 has the same title
    wait_until(lambda: chromium_driver.execute_script(READ_MOMENT) == {"shown": True, "text": "Big laugh"}, 5,
               "the next session's first moment's toast")


@pytest.mark.parametrize("lang", ["de-DE", "ru-RU", "ja-JP", "fr-FR"])
def test_the_page_speaks_the_viewers_language_and_long_names_fit(chromium_driver, server, lang):
    from obs_mindflow import i18n
    from obs_mindflow.engine import views

    words = i18n.words(lang)
    sent = views.viewer_overlay_state(state("surprise", 0.7, labels=LABELS + ["contempt"]), False, words)
    server.publish(sent)
    open_page(chromium_driver, server)
    names = [words.emotion(label) for label in LABELS + ["contempt"]]
    seen = wait_until(lambda: (lambda d: d if [p["label"] for p in d["probs"]] == names else None)(
        dom(chromium_driver)), 5, f"the page to name the emotions in {lang}")
    assert seen["emotion"] == words.emotion("surprise") and seen["rolling_label"] == words("overlay.last_minutes", n=5)
    page = chromium_driver.execute_script(
        "return {lang: document.documentElement.lang, title: document.getElementById('session-title').textContent,"
        " cut: Array.from(document.querySelectorAll('#probs .p-name, #emotion'))"
        "   .filter((el) => el.scrollWidth > el.clientWidth + 1).map((el) => el.textContent),"
        " width: document.getElementById('root').scrollWidth, room: document.getElementById('root').clientWidth};")
    assert page["lang"] == lang and page["title"] == words("overlay.session")
    assert not page["cut"], f"cut off in {lang}: {page['cut']}"
    assert page["width"] <= page["room"], page
