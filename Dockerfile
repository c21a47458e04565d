# syntax=docker/dockerfile:1
# wareports in a container: `docker build -t wareports .`, then see compose.yaml (PostgreSQL) and
# the README's "Deployment" section. Every setting is a WAREPORTS_* environment variable:
#   WAREPORTS_DATABASE_URL  default here: a SQLite file in the /data volume;
#                           production: postgresql+asyncpg://USER:PASSWORD@HOST:5432/DB
#   WAREPORTS_SECRET_KEY    required: signs the CSV export links (pass it as a secret)
#   WAREPORTS_PUBLIC_URL    the address clients use, base of export links and button URLs
#   WAREPORTS_METRICS       /metrics access: off (default), open, or token:<secret>
#   WAREPORTS_LOG_LEVEL, WAREPORTS_LOG_FORMAT (json), WAREPORTS_CORS_ORIGINS, WAREPORTS_REDIS_URL,
#   WAREPORTS_RATE_LIMIT, ... : the README's configuration table lists them all with defaults.

FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/wareports
COPY pyproject.toml README.md ./
COPY api ./api
COPY schema ./schema
COPY resolvers ./resolvers
COPY models ./models
COPY ingest ./ingest
COPY benchmarks ./benchmarks
RUN /opt/wareports/bin/pip install --no-cache-dir .

FROM python:3.11-slim
ENV PATH=/opt/wareports/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WAREPORTS_DATABASE_URL=sqlite+aiosqlite:////data/wareports.db \
    WAREPORTS_LOG_FORMAT=json
COPY --from=build /opt/wareports /opt/wareports
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin wareports \
    && mkdir /data && chown 10001:10001 /data
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# No curl in the slim image: the standard library asks /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# uvicorn finishes in-flight requests (up to 30 s) on SIGTERM: give the container that long.
STOPSIGNAL SIGTERM
CMD ["wareports", "serve", "--host", "0.0.0.0", "--port", "8000"]
