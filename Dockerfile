# syntax=docker/dockerfile:1
# Multi-stage: `builder` makes the wheels; `runtime` (the last stage, so the default target)
# serves a mounted /models as a non-root user; `trainer` fetches data and trains a new version
# into /models.
# Models are never baked in. BASE_IMAGE: any Debian-based image with Python 3.11 and venv
# (default the official slim one; scripts/container_smoke.sh builds a local one offline).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS builder
# pip's own configuration from the host, when it has one (never a host name in this file):
# `--build-arg PIP_INDEX_URL=...` and `PIP_EXTRA_INDEX_URL=...` (empty by default), and the CA
# bundle pip trusts as the build secret `pip_cert` (`--secret id=pip_cert,src=...`).
ARG PIP_INDEX_URL=""
ARG PIP_EXTRA_INDEX_URL=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY pyproject.toml README.md constraints.txt ./
COPY app ./app
COPY artifact ./artifact
COPY training ./training
COPY cli ./cli
COPY loop ./loop
COPY recsys_client ./recsys_client
RUN --mount=type=secret,id=pip_cert \
    if [ -f /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
    && if [ -z "$PIP_INDEX_URL" ]; then unset PIP_INDEX_URL; fi \
    && if [ -z "$PIP_EXTRA_INDEX_URL" ]; then unset PIP_EXTRA_INDEX_URL; fi \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip wheel --constraint constraints.txt --wheel-dir /wheels .

FROM ${BASE_IMAGE} AS common
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PATH=/opt/venv/bin:$PATH \
    RECSYS_MODELS_DIR=/models \
    RECSYS_DATA_DIR=/data
COPY --from=builder /wheels /wheels
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels recsys \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --create-home --home-dir /home/recsys recsys \
    && mkdir -p /models /data \
    && chown recsys /models /data
USER 10001
WORKDIR /home/recsys

FROM common AS trainer
# `recsys fetch` + `recsys train` into the mounted /models. RECSYS_DATASET picks the data set;
# arguments after the image name are extra `recsys train` options. The ratings in the service's
# event store are learned too: RECSYS_STORE_URL, else the api's default SQLite store when the
# data volume holds one (/data/events.sqlite3).
ENTRYPOINT ["sh", "-c", "store=\"${RECSYS_STORE_URL:-}\"; if [ -z \"$store\" ] && [ -f /data/events.sqlite3 ]; then store=sqlite:////data/events.sqlite3; fi; recsys fetch \"${RECSYS_DATASET:-ml-100k}\" --data-dir /data && exec recsys train --dataset \"${RECSYS_DATASET:-ml-100k}\" --data-dir /data --models-dir /models ${store:+--store \"$store\"} \"$@\"", "train"]
CMD []

FROM common AS runtime
ENV RECSYS_HOST=0.0.0.0 \
    RECSYS_PORT=8000 \
    RECSYS_WORKERS=1
VOLUME ["/models", "/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('RECSYS_PORT', '8000') + '/ready', timeout=2)"]
CMD ["python3", "-m", "app"]
