"""Haar face detection (OpenCV's frontal-face cascade), engineered for a live webcam.

Cost is the whole game here: a Haar scan of a full 1280×720 frame takes well over 100 ms, the expression model
under a millisecond. So the detector

- scans a **downscaled grayscale copy** (``work_width`` pixels wide) rather than the frame itself;
- ignores faces smaller than ``min_face_fraction`` of the frame height (a streamer's face on their own webcam is large);
- while it is tracking a face, searches only a **region around the last face**, rescaled so that face is about
  ``roi_face_px`` wide, with the search window sizes limited to what a face can become between two analyses;
- between Haar checks of a confirmed face (``haar_every_s``, twice a second), **follows the face by its look**: the
  face as Haar last found it, shrunk to a ``TEMPLATE_PX``-wide grayscale template, matched (normalised
  cross-correlation) in a small region around the last box — about 0.3 ms per analysis on a 640×360 frame, where a
  Haar search of the face's region costs 2–3 ms, because nearly every window over a face passes deep into the
  cascade. A weak match hands over to Haar at once; the template is only ever taken from a Haar detection, so it
  cannot drift. When Haar misses a confirmed face that still matches (blur, a slight turn: on the test photo the
  match falls under ``follow_min_score`` at about 13° of roll), the face is followed by its look for up to
  ``follow_s`` before the detector gives it up and scans the full frame;
- scans the full frame only every ``full_scan_s`` seconds of the frames' time (``full_scan_every`` analyses for frames
  without timestamps) to pick up other faces and to correct drift, or when the tracked face is lost. Time, not a
  count: at OBS's 5 analyses a second both are 3 s, but a file analysed frame by frame (30 a second) would otherwise
  pay a full scan — the detector's one big cost (``tools/bench_engine.py`` prints both kinds) — every half
  second;
- with no face in view, scans the full frame twice a second (``absent_scan_s``), and a view that has not changed
  since its last scan only every ``still_scan_s`` (an empty chair during a break).

Given timestamps, it also keeps **false positives** out: a face counts only once it has been seen at one place for
``min_track_s`` seconds (Haar's false faces on textured backgrounds come and go within a few frames: on a cartoon
clip analysed frame by frame, a cartoon face was found on about half of the frames of a 0.7-s stretch), and a
confirmed face survives misses of up to ``lost_grace_s``.

Boxes are ``(x, y, w, h)``: top-left corner, width and height in **pixels of the input frame** (not the working copy),
as ``int32``. The primary face comes first: the one nearest the previous primary face when there is one, else the
largest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import MindFlowError
from .frames import check_frame, to_gray

CASCADE_FILE = "haarcascade_frontalface_default.xml"
HIT_RATE_TAU_S = 0.5    # time constant of a track's hit rate (seconds)
CONFIRM_RATE = 0.7      # a track is confirmed at this hit rate (after min_track_s) …
DROP_RATE = 0.4         # … and dropped below this one
TEMPLATE_PX = 32        # width of the face template that follows a confirmed face between Haar checks
FOLLOW_MARGIN = 0.3     # the template is searched for this fraction of the face's width around its last box
STILL_GRID = (32, 18)   # the thumbnail (width, height) that tells whether an empty view has changed …
STILL_LEVEL = 8.0       # … by a cell's mean moving more than this many gray levels


class DetectorError(MindFlowError, RuntimeError):
    """The Haar cascade cannot be loaded. The message names the fix."""


@dataclass(frozen=True)
class DetectorOptions:
    """Tuning of :class:`FaceDetector`; sizes in pixels, fractions of the frame height.

    - ``work_width``: width of the grayscale copy used for full scans (height follows the aspect ratio); frames
      narrower than this are scanned as they are. The cost of a full scan depends on this, not on the input size.
    - ``min_face_fraction``: faces smaller than this fraction of the frame height are ignored. The cascade's own
      24-px window at the working size also applies: with the defaults a 16:9 frame is scanned at 320×180, where
      24 px is 13 % of the height. A streamer's face on their own webcam is typically 20–40 % of the frame height.
      Measured on the test photos: 320 px gave no false positives where 384–512 px gave a few (Haar finds more
      face-like texture at finer scales), at about half the cost of 448 px.
    - ``scale_factor``, ``min_neighbors``: ``CascadeClassifier.detectMultiScale`` parameters.
    - ``full_scan_s``: with timestamps, while tracking, a full scan happens every this many seconds (0: every
      analysis).
    - ``full_scan_every``: without timestamps, while tracking, a full scan happens every this many analyses.
    - ``roi_margin``: the search region is the last face box grown by this fraction of its size on each side.
    - ``roi_face_px``: the search region is resized so the last face is about this many pixels wide.
    - ``max_faces``: at most this many faces are returned (primary first, then by size).
    - ``min_track_s``: with timestamps, a new face is reported only after it has been detected at the same place
      (overlapping boxes) for this many seconds; 0 turns the check off.
    - ``lost_grace_s``: with timestamps, a confirmed face stays confirmed through misses this long.
    - ``haar_every_s``: with timestamps, a confirmed face is checked by Haar (in its region) at most this often;
      the analyses in between follow it by template matching. 0: Haar at every analysis (no following).
    - ``follow_s``: with timestamps, a confirmed face that Haar misses is still reported where its template matches
      for up to this long after Haar last found it; then a full scan decides. 0: a miss goes to a full scan at once.
    - ``follow_min_score``: the lowest normalised cross-correlation (−1…1) at which the template counts as the face;
      a weaker match hands over to Haar. Measured on the bundled sample at 5 Hz: the face 0.2–0.4 s after Haar
      found it matched at a median 0.97 (10th percentile 0.85); the few matches under 0.6 were the face turning
      away or leaving. On the test photo, the face rolled 10° matches at 0.78, 15° at 0.65.
    - ``absent_after_s``, ``absent_scan_s``: with timestamps, once no face has been detected for ``absent_after_s``
      seconds, the full frame is scanned at most every ``absent_scan_s`` seconds; the frames in between report no
      face without a scan (a full scan costs 5–10 times what tracking does, and an empty room would otherwise pay it
      on every analysis). It delays finding a face that comes back by at most ``absent_scan_s``. 0 turns it off.
    - ``still_scan_s``: with timestamps, while no face is in view, a view that has **not changed** since its last
      full scan (no cell of a ``STILL_GRID`` grayscale thumbnail moved by more than ``STILL_LEVEL`` gray levels —
      far above a webcam's noise once averaged over a cell, far below a person walking in) is scanned only every
      this many seconds: an empty chair during a break costs almost nothing. A face that comes back moves the view
      and is scanned for at the next ``absent_scan_s`` step as before. 0 turns it off.
    """

    work_width: int = 320
    min_face_fraction: float = 0.12
    scale_factor: float = 1.1
    min_neighbors: int = 5
    full_scan_every: int = 15
    full_scan_s: float = 3.0
    roi_margin: float = 0.6
    roi_face_px: int = 40
    max_faces: int = 4
    min_track_s: float = 0.4
    lost_grace_s: float = 0.6
    absent_after_s: float = 1.0
    absent_scan_s: float = 0.5
    haar_every_s: float = 0.5
    follow_s: float = 1.0
    follow_min_score: float = 0.7
    still_scan_s: float = 5.0

    def __post_init__(self) -> None:
        if self.work_width < 64:
            raise ValueError(f"work_width must be at least 64 px, got {self.work_width}")
        if not 0 <= self.min_face_fraction < 1:
            raise ValueError(f"min_face_fraction must be in [0, 1), got {self.min_face_fraction}")
        if self.scale_factor <= 1.0:
            raise ValueError(f"scale_factor must be > 1, got {self.scale_factor}")
        if self.full_scan_every < 1 or self.max_faces < 1 or self.min_neighbors < 0:
            raise ValueError("full_scan_every and max_faces must be >= 1, min_neighbors >= 0")
        if self.roi_face_px < 32:
            raise ValueError(f"roi_face_px must be at least 32, got {self.roi_face_px}")
        if min(self.min_track_s, self.lost_grace_s, self.full_scan_s, self.absent_after_s, self.absent_scan_s,
               self.haar_every_s, self.follow_s, self.still_scan_s) < 0:
            raise ValueError("min_track_s, lost_grace_s, full_scan_s, absent_after_s, absent_scan_s, haar_every_s, "
                             "follow_s and still_scan_s are seconds >= 0")
        if not -1.0 <= self.follow_min_score <= 1.0:
            raise ValueError(f"follow_min_score is a correlation in [-1, 1], got {self.follow_min_score}")


def load_cascade(name: str = CASCADE_FILE) -> cv2.CascadeClassifier:
    """Load a Haar cascade shipped with OpenCV (``cv2.data.haarcascades``)."""
    if not hasattr(cv2, "CascadeClassifier"):
        raise DetectorError(f"this OpenCV ({cv2.__version__}) has no CascadeClassifier (OpenCV 5 dropped Haar "
                            f"cascades): install 'opencv-python-headless>=4.8,<5'")
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if not folder:
        raise DetectorError(f"this OpenCV build ({cv2.__version__}) ships no Haar cascade files (cv2.data is "
                            f"missing): install 'opencv-python-headless>=4.8,<5' from PyPI")
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise DetectorError(f"Haar cascade not found: {path} — this OpenCV build lacks it; "
                            f"install 'opencv-python-headless>=4.8,<5' from PyPI")
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise DetectorError(f"cannot load Haar cascade {path}: the file is damaged; reinstall opencv-python-headless")
    return cascade


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one ``(x, y, w, h)`` box ``a`` against boxes ``b`` ``(N, 4)``."""
    x0 = np.maximum(a[0], b[:, 0])
    y0 = np.maximum(a[1], b[:, 1])
    x1 = np.minimum(a[0] + a[2], b[:, 0] + b[:, 2])
    y1 = np.minimum(a[1] + a[3], b[:, 1] + b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    return inter / np.maximum(a[2] * a[3] + b[:, 2] * b[:, 3] - inter, 1e-9)


class FaceDetector:
    """Stateful Haar face detector for a sequence of frames from one camera. Not thread-safe: one per worker."""

    def __init__(self, options: DetectorOptions | None = None) -> None:
        self.options = options or DetectorOptions()
        self._cascade = load_cascade()
        self._last: np.ndarray | None = None  # primary box (x, y, w, h) in frame pixels, float
        self._since_full = 0
        self._full_t = -np.inf
        self._frame_shape: tuple[int, int] | None = None
        self.full_scans = 0
        self.roi_scans = 0
        self.idle_skips = 0          # frames not scanned while no face is in view (``absent_scan_s``)
        self.still_skips = 0         # … of which the view had not changed since its last full scan (``still_scan_s``)
        self._still: np.ndarray | None = None   # the thumbnail of the last full scan that found no face
        self._face_t = -np.inf       # when a face was last detected (frames' time)
        self.rejected = 0            # detections not (yet) confirmed by the track
        self._track: np.ndarray | None = None   # the face being confirmed or followed, (x, y, w, h)
        self._track_since = 0.0
        self._track_seen = 0.0
        self._track_t = 0.0
        self._rate = 0.0
        self._confirmed = False
        self.follows = 0             # analyses where the face was followed by its template instead of Haar
        self._template: np.ndarray | None = None   # TEMPLATE_PX-wide gray face from the last Haar detection
        self._haar_t = -np.inf       # when Haar last found the primary face (frames' time)

    def reset(self) -> None:
        """Forget the tracked face (call when the source changes)."""
        self._last = None
        self._since_full = 0
        self._full_t = -np.inf
        self._face_t = -np.inf
        self._track = None
        self._confirmed = False
        self._template = None
        self._haar_t = -np.inf
        self._still = None

    def detect(self, frame: np.ndarray, timestamp: float | None = None) -> np.ndarray:
        """Faces in ``frame`` (gray, BGR or BGRA uint8, any size) as ``(N, 4)`` int32 ``(x, y, w, h)`` boxes in
        frame pixels, primary first. An empty ``(0, 4)`` array when there is none.

        ``timestamp`` (seconds, non-decreasing): frames of one video or camera; faces are then reported only once
        confirmed (see ``min_track_s``). Without it every detection counts (a photo)."""
        boxes = self._detect(frame, timestamp)
        if timestamp is None or self.options.min_track_s <= 0:
            return boxes
        return self._confirm(boxes, float(timestamp))

    def _confirm(self, boxes: np.ndarray, t: float) -> np.ndarray:
        """Temporal persistence of the primary face: a track at one place, its hit rate (an exponential average of
        detected / not detected over ``HIT_RATE_TAU_S``), confirmed once it has lasted ``min_track_s`` with a hit
        rate of at least ``CONFIRM_RATE``, dropped when the rate falls under ``DROP_RATE`` or after
        ``lost_grace_s`` without a detection."""
        o = self.options
        hit = False
        if len(boxes):
            box = boxes[0].astype(np.float64)
            if self._track is not None and _iou(self._track, box[None, :])[0] > 0.2:
                hit = True
                self._track = box
            elif self._track is None or not self._confirmed or t - self._track_seen > o.lost_grace_s:
                self._track, self._track_since, self._track_t, self._rate = box, t, t, 0.5
                self._confirmed, hit = False, True
        if self._track is not None:
            a = 1.0 - np.exp(-max(0.0, t - self._track_t) / HIT_RATE_TAU_S)
            self._rate += a * (float(hit) - self._rate)
            self._track_t = t
            if hit:
                self._track_seen = t
            if self._rate < DROP_RATE or t - self._track_seen > o.lost_grace_s:
                self._track, self._confirmed = None, False
            elif not self._confirmed and t - self._track_since >= o.min_track_s and self._rate >= CONFIRM_RATE:
                self._confirmed = True
        if hit and self._confirmed:
            return boxes
        if len(boxes):
            self.rejected += 1
        return boxes[:0]

    def _detect(self, frame: np.ndarray, t: float | None = None) -> np.ndarray:
        frame = check_frame(frame)
        h, w = frame.shape[:2]
        if h < 24 or w < 24:
            self.reset()
            return np.zeros((0, 4), np.int32)
        if self._frame_shape != (h, w):
            self.reset()
            self._frame_shape = (h, w)
        o = self.options
        boxes = None
        due = (self._since_full + 1 >= o.full_scan_every if t is None
               else float(t) - self._full_t >= o.full_scan_s or float(t) < self._full_t)
        confirmed = self._confirmed or o.min_track_s <= 0    # no confirmation asked for: every face counts
        followable = t is not None and confirmed and self._template is not None and self._last is not None
        if followable and float(t) < self._haar_t:
            followable = False  # time went back: a new video
        tried = False  # the template was matched on this frame (and did not match)
        if self._last is not None and not due:
            if followable and float(t) - self._haar_t < o.haar_every_s:
                followed, tried = self._follow(frame, self._last), True
                if followed is not None:
                    return self._found_by_look(followed, float(t))
            boxes = self._scan_roi(frame, self._last)
            if boxes is not None:
                self._since_full += 1
        # Haar missed a confirmed face in its region, or is due to scan the full frame: while the face still looks
        # like itself, keep following it (a full scan that misses it is treated alike)
        keep = followable and float(t) - self._haar_t <= o.follow_s
        if boxes is None and keep and not tried and not due:
            followed, tried = self._follow(frame, self._last), True
            if followed is not None:
                return self._found_by_look(followed, float(t))
        if boxes is None:
            if self._idle(t, frame):
                self.idle_skips += 1
                return np.zeros((0, 4), np.int32)
            boxes = self._scan_full(frame)
            self._since_full = 0
            self._full_t = -np.inf if t is None else float(t)
            if not len(boxes) and keep and not tried:
                followed = self._follow(frame, self._last)
                if followed is not None:
                    return self._found_by_look(followed, float(t))
            self._still = self._thumbnail(frame) if not len(boxes) and t is not None and o.still_scan_s > 0 else None
        if len(boxes) and t is not None:
            self._face_t = float(t)
        boxes = self._order(boxes)
        self._last = boxes[0].astype(np.float64) if len(boxes) else None
        if self._last is not None and t is not None and (o.haar_every_s > 0 or o.follow_s > 0):
            self._anchor(frame, self._last, float(t))
        return np.round(boxes).astype(np.int32)[: o.max_faces]

    def _found_by_look(self, box: np.ndarray, t: float) -> np.ndarray:
        self.follows += 1
        self._face_t = t
        self._last = box
        return np.round(box[None, :]).astype(np.int32)

    # -- following by template -------------------------------------------------------------------------------

    def _anchor(self, frame: np.ndarray, box: np.ndarray, t: float) -> None:
        """Keep the face Haar just found as the template that follows it until the next Haar check."""
        h, w = frame.shape[:2]
        x, y, bw, bh = box
        x0, y0, x1, y1 = int(round(x)), int(round(y)), int(round(x + bw)), int(round(y + bh))
        self._template = None
        if x0 < 0 or y0 < 0 or x1 > w or y1 > h or bw < 8:
            return  # not wholly in the frame: Haar's boxes are, so this does not happen; no look to keep
        size = (TEMPLATE_PX, max(8, round(TEMPLATE_PX * bh / bw)))
        template = to_gray(cv2.resize(frame[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA))
        if float(template.std()) < 2.0:
            return  # a flat patch has no look to match (the correlation is undefined)
        self._template = template
        self._haar_t = t

    def _follow(self, frame: np.ndarray, last: np.ndarray) -> np.ndarray | None:
        """The last face's box moved to where its template matches best near it, or ``None`` when the best match is
        weaker than ``follow_min_score`` (or the region leaves the frame)."""
        tpl = self._template
        if tpl is None:
            return None
        h, w = frame.shape[:2]
        x, y, bw, bh = last
        s = TEMPLATE_PX / bw
        m = FOLLOW_MARGIN * bw
        x0, y0 = int(max(0, np.floor(x - m))), int(max(0, np.floor(y - m)))
        x1, y1 = int(min(w, np.ceil(x + bw + m))), int(min(h, np.ceil(y + bh + m)))
        sw, sh = round((x1 - x0) * s), round((y1 - y0) * s)
        if sw <= tpl.shape[1] or sh <= tpl.shape[0]:
            return None
        region = to_gray(cv2.resize(frame[y0:y1, x0:x1], (sw, sh), interpolation=cv2.INTER_AREA))
        scores = cv2.matchTemplate(region, tpl, cv2.TM_CCOEFF_NORMED)
        _, best, _, (px, py) = cv2.minMaxLoc(scores)
        if not best >= self.options.follow_min_score:  # also NaN (a flat region)
            return None
        return np.array([x0 + px / s, y0 + py / s, bw, bh], np.float64)

    def _idle(self, t: float | None, frame: np.ndarray) -> bool:
        """True when this frame's full scan is skipped: no face for ``absent_after_s``, and the last full scan less
        than ``absent_scan_s`` ago, or less than ``still_scan_s`` ago on a view that has not changed since
        (frames' time)."""
        o = self.options
        if t is None or o.absent_scan_s <= 0 or self._last is not None:
            return False
        t = float(t)
        if not (t - self._face_t > o.absent_after_s and t >= self._full_t):
            return False
        if t - self._full_t < o.absent_scan_s:
            return True
        if self._still is not None and t - self._full_t < o.still_scan_s:
            moved = np.abs(self._thumbnail(frame) - self._still).max()
            if moved <= STILL_LEVEL:
                self.still_skips += 1
                return True
        return False

    @staticmethod
    def _thumbnail(frame: np.ndarray) -> np.ndarray:
        return to_gray(cv2.resize(frame, STILL_GRID, interpolation=cv2.INTER_AREA)).astype(np.float32)

    # -- scans ----------------------------------------------------------------------------------------------

    def _haar(self, gray: np.ndarray, min_px: float, max_px: float = 0) -> np.ndarray:
        o = self.options
        min_px = int(max(24, min_px))
        kwargs = {"maxSize": (int(max_px), int(max_px))} if max_px and max_px > min_px else {}
        found = self._cascade.detectMultiScale(gray, scaleFactor=o.scale_factor, minNeighbors=o.min_neighbors,
                                               minSize=(min_px, min_px), **kwargs)
        return np.asarray(found, dtype=np.float64).reshape(-1, 4)

    def _scan_full(self, frame: np.ndarray) -> np.ndarray:
        self.full_scans += 1
        h, w = frame.shape[:2]
        s = min(1.0, self.options.work_width / w)
        if s < 1.0:
            small = cv2.resize(frame, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        else:
            small = frame
        gray = to_gray(small)
        boxes = self._haar(gray, self.options.min_face_fraction * h * s)
        return boxes / s

    def _scan_roi(self, frame: np.ndarray, last: np.ndarray) -> np.ndarray | None:
        """Search around the last primary face; ``None`` if it is not found there."""
        self.roi_scans += 1
        o = self.options
        h, w = frame.shape[:2]
        x, y, bw, bh = last
        x0 = int(max(0, np.floor(x - o.roi_margin * bw)))
        y0 = int(max(0, np.floor(y - o.roi_margin * bh)))
        x1 = int(min(w, np.ceil(x + bw * (1 + o.roi_margin))))
        y1 = int(min(h, np.ceil(y + bh * (1 + o.roi_margin))))
        if x1 - x0 < 24 or y1 - y0 < 24:
            return None
        s = min(1.0, o.roi_face_px / bw)
        roi = frame[y0:y1, x0:x1]
        if s < 1.0:
            roi = cv2.resize(roi, (max(1, round((x1 - x0) * s)), max(1, round((y1 - y0) * s))),
                             interpolation=cv2.INTER_AREA)
        gray = to_gray(roi)
        face = bw * s
        min_px = max(0.7 * face, o.min_face_fraction * h * s)
        boxes = self._haar(gray, min_px, max_px=1.45 * face)
        if not len(boxes):
            return None
        boxes = boxes / s
        boxes[:, 0] += x0
        boxes[:, 1] += y0
        if _iou(last, boxes).max() <= 0.1:
            return None  # something else in the region; re-acquire with a full scan
        return boxes

    def _order(self, boxes: np.ndarray) -> np.ndarray:
        """Primary first (nearest the previous primary, else largest), the rest by size."""
        if len(boxes) <= 1:
            return boxes
        by_size = boxes[np.argsort(-(boxes[:, 2] * boxes[:, 3]), kind="stable")]
        if self._last is None:
            return by_size
        overlap = _iou(self._last, by_size)
        if overlap.max() <= 0.1:
            return by_size
        first = int(np.argmax(overlap))
        return np.concatenate([by_size[first:first + 1], np.delete(by_size, first, axis=0)])
