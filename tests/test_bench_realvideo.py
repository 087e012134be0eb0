"""tools/bench_realvideo.py's own arithmetic and bookkeeping (the benchmark itself needs ../shared, which tests must
not): the AUC against a brute-force count, RAVDESS file names to labels, a card's real_video field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tools.bench_realvideo import (Clip, ClipResult, auc, card_summary, clip_right, frame_figures, ravdess_clips,
                                   write_card)


def _auc_brute(pos, neg):
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_a_brute_force_count_ties_included(seed):
    rng = np.random.default_rng(seed)
    pos, neg = rng.integers(0, 6, 40).astype(float), rng.integers(0, 5, 30).astype(float)   # many ties
    assert auc(pos, neg) == pytest.approx(_auc_brute(pos, neg), abs=1e-12)
    assert auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert np.isnan(auc(np.array([]), np.array([1.0])))


def test_ravdess_names_give_the_portrayed_emotion_and_the_performance(tmp_path):
    (tmp_path / "crops").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "crops" / "01-01-05-02-01-01-05_facecroppad.avi").write_bytes(b"")
    (tmp_path / "full" / "01-01-05-02-01-01-05.mp4").write_bytes(b"")
    (tmp_path / "full" / "01-01-02-01-01-01-05.mp4").write_bytes(b"")
    clips = ravdess_clips(tmp_path)
    assert [(c.kind, c.emotion, c.performance) for c in clips] == [
        ("crop", "angry", "01-01-05-02-01-01-05"), ("full", "calm", "01-01-02-01-01-01-05"),
        ("full", "angry", "01-01-05-02-01-01-05")]
    assert clip_right("fearful", "fear") and clip_right("calm", "neutral") and not clip_right("sad", "neutral")


class _Card:
    negative_labels = ("angry", "sad")


class _Model:
    labels = ("angry", "happy", "sad", "neutral")
    card = _Card()


def test_frame_figures_and_the_card_field(tmp_path):
    def result(emotion, probs):
        return ClipResult(Clip(tmp_path / f"{emotion}.avi", "crop", emotion, emotion), frames=len(probs) + 1,
                          face_frames=len(probs), probs=np.array(probs, float))
    angry = result("angry", [[0.6, 0.1, 0.1, 0.2], [0.2, 0.1, 0.1, 0.6]])   # one of two frames negative
    calm = result("calm", [[0.1, 0.1, 0.1, 0.7]] * 3)
    fig = frame_figures(_Model(), [angry, calm])
    assert fig["per_emotion"]["angry"]["negative"] == 0.5 and fig["per_emotion"]["calm"]["negative"] == 0.0
    assert fig["negative_clips_read_negative"] == 0.5 and fig["calm_read_negative"] == 0.0
    assert fig["auc_negative_vs_rest"] == 1.0 and fig["face_found"] == pytest.approx(5 / 7)
    summary = card_summary({"frames_crop": fig, "clips_right_none": 1, "clips": 2})
    assert summary["crop"]["frames_negative_by_emotion"] == {"angry": 0.5, "calm": 0.0}
    assert summary["clips_main_label_right_uncalibrated"] == "1 of 2"
    (tmp_path / "card.json").write_text(json.dumps({"name": "x"}))
    write_card(tmp_path, summary)
    assert json.loads((tmp_path / "card.json").read_text())["real_video"]["crop"]["auc_negative_vs_rest"] == 1.0
