"""A still image through the public API: every face read at once (the stream's 0.4-s face confirmation and 0.6-s
warm-up do not apply to a photo), largest first, with the same corrections as the stream."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import paste

from obs_mindflow.engine import Analyzer, FrameError, read_image


def test_a_photo_is_read_at_once_where_the_stream_path_waits(default_model, astronaut):
    faces = read_image(default_model, astronaut)
    assert [f.label for f in faces] == ["happy"] and faces[0].confidence > 0.7
    assert sum(faces[0].probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert faces[0].negative < 0.1
    r = Analyzer(default_model).process(astronaut, 0.0)        # the stream's path: not yet a confirmed face
    assert r.num_faces == 0 and r.emotion == ""


def test_two_faces_largest_first_and_an_empty_picture(default_model, astronaut, hopper):
    frame = np.full((720, 1280, 3), 90, np.uint8)
    frame[50:650, 0:512] = hopper                              # face ≈ 222 px
    frame[0:700, 700:1280] = cv2.resize(astronaut, (700, 700))[:, :580]   # face ≈ 130 px
    faces = read_image(default_model, frame)
    assert len(faces) == 2 and faces[0].box[2] > faces[1].box[2] and faces[0].box[0] < 512
    assert faces[0].label == "neutral" and faces[1].label == "happy"
    assert read_image(default_model, np.full((480, 640), 90, np.uint8)) == []
    with pytest.raises(FrameError):
        read_image(default_model, np.zeros((10,), np.uint8))


def test_transforms_apply_as_in_the_stream(default_model, astronaut):
    frame = paste((360, 640), astronaut[:360], 60, 0)
    plain = read_image(default_model, frame)[0]
    happy = default_model.labels.index("happy")

    def damp_happy(p):
        q = p.copy()
        q[:, happy] *= 1e-3
        return q / q.sum(axis=1, keepdims=True)
    damped = read_image(default_model, frame, transforms=[damp_happy])[0]
    assert plain.label == "happy" and damped.label != "happy" and damped.box == plain.box
