"""SCRFD face detector (insightface, with 5 keypoints) at any input size."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.engine.geometry import detection_canvas, non_max_suppression
from app.engine.runtime import Network
from app.engine.types import DetectedFace

FIRST_STRIDE = 8


@dataclass(frozen=True)
class DetectorPreprocessing:
    rgb: bool = True  # feed RGB (the image arrives BGR)
    mean: float = 127.5
    std: float = 128.0


class ScrfdOutputError(ValueError):
    pass


def split_heads(outputs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Raw SCRFD outputs in any order -> (scores, boxes, keypoints) per stride, finest first.

    Heads are told apart by their last dimension (1 score, 4 box distances, 10 keypoint offsets)
    and strides by their row count (the finest stride has the most anchors), not by output names.
    """
    heads: dict[int, list[np.ndarray]] = {1: [], 4: [], 10: []}
    for output in outputs:
        array = np.asarray(output, dtype=np.float32)
        width = array.shape[-1] if array.ndim >= 2 else 1
        if width not in heads:
            raise ScrfdOutputError(f"unexpected SCRFD output shape {array.shape}")
        heads[width].append(array.reshape(-1, width))
    scores, boxes, kps = (sorted(heads[w], key=len, reverse=True) for w in (1, 4, 10))
    if not scores or len(boxes) != len(scores):
        raise ScrfdOutputError(f"need one score and one box output per stride, got {len(scores)} and {len(boxes)}")
    if len(kps) != len(scores):
        raise ScrfdOutputError("this SCRFD model has no keypoint outputs; alignment needs the 5 landmarks")
    return scores, boxes, kps


def anchor_centers(height: int, width: int, stride: int, anchors: int) -> np.ndarray:
    """(rows * cols * anchors, 2) x, y of each anchor, row-major, anchors of a cell adjacent."""
    rows, cols = height // stride, width // stride
    ys, xs = np.mgrid[:rows, :cols]
    centers = (np.stack([xs, ys], axis=-1).reshape(-1, 2) * stride).astype(np.float32)
    return np.repeat(centers, anchors, axis=0)


def decode_scrfd(
    outputs: Sequence[np.ndarray], height: int, width: int, score_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw SCRFD heads for an ``height`` x ``width`` input -> (scores (N,), boxes (N, 4) x1y1x2y2,
    landmarks (N, 5, 2)) above ``score_threshold``, in input pixels (before NMS)."""
    all_scores, all_boxes, all_landmarks = [], [], []
    for level, (score, box, kps) in enumerate(zip(*split_heads(outputs), strict=True)):
        stride = FIRST_STRIDE * 2**level
        cells = (height // stride) * (width // stride)
        if cells == 0 or len(score) % cells:
            raise ScrfdOutputError(f"{len(score)} anchors do not fit a {width}x{height} input at stride {stride}")
        keep = np.nonzero(score[:, 0] >= score_threshold)[0]
        if keep.size == 0:
            continue
        centers = anchor_centers(height, width, stride, len(score) // cells)[keep]
        distances = box[keep] * stride
        all_boxes.append(np.hstack([centers - distances[:, :2], centers + distances[:, 2:]]))
        all_landmarks.append(centers[:, None, :] + kps[keep].reshape(-1, 5, 2) * stride)
        all_scores.append(score[keep, 0])
    if not all_scores:
        return np.zeros(0, np.float32), np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32)
    return np.concatenate(all_scores), np.concatenate(all_boxes), np.concatenate(all_landmarks)


def fit_canvas(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Zero-pad (or trim padding from) the right and bottom so ``pixels`` is exactly height x width."""
    fitted = np.zeros((height, width, 3), dtype=pixels.dtype)
    h, w = min(height, pixels.shape[0]), min(width, pixels.shape[1])
    fitted[:h, :w] = pixels[:h, :w]
    return fitted


class ScrfdDetector:
    def __init__(
        self,
        network: Network,
        *,
        target_side: int,
        prep: DetectorPreprocessing | None = None,
        pad_ratio: float = 0.15,
        score_threshold: float = 0.5,
        iou_threshold: float = 0.4,
    ) -> None:
        self._network = network
        shape = list(network.input_shape)
        height, width = (shape[2], shape[3]) if len(shape) == 4 else (None, None)
        # A graph exported at a fixed size gets canvases of exactly that size.
        self.fixed_size = (height, width) if isinstance(height, int) and isinstance(width, int) else None
        self.target_side = min(self.fixed_size) if self.fixed_size else target_side
        self.prep = prep or DetectorPreprocessing()
        self.pad_ratio = pad_ratio
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold

    def blob(self, pixels: np.ndarray) -> np.ndarray:
        image = pixels[..., ::-1] if self.prep.rgb else pixels
        normalised = (image.astype(np.float32) - self.prep.mean) / self.prep.std
        return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])

    def detect(self, image_bgr: np.ndarray) -> list[DetectedFace]:
        canvas = detection_canvas(image_bgr, self.target_side, self.pad_ratio, multiple=32)
        pixels = fit_canvas(canvas.pixels, *self.fixed_size) if self.fixed_size else canvas.pixels
        height, width = pixels.shape[:2]
        raw = self._network.run(self.blob(pixels))
        scores, boxes, landmarks = decode_scrfd(raw, height, width, self.score_threshold)
        return [
            DetectedFace(
                box=canvas.box_to_source(boxes[i]),
                landmarks=canvas.to_source(landmarks[i]),
                score=float(scores[i]),
            )
            for i in non_max_suppression(scores, boxes, self.iou_threshold)
        ]
