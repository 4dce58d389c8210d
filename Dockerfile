# syntax=docker/dockerfile:1
# One image per service, from one file:
#   docker build --build-arg SERVICE=api -t nova-api .
#   docker build --build-arg SERVICE=ingestor -t nova-ingestor .
#   docker build --build-arg SERVICE=transformer -t nova-transformer .
#   docker build --build-arg SERVICE=forecaster -t nova-forecaster .
# deploy/compose.yaml builds all four. Each image holds only its service's extra
# (pyproject.toml [project.optional-dependencies]); `python deploy/install_size.py` measures
# them. No credentials or settings are baked in: everything comes from NOVA_* variables.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: a virtualenv with the project and its service's extra ----------------------
FROM ${PYTHON_IMAGE} AS builder
ARG SERVICE=api
RUN case "${SERVICE}" in \
        api|ingestor|transformer|forecaster) ;; \
        *) echo "SERVICE must be api, ingestor, transformer or forecaster, not '${SERVICE}'" >&2; \
           exit 1 ;; \
    esac
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
# Not editable: the wheel's files go into the venv, /src stays behind in this stage.
RUN /opt/venv/bin/pip install ".[${SERVICE}]"

# --- runtime: the venv on a slim Python, as an unprivileged user ---------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE=api
LABEL org.opencontainers.image.title="nova-${SERVICE}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV SERVICE=${SERVICE} \
    PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NOVA_VAR_DIR=/var/lib/nova
RUN groupadd --system --gid 10001 nova \
    && useradd --system --uid 10001 --gid nova --home-dir /var/lib/nova --no-create-home \
        --shell /usr/sbin/nologin nova \
    && mkdir -p /var/lib/nova \
    && chown nova:nova /var/lib/nova
COPY --from=builder /opt/venv /opt/venv
COPY deploy/healthcheck.py /usr/local/lib/nova/healthcheck.py
USER 10001:10001
WORKDIR /var/lib/nova
# api: 8000 (NOVA_API__PORT); ingestor: Prometheus metrics on 9101 (NOVA_INGESTOR__METRICS_PORT)
EXPOSE 8000 9101
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/usr/local/lib/nova/healthcheck.py"]
# `python -m services.<SERVICE>`, with any arguments given to `docker run` or compose's
# `command` (e.g. `--worker` for the forecaster). The shell only expands ${SERVICE} and execs:
# Python replaces it and receives SIGTERM itself. Compose adds `init: true`, so that an init
# process forwards signals and a signal the service does not handle still stops it.
ENTRYPOINT ["/bin/sh", "-c", "exec python -m \"services.${SERVICE}\" \"$@\"", "nova-service"]
CMD []
