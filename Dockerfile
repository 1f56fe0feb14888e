# routeirl API image. Runs exactly what the README runs on a host: ./scripts/serve
# (which bootstraps .venv from requirements.lock - done here at build time, so at run time it
# finds the venv current and just starts uvicorn app.main:app).
#
#   docker build -t routeirl .
#   docker run -p 8000:8000 -v routeirl-data:/data routeirl
#
# State (SQLite database, network cache, the generated API key) lives in /data: mount a volume there.
#
# The container must listen on 0.0.0.0 to be reachable through a published port, and a service reachable
# from elsewhere must not take writes (or give out raw GPS) from anyone: so the image generates an API key
# on its first start (ROUTEIRL_GENERATE_API_KEY=1), keeps it in /data/api_key (0600, so restarts keep it)
# and logs it once; `docker compose exec api cat /data/api_key` shows it again. Set ROUTEIRL_API_KEY to
# choose your own, or ROUTEIRL_ALLOW_INSECURE=1 (and ROUTEIRL_GENERATE_API_KEY=0) to serve without one.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ROUTEIRL_HOST=0.0.0.0 \
    ROUTEIRL_PORT=8000 \
    ROUTEIRL_GENERATE_API_KEY=1 \
    ROUTEIRL_DATA_DIR=/data

# Non-root user; /data is created and owned by it before VOLUME, so a fresh named volume
# inherits that ownership and the service can write its database there.
RUN groupadd --system --gid 10001 routeirl \
    && useradd --system --uid 10001 --gid routeirl --create-home --home-dir /home/routeirl routeirl \
    && mkdir -p /app /data \
    && chown routeirl:routeirl /app /data

WORKDIR /app
USER routeirl

# Dependencies first, in their own layer: it is rebuilt only when a lock file changes.
COPY --chown=routeirl:routeirl requirements.lock ./
RUN python -m venv .venv && .venv/bin/python -m pip install -q -r requirements.lock

# Then the project: bootstrap finds the pinned set installed, installs routeirl itself and stamps the venv.
COPY --chown=routeirl:routeirl . .
RUN ./scripts/bootstrap

VOLUME ["/data"]
EXPOSE 8000

# Liveness only (/health): /ready stays 503 while the demo model trains on first start.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD .venv/bin/python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('ROUTEIRL_PORT', '8000'), timeout=4)" || exit 1

# scripts/serve ends with `exec python -m app.server` (which runs uvicorn in-process), so uvicorn gets SIGTERM and
# shuts down gracefully (a running training job is stopped and marked interrupted).
CMD ["./scripts/serve"]
