# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api ./api
COPY schema ./schema
COPY resolvers ./resolvers
COPY models ./models
COPY ingest ./ingest
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 wareports
COPY --from=build /install /usr/local
USER 10001
WORKDIR /home/wareports
ENV WAREPORTS_DATABASE_URL=sqlite+aiosqlite:////home/wareports/wareports.db
EXPOSE 8000
CMD ["wareports", "serve", "--host", "0.0.0.0"]
