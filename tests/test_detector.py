"""Face detection on the real photos, blank/noise frames, odd formats and sizes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from obs_mindflow.engine import DetectorOptions, FaceDetector, FrameError
from tests.conftest import paste

# Face boxes in the photos, measured once with OpenCV's cascade at full resolution ((x, y, w, h), pixels).
ASTRONAUT_FACE = (177, 66, 95, 95)
HOPPER_FACE = (155, 105, 222, 222)


def _iou(a, b):
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    iw = max(0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    ih = max(0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    return iw * ih / (aw * ah + bw * bh - iw * ih)


@pytest.mark.parametrize("photo, face", [("astronaut", ASTRONAUT_FACE), ("hopper", HOPPER_FACE)])
def test_one_face_at_the_right_place(request, photo, face):
    img = request.getfixturevalue(photo)
    boxes = FaceDetector().detect(img)
    assert boxes.shape == (1, 4) and boxes.dtype == np.int32
    assert _iou(boxes[0], face) > 0.7, (boxes[0].tolist(), face)


@pytest.mark.parametrize("make", [
    lambda: np.zeros((720, 1280, 3), np.uint8),
    lambda: np.full((480, 640, 3), 200, np.uint8),
    lambda: np.random.default_rng(0).integers(0, 256, (360, 640, 3), dtype=np.uint8),
    lambda: np.random.default_rng(1).integers(0, 256, (720, 1280), dtype=np.uint8),
], ids=["black-720p", "flat-grey", "noise-bgr", "noise-gray-720p"])
def test_no_face_in_blank_or_noise(make):
    boxes = FaceDetector().detect(make())
    assert boxes.shape == (0, 4)


def test_formats_give_the_same_box(astronaut):
    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    frames = {
        "bgr": astronaut,
        "bgra": cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA),
        "gray": gray,
        "gray-hw1": gray[:, :, None],
    }
    boxes = {name: FaceDetector().detect(f) for name, f in frames.items()}
    for name, b in boxes.items():
        assert b.shape == (1, 4), name
        assert _iou(b[0], boxes["bgr"][0]) > 0.9, name


@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 640, 3), (480, 0), (1, 1, 3), (23, 500, 3), (17, 9)])
def test_tiny_and_zero_size_frames_give_no_face(shape):
    assert FaceDetector().detect(np.zeros(shape, np.uint8)).shape == (0, 4)


@pytest.mark.parametrize("size", [(721, 1283), (601, 799), (333, 517)])
def test_odd_sized_frames_boxes_in_frame_coordinates(astronaut, size):
    frame = paste(size, astronaut, 61, 37)
    boxes = FaceDetector().detect(frame)
    assert len(boxes) == 1
    x, y, w, h = ASTRONAUT_FACE
    assert _iou(boxes[0], (x + 61, y + 37, w, h)) > 0.6, boxes[0].tolist()


@pytest.mark.parametrize("bad, message", [
    (np.zeros((10, 10, 3), np.float32), "must be uint8"),
    (np.zeros((10, 10, 2), np.uint8), "H×W×3 (BGR)"),
    (np.zeros((2, 10, 10, 3), np.uint8), "got shape (2, 10, 10, 3)"),
    ([[0, 1], [2, 3]], "numpy array"),
])
def test_bad_frames_raise_frame_error(bad, message):
    with pytest.raises(FrameError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FaceDetector().detect(bad)


def _webcam_size(photo):
    """The photo scaled so its face is about 20 % of a 720p frame's height, as on a streamer's webcam."""
    return cv2.resize(photo, (700, 700))[:560]


def test_tracking_follows_a_moving_face_with_few_full_scans(astronaut):
    det = FaceDetector(DetectorOptions(full_scan_every=15))
    face = _webcam_size(astronaut)
    xs = []
    for i in range(45):
        frame = paste((720, 1280), face, 200 + 6 * i, 40 + 2 * i)
        boxes = det.detect(frame)
        assert len(boxes) == 1, f"lost the face at step {i}"
        xs.append(boxes[0][0] - 6 * i)
    assert max(xs) - min(xs) <= 16  # the box moves with the face
    assert det.full_scans <= 4 and det.roi_scans >= 40


def test_face_lost_then_found_again(astronaut):
    det = FaceDetector()
    face = _webcam_size(astronaut)
    assert len(det.detect(paste((720, 1280), face, 100, 100))) == 1
    assert len(det.detect(np.full((720, 1280, 3), 90, np.uint8))) == 0
    boxes = det.detect(paste((720, 1280), face, 560, 150))
    assert len(boxes) == 1 and boxes[0][0] > 560


def test_two_faces_primary_is_largest_then_sticks(astronaut, hopper):
    frame = np.full((720, 1280, 3), 90, np.uint8)
    frame[50:650, 0:512] = hopper  # face ≈ 222 px
    frame[0:700, 700:1280] = cv2.resize(astronaut, (700, 700))[:, :580]  # face ≈ 130 px
    det = FaceDetector(DetectorOptions(full_scan_every=1))
    boxes = det.detect(frame)
    assert len(boxes) == 2
    assert boxes[0][2] > boxes[1][2]  # the largest first
    assert boxes[0][0] < 512
    # Once tracked, the primary stays the same face even when the other one becomes the larger.
    frame2 = np.full((720, 1280, 3), 90, np.uint8)
    frame2[50:650, 0:512] = hopper
    frame2[60:660, 660:1260] = cv2.resize(astronaut, (1400, 1400))[100:700, 334:934]  # face ≈ 260 px
    boxes2 = det.detect(frame2)
    assert len(boxes2) == 2 and boxes2[1][2] > boxes2[0][2]
    assert boxes2[0][0] < 512


def test_min_face_fraction_ignores_small_faces(astronaut):
    frame = paste((1080, 1920), cv2.resize(astronaut, (384, 384)), 800, 400)  # face ≈ 71 px = 6.6 % of the height
    assert len(FaceDetector(DetectorOptions(work_width=960, min_face_fraction=0.05)).detect(frame)) == 1
    assert len(FaceDetector(DetectorOptions(work_width=960, min_face_fraction=0.1)).detect(frame)) == 0


@pytest.mark.parametrize("kwargs", [{"work_width": 10}, {"min_face_fraction": 1.5}, {"scale_factor": 1.0},
                                    {"full_scan_every": 0}, {"roi_face_px": 8}])
def test_bad_options(kwargs):
    with pytest.raises(ValueError):
        DetectorOptions(**kwargs)


def test_full_scans_follow_the_frames_time_not_their_count(astronaut):
    """With timestamps a tracked face gets a full scan every ``full_scan_s`` seconds at any analysis rate: 30 frames a
    second over 6 s costs as many full scans as 5 a second (the first, then one every 3 s), not one every 15 frames."""
    face = _webcam_size(astronaut)
    counts = {}
    for rate in (5, 30):
        det = FaceDetector(DetectorOptions(full_scan_s=3.0))
        for i in range(int(6 * rate)):
            assert len(det.detect(paste((720, 1280), face, 200 + i % 5, 40), i / rate)) <= 1
        counts[rate] = det.full_scans
    assert counts[5] == counts[30] and 2 <= counts[30] <= 3
    det = FaceDetector(DetectorOptions(full_scan_s=0))
    for i in range(10):
        det.detect(paste((720, 1280), face, 200, 40), i / 30)
    assert det.full_scans == 10
    with pytest.raises(ValueError, match="full_scan_s"):
        DetectorOptions(full_scan_s=-1)


def test_an_empty_view_is_scanned_twice_a_second_and_a_returning_face_is_found_at_once(astronaut):
    """After ``absent_after_s`` without a face the full frame is scanned only every ``absent_scan_s`` (an empty room
    would otherwise pay a full scan, the detector's big cost, at every analysis); a face that comes back is found at
    the next of those scans, and the confirmation then runs as usual."""
    blank = np.full((720, 1280, 3), 90, np.uint8)
    face = paste((720, 1280), _webcam_size(astronaut), 300, 60)
    det = FaceDetector(DetectorOptions(absent_after_s=1.0, absent_scan_s=0.5, min_track_s=0.4, still_scan_s=0))
    for i in range(10):                                   # 2 s with the face, at 5 analyses a second
        det.detect(face, i / 5)
    before = det.full_scans
    for i in range(10, 60):                               # then 10 s of an empty view
        assert len(det.detect(blank, i / 5)) == 0
    # a full scan at every analysis for the first second after the face was last seen (2.0 … 2.8 s), then one
    # every 0.6 s (each third 0.2-s step) from 3.0 s to 11.8 s
    assert det.full_scans - before == 5 + 15 and det.idle_skips == 50 - 20
    t = 60 / 5
    seen = [len(det.detect(face, t + i / 5)) for i in range(8)]
    assert seen.index(1) <= 5                             # ≤ 0.6 s to the next scan + 0.4 s confirmation
    assert all(seen[seen.index(1):])                      # and tracked from then on
    full = FaceDetector(DetectorOptions(absent_scan_s=0, still_scan_s=0))
    for i in range(50):
        full.detect(blank, i / 5)
    assert full.full_scans == 50 and full.idle_skips == 0
    # frames without timestamps (photos) are always scanned
    still = FaceDetector()
    for _ in range(5):
        still.detect(blank)
    assert still.full_scans == 5
    with pytest.raises(ValueError, match="absent_scan_s"):
        DetectorOptions(absent_scan_s=-1)


def _blurred(frame, sigma=16):
    """Softening strong enough that Haar no longer finds the webcam-sized face, not even in its region shrunk to
    40 px (measured: it still does there at σ 14), while the face's look still matches its template."""
    return cv2.GaussianBlur(frame, (0, 0), sigma)


def test_a_confirmed_face_is_followed_by_its_look_between_haar_checks(astronaut):
    """At 30 analyses a second a confirmed face is checked by Haar twice a second and followed by template matching
    in between; the boxes move with the face as Haar's do."""
    face = _webcam_size(astronaut)
    runs = {}
    for every in (0.5, 0.0):
        det = FaceDetector(DetectorOptions(haar_every_s=every))
        xs, roi = [], 0
        for i in range(90):                                   # 3 s, the face drifting 3 px a frame
            boxes = det.detect(paste((720, 1280), face, 200 + 3 * i, 40 + i % 4), i / 30)
            if i == 14:
                roi = det.roi_scans
            if i >= 15:                                       # confirmed after 0.4 s
                assert len(boxes) == 1, f"lost the face at frame {i} (haar_every_s {every})"
                xs.append(int(boxes[0][0]) - 3 * i)
        runs[every] = (det, xs, det.roi_scans - roi)
    followed, xs, roi = runs[0.5]
    # 75 analyses after confirmation: Haar about every 15th (plus the timed full scan), the rest followed
    assert followed.follows >= 65 and roi <= 8, (followed.follows, roi)
    assert max(xs) - min(xs) <= 12                            # the box moves with the face
    each, xs_each, roi_each = runs[0.0]
    assert each.follows == 0 and roi_each >= 70
    assert abs(np.median(xs) - np.median(xs_each)) <= 6       # where Haar puts it


@pytest.mark.parametrize("full_scan_s", [3.0, 1.0], ids=["region-misses", "full-scan-misses-too"])
def test_a_face_haar_misses_is_followed_while_its_look_matches_then_given_up(astronaut, full_scan_s):
    """A confirmed face that Haar stops finding (here: strongly blurred) is still reported where its look matches,
    for ``follow_s`` after Haar last found it — whether Haar missed it in its region or in a timed full scan (at
    1.0 s with ``full_scan_s`` 1, between two Haar checks); then a full scan decides (and finds nothing)."""
    face = _webcam_size(astronaut)
    sharp = paste((720, 1280), face, 300, 60)
    soft = _blurred(sharp)
    assert len(FaceDetector().detect(soft)) == 0              # Haar alone does not find it
    det = FaceDetector(DetectorOptions(haar_every_s=0.7, follow_s=1.0, full_scan_s=full_scan_s))
    for i in range(5):     # 0 … 0.8 s sharp: confirmed at 0.4 s (Haar), followed at 0.6 and 0.8 s
        where = det.detect(sharp, i / 5)
    follows = det.follows
    seen = [det.detect(soft, 0.8 + i / 5) for i in range(1, 8)]  # 1.0 … 2.2 s blurred
    assert [len(b) for b in seen] == [1, 1, 1, 0, 0, 0, 0]    # followed up to 1.0 s after the last Haar hit
    assert _iou(seen[2][0], where[0]) > 0.8
    assert det.follows - follows == 3
    # without following a miss goes to a full scan at once
    det = FaceDetector(DetectorOptions(haar_every_s=0.0, follow_s=0.0))
    for i in range(5):
        det.detect(sharp, i / 5)
    assert len(det.detect(soft, 1.0)) == 0 and det.follows == 0


def test_a_face_that_leaves_or_was_never_confirmed_is_not_followed(astronaut, hopper):
    face = _webcam_size(astronaut)
    sharp = paste((720, 1280), face, 300, 60)
    det = FaceDetector()
    for i in range(5):
        assert len(det.detect(sharp, i / 5)) == (1 if i >= 2 else 0)
    # between Haar checks, the face gone: nothing matches its look, Haar finds nothing
    assert len(det.detect(np.full((720, 1280, 3), 90, np.uint8), 1.0)) == 0
    # another face in its place is Haar's to find, not the template's to follow
    other = paste((720, 1280), cv2.resize(hopper, (420, 420)), 330, 80)
    follows = det.follows
    det.detect(other, 1.2)
    assert det.follows == follows
    # a face Haar saw once, never confirmed, is not followed when Haar then misses it
    det = FaceDetector()
    det.detect(sharp, 0.0)
    assert [len(det.detect(_blurred(sharp), i / 5)) for i in range(1, 6)] == [0] * 5 and det.follows == 0
    # photos (no timestamps) are never followed
    still = FaceDetector()
    for _ in range(5):
        still.detect(sharp)
    assert still.follows == 0


@pytest.mark.parametrize("kwargs", [{"haar_every_s": -0.1}, {"follow_s": -1}, {"follow_min_score": 1.5}])
def test_bad_follow_options(kwargs):
    with pytest.raises(ValueError):
        DetectorOptions(**kwargs)


def test_an_empty_view_that_does_not_change_is_scanned_every_few_seconds(astronaut):
    """While no face is in view, a view that has not changed since its last full scan (a webcam's noise aside) is
    scanned every ``still_scan_s``; anything that moves in it — a face coming back — is scanned for at the next
    ``absent_scan_s`` step."""
    rng = np.random.default_rng(7)
    room = cv2.GaussianBlur(rng.integers(40, 200, (720, 1280, 3), dtype=np.uint8), (0, 0), 3)  # a textured room

    def noisy(img):  # sensor noise, σ 4 gray levels per pixel
        return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)

    det = FaceDetector(DetectorOptions(absent_after_s=1.0, absent_scan_s=0.5, still_scan_s=5.0))
    for i in range(60):                                   # 12 s of the empty room, 5 analyses a second
        assert len(det.detect(noisy(room), i / 5)) == 0
    # no face was ever seen: at 0 s, then at 5 and 10 s (the view unchanged)
    assert det.full_scans == 3, det.full_scans
    assert det.still_skips >= 40
    face = paste((720, 1280), _webcam_size(astronaut), 300, 60, fill=120)
    seen = [len(det.detect(noisy(face), 12 + i / 5)) for i in range(8)]
    assert seen.index(1) <= 5 and all(seen[seen.index(1):])  # ≤ 0.6 s to the next scan + 0.4 s confirmation
    # turned off: the empty room is scanned twice a second
    det = FaceDetector(DetectorOptions(absent_after_s=1.0, absent_scan_s=0.5, still_scan_s=0))
    for i in range(60):
        det.detect(noisy(room), i / 5)
    assert det.full_scans == 20 and det.still_skips == 0   # at 0, 0.6, 1.2 … 11.4 s
    with pytest.raises(ValueError, match="still_scan_s"):
        DetectorOptions(still_scan_s=-1)
