"""The face engine: detect the largest face, align, embed, compare. Synchronous, starts no thread,
and thread-safe (onnxruntime sessions may be run from several threads at once); who runs it on which
thread is ``app.comparison``'s business."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from app.engine.calibration import Calibration
from app.engine.geometry import align_face
from app.engine.strata import pair_stratum
from app.engine.types import AgeEstimator, Comparison, DetectedFace, Detector, Face, ImageType, Recognizer, pair_type
from app.errors import NoFaceDetected
from app.images.decode import MAX_DECODE_BYTES, decode_image

StageTimer = Callable[[str, float], None]
"""Told each stage's name ("decode", "detect", "align", "embed", "age") and its seconds, once per call:
decode per image, detect, align, embed and age per ``embed_pixels`` call (both images of a pair)."""

In = TypeVar("In")
Out = TypeVar("Out")
ImageMapper = Callable[[Callable[[In], Out], Sequence[In]], list[Out]]
"""How the images of one call are detected: ``map_images(detect, images)``, in order. The default
detects one after the other; the comparison service lends its detection helper."""


def one_after_another(function: Callable[[In], Out], items: Sequence[In]) -> list[Out]:
    return [function(item) for item in items]


def largest_face(faces: Sequence[DetectedFace]) -> DetectedFace:
    """The face with the largest box area (the spec's rule), not the most central one."""
    if not faces:
        raise NoFaceDetected()
    return max(faces, key=lambda face: face.area)


@dataclass(frozen=True)
class ImageInspection:
    """What the engine saw in one image: every face, which one it compared, and what it embedded."""

    faces: list[DetectedFace]  # every face found, in detector order
    compared: int | None  # index of the largest face in ``faces``; None when there is none
    crop: np.ndarray | None  # the aligned BGR crop the recognizer saw
    face: Face | None  # its embedding


class FacePipeline:
    """Per image: the largest face, its aligned crop, its embedding. The one path the server, the CLI
    (``compare``, the demo) and calibration (``app.tools.dataset.embed_directory``) share, so scores
    are calibrated on exactly what is served; whatever depends on the image type is decided here.

    ``flip_portraits``: an ID portrait's embedding is the mean of its crop's and its mirror image's
    (test-time augmentation of the small, soft portrait; face photos are embedded once).
    ``ages``: how old each compared face looks, for calibrations with strata (``app.engine.strata``:
    which impostors a pair is measured against)."""

    def __init__(
        self,
        detector: Detector,
        recognizer: Recognizer,
        *,
        flip_portraits: bool = False,
        ages: AgeEstimator | None = None,
    ) -> None:
        self.detector = detector
        self.recognizer = recognizer
        self.flip_portraits = flip_portraits
        self.ages = ages
        self.stage_timer: StageTimer | None = None  # set by the server (metrics) or the benchmark

    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        """Time the block for ``stage_timer`` (not when it raised: failed stages are not latencies)."""
        timer = self.stage_timer
        if timer is None:
            yield
            return
        started = time.perf_counter()
        yield
        timer(name, time.perf_counter() - started)

    def largest_face_in(self, pixels: np.ndarray) -> DetectedFace:
        return largest_face(self.detector.detect(pixels))

    def detect_largest(
        self, images: Sequence[np.ndarray], map_images: ImageMapper = one_after_another
    ) -> list[DetectedFace]:
        """The largest face of each image."""
        return map_images(self.largest_face_in, images)

    def embed_crops(self, crops: Sequence[np.ndarray], kinds: Sequence[ImageType]) -> np.ndarray:
        """(N, D) embeddings of aligned crops, in one recognizer call (mirrored portraits included)."""
        mirrored = [i for i, kind in enumerate(kinds) if self.flip_portraits and kind == ImageType.ID_PIC]
        batch = np.stack([*crops, *(crops[i][:, ::-1] for i in mirrored)])
        embeddings = self.recognizer.embed(batch)
        vectors = embeddings[: len(crops)].copy()
        for extra, index in enumerate(mirrored, start=len(crops)):
            mean = vectors[index] + embeddings[extra]
            vectors[index] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        return vectors

    def embed_pixels(
        self, images: Sequence[tuple[np.ndarray, ImageType]], map_images: ImageMapper = one_after_another
    ) -> list[Face]:
        """Embed the largest face of each BGR image, all crops in one recognizer call."""
        with self._stage("detect"):
            found = self.detect_largest([pixels for pixels, _ in images], map_images)
        size = self.recognizer.input_size
        with self._stage("align"):
            crops = [align_face(pixels, face.landmarks, size) for (pixels, _), face in zip(images, found, strict=True)]
        with self._stage("embed"):
            embeddings = self.embed_crops(crops, [kind for _, kind in images])
        ages = self.apparent_age([(pixels, face.landmarks) for (pixels, _), face in zip(images, found, strict=True)])
        return [
            Face(vector, face.box, face.landmarks, face.score, kind, age)
            for vector, face, (_, kind), age in zip(embeddings, found, images, ages, strict=True)
        ]

    def apparent_age(self, faces: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[tuple[float, float] | None]:
        """Each face's apparent (years, P(under 18)), where the pipeline estimates ages (else None each)."""
        if self.ages is None or not faces:
            return [None] * len(faces)
        with self._stage("age"):
            return [(float(years), float(p_minor)) for years, p_minor in self.ages.apparent_age(faces)]

    def inspect_pixels(self, images: Sequence[tuple[np.ndarray, ImageType]]) -> list[ImageInspection]:
        """``embed_pixels`` showing its work (for the demo page and ``comparefaces compare --annotate``):
        every face of each image, the largest, its aligned crop. An image without a face gets no crop
        instead of raising."""
        found = [self.detector.detect(pixels) for pixels, _ in images]
        chosen = [max(range(len(faces)), key=lambda i: faces[i].area) if faces else None for faces in found]
        size = self.recognizer.input_size
        crops = [
            align_face(pixels, faces[index].landmarks, size) if index is not None else None
            for (pixels, _), faces, index in zip(images, found, chosen, strict=True)
        ]
        present = [(crop, kind) for crop, (_, kind) in zip(crops, images, strict=True) if crop is not None]
        embeddings = iter(self.embed_crops(*zip(*present, strict=True)) if present else [])
        compared = [
            (pixels, faces[index].landmarks)
            for (pixels, _), faces, index in zip(images, found, chosen, strict=True)
            if index is not None
        ]
        ages = iter(self.apparent_age(compared))
        inspections = []
        for (_, kind), faces, index, crop in zip(images, found, chosen, crops, strict=True):
            face = None
            if index is not None:
                detected = faces[index]
                face = Face(next(embeddings), detected.box, detected.landmarks, detected.score, kind, next(ages))
            inspections.append(ImageInspection(faces=faces, compared=index, crop=crop, face=face))
        return inspections


class FaceEngine(FacePipeline):
    """The pipeline with its calibration: decodes requests' images and scores pairs."""

    def __init__(
        self,
        detector: Detector,
        recognizer: Recognizer,
        calibration: Calibration,
        *,
        model_id: str,
        max_image_pixels: int = 40_000_000,
        jpeg_decode_min_side: int = 0,
        max_decode_bytes: int = MAX_DECODE_BYTES,
        flip_portraits: bool = False,
        ages: AgeEstimator | None = None,
    ) -> None:
        super().__init__(detector, recognizer, flip_portraits=flip_portraits, ages=ages)
        self.calibration = calibration
        self.model_id = model_id
        self.max_image_pixels = max_image_pixels
        self.jpeg_decode_min_side = jpeg_decode_min_side
        self.max_decode_bytes = max_decode_bytes

    def decode(self, data: bytes) -> np.ndarray:
        with self._stage("decode"):
            return decode_image(
                data,
                max_pixels=self.max_image_pixels,
                keep_side=self.jpeg_decode_min_side,
                max_decode_bytes=self.max_decode_bytes,
            )

    def embed(self, data: bytes, image_type: ImageType = ImageType.FACE_PIC) -> Face:
        """Embed the largest face in encoded image bytes."""
        return self.embed_pixels([(self.decode(data), image_type)])[0]

    def embed_pair(
        self,
        source: bytes,
        source_type: ImageType,
        target: bytes,
        target_type: ImageType,
        *,
        map_images: ImageMapper = one_after_another,
    ) -> tuple[Face, Face]:
        decoded = [(self.decode(source), source_type), (self.decode(target), target_type)]
        first, second = self.embed_pixels(decoded, map_images)
        return first, second

    def compare(self, first: Face, second: Face) -> Comparison:
        cosine = float(np.clip(np.dot(first.embedding, second.embedding), -1.0, 1.0))
        kind = pair_type(first.image_type, second.image_type)
        stratum = pair_stratum(first.apparent_age, second.apparent_age)
        return Comparison(
            score=self.calibration.score(cosine),
            cosine=cosine,
            thresholds=self.calibration.thresholds(kind, stratum),
            pair_type=kind,
            stratum=stratum,
        )

    def close(self) -> None:
        """Stop the recognizer's batching thread, if it has one."""
        close = getattr(self.recognizer, "close", None)
        if close is not None:
            close()

    def warm_up(self) -> None:
        """Run every model once so the first request does not pay for lazy initialisation."""
        blank = np.full((128, 128, 3), 127, dtype=np.uint8)
        self.detector.detect(blank)
        self.apparent_age([(blank, np.array([[40, 50], [88, 50], [64, 70], [45, 95], [83, 95]], np.float32))])
        size = self.recognizer.input_size
        self.recognizer.embed(np.zeros((2, size, size, 3), dtype=np.uint8))
