# DrishtiStream images: one Dockerfile, one target per image.
#
#   hack/docker/build-images.sh                                    # everything below, offline, cached
#   docker build --target service  -t drishti/stream:dev .         # the camera
#   docker build --target operator -t drishti/operator:dev .       # the Kopf operator
#
# The build reaches no network: third-party wheels come from build/wheelhouse/, which hack/docker/wheelhouse.sh
# fills on the host (pinned, manylinux wheels for CPython 3.11), and the project is built from the source in the
# context with `pip install --no-index`. hack/docker/build-images.sh builds with `--network none` to prove it.
#
# BASE_IMAGE: any Debian-based image with python3 >= 3.11 and its venv module, used for both the build and the
# runtime stages (the venv is copied between them, so the interpreter paths must match). python:3.11-slim by
# default; drishti/base:bookworm-py311 from hack/docker/base-image.sh where no image registry is reachable.
ARG BASE_IMAGE=python:3.11-slim

# ---- build: a venv per image, from the wheelhouse only -----------------------------------------------------------
# Dependencies and the project land in separate directories, hence separate layers: a code change rebuilds and
# ships only /opt/drishti-app (tens of kilobytes), while /opt/drishti (hundreds of megabytes) stays cached.
#   /opt/drishti       a venv with the third-party dependencies and no pip; a .pth file adds /opt/drishti-app
#   /opt/drishti-app   the project itself (pip install --target) and its console scripts in bin/
#   /opt/pip           pip, in the build stages only; it installs into /opt/drishti with --python
FROM ${BASE_IMAGE} AS build
# Every image of this file, build stages included, carries it: hack/docker/prune.sh removes untagged ones by it.
LABEL io.drishti.project="drishti-stream"
ENV PIP_NO_INDEX=1 \
    PIP_FIND_LINKS=/wheels \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/pip \
 && python3 -m venv --without-pip /opt/drishti \
 && echo /opt/drishti-app >"$(/opt/drishti/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/drishti-app.pth"
COPY build/wheelhouse/ /wheels/

# The project itself, the same in both images (it holds both packages); each image's dependencies come from its
# own deps stage. Build isolation installs the build backend (requirements-build.txt) from /wheels too.
FROM build AS app
COPY pyproject.toml README.md* /src/
COPY service/ /src/service/
COPY operator/ /src/operator/
RUN /opt/pip/bin/pip --python /opt/drishti/bin/python install --no-deps --target /opt/drishti-app /src

# ---- runtime: shared by both images -----------------------------------------------------------------------------
# Labels that change with every commit (version, revision, created) are given by the build command
# (hack/docker/build-images.sh passes them with --label), so they never invalidate a cached layer.
FROM ${BASE_IMAGE} AS runtime
ARG BASE_IMAGE
LABEL io.drishti.project="drishti-stream" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
# A fixed non-root uid/gid, so Kubernetes' runAsNonRoot can check it and volumes can be owned by it.
RUN groupadd --gid 10001 drishti \
 && useradd --uid 10001 --gid 10001 --no-log-init --home-dir /home/drishti --create-home \
      --shell /usr/sbin/nologin drishti \
 && mkdir -p /app
ENV PATH=/opt/drishti-app/bin:/opt/drishti/bin:$PATH \
    HOME=/home/drishti \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# The working directory is where a camera looks for config.yaml: mount one here, or set DRISHTI_CONFIG.
WORKDIR /app
USER 10001:10001

# ---- operator ---------------------------------------------------------------------------------------------------
FROM build AS deps-operator
RUN /opt/pip/bin/pip --python /opt/drishti/bin/python install -r /wheels/requirements-operator.txt

FROM runtime AS operator
COPY --from=deps-operator /opt/drishti /opt/drishti
COPY --from=app /opt/drishti-app /opt/drishti-app
ENTRYPOINT ["drishti-operator"]
LABEL org.opencontainers.image.title="drishti-operator" \
      org.opencontainers.image.description="Kubernetes operator for DrishtiStream VirtualCameras"

# ---- service (the default target) -------------------------------------------------------------------------------
FROM build AS deps-service
RUN /opt/pip/bin/pip --python /opt/drishti/bin/python install -r /wheels/requirements-service.txt

FROM runtime AS service
COPY --from=deps-service /opt/drishti /opt/drishti
COPY --from=app /opt/drishti-app /opt/drishti-app
EXPOSE 8000
# Liveness as the container runtime sees it. The service listens on DRISHTI_PORT, else PORT, else 8000.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % (os.environ.get('DRISHTI_PORT') or os.environ.get('PORT') or 8000), timeout=4)"]
ENTRYPOINT ["drishti-stream"]
LABEL org.opencontainers.image.title="drishti-stream" \
      org.opencontainers.image.description="A video replayed as a live, wall-clock exact WebSocket camera stream"
