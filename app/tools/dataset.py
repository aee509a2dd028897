"""Embedding a folder of people (``DIR/<person>/<photo>``) as face photos and as ID-style portraits."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from app.engine.engine import FacePipeline
from app.engine.geometry import id_portrait_crop
from app.engine.packs import LoadedModels
from app.engine.types import AgeEstimator, ImageType, pair_type
from app.errors import ApiError
from app.images.decode import decode_image
from app.settings import Settings
from app.tools.progress import stage

FACE_PAIRS = pair_type(ImageType.FACE_PIC, ImageType.FACE_PIC)
ID_PAIRS = pair_type(ImageType.FACE_PIC, ImageType.ID_PIC)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
# The stand-in for a second-generation ID card chip portrait (102x126): head and shoulders with
# margin (the face box is about half the width), a plain light background, slightly soft, and a
# JPEG of about 1.5 KB (the chip stores about 1 KB).
ID_WIDTH_FACTOR = 1.9
ID_BACKGROUND = 242.0
ID_BLUR_SIGMA = 0.7
ID_JPEG_QUALITY = 25


@dataclass
class EmbeddedSet:
    people: list[str]
    photos: list[Path]
    labels: np.ndarray  # (N,) person index per photo
    face: np.ndarray  # (N, D) embeddings of the photos as they are
    id_style: np.ndarray  # (N, D) embeddings of ID-style portraits made from the same photos
    missed: int  # photos in which no face was found (left out)
    face_age: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))  # (N, 2) years, P(under 18)
    id_age: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))  # the same, seen on the portrait

    def key(self, index: int) -> str:
        """``person/photo`` of a photo: how exclusion lists and group files name it."""
        path = self.photos[index]
        return f"{path.parent.name}/{path.name}"

    def sides(self) -> dict[str, tuple[np.ndarray, np.ndarray, bool, np.ndarray, np.ndarray]]:
        """Pair type -> (left embeddings, right embeddings, symmetric, left apparent ages, right ones):
        photo against photo, and (with ID-style portraits) photo against another photo's portrait."""
        sides = {FACE_PAIRS: (self.face, self.face, True, self.face_age, self.face_age)}
        if len(self.id_style) == len(self.face):
            sides[ID_PAIRS] = (self.face, self.id_style, False, self.face_age, self.id_age)
        return sides

    @property
    def has_ages(self) -> bool:
        return len(self.face_age) == len(self.face) and len(self.id_age) == len(self.id_style)

    def subset(self, keep: np.ndarray) -> EmbeddedSet:
        """The photos where ``keep`` (a boolean mask) is true; people keep their indices."""
        photos = [path for path, kept in zip(self.photos, keep, strict=True) if kept]

        def rows(values: np.ndarray) -> np.ndarray:
            return values[keep] if len(values) == len(self.face) else values

        return EmbeddedSet(
            self.people,
            photos,
            self.labels[keep],
            self.face[keep],
            rows(self.id_style),
            self.missed,
            rows(self.face_age),
            rows(self.id_age),
        )


def list_people(root: Path) -> list[tuple[str, list[Path]]]:
    people = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if photos:
            people.append((folder.name, photos))
    return people


def subject_mask(width: int, height: int, face_w: float, face_h: float) -> np.ndarray:
    """Soft (H, W, 1) mask in [0, 1] of head and shoulders in an ID portrait whose face box, ``face_w``
    by ``face_h`` pixels, is centred as ``id_portrait_crop`` centres it."""
    cx, cy = width / 2, height / 2 - 0.06 * height
    mask = np.zeros((height, width), np.float32)
    cv2.ellipse(mask, (int(cx), int(cy - 0.12 * face_h)), (int(0.72 * face_w), int(0.86 * face_h)), 0, 0, 360, 1.0, -1)
    cv2.ellipse(mask, (int(cx), int(cy + 1.45 * face_h)), (int(1.5 * face_w), int(0.9 * face_h)), 0, 0, 360, 1.0, -1)
    cv2.rectangle(mask, (int(cx - 0.3 * face_w), int(cy)), (int(cx + 0.3 * face_w), int(cy + 0.8 * face_h)), 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), 1.5)[..., None]


def id_style_version(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """What an ID chip portrait of this face looks like: 102x126 head and shoulders on a plain
    light background, slightly soft, a low-quality JPEG."""
    portrait = id_portrait_crop(image, box, width_factor=ID_WIDTH_FACTOR).astype(np.float32)
    out_h, out_w = portrait.shape[:2]
    scale = out_w / ((float(box[2]) - float(box[0])) * ID_WIDTH_FACTOR)
    mask = subject_mask(out_w, out_h, (float(box[2]) - float(box[0])) * scale, (float(box[3]) - float(box[1])) * scale)
    plain = portrait * mask + ID_BACKGROUND * (1 - mask)
    soft = cv2.GaussianBlur(plain, (0, 0), ID_BLUR_SIGMA)
    ok, encoded = cv2.imencode(
        ".jpg", np.clip(soft, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, ID_JPEG_QUALITY]
    )
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR) if ok else None
    assert decoded is not None  # we just encoded it
    return decoded


def embed_directory(
    models: LoadedModels,
    root: Path,
    *,
    with_id_style: bool = True,
    settings: Settings | None = None,
    ages: AgeEstimator | None = None,
) -> EmbeddedSet:
    """Every photo as the server sees it: decoded as it decodes requests, through the engine's own
    per-image path (``FacePipeline``) as a face photo, and, with ``with_id_style``, an ID-style
    portrait made around the face it found, as an ID portrait; with ``ages``, how old each looks.
    ``settings``: the decoding limits (default: the environment's)."""
    settings = settings or Settings()
    pipeline = FacePipeline(models.detector, models.recognizer, flip_portraits=models.flip_portraits, ages=ages)
    people: list[str] = []
    photos: list[Path] = []
    labels: list[int] = []
    face: list[np.ndarray] = []
    id_style: list[np.ndarray] = []
    face_age: list[tuple[float, float]] = []
    id_age: list[tuple[float, float]] = []
    missed = 0
    listing = list_people(root)
    with stage(f"embedding {root.name}", "photo", total=sum(len(files) for _, files in listing)) as shown:
        for person_index, (name, files) in enumerate(listing):
            people.append(name)
            for path in files:
                shown.update(1)
                try:
                    pixels = decode_image(
                        path.read_bytes(), max_pixels=settings.max_image_pixels, keep_side=settings.jpeg_decode_min_side
                    )
                    (found,) = pipeline.embed_pixels([(pixels, ImageType.FACE_PIC)])
                    if with_id_style:
                        portrait = id_style_version(pixels, found.box)
                        (as_portrait,) = pipeline.embed_pixels([(portrait, ImageType.ID_PIC)])
                        id_style.append(as_portrait.embedding)
                        if as_portrait.apparent_age is not None:
                            id_age.append(as_portrait.apparent_age)
                except ApiError:
                    missed += 1
                    continue
                photos.append(path)
                labels.append(person_index)
                face.append(found.embedding)
                if found.apparent_age is not None:
                    face_age.append(found.apparent_age)
    dim = face[0].shape[0] if face else 0
    face_all = np.stack(face) if face else np.zeros((0, dim), np.float32)
    id_all = np.stack(id_style) if id_style else face_all[:0]
    return EmbeddedSet(
        people,
        photos,
        np.asarray(labels, dtype=np.int64),
        face_all,
        id_all,
        missed,
        np.asarray(face_age, np.float32).reshape(-1, 2),
        np.asarray(id_age, np.float32).reshape(-1, 2),
    )


@dataclass(frozen=True)
class Exclusions:
    """Photos and pairs to leave out of a calibration or evaluation (``comparefaces audit`` writes
    one for review). One entry a line, ``#`` starts a comment; an entry is a person's folder name
    or ``person/photo``:

        person/photo.jpg                       leave this photo out
        person                                 leave this person out
        personA/a.jpg <TAB> personB/b.jpg      leave out the pairs between these (either side may be
                                               a whole person: one person under two names)
    """

    photos: frozenset[str] = frozenset()
    pairs: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def read(cls, path: Path) -> Exclusions:
        photos, pairs = set(), set()
        for line in path.read_text().splitlines():
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            parts = entry.split("\t") if "\t" in entry else entry.split()
            parts = [part.strip() for part in parts if part.strip()]
            if len(parts) == 1:
                photos.add(parts[0])
            elif len(parts) == 2:
                pairs.add((parts[0], parts[1]))
            else:
                raise ValueError(f"{path}: cannot read exclusion line {line!r} (one or two entries a line)")
        return cls(frozenset(photos), frozenset(pairs))

    def apply(self, data: EmbeddedSet) -> tuple[EmbeddedSet, np.ndarray]:
        """``data`` without the excluded photos, and the (K, 2) index pairs (into the result) to skip."""
        keys = [data.key(i) for i in range(len(data.photos))]
        keep = np.array([key not in self.photos and key.split("/")[0] not in self.photos for key in keys], bool)
        kept = data.subset(keep)
        kept_keys = [key for key, k in zip(keys, keep, strict=True) if k]

        def matching(entry: str) -> np.ndarray:
            return np.array([i for i, key in enumerate(kept_keys) if key == entry or key.split("/")[0] == entry])

        pairs = [
            np.array([(i, j) for i in matching(a) for j in matching(b) if i != j], np.int64).reshape(-1, 2)
            for a, b in self.pairs
        ]
        return kept, np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)


UNLISTED = "(unlisted)"


def group_names(data: EmbeddedSet, part: str, population: str) -> list[str]:
    """One grouping's name for each photo of ``data``; see ``photo_groups``."""
    keys = [data.key(i) for i in range(len(data.photos))]
    people = [key.split("/")[0] for key in keys]
    if part == "prefix":
        return [person.split("__")[0] if "__" in person else "(no prefix)" for person in people]
    path, _, column = part.rpartition(":") if ":" in part else (part, "", "")
    file = Path(path.replace("{population}", population))
    with file.open(newline="") as handle:
        rows = [row for row in csv.reader(handle) if row and row[0].strip()]
    if not column:  # path,group rows, path a person's folder or person/photo (header optional)
        mapping = {row[0].strip(): row[1].strip() for row in rows if len(row) >= 2 and row[0].strip().lower() != "path"}
        return [mapping.get(key, mapping.get(person, UNLISTED)) for key, person in zip(keys, people, strict=True)]
    header = [name.strip() for name in rows[0]]
    if "person" not in header or column not in header:
        raise ValueError(f"{file}: needs a header with 'person' and {column!r} columns")
    at, of = header.index("person"), header.index(column)
    labels = {row[at].strip(): row[of].strip() for row in rows[1:] if len(row) > max(at, of)}
    return [labels.get(person) or UNLISTED for person in people]


def photo_groups(data: EmbeddedSet, spec: str, population: str = "") -> dict[str, np.ndarray]:
    """Group name -> boolean mask over ``data``'s photos. ``spec`` is one grouping or several joined by
    ``+`` (a group is then one combination of their values, e.g. ``korean-F``), each:

    - ``prefix``: a person's group is the part of the folder name before ``__`` (``chinese__li-bingbing``:
      ``chinese``);
    - ``FILE.csv``: rows of ``path,group``, path a person's folder or ``person/photo`` (header optional);
    - ``FILE.csv:COLUMN``: a CSV with a header naming ``person`` (the folder name) and ``COLUMN`` (e.g.
      ``sex``): the people's labels. ``{population}`` in FILE stands for the population's folder name.

    People a file does not list, or lists with an empty value, are in ``(unlisted)``."""
    groupings = [group_names(data, part, population) for part in spec.split("+")]
    names = ["-".join(values) for values in zip(*groupings, strict=True)] if groupings else []
    return {name: np.array([n == name for n in names], bool) for name in sorted(set(names))}
