"""Pure image geometry: detection canvases, box suppression, landmark alignment, ID-style crops."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# The standard 5-point ArcFace template for a 112x112 crop.
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)

ID_PORTRAIT_SIZE = (102, 126)  # width, height of a second-generation ID card chip portrait


@dataclass(frozen=True)
class Canvas:
    """An image prepared for a detector, and how to map its coordinates back."""

    pixels: np.ndarray
    scale: float  # canvas px per source px
    offset: tuple[float, float]  # canvas (x, y) of the source's top-left corner
    source_size: tuple[int, int]  # width, height of the source image

    def to_source(self, points: np.ndarray) -> np.ndarray:
        return (points - np.asarray(self.offset, dtype=np.float32)) / self.scale

    def box_to_source(self, box: np.ndarray) -> np.ndarray:
        """(x1, y1, x2, y2) in the source, clipped to it: a face cut by the image edge counts only
        for its visible part (detectors extrapolate its box into the padding, past the subject's)."""
        width, height = self.source_size
        corners = self.to_source(np.asarray(box, dtype=np.float32).reshape(2, 2))
        return np.clip(corners, 0, [width, height]).reshape(4)


def detection_canvas(image: np.ndarray, target_side: int, pad_ratio: float, multiple: int = 32) -> Canvas:
    """Pad ``image`` by ``pad_ratio`` of its longer side on every side, then scale so the longer
    side is ``target_side`` (up or down) and pad right/bottom to a multiple of ``multiple``.

    Padding gives face-filling portraits (ID chips) the margin detectors were trained with;
    scaling makes small images big enough and big ones cheap.
    """
    height, width = image.shape[:2]
    pad = int(round(max(height, width) * pad_ratio))
    padded_w, padded_h = width + 2 * pad, height + 2 * pad
    scale = target_side / max(padded_w, padded_h)
    new_w, new_h = max(1, int(round(width * scale))), max(1, int(round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    pad_px = int(round(pad * scale))
    canvas_w = -(-(new_w + 2 * pad_px) // multiple) * multiple
    canvas_h = -(-(new_h + 2 * pad_px) // multiple) * multiple
    canvas = np.zeros((canvas_h, canvas_w, 3), dtype=np.uint8)
    canvas[pad_px : pad_px + new_h, pad_px : pad_px + new_w] = resized
    scale_x, scale_y = new_w / width, new_h / height
    return Canvas(canvas, float((scale_x + scale_y) / 2), (float(pad_px), float(pad_px)), (width, height))


def non_max_suppression(scores: np.ndarray, boxes: np.ndarray, iou_threshold: float) -> list[int]:
    """Indices kept by greedy NMS, best score first."""
    xywh = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes]
    kept = cv2.dnn.NMSBoxes(xywh, scores.astype(float).tolist(), 0.0, iou_threshold)
    return [int(i) for i in np.asarray(kept).reshape(-1)]


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (rotation, uniform scale, translation) mapping source to
    target points (Umeyama, without reflection)."""
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rotation = u @ np.diag(sign) @ vt
    variance = (src_c**2).sum() / len(src)
    scale = (singular * sign).sum() / variance if variance > 0 else 1.0
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]]).astype(np.float32)


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp the face with these 5 landmarks onto the ArcFace template, ``size`` x ``size``."""
    template = ARCFACE_TEMPLATE_112 * (size / 112.0)
    matrix = similarity_transform(landmarks, template)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def id_portrait_crop(image: np.ndarray, box: np.ndarray, *, width_factor: float = 1.45) -> np.ndarray:
    """A head-and-shoulders crop around a face box, shaped and sized like an ID chip portrait."""
    out_w, out_h = ID_PORTRAIT_SIZE
    x1, y1, x2, y2 = (float(v) for v in box)
    crop_w = (x2 - x1) * width_factor
    crop_h = crop_w * out_h / out_w
    center_x = (x1 + x2) / 2
    center_y = (y1 + y2) / 2 + 0.06 * crop_h
    left, top = center_x - crop_w / 2, center_y - crop_h / 2
    matrix = np.array(
        [[out_w / crop_w, 0, -left * out_w / crop_w], [0, out_h / crop_h, -top * out_h / crop_h]],
        dtype=np.float32,
    )
    return cv2.warpAffine(
        image,
        matrix,
        (out_w, out_h),
        flags=cv2.INTER_AREA,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(255, 255, 255),
    )
