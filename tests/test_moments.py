"""Moments (obs_mindflow.engine.session.moments): episodes found in synthetic result streams with known episodes,
their events through the Session, checkpoints, ranking, and the YouTube chapters made from them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from obs_mindflow.engine.results import AnalysisResult
from obs_mindflow.engine.session.events import MOMENT_ENDED, MOMENT_STARTED
from obs_mindflow.engine.session.moments import (Moment, MomentDetector, MomentOptions, chapter_title,
                                                 make_chapters, moments_from_events, ranked)
from obs_mindflow.engine.session.session import Session

FER = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NEG = ("angry", "disgust", "fear", "sad")


def res(t: float, emotion: str, p: float = 0.8) -> AnalysisResult:
    """A result at ``t`` showing ``emotion`` ("" no face, "uncertain") with smoothed probability ``p`` for it (the
    rest on neutral, as a face read against a resting one; for neutral itself, spread evenly)."""
    if not emotion:
        return AnalysisResult.empty(FER, timestamp=t)
    sm = np.full(len(FER), 0.0, np.float32)
    if emotion == "neutral":
        sm[:] = (1 - p) / (len(FER) - 1)
        sm[FER.index(emotion)] = p
    elif emotion in FER:
        sm[FER.index(emotion)] = p
        sm[FER.index("neutral")] = 1 - p
    else:
        sm[:] = 1 / len(FER)
    return AnalysisResult(seq=1, timestamp=t, frame_size=(64, 48), labels=FER, boxes=[[8, 8, 24, 24]],
                          emotion=emotion, confidence=float(sm.max()), smoothed=sm)


def stream(spec, rate: float = 5.0, t0: float = 100.0):
    """Results for ``spec``: ``[(seconds, emotion, probability), …]`` played one after another at ``rate`` Hz,
    then one final no-face result. Timestamps start at ``t0`` (session time 0)."""
    out, t = [], 0.0
    for seconds, emotion, p in spec:
        n = int(round(seconds * rate))
        for i in range(n):
            out.append(res(t0 + t + i / rate, emotion, p))
        t += n / rate
    out.append(res(t0 + t, ""))
    return out


def detect(spec, rate: float = 5.0, options: MomentOptions | None = None):
    """Run ``spec`` through a Session with a MomentDetector; returns (moments, events)."""
    det = MomentDetector(FER, NEG, options)
    s = Session(FER, NEG, rules=(det,))
    events = []
    for r in stream(spec, rate):
        events.extend(s.add(r))
    events.extend(s.close())
    return list(s.moments()), events


# (spec, expected moments as (kind, emotion, negative, start_s, end_s, seconds))
CASES = [
    pytest.param([(12, "happy", 0.9), (18, "neutral", 0.8)],
                 [("sustained", "happy", False, 0, 12, 12), ("sustained", "neutral", False, 12, 30, 18)],
                 id="happy-then-calm"),
    pytest.param([(3, "happy", 0.6), (3, "neutral", 0.8)], [], id="too-short-and-too-weak"),
    pytest.param([(6, "neutral", 0.6), (2, "surprise", 0.85), (6, "neutral", 0.6)],
                 [("spike", "surprise", False, 6, 8, 2)], id="surprise-spike"),
    pytest.param([(4, "neutral", 0.99)], [], id="calm-never-spikes"),
    pytest.param([(7, "sad", 0.6), (5, "angry", 0.6), (5, "happy", 0.6)],
                 [("sustained", "sad", True, 0, 12, 12), ("sustained", "happy", False, 12, 17, 5)],
                 id="negative-stretch-across-labels"),
    pytest.param([(8, "angry", 0.6)], [], id="short-weak-negative"),
    pytest.param([(8, "angry", 0.8)], [("spike", "angry", True, 0, 8, 8)], id="short-intense-negative"),
    pytest.param([(4, "happy", 0.6), (1, "", 0), (4, "happy", 0.6)],
                 [("sustained", "happy", False, 0, 9, 8)], id="no-face-blip-bridged"),
    pytest.param([(6, "happy", 0.6), (1, "uncertain", 0), (6, "happy", 0.6)],
                 [("sustained", "happy", False, 0, 13, 12)], id="uncertain-blip-bridged-not-counted"),
    pytest.param([(4, "happy", 0.6), (3, "", 0), (4, "happy", 0.6)], [], id="long-gap-splits"),
    pytest.param([(4, "happy", 0.6), (3, "uncertain", 0), (4, "happy", 0.6)], [], id="long-uncertain-splits"),
    pytest.param([(6, "happy", 0.6), (2, "neutral", 0.6), (6, "happy", 0.6)],
                 [("sustained", "happy", False, 0, 6, 6), ("sustained", "happy", False, 8, 14, 6)],
                 id="another-label-ends-at-once"),
]


@pytest.mark.parametrize("spec, expected", CASES)
@pytest.mark.parametrize("rate", [5.0, 30.0])
def test_known_episodes(spec, expected, rate):
    moments, _ = detect(spec, rate)
    got = [(m.kind, m.emotion, m.negative, m.start_s, m.end_s, m.seconds) for m in moments]
    assert len(got) == len(expected), got
    for g, e in zip(got, expected):
        assert g[:3] == e[:3]
        assert g[3:] == pytest.approx(e[3:], abs=0.01), (g, e)


def test_peak_mean_and_uncertain_time_are_left_out():
    spec = [(3, "happy", 0.6), (3, "happy", 0.9), (1, "uncertain", 0), (3, "happy", 0.6)]
    (m,), _ = detect(spec)
    assert m.peak == pytest.approx(0.9) and 3.0 <= m.peak_s - 0 < 6.0
    assert m.seconds == pytest.approx(9.0)                 # the uncertain second is not in it
    assert m.mean == pytest.approx((6 * 0.6 + 3 * 0.9) / 9, abs=1e-4)
    assert (m.start_s, m.end_s) == pytest.approx((0.0, 10.0))


def test_a_long_pause_between_results_splits_a_moment():
    det = MomentDetector(FER, NEG)
    s = Session(FER, NEG, rules=(det,), max_gap_seconds=2.0)
    for i in range(31):                                   # happy 0..6 s
        s.add(res(i * 0.2, "happy", 0.6))
    for i in range(31):                                   # the analysis paused 60 s, happy again 66..72 s
        s.add(res(66 + i * 0.2, "happy", 0.6))
    s.close()
    # the last result before the pause stands for max_interval_s (2 s), as in the statistics
    assert [x for m in s.moments() for x in (m.start_s, m.end_s)] == pytest.approx([0, 8.0, 66, 72], abs=0.01)


@pytest.mark.parametrize("p, started_at, started_kind", [(0.6, 5.0, "sustained"), (0.9, 5.0, "sustained")])
def test_events_started_when_qualified_ended_at_the_next_label(p, started_at, started_kind):
    """Started as soon as the episode is held ``min_seconds`` (intense or not: an intense smile held on is "Smiles",
    not a spike), with ``start_s`` back-dated; ended with the final figures."""
    _, events = detect([(12, "happy", p), (18, "neutral", 0.8)])
    kinds = [(e.kind, e.data["emotion"]) for e in events if e.kind in (MOMENT_STARTED, MOMENT_ENDED)]
    assert kinds == [(MOMENT_STARTED, "happy"), (MOMENT_ENDED, "happy"), (MOMENT_STARTED, "neutral"),
                     (MOMENT_ENDED, "neutral")]
    started, ended = [e for e in events if e.kind.startswith("moment") and e.data["emotion"] == "happy"]
    assert started.time_s == pytest.approx(started_at) and started.data["start_s"] == 0.0 and started.data["open"]
    assert started.data["kind"] == started_kind and ended.data["kind"] == "sustained"
    assert ended.time_s == pytest.approx(12.0) and ended.data["end_s"] == pytest.approx(12.0)
    assert started.data["id"] == ended.data["id"] and not ended.data["open"]
    # one moment, one name: what is said live (log, chapter) is what the report says (issue 23)
    assert started.message == f"Moment: {started.data['title']}" == ended.message == "Moment: Smiles"
    json.dumps([e.to_dict() for e in events])               # JSON types only
    calm_end = events[-1]
    assert calm_end.kind == MOMENT_ENDED and calm_end.time_s == pytest.approx(30.0)   # at the session's close


def test_a_spike_is_announced_at_its_end_with_its_final_name():
    """A brief, intense expression is a spike — announced when it ends (it could still have been held on and become
    a sustained moment with another name), both events with one name."""
    _, events = detect([(5, "neutral", 0.8), (2, "happy", 0.9), (12, "neutral", 0.8)])
    happy = [e for e in events if e.kind.startswith("moment") and e.data["emotion"] == "happy"]
    assert [e.kind for e in happy] == [MOMENT_STARTED, MOMENT_ENDED]
    started, ended = happy
    assert started.time_s == ended.time_s == pytest.approx(7.0) and started.data["start_s"] == pytest.approx(5.0)
    assert started.data["kind"] == ended.data["kind"] == "spike"
    assert started.message == ended.message == "Moment: Big laugh"


def test_a_face_lost_ends_the_moment_after_the_merge_gap():
    det = MomentDetector(FER, NEG)
    s = Session(FER, NEG, rules=(det,))
    events = []
    for i in range(40):
        events += s.add(res(i * 0.2, "happy", 0.8))       # 0 … 7.8 s
    for i in range(40, 60):
        events += s.add(res(i * 0.2, ""))                  # no face from 8 s
    (end,) = [e for e in events if e.kind == MOMENT_ENDED]
    assert end.data["end_s"] == pytest.approx(8.0) and 8.0 + 1.5 < end.time_s <= 8.0 + 1.5 + 0.2


def test_moments_survive_a_checkpoint_and_an_open_one_is_kept():
    s = Session(FER, NEG, rules=(MomentDetector(FER, NEG),), started_at=None, media_clock=True)
    for r in stream([(12, "happy", 0.9), (8, "neutral", 0.8)])[:-1]:
        s.add(r)
    for i in range(20):                                   # a calm moment still running at the "crash"
        s.add(res(120 + i * 0.2, "neutral", 0.8))
    doc = json.loads(json.dumps(s.to_state()))
    back = Session.from_state(doc)
    assert back.media_clock and back.media_offset_s == pytest.approx(100.0)
    ms = back.moments()
    assert [(m.emotion, m.open) for m in ms] == [("happy", False), ("neutral", True)]
    assert ms[1].end_s == pytest.approx(back.snapshot(timeline=False).duration_s)


def test_old_checkpoints_with_nudges_only_still_load():
    s = Session(FER, NEG)
    s.add(res(0, "sad"))
    s.add(res(1, "sad"))
    doc = s.to_state()
    del doc["events"]
    doc["nudges"] = [{"time_s": 1.0, "timestamp": 1.0, "negative_share": 0.9, "message": "take a break"}]
    back = Session.from_state(doc)
    assert [e.kind for e in back.events()] == ["nudge"] and back.moments() == ()


def test_kept_moments_are_bounded_and_the_best_stay(monkeypatch):
    from obs_mindflow.engine.session import session as session_module

    monkeypatch.setattr(session_module, "MAX_KEPT_MOMENTS", 5)
    spec = []
    for i in range(12):                                    # happy episodes of growing length, calm between
        spec += [(5 + i, "happy", 0.8), (2, "neutral", 0.8)]
    moments, _ = detect(spec)
    assert len(moments) == 5
    assert sorted(round(m.seconds) for m in moments) == [12, 13, 14, 15, 16]   # the five longest


def test_ranking_prefers_long_intense_moments_and_weighs_calm_half():
    moments, _ = detect([(30, "neutral", 0.9), (20, "happy", 0.9), (2, "neutral", 0.9), (6, "happy", 0.6),
                         (2, "surprise", 0.9)])
    order = [(m.emotion, round(m.seconds)) for m in ranked(moments)]
    assert order[0] == ("happy", 20)
    assert order.index(("neutral", 30)) > order.index(("happy", 20))
    assert ranked(moments)[0].score > ranked(moments)[-1].score


@pytest.mark.parametrize("kwargs, match", [
    ({"min_seconds": 0}, "min_seconds"),
    ({"calm_min_seconds": -1}, "calm_min_seconds"),
    ({"spike_probability": 0}, "spike_probability"),
    ({"spike_probability": 1.5}, "spike_probability"),
    ({"merge_gap_s": float("inf")}, "merge_gap_s"),
    ({"max_interval_s": float("nan")}, "max_interval_s"),
])
def test_options_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MomentOptions(**kwargs)


def test_options_change_the_thresholds():
    spec = [(3, "happy", 0.6), (5, "neutral", 0.6)]
    assert detect(spec)[0] == []
    (m,), _ = detect(spec, options=MomentOptions(min_seconds=2.5, calm_min_seconds=60))
    assert m.emotion == "happy"


@pytest.mark.parametrize("emotion, negative, kind, title", [
    ("happy", False, "sustained", "Smiles"), ("happy", False, "spike", "Big laugh"),
    ("neutral", False, "sustained", "Calm"), ("surprise", False, "spike", "Surprise!"),
    ("sad", True, "sustained", "Tense stretch"), ("contempt", False, "sustained", "Contempt"),
])
def test_chapter_titles(emotion, negative, kind, title):
    assert chapter_title(emotion, negative, kind) == title


# ---------------------------------------------------------------------------------------------------------------
# Chapters
# ---------------------------------------------------------------------------------------------------------------

def m(mid, start, end, emotion="happy", score=1.0, negative=False, kind="sustained"):
    return Moment(id=mid, kind=kind, emotion=emotion, negative=negative, start_s=start, end_s=end,
                  seconds=end - start, peak=0.9, peak_s=start, mean=0.8, score=score,
                  title=chapter_title(emotion, negative, kind))


@pytest.mark.parametrize("moments, duration, kwargs, usable, lines", [
    ([m(1, 60, 90), m(2, 200, 260, "neutral", 0.5), m(3, 400, 420, "surprise", 0.8, kind="spike")], 600, {},
     True, ["00:00 Start", "01:00 Smiles", "03:20 Calm", "06:40 Surprise!"]),
    ([m(1, 3, 30), m(2, 200, 260, "neutral", 0.5), m(3, 400, 420, "surprise", 0.8)], 600, {},
     True, ["00:00 Smiles", "03:20 Calm", "06:40 Surprise"]),                     # a moment opens at 00:00
    ([m(1, 60, 90)], 600, {}, False, ["00:00 Start", "01:00 Smiles"]),             # too few
    ([], 600, {}, False, ["00:00 Start"]),
    ([m(1, 60, 90, score=2), m(2, 65, 80, "surprise", 1.5), m(3, 300, 330), m(4, 595, 600)], 600, {},
     True, ["00:00 Start", "01:00 Smiles", "05:00 Smiles"]),   # 2: closer than 10 s to a better one; 4: < 10 s left
    ([m(1, 60, 90), m(2, 200, 260, "sad", negative=True), m(3, 400, 420)], 600, {},
     True, ["00:00 Start", "01:00 Smiles", "06:40 Smiles"]),                      # negative left out (public)
    ([m(1, 60, 90), m(2, 200, 260, "sad", negative=True), m(3, 400, 420)], 600, {"include_negative": True},
     True, ["00:00 Start", "01:00 Smiles", "03:20 Tense stretch", "06:40 Smiles"]),
    ([m(1, 20, 90), m(2, 300, 330)], 600, {"offset_s": 100}, True,
     ["00:00 Start", "02:00 Smiles", "06:40 Smiles"]),                            # video time = offset + session
    ([m(1, 60, 90), m(2, 3723, 3800), m(3, 7000, 7100)], 7200, {}, True,
     ["00:00 Start", "0:01:00 Smiles", "1:02:03 Smiles", "1:56:40 Smiles"]),      # an hour or more: H:MM:SS
    ([m(i, 100 * i, 100 * i + 20, score=i) for i in range(1, 20)], 2000, {"max_chapters": 4}, True,
     ["00:00 Start", "26:40 Smiles", "28:20 Smiles", "30:00 Smiles"]),             # the best three, then Start
])
def test_chapters(moments, duration, kwargs, usable, lines):
    ch = make_chapters(moments, duration, **kwargs)
    assert [f"{c.time} {c.title}" for c in ch.chapters] == lines
    assert ch.usable is usable
    if usable:
        assert ch.text == "\n".join(lines)
        assert ch.chapters[0].time == "00:00" and len(ch.chapters) >= 3
        times = [c.at_s for c in ch.chapters] + [duration + kwargs.get("offset_s", 0)]
        assert all(b - a >= 10 for a, b in zip(times, times[1:]))               # each chapter >= 10 s
    else:
        assert ch.text == "" and "at least 3" in ch.note
    json.dumps(ch.to_dict())


def test_moments_from_events_skips_malformed_data():
    from obs_mindflow.engine.session.events import Event

    good = m(1, 0, 10)
    events = [Event(MOMENT_ENDED, 10, None, "", good.to_dict()), Event(MOMENT_ENDED, 11, None, "", {"id": 2}),
              Event("nudge", 12, None, "", {})]
    assert moments_from_events(events, 20) == [good]


def test_the_summary_names_the_best_moments():
    from datetime import datetime

    from obs_mindflow.engine.session.facts import ReportFacts, SessionInfo
    from obs_mindflow.engine.session.summary import format_summary

    det = MomentDetector(FER, NEG)
    s = Session(FER, NEG, rules=(det,), media_clock=True)
    for r in stream([(30, "neutral", 0.8), (20, "happy", 0.9), (70, "neutral", 0.8)]):
        s.add(r)
    s.close()
    info = SessionInfo("fer", FER, NEG, datetime(2026, 12, 1, 20, 0).astimezone(), moments=tuple(s.moments()),
                       media_offset_s=s.media_offset_s)
    text = format_summary(ReportFacts.of(s.snapshot(), info))
    assert "Moments: 3 (best: Smiles 00:02:10, Calm 00:02:30, Calm 00:01:40)" in text
    assert "Moments" not in format_summary(ReportFacts.of(s.snapshot(), None))
