# CPU image. For NVIDIA GPUs build with --build-arg EXTRAS=gpu and run with COMPAREFACES_EXECUTION_PROVIDER=cuda.
FROM python:3.11-slim

ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    COMPAREFACES_CACHE_DIR=/opt/comparefaces/cache \
    COMPAREFACES_MODELS_DIR=/opt/comparefaces/models

WORKDIR /opt/comparefaces/src
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}" \
    # onnxruntime and onnxruntime-gpu ship the same module: keep only the GPU one in the GPU image.
    && if [ "$EXTRAS" = "gpu" ]; then pip uninstall -y onnxruntime \
       && pip install --no-cache-dir --force-reinstall --no-deps onnxruntime-gpu; fi \
    && useradd --system --uid 10001 --home /opt/comparefaces comparefaces \
    && mkdir -p /opt/comparefaces/cache /opt/comparefaces/models \
    # Bake the embedded models in: verify their sha256 and convert them to float32 once, at build time.
    && python -c "from app import Settings, load_engine; load_engine(Settings())" \
    && chown -R comparefaces /opt/comparefaces

USER comparefaces
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz').status != 200)"
CMD ["comparefaces", "serve", "--host", "0.0.0.0", "--port", "8080"]
