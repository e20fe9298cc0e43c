# syntax=docker/dockerfile:1
# Build stage: wheels for bff and its dependencies (no compilers reach the runtime image).
# Base pinned by digest (python:3.11-slim-bookworm); bump deliberately, with
# `docker buildx imagetools inspect python:3.11-slim-bookworm`.
FROM python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91 AS build
WORKDIR /src
# Every dependency at the version requirements/image.lock names (`make lock`), each file checked
# against the lock's hashes; then bff itself, --no-deps (the lock has them all). Only bff/ is
# copied: the simulators (simulators/, a distribution of their own) stay out of the image.
# tests/test_packaging.py runs this file's `RUN pip` lines as written.
COPY requirements/image.lock ./requirements/
RUN pip wheel --no-cache-dir --require-hashes --wheel-dir /wheels -r requirements/image.lock
COPY pyproject.toml setup.cfg README.md ./
COPY bff ./bff
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Runtime stage: the wheels, the gunicorn config, a non-root user; gunicorn is PID 1.
FROM python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91
# The commit built (bff_build_info, the start-up line): docker build --build-arg BFF_COMMIT=$(git rev-parse --short HEAD)
ARG BFF_COMMIT=unknown
ENV BFF_COMMIT=${BFF_COMMIT} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BFF_ENV=production \
    PROMETHEUS_MULTIPROC_DIR=/tmp/bff-metrics \
    GUNICORN_BIND=0.0.0.0:8000
RUN groupadd --system --gid 10001 bff && useradd --system --uid 10001 --gid bff --no-create-home --shell /usr/sbin/nologin bff
# Offline: exactly the wheels built above, nothing from an index.
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels /wheels/*.whl && rm -rf /wheels
WORKDIR /app
COPY config ./config
USER 10001:10001
EXPOSE 8000
# Probes the port gunicorn binds (GUNICORN_BIND), on loopback: a non-default port stays healthy.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request; port=os.environ.get('GUNICORN_BIND', '0.0.0.0:8000').rsplit(':', 1)[1]; sys.exit(urllib.request.urlopen('http://127.0.0.1:' + port + '/healthz', timeout=2).status != 200)"]
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "bff:create_app()"]
