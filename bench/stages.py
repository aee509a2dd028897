"""The engine's stages, timed in-process by the engine itself (``FaceEngine.stage_timer``)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from app.settings import Settings
from bench.inputs import Pair

STAGES = ("decode", "detect", "align", "embed", "score")


def time_stages(settings: Settings, pairs: Sequence[Pair], duration_s: float) -> dict[str, Any]:
    """Milliseconds per comparison in each stage of ``engine.embed_pair`` + ``engine.compare`` (the
    server's own path), one comparison at a time, for about ``duration_s``.

    decode, detect, align and embed are what the engine's ``stage_timer`` hook reports: ``decode``
    both images, ``detect`` both images (the second on the comparison service's detection helper thread, so its
    wall time), ``align`` both crops, ``embed`` one recognizer call with both crops. ``score`` is
    ``engine.compare``, timed here. ``pipeline_ms_per_comparison`` is the wall time of the whole call.
    Pairs in which the engine finds no face are left out.
    """
    from app import load_engine
    from app.comparison import DetectionHelper
    from app.engine.types import ImageType
    from app.errors import ApiError

    engine = load_engine(settings)
    helper = DetectionHelper()  # as the server: the second image is detected on the helper thread
    try:
        engine.warm_up()
        face = ImageType.FACE_PIC
        usable = []
        for source, target in pairs:  # untimed: which pairs have faces, and one warm pass
            try:
                engine.compare(*engine.embed_pair(source, face, target, face, map_images=helper.map))
            except ApiError:
                continue
            usable.append((source, target))
        if not usable:
            raise ValueError("the engine found no face pair to time")

        spent: defaultdict[str, float] = defaultdict(float)

        def record(stage: str, seconds: float) -> None:
            spent[stage] += seconds

        engine.stage_timer = record
        clock = time.perf_counter
        done, cpu, started = 0, time.process_time(), clock()
        while done < len(usable) or clock() - started < duration_s:
            source, target = usable[done % len(usable)]
            first, second = engine.embed_pair(source, face, target, face, map_images=helper.map)
            scored = clock()
            engine.compare(first, second)
            spent["score"] += clock() - scored
            done += 1
        wall, cpu = clock() - started, time.process_time() - cpu
    finally:
        engine.stage_timer = None
        helper.close()
        engine.close()
    per_comparison = {stage: round(spent[stage] / done * 1000, 3) for stage in STAGES}
    per_comparison["total"] = round(sum(spent[stage] for stage in STAGES) / done * 1000, 3)
    return {
        "comparisons": done,
        "ms_per_comparison": per_comparison,
        "ms_per_image": {
            stage: round(per_comparison[stage] / 2, 3) for stage in ("decode", "detect", "align", "embed")
        },
        "cpu_ms_per_comparison": round(cpu / done * 1000, 3),
        "pipeline_ms_per_comparison": round(wall / done * 1000, 3),
        "note": "one comparison = 2 images; detect is both images' wall time (the second on the service's "
        "helper thread), embed one recognizer call with both crops; ms_per_image: half of each",
    }
