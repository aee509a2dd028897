"""What a person wants to see of one comparison: every face found, the one compared, the aligned
crops the recognizer saw, the score against the thresholds. Shared by the demo page's endpoint and
``comparefaces compare --annotate``. Pure functions apart from the engine call; nothing is kept."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from app.engine.engine import FaceEngine, ImageInspection
from app.engine.strata import explain
from app.engine.types import Comparison, DetectedFace, ImageType
from app.errors import ApiError, NoFaceDetected
from app.wire.compare_faces import comparison_data

# BGR colours of the annotated PNG (the page uses the same ones in CSS).
COMPARED_COLOUR = (80, 200, 60)
OTHER_COLOUR = (40, 160, 255)
LANDMARK_COLOURS = ((255, 80, 80), (80, 80, 255), (60, 220, 220), (255, 80, 255), (255, 200, 60))


@dataclass(frozen=True)
class ImageReport:
    image_type: ImageType
    pixels: np.ndarray | None  # as the engine decoded it (large JPEGs at reduced scale); None: not decodable
    inspection: ImageInspection | None
    error: ApiError | None  # what the API answers because of this image, if anything


@dataclass(frozen=True)
class Analysis:
    source: ImageReport
    target: ImageReport
    comparison: Comparison | None  # None when either image has no usable face


def analyze(
    engine: FaceEngine, source: bytes, source_type: ImageType, target: bytes, target_type: ImageType
) -> Analysis:
    """Decode, detect every face, align and embed the largest of each image, compare. Synchronous
    (run it in the inference pool). A bad image or one without a face is reported, not raised."""
    decoded: list[np.ndarray | None] = []
    errors: list[ApiError | None] = []
    for data in (source, target):
        try:
            decoded.append(engine.decode(data))
            errors.append(None)
        except ApiError as decode_error:
            decoded.append(None)
            errors.append(decode_error)
    kinds = (source_type, target_type)
    usable = [(pixels, kind) for pixels, kind in zip(decoded, kinds, strict=True) if pixels is not None]
    found = iter(engine.inspect_pixels(usable))
    reports = []
    for pixels, kind, image_error in zip(decoded, kinds, errors, strict=True):
        inspection = next(found) if pixels is not None else None
        no_face = inspection is not None and inspection.face is None
        reports.append(ImageReport(kind, pixels, inspection, NoFaceDetected() if no_face else image_error))
    first, second = (report.inspection.face if report.inspection else None for report in reports)
    comparison = engine.compare(first, second) if first is not None and second is not None else None
    return Analysis(reports[0], reports[1], comparison)


def png_data_url(pixels_bgr: np.ndarray) -> str:
    ok, buffer = cv2.imencode(".png", pixels_bgr)
    if not ok:
        raise ValueError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(buffer.tobytes()).decode()


def face_json(face: DetectedFace) -> dict[str, Any]:
    return {
        "box": [round(float(v), 1) for v in face.box],
        "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in face.landmarks],
        "score": round(face.score, 3),
    }


def report_json(report: ImageReport) -> dict[str, Any]:
    height, width = report.pixels.shape[:2] if report.pixels is not None else (0, 0)
    inspection = report.inspection
    return {
        "type": report.image_type.value,
        "width": width,  # the coordinates below are in these pixels
        "height": height,
        "faces": [face_json(face) for face in inspection.faces] if inspection else [],
        "compared": inspection.compared if inspection else None,
        "crop": png_data_url(inspection.crop) if inspection and inspection.crop is not None else None,
        "error": {"Code": report.error.code, "Message": report.error.message} if report.error else None,
    }


def analysis_json(analysis: Analysis, model_id: str) -> dict[str, Any]:
    """The demo endpoint's body. ``comparison.data`` is the ``Data`` the API answers for these images."""
    comparison: dict[str, Any] | None = None
    if analysis.comparison is not None:
        result = analysis.comparison
        data = comparison_data(result)
        score = data["SimilarityScore"]
        thresholds = {
            far: round(value, 2) for far, value in sorted(result.thresholds.items(), key=lambda i: -float(i[0]))
        }
        comparison = {
            "score": score,
            "pair_type": result.pair_type,
            "stratum": result.stratum,
            "thresholds_why": explain(result.stratum),
            "thresholds": thresholds,
            "same_person": {far: score >= threshold for far, threshold in thresholds.items()},
            "data": data,
        }
    return {
        "model": model_id,
        "source": report_json(analysis.source),
        "target": report_json(analysis.target),
        "comparison": comparison,
    }


def _fit(pixels: np.ndarray, height: int) -> tuple[np.ndarray, float]:
    scale = height / pixels.shape[0]
    width = max(1, int(round(pixels.shape[1] * scale)))
    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR), scale


def _draw_faces(canvas: np.ndarray, report: ImageReport, scale: float) -> None:
    inspection = report.inspection
    if inspection is None:
        return
    thickness = max(1, int(round(canvas.shape[0] / 200)))
    order = sorted(range(len(inspection.faces)), key=lambda i: i == inspection.compared)  # compared one on top
    for index in order:
        face = inspection.faces[index]
        colour = COMPARED_COLOUR if index == inspection.compared else OTHER_COLOUR
        x1, y1, x2, y2 = (int(round(float(v) * scale)) for v in face.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness * (2 if index == inspection.compared else 1))
        for (x, y), dot in zip(face.landmarks, LANDMARK_COLOURS, strict=True):
            cv2.circle(canvas, (int(round(float(x) * scale)), int(round(float(y) * scale))), thickness + 1, dot, -1)


def _panel(report: ImageReport, height: int) -> np.ndarray:
    if report.pixels is None:
        panel = np.full((height, height, 3), 60, np.uint8)
    else:
        panel, scale = _fit(report.pixels, height)
        panel = panel.copy()
        _draw_faces(panel, report, scale)
    crop_side = height // 2
    column = np.full((height, crop_side, 3), 255, np.uint8)
    if report.inspection is not None and report.inspection.crop is not None:
        column[:crop_side] = cv2.resize(report.inspection.crop, (crop_side, crop_side))
    label = report.error.code if report.error else report.image_type.value
    cv2.putText(panel, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 3, cv2.LINE_AA)
    cv2.putText(panel, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return np.hstack([panel, column])


def annotate(analysis: Analysis, height: int = 360) -> np.ndarray:
    """Both images side by side with every face's box and landmarks (the compared one thick and
    green), each followed by its aligned crop, and the score with the thresholds below."""
    row = np.hstack([_panel(analysis.source, height), _panel(analysis.target, height)])
    footer = np.full((48, row.shape[1], 3), 255, np.uint8)
    if analysis.comparison is None:
        text = "no comparison: " + " / ".join(
            report.error.code for report in (analysis.source, analysis.target) if report.error
        )
    else:
        result = analysis.comparison
        score = comparison_data(result)["SimilarityScore"]
        marks = ", ".join(f"FAR {far}: {value:.2f}" for far, value in sorted(result.thresholds.items()))
        text = f"SimilarityScore {score:.2f}  ({result.pair_type}, {result.stratum or 'strictest'}; {marks})"
    cv2.putText(footer, text, (8, 31), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([row, footer])
