# One image for every calsync process: api (calsync serve), worker, scheduler, emulator.
# Build: docker build -t calsync .
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY calsync ./calsync
COPY workers ./workers
# the wheel carries the migrations as calsync.migrations (pyproject.toml)
COPY migrations ./migrations
RUN python -m venv /opt/calsync && /opt/calsync/bin/pip install -c constraints.txt .

FROM python:3.11.11-slim-bookworm
ENV PATH=/opt/calsync/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# A fixed UID/GID so that Kubernetes can check runAsNonRoot (docs/deploy/kubernetes).
RUN groupadd --system --gid 10001 calsync \
    && useradd --system --uid 10001 --gid calsync --home-dir /app calsync
WORKDIR /app
COPY --from=build /opt/calsync /opt/calsync
COPY alembic.ini ./
COPY migrations ./migrations
COPY workers ./workers
USER 10001:10001
EXPOSE 8000
# The api's check (the default command). Other processes of this image override it: compose.yaml
# gives the worker and the scheduler `calsync ready` and the emulator its own port.
HEALTHCHECK --interval=30s --timeout=3s \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
CMD ["calsync", "serve", "--host", "0.0.0.0", "--port", "8000"]
