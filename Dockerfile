# policyqa: serves the bundled corpus on port 8000; the index is built into /data on first start.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    POLICYQA_HOST=0.0.0.0 \
    POLICYQA_PORT=8000 \
    POLICYQA_DATA_DIR=/data \
    POLICYQA_DOCS_DIR=/app/docs_raw

# LibreOffice reads uploaded .doc and .wps files (OCR and the other formats are pip-only); LightGBM's
# wheel (the learned rankers) links the system's OpenMP runtime.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libreoffice-writer-nogui libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY index ./index
COPY service ./service
COPY docs_raw ./docs_raw
# torch first: pass a CPU wheel index (PIP_EXTRA_INDEX_URL) to avoid the large CUDA build.
# POLICYQA_EXTRAS="[milvus]" adds the Milvus client (deploy/compose.yaml builds it so).
ARG TORCH_SPEC=torch==2.13.0
ARG PIP_EXTRA_INDEX_URL=""
ARG POLICYQA_EXTRAS=""
RUN pip install "$TORCH_SPEC" \
    && pip install ".$POLICYQA_EXTRAS" \
    && useradd --create-home --uid 1000 policyqa \
    && mkdir -p /data && chown policyqa /data

USER policyqa
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4)"
CMD ["policyqa", "serve"]
