"""The personal baseline: the correction's algebra (identity, a biased resting face recovered), the collector's
verdicts, files (round trip, corrupt, foreign), the live host's calibration, and the CLI on real clips."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ROOT, paste

from obs_mindflow.engine.baseline import (LOG_FLOOR, MAX_GAIN, MIN_FACE_FRAMES, Baseline, BaselineCollector,
                                          BaselineCorrection, BaselineError, correction_for, reference_of)
from obs_mindflow.engine.results import AnalysisResult

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NEG = ("angry", "disgust", "fear", "sad")
REF = np.array([0.13, 0.015, 0.115, 0.055, 0.22, 0.035, 0.43])


class Card:
    name = "test-model"
    labels = LABELS
    negative_labels = NEG
    neutral_reference = tuple(REF)
    neutral_reference_log = tuple(np.log(REF))
    neutral_reference_std_log = (1.5,) * 7          # how much neutral faces of many people vary, per class


def result(t, probs, face=True):
    probs = np.asarray(probs, np.float32)[None, :] if face else None
    boxes = [[10, 10, 60, 60]] if face else np.zeros((0, 4))
    return AnalysisResult(seq=1, timestamp=t, frame_size=(200, 200), labels=LABELS, boxes=boxes, probabilities=probs)


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def collect(frames, seconds=10.0, card=Card()):
    c = BaselineCollector(card, seconds=seconds)
    for i, p in enumerate(frames):
        c.add(result(i * 0.2, p))
    return c


# ---------------------------------------------------------------------------------------------------------------
# The correction
# ---------------------------------------------------------------------------------------------------------------

def test_identity_when_the_baseline_is_the_reference():
    b = Baseline("test-model", LABELS, tuple(REF), tuple(np.log(REF)), "2026-11-28T20:00:00", 20, 100, 100)
    corr = BaselineCorrection(b, Card.neutral_reference_log)
    p = softmax(np.random.default_rng(0).normal(size=(50, 7))).astype(np.float32)
    np.testing.assert_allclose(corr(p), p, atol=1e-6)
    assert np.allclose(corr.weights, 1.0)


def test_a_biased_resting_face_is_recovered():
    """A person whose face adds +2.5 to the 'sad' logit and +1.5 to 'fear' (glasses, a resting face): uncorrected,
    their calm face reads negative; calibrated on 20 s of it, calm reads neutral and a smile still reads happy."""
    rng = np.random.default_rng(1)
    bias = np.zeros(7)
    bias[LABELS.index("sad")], bias[LABELS.index("fear")] = 2.5, 1.5

    def frames(n, expression=None, strength=4.0):
        z = np.log(REF) + rng.normal(0, 0.5, size=(n, 7)) + bias
        if expression:
            z[:, LABELS.index(expression)] += strength
        return softmax(z)

    calm = frames(100)
    neg = np.isin(LABELS, NEG)
    assert (calm.argmax(1) == LABELS.index("neutral")).mean() < 0.2      # uncorrected: calm reads negative
    baseline = collect(calm).finish()
    corr = BaselineCorrection(baseline, Card.neutral_reference_log)
    test_calm, smile = corr(frames(400).astype(np.float32)), corr(frames(400, "happy").astype(np.float32))
    unbiased = softmax(np.log(REF) + rng.normal(0, 0.5, size=(400, 7)))      # the same face without the bias
    neutral = LABELS.index("neutral")
    # the shrinkage towards the reference (10 pseudo-frames for 100 real ones) leaves ~9 % of the bias: a few points
    assert (test_calm.argmax(1) == neutral).mean() > (unbiased.argmax(1) == neutral).mean() - 0.08
    assert neg[test_calm.argmax(1)].mean() < neg[unbiased.argmax(1)].mean() + 0.08
    assert abs(test_calm.mean(0)[neg].sum() - unbiased.mean(0)[neg].sum()) < 0.05
    assert (smile.argmax(1) == LABELS.index("happy")).mean() > 0.9       # real expressions still come through


def test_a_class_never_seen_at_rest_is_not_amplified_without_bound():
    p = np.full(7, 1e-6)
    p[LABELS.index("neutral")] = 1 - 6e-6
    baseline = collect([p] * MIN_FACE_FRAMES).finish()         # happy at 1e-6 (log floor) at rest
    corr = BaselineCorrection(baseline, Card.neutral_reference_log)
    assert corr.weights.max() / corr.weights.min() < 1 / LOG_FLOOR


# ---------------------------------------------------------------------------------------------------------------
# The deviation from the person's own rest
# ---------------------------------------------------------------------------------------------------------------

def _steady_rest(n=100, jitter=0.2, seed=1):
    """A face the model reads as neutral at rest, steadier than faces in general (log σ ≈ ``jitter``)."""
    rng = np.random.default_rng(seed)
    rest = np.log(np.array([0.02, 0.005, 0.01, 0.03, 0.04, 0.02, 0.875]))
    return [softmax(rest + rng.normal(0, jitter, 7)) for _ in range(n)]


def test_the_calibration_keeps_the_spread_and_a_file_round_trips_it(tmp_path):
    b = collect(_steady_rest()).finish()
    neutral = LABELS.index("neutral")                      # near 0.9 at rest: its log hardly moves
    assert b.std_log is not None and all(0.1 < v < 0.35 for i, v in enumerate(b.std_log) if i != neutral)
    assert Baseline.load(b.save(tmp_path / "b.json")).std_log == pytest.approx(b.std_log, abs=1e-6)
    old = b.to_dict()
    del old["std_log"]                                     # a file from an earlier MindFlow: the shift alone
    assert correction_for(Baseline.from_dict(old), Card()).method == "shift"
    bad = dict(b.to_dict(), std_log=[-1] * 7)
    with pytest.raises(BaselineError, match="std_log"):
        Baseline.from_dict(bad)


def test_a_frown_that_is_plain_on_this_face_reads_negative_the_rest_does_not():
    """The shift changes nothing for a face read neutral at rest; the deviation makes a move away from this face's
    own rest count as much as it would for a typical face — and a frame at rest still reads neutral."""
    frames = _steady_rest()
    b = collect(frames).finish()
    shift, dev = correction_for(b, Card(), "shift"), correction_for(b, Card())
    assert shift.method == "shift" and dev.method == "deviation"
    assert np.all(dev.gains >= 1) and np.all(dev.gains <= MAX_GAIN) and dev.gains.max() > 2
    rest = np.array(frames[:20], np.float32)
    for corr in (shift, dev):
        assert (corr(rest).argmax(1) == LABELS.index("neutral")).all()
    frown = np.log(np.array([0.02, 0.005, 0.01, 0.03, 0.04, 0.02, 0.875]))
    frown[LABELS.index("sad")] += 0.5                      # 2.5 of this face's σ, a third of faces in general's
    p = softmax(frown)[None].astype(np.float32)
    neg = [LABELS.index(x) for x in NEG]
    assert dev(p)[0, neg].sum() > shift(p)[0, neg].sum() + 0.05
    assert dev(p)[0].argmax() == LABELS.index("sad") and shift(p)[0].argmax() == LABELS.index("neutral")


def test_without_gain_the_deviation_is_the_shift():
    b = collect(_steady_rest()).finish()
    p = np.array(_steady_rest(30, jitter=1.0, seed=7), np.float32)
    one = BaselineCorrection(b, Card.neutral_reference_log, reference_std=Card.neutral_reference_std_log, max_gain=1)
    assert one.method == "shift"
    assert np.allclose(one(p), correction_for(b, Card(), "shift")(p), atol=1e-6)
    varied = collect(_steady_rest(jitter=3.0)).finish()    # a face more variable than faces in general: no damping
    assert np.all(correction_for(varied, Card()).gains == 1.0)


# ---------------------------------------------------------------------------------------------------------------
# The collector's verdicts
# ---------------------------------------------------------------------------------------------------------------

def test_too_few_face_frames_is_refused_with_what_to_do():
    c = BaselineCollector(Card(), seconds=5)
    for i in range(101):
        c.add(result(i * 0.05, REF, face=i < MIN_FACE_FRAMES - 1))
    assert c.done and c.face_frames == MIN_FACE_FRAMES - 1 and c.frames == 101
    with pytest.raises(BaselineError, match=f"only {MIN_FACE_FRAMES - 1} frames with a face.*calibrate again"):
        c.finish()


@pytest.mark.parametrize("label, refused", [("happy", True), ("surprise", True), ("sad", False), ("fear", False)])
def test_a_held_expressive_face_is_refused_a_negative_reading_is_not(label, refused):
    p = np.full(7, 0.02)
    p[LABELS.index(label)] = 0.88
    c = collect([p / p.sum()] * 50)
    if refused:
        with pytest.raises(BaselineError, match=f"'{label}' on 100 %.*not a held expression"):
            c.finish()
    else:
        assert c.finish().face_frames == 50      # a resting face read as negative is what calibration corrects


def test_the_refusals_say_their_reason_in_the_panels_language():
    """The panel speaks OBS's language: a refusal carries its catalogue key and values, the emotion named there too;
    without a language (the command line) it is the English message."""
    from obs_mindflow.i18n import words
    c = BaselineCollector(Card(), seconds=5)
    for i in range(101):
        c.add(result(i * 0.05, REF, face=i < 3))
    with pytest.raises(BaselineError) as few:
        c.finish()
    assert few.value.say() == str(few.value) and few.value.say(words("en-US")) == str(few.value)
    assert few.value.say(words("de-DE")).startswith(f"nur 3 Bilder mit Gesicht in 5 s (mindestens {MIN_FACE_FRAMES}")
    p = np.full(7, 0.02)
    p[LABELS.index("happy")] = 0.88
    with pytest.raises(BaselineError) as held:
        collect([p / p.sum()] * 50).finish()
    assert held.value.say(words("en-US")) == str(held.value)
    assert held.value.say(words("ja-JP")).startswith("顔が写ったフレームの 100 % が「喜び」と読まれました")
    made = Baseline("test-model", LABELS, tuple(REF), tuple(np.log(REF)), "2026-11-28T20:00:00", 20, 96, 100)
    assert made.describe(words("en-US")) == made.describe() == "made 2026-11-28 20:00 from 96 face frames over 20 s"
    assert made.describe(words("fr-FR")) == "établie le 2026-11-28 20:00 à partir de 96 images avec visage en 20 s"


def test_a_model_without_reference_cannot_be_calibrated():
    class NoRef(Card):
        neutral_reference_log = None
    with pytest.raises(BaselineError, match="no neutral reference"):
        collect([REF] * 50, card=NoRef()).finish()


# ---------------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture
def baseline():
    return collect([REF] * 40).finish(source="test")


def test_file_round_trip(baseline, tmp_path):
    path = baseline.save(tmp_path / "me.json")
    again = Baseline.load(path)
    assert again.labels == LABELS and again.model == "test-model" and again.face_frames == 40
    np.testing.assert_allclose(again.probabilities, baseline.probabilities, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["me.json"]          # no temporary file left


@pytest.mark.parametrize("text, match", [
    ("not json {", "not valid JSON"),
    ("[1, 2]", "not a mindflow.baseline"),
    (json.dumps({"format": "mindflow.baseline", "version": 9}), "version 9"),
    ("DROP:labels", "KeyError"),
    ("SET:probabilities=[0.5, 0.5]", "2 probabilities"),
    ("SET:probabilities=[1, 1, 1, 1, 1, 1, 1]", "not a distribution"),
    ("SET:mean_log=[1, 1, 1, 1, 1, 1, 1]", "mean logs"),
    ("SET:face_frames=0", "inconsistent"),
])
def test_corrupt_files_are_refused_with_a_clear_message(baseline, tmp_path, text, match):
    doc = baseline.to_dict()
    if text.startswith("DROP:"):
        del doc[text[5:]]
        text = json.dumps(doc)
    elif text.startswith("SET:"):
        key, value = text[4:].split("=", 1)
        doc[key] = json.loads(value)
        text = json.dumps(doc)
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(BaselineError, match=match) as err:
        Baseline.load(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_another_model_or_label_order_is_never_applied(baseline):
    class Other(Card):
        name = "other-model"
    with pytest.raises(BaselineError, match="made with the model 'test-model', not 'other-model'"):
        baseline.check_model(Other())
    swapped = replace(baseline, labels=LABELS[::-1])
    with pytest.raises(BaselineError, match="labels .* are not the model's"):
        swapped.check_model(Card())
    baseline.check_model(Card())


# ---------------------------------------------------------------------------------------------------------------
# The live host (real model, real photos)
# ---------------------------------------------------------------------------------------------------------------

def _calibrate_host(host, frame, seconds=2.0):
    events = []
    host.bus.subscribe(events.append, ("calibration_done", "calibration_failed"))
    host.start_calibration(seconds=seconds)
    assert host.capturing and not host.active             # frames are wanted outside a session too
    t = 100.0
    while host.calibrating and t < 110:
        host.submit(frame, t)
        host.analyzer.wait_for(host.analyzer.stats().submitted, timeout=10)
        t += 0.05
    return events


def test_host_calibrates_applies_and_reports(default_model, hopper, tmp_path):
    from obs_mindflow.engine.host import SessionHost

    with SessionHost(default_model, report_root=tmp_path, log=lambda *a: None) as host:
        events = _calibrate_host(host, paste((360, 640), hopper[:360, :400], 120, 0))
        assert [e.kind for e in events] == ["calibration_done"], events
        assert host.baseline is not None and host.analyzer.transforms
        assert host.baseline.model == default_model.card.name and host.baseline.face_frames >= MIN_FACE_FRAMES
        assert "calibrated to your face" in host.status_line()
        assert host.view().calibrated and host.overlay_state()["calibration"]["applied"] is True
        host.start_session("Webcam")
        assert host.recorder.session.calibration["applied"] is True
        host.clear_baseline()
        assert host.baseline is None and not host.analyzer.transforms


def test_host_refuses_a_smiling_calibration_and_keeps_the_previous_state(default_model, astronaut, tmp_path):
    from obs_mindflow.engine.host import SessionHost

    with SessionHost(default_model, report_root=tmp_path, log=lambda *a: None) as host:
        events = _calibrate_host(host, paste((360, 640), astronaut[:360], 60, 0))
        assert [e.kind for e in events] == ["calibration_failed"]
        assert "'happy'" in events[0].message and host.baseline is None and not host.analyzer.transforms
        assert host.calibration_message.startswith("calibration refused")


def test_reference_of_a_bundled_card(default_model):
    ref = reference_of(default_model.card)
    assert ref.shape == (len(default_model.labels),) and (ref < 0).all()


# ---------------------------------------------------------------------------------------------------------------
# The CLI on real clips
# ---------------------------------------------------------------------------------------------------------------

def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "obs_mindflow", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=180)


@pytest.fixture(scope="module")
def hopper_clip(tmp_path_factory):
    """2 s of 25 fps video of the neutral Grace Hopper photo, slowly zooming (a talking head stands still less)."""
    from conftest import load_photo

    img = load_photo("grace_hopper.jpg")
    path = tmp_path_factory.mktemp("clips") / "hopper-2s.mp4"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (480, 270))
    for i in range(50):
        s = 0.42 + 0.002 * i
        small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        out.write(paste((270, 480), small[:270, :480], 120, 0))
    out.release()
    return path


def test_cli_calibrates_on_2_seconds_of_25_fps_and_applies_the_file(hopper_clip, tmp_path):
    out = tmp_path / "me.json"
    cal = run_cli("calibrate", str(hopper_clip), "--seconds", "5", "--rate", "0", "--out", str(out))
    assert cal.returncode == 0, cal.stderr
    baseline = Baseline.load(out)
    assert MIN_FACE_FRAMES <= baseline.face_frames <= 50 and baseline.seconds <= 2.0   # the clip is shorter than 5 s
    run = run_cli("analyze", str(hopper_clip), "--rate", "0", "--baseline", str(out), "--report-dir",
                  str(tmp_path / "reports"), "-q")
    assert run.returncode == 0, run.stderr
    summary = json.loads(next((tmp_path / "reports").glob("*/summary.json")).read_text())
    cal_doc = summary["calibration"]
    assert cal_doc["applied"] is True and cal_doc["face_frames"] == baseline.face_frames
    assert cal_doc["model"] == baseline.model


def test_cli_calibrate_seconds_on_the_same_video(hopper_clip, tmp_path):
    run = run_cli("analyze", str(hopper_clip), "--rate", "0", "--calibrate-seconds", "2", "--report-dir",
                  str(tmp_path), "-q")
    assert run.returncode == 0, run.stderr
    summary = json.loads(next(tmp_path.glob("*/summary.json")).read_text())
    assert summary["calibration"]["applied"] is True and summary["stats"]["negative_share"] == 0.0


def test_cli_refuses_a_smiling_calibration_with_exit_3(tmp_path):
    from conftest import SAMPLE

    run = run_cli("calibrate", str(SAMPLE), "--seconds", "8", "--out", str(tmp_path / "x.json"))
    assert run.returncode == 3, run.stderr
    assert "calibration refused" in run.stderr and "'happy'" in run.stderr and not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("content, code, match", [
    ("{broken", 2, "not valid JSON"),
    ("FOREIGN", 2, "made with the model 'someone-else'"),
])
def test_cli_bad_baseline_files(hopper_clip, tmp_path, content, code, match):
    path = tmp_path / "b.json"
    if content == "FOREIGN":
        b = collect([REF] * 40).finish()
        path.write_text(replace(b, model="someone-else").to_json())
    else:
        path.write_text(content)
    run = run_cli("analyze", str(hopper_clip), "--baseline", str(path), "--no-report", "-q")
    assert run.returncode == code and match in run.stderr
    assert len([ln for ln in run.stderr.splitlines() if ln.startswith("error:")]) == 1
    assert Path(path).exists()                                     # nothing deleted
