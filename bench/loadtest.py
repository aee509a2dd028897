"""Hold a comparefaces server at saturation for a while with a mix of good and bad requests.

    python -m bench.loadtest --duration 60 --concurrency 16          # spawns a server on loopback
    python -m bench.loadtest --url http://127.0.0.1:8080 --pid 1234  # an already running one

Loopback only: it refuses any other address. Every request must get an answer (none lost: no
connection error or timeout), no answer may be a 5xx, and every answer must be the one its kind
expects (or ``Throttling.User`` 429, the admission control at work). Prints counts by kind and
status, throughput, p50/p99 latency, and the server's RSS after warm-up and at the end.
Exit status 0 when no request was lost, none got a 5xx and none an unexpected answer.
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import random
import struct
import sys
import threading
import time
import zlib
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import cv2
import httpx
import numpy as np
import psutil

from bench.inputs import default_data_dir
from bench.server import spawn_server
from bench.stats import percentile

LFW = default_data_dir() / "lfw-dev"
API = {"Action": "CompareFaces", "Version": "2019-03-07"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


@dataclass(frozen=True)
class Kind:
    name: str
    weight: int
    expected: tuple[str, ...]  # Code values ("1" for success); 429 Throttling.User always allowed
    bodies: tuple[bytes, ...]


@dataclass
class Results:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    lost: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    server_errors: int = 0

    def record(self, kind: Kind, status: int, code: str, seconds: float) -> None:
        with self.lock:
            self.statuses[(kind.name, status)] += 1
            bucket = "ok" if status == 200 else "throttled" if status == 429 else "error"
            self.latencies[bucket].append(seconds)
            self.latencies["all"].append(seconds)
            if status >= 500:
                self.server_errors += 1
            if code not in kind.expected and code != "Throttling.User" and len(self.unexpected) < 20:
                self.unexpected.append(f"{kind.name}: {status} {code}")


def jpeg(pixels: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def face_photos(limit: int = 24) -> list[bytes]:
    if LFW.is_dir():
        people = sorted(p for p in LFW.iterdir() if p.is_dir())
        photos = [sorted(person.glob("*.jpg"))[0].read_bytes() for person in people[:limit]]
        if photos:
            return photos
    from skimage import data  # scikit-image ships one photo with a face

    face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[20:260, 120:330]
    return [jpeg(cv2.resize(face, None, fx=scale, fy=scale)) for scale in (0.8, 1.0, 1.2)]


def id_portrait(photo: bytes) -> bytes:
    pixels = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR)
    assert pixels is not None
    height, width = pixels.shape[:2]
    crop = pixels[int(height * 0.18) : int(height * 0.88), int(width * 0.22) : int(width * 0.78)]
    return jpeg(cv2.resize(crop, (102, 126)))


def png_bomb() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0)
    pixels = chunk(b"IDAT", zlib.compress(b"\0" * 999))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + pixels + chunk(b"IEND", b"")


def b64(data: bytes) -> str:
    return "base64://" + base64.b64encode(data).decode()


def build_kinds() -> list[Kind]:
    photos = face_photos()
    blank = jpeg(np.full((240, 200, 3), 170, np.uint8))

    def body(
        source: str, target: str, source_type: str = "FacePic", target_type: str = "FacePic", **extra: str
    ) -> bytes:
        params = {
            **API,
            "SourceImageType": source_type,
            "SourceImageValue": source,
            "TargetImageType": target_type,
            "TargetImageValue": target,
            **extra,
        }
        return urlencode(params).encode()

    pairs = [(photos[i], photos[(i + 1) % len(photos)]) for i in range(len(photos))]
    return [
        Kind("good", 55, ("1",), tuple(body(b64(a), b64(b)) for a, b in pairs)),
        Kind("good-id", 10, ("1",), tuple(body(b64(a), b64(id_portrait(a)), target_type="IDPic") for a in photos[:8])),
        Kind("good-xml", 5, ("1",), (body(b64(photos[0]), b64(photos[-1]), Format="XML"),)),
        Kind("no-face", 8, ("Error.NoFaceDetected",), (body(b64(photos[0]), b64(blank)),)),
        Kind(
            "truncated",
            6,
            ("InvalidParam.ImageValuePatternError",),
            (body(b64(photos[0]), b64(photos[1][: len(photos[1]) // 2])),),
        ),
        Kind("bomb", 4, ("InvalidParam.ImageValuePatternError",), (body(b64(photos[0]), b64(png_bomb())),)),
        Kind("bad-base64", 4, ("InvalidParam.ImageValuePatternError",), (body(b64(photos[0]), "base64://%%%"),)),
        Kind("missing", 4, ("InvalidParam.ParamMissing",), (body(b64(photos[0]), ""),)),
        Kind("bad-type", 2, ("InvalidParam.ImageTypeInvalid",), (body(b64(photos[0]), b64(photos[1]), "Selfie"),)),
        Kind("bad-version", 2, ("InvalidVersion",), (body(b64(photos[0]), b64(photos[1]), Version="2000-01-01"),)),
    ]


def answer_code(response: httpx.Response) -> str:
    text = response.text
    if "xml" in response.headers.get("content-type", ""):  # text/xml (the gateway's type) or application/xml
        start = text.find("<Code>")
        return text[start + 6 : text.find("</Code>")] if start >= 0 else "?"
    try:
        return str(response.json().get("Code", "?"))
    except ValueError:
        return "?"


def client_loop(base_url: str, kinds: list[Kind], deadline: float, results: Results, seed: int) -> None:
    rng = random.Random(seed)
    weights = [kind.weight for kind in kinds]
    with httpx.Client(base_url=base_url, timeout=60, headers=FORM) as client:
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            started = time.perf_counter()
            try:
                response = client.post("/", content=rng.choice(kind.bodies))
            except httpx.HTTPError as exc:
                with results.lock:
                    results.lost[type(exc).__name__] += 1
                continue
            results.record(kind, response.status_code, answer_code(response), time.perf_counter() - started)
            if response.status_code == 429:  # a polite client waits a little (x-acs-retry-after)
                time.sleep(rng.uniform(0.02, 0.1))


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise SystemExit(f"refusing {url}: this load test only targets loopback addresses")


def rss_mb(process: psutil.Process | None) -> float:
    return process.memory_info().rss / 2**20 if process else float("nan")


def run(args: argparse.Namespace) -> dict[str, object]:
    kinds = build_kinds()
    with ExitStack() as stack:
        if args.url:
            check_loopback(args.url)
            base_url, pid = args.url.rstrip("/"), args.pid
        else:
            env = {
                "COMPAREFACES_MAX_IN_FLIGHT": str(args.max_in_flight),
                "COMPAREFACES_INFERENCE_WORKERS": str(args.workers),
                "COMPAREFACES_LOG_LEVEL": "warning",
            }
            log = Path(args.server_log) if args.server_log else None
            base_url, process = stack.enter_context(
                spawn_server(env, log=log, startup_timeout_s=90, ready_path="/readyz")
            )
            pid = process.pid
        server = psutil.Process(pid) if pid else None
        if args.warmup > 0:  # fill caches, thread pools and allocator arenas before the first RSS reading
            run_phase(base_url, kinds, args.warmup, args.concurrency, Results(), seed=1000)
        rss_before = rss_mb(server)
        peak = [rss_before]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                peak.append(rss_mb(server))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        results = Results()
        started = time.monotonic()
        run_phase(base_url, kinds, args.duration, args.concurrency, results, seed=0)
        elapsed = time.monotonic() - started
        stop.set()
        sampler.join()
        rss_after = rss_mb(server)
        alive = httpx.get(f"{base_url}/healthz", timeout=10).status_code == 200
    total = sum(results.statuses.values())
    ok = sum(n for (_, status), n in results.statuses.items() if status == 200)
    return {
        "duration_s": round(elapsed, 1),
        "concurrency": args.concurrency,
        "requests": total,
        "throughput_rps": round(total / elapsed, 1),
        "comparisons_per_s": round(ok / elapsed, 1),
        "by_status": dict(Counter(status for (_, status) in results.statuses.elements())),
        "by_kind": {f"{kind} {status}": n for (kind, status), n in sorted(results.statuses.items())},
        "server_errors_5xx": results.server_errors,
        "lost": sum(results.lost.values()),
        "lost_by_error": dict(results.lost),
        "unexpected": results.unexpected,
        "latency_ms": {
            bucket: {"p50": round(percentile(values, 50) * 1000, 1), "p99": round(percentile(values, 99) * 1000, 1)}
            for bucket, values in sorted(results.latencies.items())
        },
        "rss_mb": {"before": round(rss_before, 1), "after": round(rss_after, 1), "peak": round(max(peak), 1)},
        "server_alive_after": alive,
    }


def run_phase(base_url: str, kinds: list[Kind], seconds: float, concurrency: int, results: Results, seed: int) -> None:
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=client_loop, args=(base_url, kinds, deadline, results, seed + i), daemon=True)
        for i in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
        if thread.is_alive():
            results.lost["client stuck"] += 1


def print_report(report: dict[str, object]) -> None:
    latency = report["latency_ms"]
    rss = report["rss_mb"]
    unexpected = report["unexpected"]
    assert isinstance(latency, dict) and isinstance(rss, dict) and isinstance(unexpected, list)
    print(
        f"{report['requests']} requests in {report['duration_s']} s at concurrency {report['concurrency']}: "
        f"{report['throughput_rps']} req/s, {report['comparisons_per_s']} comparisons/s"
    )
    print(f"by status: {report['by_status']}")
    print(
        f"5xx: {report['server_errors_5xx']}  lost: {report['lost']} {report['lost_by_error'] or ''}  "
        f"unexpected answers: {len(unexpected)} {unexpected[:5] or ''}"
    )
    for bucket, values in latency.items():
        print(f"latency {bucket:>9}: p50 {values['p50']:.1f} ms, p99 {values['p99']:.1f} ms")
    print(f"server RSS: {rss['before']} MB after warm-up, {rss['after']} MB at the end, peak {rss['peak']} MB")
    print(f"server alive afterwards: {report['server_alive_after']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server on loopback (default: spawn one)")
    parser.add_argument("--pid", type=int, help="its process id, for RSS readings")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of measured load")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before the first RSS reading")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads, each one request at a time")
    parser.add_argument("--max-in-flight", type=int, default=8, help="COMPAREFACES_MAX_IN_FLIGHT of a spawned server")
    parser.add_argument("--workers", type=int, default=2, help="COMPAREFACES_INFERENCE_WORKERS of a spawned server")
    parser.add_argument("--server-log", help="append a spawned server's output to this file")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args(argv)
    report = run(args)
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    failed = report["server_errors_5xx"] or report["lost"] or report["unexpected"] or not report["server_alive_after"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
