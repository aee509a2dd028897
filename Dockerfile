# CPU image. For NVIDIA GPUs build with --build-arg EXTRAS=gpu and run with COMPAREFACES_EXECUTION_PROVIDER=cuda.
# Without a registry: scripts/container-base.sh, then scripts/container-build.sh (podman, --format docker).
# The root filesystem may be read-only: /tmp and /var/lib/comparefaces are the only places written.
FROM python:3.11-slim

ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    COMPAREFACES_CACHE_DIR=/opt/comparefaces/cache \
    COMPAREFACES_MODELS_DIR=/opt/comparefaces/models \
    COMPAREFACES_OBJECT_STORE_ROOT=/var/lib/comparefaces/oss

WORKDIR /opt/comparefaces/src
# The dependencies in a layer of their own, rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import os, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
extras = [e for e in os.environ.get('EXTRAS', '').split(',') if e]; \
print('\n'.join(p['dependencies'] + [d for e in extras for d in p['optional-dependencies'][e]]))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt \
    # onnxruntime and onnxruntime-gpu ship the same module: keep only the GPU one in the GPU image.
    && if [ "$EXTRAS" = "gpu" ]; then pip uninstall -y onnxruntime \
       && pip install --no-cache-dir --force-reinstall --no-deps onnxruntime-gpu; fi
COPY README.md ./
COPY app ./app
RUN pip install --no-cache-dir --no-deps . \
    && useradd --system --uid 10001 --home /opt/comparefaces comparefaces \
    && mkdir -p /opt/comparefaces/cache /opt/comparefaces/models /var/lib/comparefaces/oss \
    # Bake the embedded models in: verify their sha256 and convert them to float32 once, at build time.
    && python -c "from app import Settings, load_engine; load_engine(Settings())" \
    && chown -R comparefaces /opt/comparefaces /var/lib/comparefaces

USER comparefaces
# 8080: the API, HTTPS with COMPAREFACES_TLS_CERT_FILE and COMPAREFACES_TLS_KEY_FILE mounted (or plain
# behind a TLS proxy with COMPAREFACES_ALLOW_PLAIN_HTTP=true); 9090: probes and /metrics, plain HTTP.
ENV COMPAREFACES_PROBE_PORT=9090
EXPOSE 8080 9090
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:9090/readyz').status != 200)"
CMD ["comparefaces", "serve", "--host", "0.0.0.0", "--port", "8080"]
