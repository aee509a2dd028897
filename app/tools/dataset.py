"""Embedding a folder of people (``DIR/<person>/<photo>``) as face photos and as ID-style portraits."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from app.engine.engine import largest_face
from app.engine.geometry import align_face, id_portrait_crop
from app.engine.packs import LoadedModels
from app.errors import ApiError

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
ID_JPEG_QUALITY = 80


@dataclass
class EmbeddedSet:
    people: list[str]
    photos: list[Path]
    labels: np.ndarray  # (N,) person index per photo
    face: np.ndarray  # (N, D) embeddings of the photos as they are
    id_style: np.ndarray  # (N, D) embeddings of ID-style portraits made from the same photos
    missed: int  # photos in which no face was found (left out)


def list_people(root: Path) -> list[tuple[str, list[Path]]]:
    people = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if photos:
            people.append((folder.name, photos))
    return people


def id_style_version(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """What an ID chip portrait of this face looks like: 102x126 head-and-shoulders, JPEG re-encoded."""
    portrait = id_portrait_crop(image, box)
    _, encoded = cv2.imencode(".jpg", portrait, [cv2.IMWRITE_JPEG_QUALITY, ID_JPEG_QUALITY])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    assert decoded is not None  # we just encoded it
    return decoded


def _batches(items: list[np.ndarray], size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(items), size):
        yield np.stack(items[start : start + size])


def embed_directory(models: LoadedModels, root: Path, *, with_id_style: bool = True, batch: int = 32) -> EmbeddedSet:
    size = models.recognizer.input_size
    people, photos, labels, face_crops, id_crops = [], [], [], [], []
    missed = 0
    listing = list_people(root)
    for person_index, (name, files) in enumerate(listing):
        people.append(name)
        for path in files:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                missed += 1
                continue
            try:
                detected = largest_face(models.detector.detect(image))
                if with_id_style:
                    id_image = id_style_version(image, detected.box)
                    id_face = largest_face(models.detector.detect(id_image))
                    id_crops.append(align_face(id_image, id_face.landmarks, size))
            except ApiError:
                missed += 1
                continue
            photos.append(path)
            labels.append(person_index)
            face_crops.append(align_face(image, detected.landmarks, size))
        if person_index % 500 == 0:
            log.info("detected %d/%d people, %d photos", person_index + 1, len(listing), len(photos))
    face = np.concatenate([models.recognizer.embed(b) for b in _batches(face_crops, batch)])
    id_style = np.concatenate([models.recognizer.embed(b) for b in _batches(id_crops, batch)]) if id_crops else face[:0]
    return EmbeddedSet(people, photos, np.asarray(labels), face, id_style, missed)


@dataclass
class PairScores:
    genuine: np.ndarray  # all genuine cosines
    impostor_top: np.ndarray  # the highest impostor cosines, sorted descending
    impostor_total: int


def pair_scores(
    left: np.ndarray,
    right: np.ndarray,
    labels: np.ndarray,
    *,
    symmetric: bool,
    keep_top_share: float = 0.011,
    chunk: int = 512,
) -> PairScores:
    """Cosines of every pair (i from left, j from right) with i != j (i < j when ``symmetric``):
    all genuine ones, and the top ``keep_top_share`` of impostors (enough for FAR >= 1e-2)."""
    genuine: list[np.ndarray] = []
    top: np.ndarray = np.zeros(0, np.float32)
    impostor_total = 0
    n = len(left)
    columns = np.arange(len(right))
    for start in range(0, n, chunk):
        rows = np.arange(start, min(n, start + chunk))
        sims = left[rows] @ right.T
        valid = columns[None, :] > rows[:, None] if symmetric else columns[None, :] != rows[:, None]
        same = labels[rows][:, None] == labels[None, :]
        genuine.append(sims[valid & same])
        impostor = sims[valid & ~same]
        impostor_total += impostor.size
        merged = np.concatenate([top, impostor])
        keep = max(1, int(keep_top_share * impostor_total) + 2)
        if merged.size > keep:
            merged = np.partition(merged, merged.size - keep)[-keep:]
        top = merged
    return PairScores(np.concatenate(genuine), np.sort(top)[::-1], impostor_total)
