"""The benchmark harness and load test of comparefaces: a development package of the source
checkout, not part of the product (``pyproject.toml`` packages ``app`` only).

    python -m bench --help            # load a server over HTTP, time the engine's stages, the dlib peer
    python -m bench.loadtest --help   # hold a server at saturation with good and bad requests

Modules, one job each: ``server`` (start ``comparefaces serve`` and wait for it; the test suite uses
it too), ``inputs`` (photo pairs, request bodies), ``load`` (the HTTP load driver), ``probe`` (the
server's CPU time and RSS), ``stages`` (the engine's stages, timed by the engine's own hook),
``peer`` (face_recognition / dlib), ``machine`` (what it ran on), ``report`` (targets, Markdown,
BENCHMARKS.md), ``run`` (the whole benchmark), ``cli`` (options), ``stats`` (the percentile).
"""
