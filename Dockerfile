# Minimal service image; the ops issue makes this multi-stage with a trainer target.
# Models are never baked in: mount a models directory at /models.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    RECSYS_MODELS_DIR=/models \
    RECSYS_HOST=0.0.0.0 \
    RECSYS_PORT=8000

WORKDIR /srv
COPY pyproject.toml README.md ./
COPY app ./app
COPY training ./training
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --no-create-home recsys

USER recsys
EXPOSE 8000
CMD ["python", "-m", "app"]
