"""A second detection pass for the face that will be compared: sharper landmarks, better alignment.

YuNet sees the image shrunk to ``COMPAREFACES_DETECTION_MAX_SIDE`` (320): a face of a phone photo
or of a 300x250 portrait is then about 100 pixels, and its five landmarks land a few pixels off
(in the 112-pixel aligned frame) from where a detector looking closer puts them. Aligning on them
costs accuracy on hard populations: on East-Asian faces (asian-dev, thresholds set on other people)
SFace accepted 88% of genuine pairs at FAR 1e-3 with first-pass landmarks and 94% with these, for one
more detection per image (docs/models-and-calibration.md). The ``default``, ``sface-refined`` and
``sface-reid`` packs use it.

The first pass only has to find the face: ``default`` and ``sface-reid`` run it on a smaller canvas
(``FIRST_PASS_SHARE`` of the second's: 240 px for 320), cheaper and, on East-Asian faces, no less
accurate (94.7% against 93.8% of genuine pairs accepted at FAR 1e-3, asian-dev, person-level
cross-validation). Where it finds nothing, the whole image is searched again on the full canvas, so
no face is lost to the smaller canvas.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from app.engine.engine import largest_face
from app.engine.types import DetectedFace, Detector

CROP_FACTOR = 1.2  # the second pass sees a square 1.2x the face box's longer side
FIRST_PASS_SHARE = 0.75  # the smaller first canvas, as a share of the second's


def square_around(box: np.ndarray, factor: float) -> tuple[int, int, int]:
    """(left, top, side) of the square of ``factor`` times the box's longer side, on its centre."""
    centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = max(box[2] - box[0], box[3] - box[1]) * factor / 2
    return round(centre_x - half), round(centre_y - half), max(1, round(2 * half))


def square_crop(image_bgr: np.ndarray, left: int, top: int, side: int) -> np.ndarray:
    """The square, black where it leaves the image."""
    shift = np.array([[1, 0, -left], [0, 1, -top]], np.float32)
    return cv2.warpAffine(image_bgr, shift, (side, side), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


class RefinedLandmarksDetector:
    """``inner``'s faces, the largest (the one the engine compares) with landmarks from a second
    pass of ``inner`` on a square crop around it, where it fills the detector's canvas. Other faces
    keep their first-pass landmarks (the cost is one more detection per image, not per face); boxes
    and scores are the first pass's. When the second pass finds nothing, the first pass's landmarks
    stay. With ``first``, the first pass is ``first``'s (a smaller canvas), and ``inner`` searches the
    whole image only where ``first`` found no face."""

    def __init__(self, inner: Detector, crop_factor: float = CROP_FACTOR, *, first: Detector | None = None) -> None:
        self.inner = inner
        self.crop_factor = crop_factor
        self.first = first

    def first_pass(self, image_bgr: np.ndarray) -> list[DetectedFace]:
        faces = self.first.detect(image_bgr) if self.first is not None else []
        return faces or self.inner.detect(image_bgr)

    def detect(self, image_bgr: np.ndarray) -> list[DetectedFace]:
        faces = self.first_pass(image_bgr)
        if not faces:
            return faces
        largest = max(range(len(faces)), key=lambda index: faces[index].area)
        left, top, side = square_around(faces[largest].box, self.crop_factor)
        closer = self.inner.detect(square_crop(image_bgr, left, top, side))
        if closer:
            landmarks = largest_face(closer).landmarks + np.array([left, top], np.float32)
            faces[largest] = replace(faces[largest], landmarks=landmarks.astype(np.float32))
        return faces
