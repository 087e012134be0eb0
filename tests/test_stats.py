"""Session statistics (obs_mindflow.engine.session): known-answer tables, a naive reference model, persistence,
bounded memory, thread safety, the text summary and the opt-in nudge."""

from __future__ import annotations

import json
import math
import random
import threading
import tracemalloc
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obs_mindflow.engine.results import AnalysisResult
from obs_mindflow.engine.session.rules import NudgeMonitor
from obs_mindflow.engine.session.snapshot import top_negative_segments
from obs_mindflow.engine.session.stats import SessionStats, StatsStateError
from obs_mindflow.engine.formatting import format_clock, format_duration, short_clock
from obs_mindflow.engine.session.facts import ReportFacts, SessionInfo
from obs_mindflow import i18n as _i18n
from obs_mindflow.engine.session.summary import format_summary

L = ("angry", "happy", "sad", "neutral")
NEG = ("angry", "sad")

DISCLAIMER = _i18n.words("")("report.disclaimer")      # the English disclaimer


def run(events, **kw) -> SessionStats:
    s = SessionStats(L, NEG, **kw)
    for ts, emo in events:
        s.update(ts, emo)
    return s


# ---------------------------------------------------------------------------------------------------------------
# Known answers
# ---------------------------------------------------------------------------------------------------------------

CASES = [
    pytest.param([], dict(updates=0, duration_s=0.0, face_s=0.0, dominant="", coverage=0.0, negative_share=None),
                 id="empty"),
    pytest.param([(5.0, "happy")], dict(updates=1, duration_s=0.0, face_s=0.0, dominant="", current_emotion="happy"),
                 id="single-update-has-no-duration-yet"),
    pytest.param([(0, "happy"), (1, "sad"), (3, "happy"), (4, "")],
                 dict(duration_s=4, face_s=4, no_face_s=0, seconds=(0, 2, 2, 0), negative_share=0.5,
                      label_changes=2, face_losses=1, coverage=1.0, dominant="happy", current_emotion=""),
                 id="sample-and-hold-previous-state"),
    pytest.param([(10.0, "neutral"), (10.25, "neutral"), (10.5, "happy"), (11.5, "happy"), (11.75, "sad")],
                 dict(duration_s=1.75, seconds=(0, 1.25, 0, 0.5), negative_share=0.0, label_changes=2,
                      dominant="happy"),
                 id="irregular-timestamps-weigh-time-not-frames"),
    pytest.param([(0, "happy"), (1, ""), (2, ""), (3, "happy"), (4, "happy")],
                 dict(duration_s=4, face_s=2, no_face_s=2, coverage=0.5, face_losses=1, label_changes=0),
                 id="no-face-gap-within-cap"),
    pytest.param([(0, "sad"), (10, "happy"), (11, "happy")],
                 dict(duration_s=11, seconds=(0, 1, 2, 0), not_analysed_s=8, analysed_s=3, negative_share=2 / 3,
                      coverage=1.0),
                 id="gap-longer-than-cap-is-not-analysed"),
    pytest.param([(0, ""), (5, "happy"), (6, "happy")],
                 dict(duration_s=6, no_face_s=2, not_analysed_s=3, face_s=1, coverage=1 / 3),
                 id="long-gap-while-no-face"),
    pytest.param([(100, "happy"), (101, "sad"), (50, "sad"), (51, "happy")],
                 dict(duration_s=2, seconds=(0, 1, 1, 0), clock_resets=1, label_changes=2),
                 id="clock-going-backwards-is-zero-length"),
    pytest.param([(0, "happy"), (1, "happy")], dict(seconds=(0, 1, 0, 0), negative_share=0.0, longest_negative=None),
                 id="no-negative-at-all"),
    pytest.param([(0, "sad"), (1, "happy")], dict(seconds=(0, 0, 1, 0), dominant="sad", negative_share=1.0),
                 id="all-negative"),
    pytest.param([(0, "happy"), (1, "sad"), (2, "happy"), (3, "")], dict(dominant="happy"),
                 id="dominant-tie-goes-to-card-order"),
    pytest.param([(0, "happy"), (1, ""), (2, "happy"), (3, ""), (4, "sad"), (5, "sad")],
                 dict(label_changes=1, face_losses=2), id="label-changes-ignore-no-face"),
]


@pytest.mark.parametrize("events, expected", CASES)
def test_known_answers(events, expected):
    snap = run(events, max_gap_seconds=2.0).snapshot()
    for key, want in expected.items():
        got = getattr(snap, key)
        if isinstance(want, tuple):
            assert got == pytest.approx(want), key
        elif isinstance(want, float):
            assert got == pytest.approx(want), key
        else:
            assert got == want, key
    # invariants every snapshot keeps
    assert snap.analysed_s == pytest.approx(snap.face_s + snap.uncertain_s + snap.no_face_s)
    assert snap.duration_s == pytest.approx(snap.analysed_s + snap.not_analysed_s)
    if snap.face_s:
        assert sum(snap.shares) == pytest.approx(1.0)
    assert snap.timeline.sum() == pytest.approx(snap.duration_s)


STRETCH_CASES = [
    ([(0, "happy"), (1, "sad"), (3, "angry"), (4, "happy"), (5, "sad"), (6, "")], (3, 1, 4)),
    ([(0, "sad"), (2, ""), (3, "sad"), (4, "happy")], (2, 0, 2)),                      # no face breaks it
    ([(0, "sad"), (1, "sad"), (10, "sad"), (11, "happy")], (3, 0, 3)),                # gap over the cap breaks it
    ([(0, "happy"), (1, "sad"), (2, "happy"), (3, "sad"), (4, "sad"), (5.5, "happy")], (2.5, 3, 5.5)),
    ([(0, "sad"), (1, "happy"), (2, "angry"), (3, "neutral")], (1, 0, 1)),           # ties keep the first
    ([(0, "happy"), (1, "sad"), (2.5, "sad")], (1.5, 1, 2.5)),                       # still open at the end
]


@pytest.mark.parametrize("events, expected", STRETCH_CASES)
def test_longest_negative_stretch(events, expected):
    ln = run(events).snapshot().longest_negative
    assert (ln.duration_s, ln.start_s, ln.end_s) == pytest.approx(expected)


@pytest.mark.parametrize("kwargs, match", [
    (dict(labels=()), "non-empty list"),
    (dict(labels=("a", "a")), "unique"),
    (dict(labels=("a", "")), "non-empty"),
    (dict(negative_labels=("furious",)), "not among the labels"),
    (dict(bin_seconds=0), "bin_seconds"),
    (dict(bin_seconds=math.inf), "bin_seconds"),
    (dict(rolling_seconds=-1), "rolling_seconds"),
    (dict(max_gap_seconds=math.nan), "max_gap_seconds"),
    (dict(max_bins=7), "even"),
    (dict(rolling_slots=0), "rolling_slots"),
])
def test_invalid_configuration_says_what_is_wrong(kwargs, match):
    args = dict(labels=L, negative_labels=NEG) | kwargs
    with pytest.raises(ValueError, match=match):
        SessionStats(args.pop("labels"), args.pop("negative_labels"), **args)


@pytest.mark.parametrize("ts, emotion, match", [
    (1.0, "furious", "unknown emotion"),
    (math.nan, "happy", "finite"),
    (math.inf, "happy", "finite"),
    ("soon", "happy", None),
])
def test_invalid_update_is_rejected_and_changes_nothing(ts, emotion, match):
    s = run([(0, "happy"), (1, "sad")])
    before = s.snapshot().to_dict()
    with pytest.raises(ValueError, match=match):
        s.update(ts, emotion)
    assert s.snapshot().to_dict() == before


def test_update_result_reads_timestamp_and_emotion():
    s = SessionStats(L, NEG)
    r1 = AnalysisResult(seq=1, timestamp=3.0, frame_size=(4, 4), labels=L, boxes=[[0, 0, 2, 2]], emotion="sad")
    r2 = AnalysisResult.empty(L, timestamp=4.5, seq=2)
    assert s.update_result(r1) == 0.0
    assert s.update_result(r2) == 1.5
    snap = s.snapshot()
    assert snap.seconds == (0, 0, 1.5, 0) and snap.current_emotion == "" and snap.first_timestamp == 3.0


def test_reset_starts_a_new_session():
    s = run([(0, "sad"), (5, "sad"), (6, "happy")])
    s.reset()
    fresh = SessionStats(L, NEG).snapshot().to_dict()
    assert s.snapshot().to_dict() == fresh
    s.update(1000.0, "happy")
    s.update(1001.0, "happy")
    snap = s.snapshot()
    assert snap.duration_s == 1.0 and snap.first_timestamp == 1000.0 and snap.longest_negative is None


# ---------------------------------------------------------------------------------------------------------------
# Timeline and bin merging
# ---------------------------------------------------------------------------------------------------------------

def test_timeline_bins_hold_seconds_per_label():
    # happy 0..15, no face 15..17, sad 17..25 (held 2 s, then 6 s not analysed? no: updates every 0.5 s)
    ev = [(t / 2, "happy") for t in range(30)] + [(15 + t / 2, "") for t in range(4)] + \
         [(17 + t / 2, "sad") for t in range(17)]
    snap = run(ev, bin_seconds=10.0).snapshot()
    bins = snap.timeline_bins()
    assert [b.start_s for b in bins] == [0, 10, 20]
    assert bins[0].seconds == (0, 10, 0, 0) and bins[0].negative_share == 0 and bins[0].dominant == "happy"
    assert bins[1].seconds == (0, 5, 3, 0) and bins[1].no_face_s == 2 and bins[1].negative_share == pytest.approx(3 / 8)
    assert bins[2].seconds == (0, 0, 5, 0) and bins[2].width_s == 5 and bins[2].dominant == "sad"


def test_timeline_bin_without_face_has_no_share():
    snap = run([(0, ""), (1, ""), (2, ""), (3, "happy"), (4, "happy")], bin_seconds=2.0).snapshot()
    b0, b1 = snap.timeline_bins()
    assert b0.negative_share is None and b0.dominant == "" and b0.shares == (0, 0, 0, 0) and b0.no_face_s == 2
    assert b1.dominant == "happy"


def test_bin_merging_keeps_totals_exact_and_memory_bounded():
    rng = random.Random(7)
    s = SessionStats(L, NEG, bin_seconds=1.0, max_bins=8)
    t = 0.0
    for _ in range(800):                       # dyadic steps: every sum is exact in binary floating point
        s.update(t, rng.choice(L + ("", "uncertain")))
        t += rng.choice((0.125, 0.25, 0.5, 3.0))
    snap = s.snapshot()
    assert len(snap.timeline) <= 8
    assert snap.bin_seconds in (2.0 ** k for k in range(1, 20))
    assert snap.bin_seconds * 8 >= snap.duration_s > snap.bin_seconds * 4
    col = snap.timeline.sum(axis=0)
    assert tuple(col[:4]) == snap.seconds
    assert col[4] == snap.uncertain_s and col[5] == snap.no_face_s and col[6] == snap.not_analysed_s
    assert snap.timeline.sum() == snap.duration_s


def test_huge_gap_merges_instead_of_growing():
    s = run([(0, "happy"), (1, "happy"), (1e9, "sad"), (1e9 + 1, "sad")], max_bins=64)
    snap = s.snapshot()
    assert len(snap.timeline) <= 64
    assert snap.not_analysed_s == pytest.approx(1e9 - 3)
    assert snap.timeline.sum() == pytest.approx(snap.duration_s)


def test_memory_does_not_grow_with_session_length():
    s = SessionStats(L, NEG, max_bins=256)
    rng = random.Random(3)
    labels = L + ("",)

    def feed(n, t):
        lab = "neutral"
        for _ in range(n):
            if rng.random() < 0.02:
                lab = rng.choice(labels)
            s.update(t, lab)
            t += 1 / 30
        return t

    t = feed(30 * 256 * 10, 0.0)          # fill the bin cap once (256 bins of 10 s)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    feed(30 * 3600 * 2, t)                # two more hours
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert s._bins.shape[0] <= 256 and len(s._rolling.neg) == s.rolling_slots + 1
    assert grown < 64 * 1024, f"memory grew by {grown} bytes"


# ---------------------------------------------------------------------------------------------------------------
# Rolling window
# ---------------------------------------------------------------------------------------------------------------

def _neutral_then_sad(t_end, step=0.125):
    ev = []
    n = int(t_end / step)
    for i in range(n + 1):
        t = i * step
        ev.append((t, "neutral" if t < 600 else "sad"))
    return ev


@pytest.mark.parametrize("t_end, share", [
    (600, 0.0), (660, 0.2), (662.5, 62.5 / 300), (750, 0.5), (780, 0.6), (900, 1.0), (1000, 1.0),
])
def test_rolling_negative_share_over_last_window(t_end, share):
    snap = run(_neutral_then_sad(t_end)).snapshot(timeline=False)
    assert snap.rolling_negative_share == pytest.approx(share, abs=1e-9)
    assert snap.rolling_face_s == pytest.approx(300)
    assert snap.negative_share == pytest.approx(max(0, t_end - 600) / t_end)
    assert snap.timeline is None


def test_rolling_window_early_and_after_a_pause():
    early = run([(t, "sad") for t in range(101)]).snapshot()
    assert early.rolling_window_s == 100 and early.rolling_negative_share == 1.0 and early.rolling_face_s == 100
    ev = [(t, "sad") for t in range(301)] + [(1000 + t, "happy") for t in range(101)]
    late = run(ev).snapshot()
    assert late.rolling_negative_share == 0.0 and late.rolling_face_s == pytest.approx(100)
    assert late.rolling_coverage == 1.0 and late.negative_share == pytest.approx(302 / 402)


def test_rolling_coverage_counts_no_face():
    ev = [(t, "happy" if t % 2 else "") for t in range(0, 301)]
    s = run(ev)
    share, coverage, face = s.rolling()
    assert share == 0.0 and coverage == pytest.approx(0.5) and face == pytest.approx(150)


# ---------------------------------------------------------------------------------------------------------------
# A naive reference model (lists of intervals) against the real one, on random sessions
# ---------------------------------------------------------------------------------------------------------------

def reference(events, gap, width, labels=L, neg=NEG):
    cols = list(labels) + ["uncertain", "", "#na"]
    idx = {c: i for i, c in enumerate(cols)}
    intervals = []          # (col, t0, t1)
    t = 0.0
    for (ts, emo), (ts2, _) in zip(events, events[1:]):
        dt = max(0.0, ts2 - ts)
        held = min(dt, gap)
        if held:
            intervals.append((idx[emo], t, t + held))
        if dt > held:
            intervals.append((idx["#na"], t + held, t + dt))
        t += dt
    tot = [0.0] * len(cols)
    for c, a, b in intervals:
        tot[c] += b - a
    nbins = max(1, math.ceil(t / width)) if t > 0 else 0
    bins = np.zeros((nbins, len(cols)))
    for c, a, b in intervals:
        k = int(a // width)
        while a < b:
            end = min(b, (k + 1) * width)
            if end > a:
                bins[k, c] += end - a
            a = end
            k += 1
    longest, run_start, run_end = None, None, None
    for c, a, b in intervals:
        if c < len(labels) and labels[c] in neg:
            run_start = a if run_start is None else run_start
            run_end = b
        else:
            if run_start is not None and (longest is None or run_end - run_start > longest[0]):
                longest = (run_end - run_start, run_start, run_end)
            run_start = None
    if run_start is not None and (longest is None or run_end - run_start > longest[0]):
        longest = (run_end - run_start, run_start, run_end)
    faces = [e for _, e in events if e in labels]
    changes = sum(1 for a, b in zip(faces, faces[1:]) if a != b)
    return t, tot, bins, longest, changes, intervals


events_strategy = st.lists(
    st.tuples(st.integers(min_value=-16, max_value=48).map(lambda k: k / 8), st.sampled_from(L + ("", "uncertain"))),
    min_size=1, max_size=300)


@settings(max_examples=150, deadline=None)
@given(steps=events_strategy, max_bins=st.sampled_from([2, 4, 16, 1024]))
def test_matches_naive_reference(steps, max_bins):
    events, ts = [], 100.0
    for dt, emo in steps:
        events.append((ts, emo))
        ts += dt
    s = run(events, bin_seconds=1.0, max_gap_seconds=2.0, max_bins=max_bins, rolling_seconds=20.0, rolling_slots=4)
    snap = s.snapshot()
    t, tot, _, longest, changes, intervals = reference(events, 2.0, snap.bin_seconds)
    assert snap.duration_s == t
    assert snap.seconds == tuple(tot[:4]) and snap.uncertain_s == tot[4] and snap.no_face_s == tot[5]
    assert snap.not_analysed_s == tot[6]
    visible = sum(tot[:5])
    assert snap.coverage == (pytest.approx(visible / (visible + tot[5])) if visible + tot[5] > 0 else 0.0)
    assert snap.label_changes == changes
    if longest is None:
        assert snap.longest_negative is None
    else:
        assert (snap.longest_negative.duration_s, snap.longest_negative.start_s) == longest[:2]
    _, _, bins, _, _, _ = reference(events, 2.0, snap.bin_seconds)
    assert snap.timeline.shape[0] <= max_bins
    np.testing.assert_array_equal(snap.timeline, bins[: len(snap.timeline)])
    assert bins[len(snap.timeline):].sum() == 0
    # rolling window: exact integration over [t - 20, t]; the oldest slot is interpolated, so within one slot (5 s)
    lo = t - 20.0
    face = sum(max(0.0, b - max(a, lo)) for c, a, b in intervals if c < 4)
    assert abs(snap.rolling_face_s - face) <= 5.0 + 1e-9


@settings(max_examples=60, deadline=None)
@given(steps=events_strategy, cut=st.floats(min_value=0, max_value=1))
def test_state_round_trip_continues_exactly(steps, cut):
    events, ts = [], 5.0
    for dt, emo in steps:
        events.append((ts, emo))
        ts += dt
    k = int(cut * len(events))
    whole = run(events, max_bins=4, bin_seconds=1.0)
    first = run(events[:k], max_bins=4, bin_seconds=1.0)
    revived = SessionStats.from_state(json.loads(json.dumps(first.to_state())))
    assert revived.snapshot().to_dict() == first.snapshot().to_dict()
    for e in events[k:]:
        revived.update(*e)
    assert revived.snapshot().to_dict() == whole.snapshot().to_dict()


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.update(format="something else"), "not a MindFlow"),
    (lambda d: d.update(version=99), "version 99"),
    (lambda d: d.update(totals=[1, 2]), "totals"),
    (lambda d: d["bins"].update(b64="@@@"), "bins"),
    (lambda d: d.pop("rolling"), "malformed"),
    (lambda d: d.update(state=42), "out of range"),
])
def test_bad_state_is_a_clear_error(mutate, match):
    d = run([(0, "sad"), (1, "happy"), (25, "happy")]).to_state()
    mutate(d)
    with pytest.raises(StatsStateError, match=match):
        SessionStats.from_state(d)


# ---------------------------------------------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------------------------------------------

def test_snapshots_are_consistent_while_another_thread_updates():
    s = SessionStats(L, NEG, bin_seconds=1.0, max_bins=64)
    stop = threading.Event()
    bad: list[str] = []

    def writer():
        rng = random.Random(1)
        t = 0.0
        while not stop.is_set():
            s.update(t, rng.choice(L + ("",)))
            t += rng.choice((0.03125, 0.0625, 2.5))

    th = threading.Thread(target=writer)
    th.start()
    try:
        for _ in range(300):
            snap = s.snapshot()
            if not math.isclose(snap.timeline.sum(), snap.duration_s, rel_tol=1e-9, abs_tol=1e-9):
                bad.append(f"timeline {snap.timeline.sum()} vs duration {snap.duration_s}")
            if not math.isclose(snap.analysed_s + snap.not_analysed_s, snap.duration_s, rel_tol=1e-9, abs_tol=1e-9):
                bad.append("totals")
    finally:
        stop.set()
        th.join()
    assert s.updates > 0 and not bad, bad[:3]


# ---------------------------------------------------------------------------------------------------------------
# Segments and the summary text
# ---------------------------------------------------------------------------------------------------------------

def _half_hour():
    """30 minutes at 2 results/s: neutral, sad 10:00–15:00, half angry 20:00–25:00, no face 27:00–28:00."""
    ev = []
    for i in range(30 * 60 * 2 + 1):
        t = i / 2
        if 600 <= t < 900:
            e = "sad"
        elif 1200 <= t < 1500:
            e = "angry" if (t // 30) % 2 == 0 else "happy"
        elif 1620 <= t < 1680:
            e = ""
        else:
            e = "neutral"
        ev.append((t, e))
    return run(ev).snapshot()


def test_top_negative_segments_from_the_timeline():
    segs = top_negative_segments(_half_hour(), 3)
    assert [(g.start_s, g.end_s) for g in segs] == [(600, 900), (1200, 1500)]
    assert [g.negative_share for g in segs] == pytest.approx([1.0, 0.5])


def test_top_negative_segments_skip_segments_with_little_face():
    ev = [(0, ""), (299, "sad"), (299.5, ""), (300, "neutral"), (600, "neutral")]
    snap = run(ev, max_gap_seconds=400).snapshot()
    assert top_negative_segments(snap, 3) == []
    assert len(top_negative_segments(snap, 3, min_face_seconds=0.1)) == 1


@pytest.mark.parametrize("started_at, expected", [
    (None, ["Length: 30 min 00 s", "Your face was in view 97 % of the time",
            "Negative expressions (angry, sad): 26 % of that time",
            "Longest negative stretch: 5 min 00 s (00:10:00–00:15:00)",
            "Most negative 5 minutes: 00:10–00:15 (100 %); 00:20–00:25 (50 %)", "Most often: neutral"]),
    (datetime(2026, 11, 24, 20, 15, 3), ["Length: 30 min 00 s (20:15–20:45)",
                                         "Longest negative stretch: 5 min 00 s (20:25:03–20:30:03)",
                                         "20:25–20:30 (100 %); 20:35–20:40 (50 %)"]),
])
def test_format_summary(started_at, expected):
    snap = _half_hour()
    info = None if started_at is None else SessionInfo("fer", snap.labels, snap.negative_labels, started_at)
    text = format_summary(ReportFacts.of(snap, info, model="fer"))
    for line in expected:
        assert line in text
    assert text.startswith("MindFlow session summary (model fer)")
    assert text.splitlines()[-1] == DISCLAIMER and "not a diagnosis" in DISCLAIMER
    assert "What your face showed: neutral 66 %, sad 17 %, angry 9 %, happy 9 %" in text
    shown = next(line for line in text.splitlines() if line.startswith("What your face showed"))
    assert "displayed-label" not in text and " 0 %" not in shown            # no jargon, no classes never seen
    body = text.split("\nNot calibrated")[0].splitlines()                # the lines format_summary writes itself
    assert max(len(line) for line in body) <= 100, "OBS's Script Log does not wrap lines"


@pytest.mark.parametrize("snap_events, recovered, expected", [
    ([], False, "No analysis results were recorded"),
    ([(0, ""), (10, "")], False, "No face was visible"),
    ([(0, "happy"), (1, "happy")], True, "Recovered after an unclean exit"),
])
def test_format_summary_edge_cases(snap_events, recovered, expected):
    snap = run(snap_events).snapshot()
    info = SessionInfo("fer", snap.labels, snap.negative_labels, datetime(2026, 11, 24, 20, 15), recovered=recovered)
    text = format_summary(ReportFacts.of(snap, info))
    assert expected in text and DISCLAIMER in text


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (45.4, "45 s"), (59.6, "1 min 00 s"), (725, "12 min 05 s"),
                                           (3600, "1 h 00 min"), (3725, "1 h 02 min"), (-3, "0 s")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("offset, started_at, seconds, text", [
    (2100, None, False, "00:35"), (2159, None, False, "00:35"), (2100, None, True, "00:35:00"),
    (3725, None, True, "01:02:05"), (600, datetime(2026, 1, 1, 23, 55), False, "00:05"),
])
def test_format_clock(offset, started_at, seconds, text):
    assert format_clock(offset, started_at, seconds=seconds) == text


@pytest.mark.parametrize("seconds, long, text", [(0, False, "00:00"), (754.9, False, "12:34"), (3599, False, "59:59"),
                                                 (3723, True, "1:02:03"), (59, True, "0:00:59"), (59, None, "00:59"),
                                                 (3723, None, "1:02:03"), (-2, None, "00:00")])
def test_short_clock(seconds, long, text):
    assert short_clock(seconds, long) == text


def test_no_face_leaves_the_negative_shares_undefined():
    snap = run([(0, ""), (10, "")]).snapshot()
    assert snap.negative_share is None and snap.rolling_negative_share is None
    assert snap.to_dict()["negative_share"] is None and snap.to_dict()["rolling"]["negative_share"] is None


# ---------------------------------------------------------------------------------------------------------------
# Nudge
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("checks, expected_times", [
    ([(t, 0.9, 1.0) for t in range(0, 601)], [600]),                                   # fires after sustain
    ([(t, 0.9, 1.0) for t in range(0, 600)], []),                                      # …not before
    ([(t, 0.9 if t != 300 else 0.5, 1.0) for t in range(0, 1000)], [901]),             # a dip restarts the clock
    ([(t, 0.6, 1.0) for t in range(0, 1000)], []),                                     # at the threshold: no
    ([(t, 0.9, 0.3) for t in range(0, 1000)], []),                                     # too little face seen
    ([(t, 0.9, 1.0) for t in range(0, 4300)], [600, 2400, 4200]),                      # cooldown between nudges
])
def test_nudge_monitor(checks, expected_times):
    m = NudgeMonitor(threshold=0.6, sustain_seconds=600, rolling_seconds=300, cooldown_seconds=1800)
    fired = [n for t, share, cov in checks if (n := m.update(t, share, cov)) is not None]
    assert [n.time_s for n in fired] == expected_times
    for n in fired:
        assert n.message == "Negative expressions have dominated the last 10 minutes — consider a short break."
        assert n.kind == "nudge" and n.data["negative_share"] == 0.9


@pytest.mark.parametrize("kwargs, match", [
    (dict(threshold=1.0), "threshold"), (dict(threshold=-0.1), "threshold"), (dict(sustain_seconds=0), "sustain"),
    (dict(rolling_seconds=math.inf), "rolling"), (dict(cooldown_seconds=-1), "cooldown"),
    (dict(min_face_coverage=2), "min_face_coverage"),
])
def test_nudge_monitor_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NudgeMonitor(**kwargs)


def test_nudge_wording_is_a_nudge_not_a_diagnosis():
    for sustain in (60, 600, 900, 90):
        msg = NudgeMonitor(sustain_seconds=sustain).message
        assert "consider a short break" in msg
        for word in ("depress", "disorder", "diagnos", "anxiety", "you are"):
            assert word not in msg.lower()
    assert "last minute" in NudgeMonitor(sustain_seconds=60).message
    assert "last 1 min 30 s" in NudgeMonitor(sustain_seconds=90).message
