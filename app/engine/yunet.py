"""YuNet face detector (OpenCV Zoo), at any input size."""

from __future__ import annotations

import numpy as np

from app.engine.geometry import detection_canvas, non_max_suppression
from app.engine.runtime import Network
from app.engine.types import DetectedFace

STRIDES = (8, 16, 32)


def decode_yunet(
    outputs: dict[str, np.ndarray], height: int, width: int, score_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw YuNet heads -> (scores (N,), boxes (N, 4) x1y1x2y2, landmarks (N, 5, 2)) above threshold."""
    all_scores, all_boxes, all_landmarks = [], [], []
    for stride in STRIDES:
        cols, rows = width // stride, height // stride
        cls = outputs[f"cls_{stride}"].reshape(-1)
        obj = outputs[f"obj_{stride}"].reshape(-1)
        scores = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
        keep = np.nonzero(scores >= score_threshold)[0]
        if keep.size == 0:
            continue
        grid = np.stack([keep % cols, keep // cols], axis=1).astype(np.float32)
        assert grid[:, 1].max() < rows
        bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)[keep]
        centers = (grid + bbox[:, :2]) * stride
        sizes = np.exp(bbox[:, 2:]) * stride
        boxes = np.hstack([centers - sizes / 2, centers + sizes / 2])
        kps = outputs[f"kps_{stride}"].reshape(-1, 5, 2)[keep]
        landmarks = (kps + grid[:, None, :]) * stride
        all_scores.append(scores[keep])
        all_boxes.append(boxes)
        all_landmarks.append(landmarks)
    if not all_scores:
        return np.zeros(0, np.float32), np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32)
    return np.concatenate(all_scores), np.concatenate(all_boxes), np.concatenate(all_landmarks)


class YuNetDetector:
    def __init__(
        self,
        network: Network,
        *,
        target_side: int,
        pad_ratio: float = 0.15,
        score_threshold: float = 0.6,
        iou_threshold: float = 0.3,
    ) -> None:
        self._network = network
        self.target_side = target_side
        self.pad_ratio = pad_ratio
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold

    def detect(self, image_bgr: np.ndarray) -> list[DetectedFace]:
        canvas = detection_canvas(image_bgr, self.target_side, self.pad_ratio)
        height, width = canvas.pixels.shape[:2]
        blob = canvas.pixels.transpose(2, 0, 1)[None].astype(np.float32)
        raw = dict(zip(self._network.output_names, self._network.run(blob), strict=True))
        scores, boxes, landmarks = decode_yunet(raw, height, width, self.score_threshold)
        faces = []
        for i in non_max_suppression(scores, boxes, self.iou_threshold):
            faces.append(
                DetectedFace(
                    box=canvas.box_to_source(boxes[i]),
                    landmarks=canvas.to_source(landmarks[i]),
                    score=float(scores[i]),
                )
            )
        return faces
