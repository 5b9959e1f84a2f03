# syntax=docker/dockerfile:1
# Build: docker build -t clm-scoring .
# Migrate (once per release, before serving): docker run --rm -e CLM_DATABASE_URL=... clm-scoring clm db upgrade
# Run:   docker run -p 8000:8000 -e MLFLOW_TRACKING_URI=... -e CLM_DATABASE_URL=... \
#            -e CLM_API_KEY_DIGESTS_FILE=/run/secrets/clm-keys -v ./keys.json:/run/secrets/clm-keys:ro clm-scoring
# The image listens on 0.0.0.0, so it requires keys: without CLM_API_KEYS, CLM_API_KEY_DIGESTS or
# CLM_API_KEY_DIGESTS_FILE it exits with an error (the demo key is accepted on loopback only). keys.json maps
# each key's SHA-256 hex digest to its scopes: {"<sha256 of the key>": ["score", "outcomes"]}.
# Models come from the registry named by MLFLOW_TRACKING_URI (train them with `clm train all`).

FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY pyproject.toml constraints.txt README.md ./
COPY app ./app
COPY training ./training
COPY model_registry ./model_registry
RUN /opt/venv/bin/pip install -c constraints.txt .

FROM python:3.11-slim AS runtime
# libgomp: XGBoost's OpenMP runtime.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1=12.* \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --uid 10001 clm
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CLM_HOST=0.0.0.0 \
    CLM_PORT=8000 \
    CLM_WORKERS=2
WORKDIR /home/clm
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['CLM_PORT']}/healthz\", timeout=2)"]
# Two workers, one XGBoost thread each (CLM_BOOSTER_THREADS=1): more threads per worker collapse throughput.
CMD ["python", "-m", "app"]
