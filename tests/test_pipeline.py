"""The Analyzer: latest frame wins, results are immutable snapshots, worker errors surface, close joins."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from obs_mindflow.engine import AnalysisResult, Analyzer, DetectorOptions, FaceDetector, SmootherOptions
from tests.conftest import paste


# These tests analyse single photos and pasted frames: every detection counts, as for a photo (a live camera or a
# video confirms a face over 0.4 s first; tests/test_detector.py covers that).
PHOTOS = DetectorOptions(min_track_s=0)

class SlowDetector(FaceDetector):
    """The real detector, slowed down and gated so a test can pile frames up in the mailbox."""

    def __init__(self, gate: threading.Event, delay: float = 0.0) -> None:
        super().__init__()
        self.gate, self.delay, self.seen = gate, delay, []

    def detect(self, frame, timestamp=None):
        self.gate.wait(5)
        time.sleep(self.delay)
        self.seen.append(int(frame[0, 0, 0]))
        return super().detect(frame)          # photos: every detection counts (no temporal confirmation)


def _marked(i: int, base: np.ndarray) -> np.ndarray:
    f = base.copy()
    f[0, 0, 0] = i
    return f


def test_empty_result_before_any_frame_and_for_no_face(default_model):
    with Analyzer(default_model, detector_options=PHOTOS) as a:
        first = a.latest()
        assert isinstance(first, AnalysisResult) and first.seq == 0 and first.num_faces == 0
        assert first.emotion == "" and first.labels == default_model.labels
        seq = a.submit(np.full((360, 640, 3), 80, np.uint8), 1.0)
        r = a.wait_for(seq)
    assert r is not None and r.seq == seq and r.num_faces == 0 and r.emotion == ""
    assert r.boxes.shape == (0, 4) and r.probabilities.shape == (0, len(default_model.labels))
    assert r.smoothed.shape == (len(default_model.labels),) and not r.smoothed.any()


def test_latest_frame_wins_and_drops_are_counted(default_model, astronaut):
    gate = threading.Event()
    det = SlowDetector(gate)
    base = paste((360, 640), astronaut[:360], 60, 0)
    with Analyzer(default_model, detector=det) as a:
        a.submit(_marked(1, base), 0.1)          # taken by the worker, which then waits at the gate
        time.sleep(0.2)
        for i in range(2, 11):                   # 2..9 are overwritten in the slot; 10 is the newest
            a.submit(_marked(i, base), 0.1 * i)
        gate.set()
        r = a.wait_for(10)
        st = a.stats()
    assert det.seen == [1, 10]
    assert r.seq == 10 and r.timestamp == pytest.approx(1.0)
    assert st.submitted == 10 and st.analysed == 2 and st.dropped == 8


def test_results_are_immutable_and_readable_while_the_worker_runs(default_model, astronaut):
    frame = paste((360, 640), astronaut[:360], 60, 0)
    # the first frame's label at once (no warm-up): this test is about results shared across threads
    with Analyzer(default_model, detector_options=PHOTOS, smoother_options=SmootherOptions(warmup_s=0)) as a:
        seq = a.submit(frame, 0.0)
        r = a.wait_for(seq)
        with pytest.raises(ValueError):
            r.probabilities[0, 0] = 1.0
        with pytest.raises(ValueError):
            r.boxes[0, 0] = 5
        with pytest.raises(AttributeError):
            r.emotion = "sad"
        stop = time.monotonic() + 1.0
        reads = 0
        for i in range(1, 1000):
            a.submit(frame, i * 0.05)
            got = a.latest()  # never blocks, never None
            assert isinstance(got, AnalysisResult)
            reads += 1
            if time.monotonic() > stop:
                break
    assert r.emotion == "happy" and r.timings.total > 0
    assert r.timings.total >= r.timings.detect + r.timings.infer
    assert reads > 10


def test_worker_error_is_recorded_and_analysis_goes_on(default_model, astronaut):
    good = paste((360, 640), astronaut[:360], 60, 0)
    with Analyzer(default_model, detector_options=PHOTOS) as a:
        bad_seq = a.submit(np.zeros((10, 10), np.float64), 0.0)  # not uint8: FrameError in the worker
        a.wait_for(bad_seq)
        st = a.stats()
        assert st.errors == 1 and "FrameError" in st.last_error and "uint8" in st.last_error
        assert st.running
        seq = a.submit(good, 1.0)
        r = a.wait_for(seq)
    assert r.seq == seq and r.num_faces == 1


def test_on_result_callback_errors_are_recorded_too(default_model, astronaut):
    calls = []

    def callback(result):
        calls.append(result.seq)
        if result.seq == 1:
            raise RuntimeError("disk full")

    frame = paste((360, 640), astronaut[:360], 60, 0)
    with Analyzer(default_model, on_result=callback, detector_options=PHOTOS) as a:
        a.wait_for(a.submit(frame, 0.0))
        a.wait_for(a.submit(frame, 0.2))
        st = a.stats()
    assert calls == [1, 2]
    assert st.errors == 1 and "disk full" in st.last_error


def test_close_joins_is_idempotent_and_final(default_model):
    a = Analyzer(default_model, detector_options=PHOTOS).start()
    worker = a._thread
    assert worker.daemon and worker.is_alive()
    t0 = time.monotonic()
    assert a.close(timeout=2.0)
    assert time.monotonic() - t0 < 1.5
    assert not worker.is_alive()
    assert a.close() and a.close()
    with pytest.raises(RuntimeError, match="closed"):
        a.start()
    a.submit(np.zeros((10, 10, 3), np.uint8))  # harmless after close


def test_close_while_busy_waits_for_the_running_analysis(default_model, astronaut):
    gate = threading.Event()
    det = SlowDetector(gate, delay=0.3)
    a = Analyzer(default_model, detector=det).start()
    a.submit(paste((360, 640), astronaut[:360], 60, 0), 0.0)
    time.sleep(0.1)
    gate.set()
    assert a.close(timeout=3.0)
    assert not a._thread.is_alive()


def test_context_manager_closes_on_exception(default_model):
    with pytest.raises(KeyError):
        with Analyzer(default_model, detector_options=PHOTOS) as a:
            raise KeyError("boom")
    assert not a._thread.is_alive()


def test_odd_frames_through_the_worker(default_model):
    frames = [np.zeros((0, 0, 3), np.uint8), np.zeros((1, 1), np.uint8), np.zeros((333, 517, 4), np.uint8),
              np.zeros((101, 99, 1), np.uint8)]
    with Analyzer(default_model, detector_options=PHOTOS) as a:
        for i, f in enumerate(frames):
            r = a.wait_for(a.submit(f, float(i)))
            assert r.num_faces == 0 and r.frame_size == (f.shape[1], f.shape[0])
        assert a.stats().errors == 0
