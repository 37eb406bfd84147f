# scene-agent: the MQTT scene-change agent for one camera.
# Plain Dockerfile syntax only (no heredocs, no COPY --link): older builders reject them.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- build: install the package and its dependencies into a virtual environment --------
FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scene_agent ./scene_agent
RUN python -m venv /opt/scene-agent \
    && /opt/scene-agent/bin/pip install --no-cache-dir ".[web]" \
    && find /opt/scene-agent -name __pycache__ -prune -exec rm -rf {} + \
    && rm -rf /opt/scene-agent/lib/python3.11/site-packages/pip \
              /opt/scene-agent/lib/python3.11/site-packages/setuptools

# --- runtime: the virtual environment, a non-root user, /data ---------------------------
FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="scene-agent" \
      org.opencontainers.image.description="MQTT-native scene-change agent: tells you when a camera's scene no longer looks like the reference you chose" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"

# The agent runs as "scene" (uid 10001), a member of "video" so it can open /dev/video*.
RUN groupadd --system --gid 10001 scene \
    && useradd --system --uid 10001 --gid scene --groups video \
               --home-dir /data --no-create-home --shell /usr/sbin/nologin scene \
    && mkdir -p /data \
    && chown scene:scene /data

COPY --from=build /opt/scene-agent /opt/scene-agent

ENV PATH=/opt/scene-agent/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SCENE_AGENT_STORAGE__DATA_DIR=/data

VOLUME ["/data"]
WORKDIR /data
USER 10001:10001

HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["scene-agent", "healthcheck"]

# Exec form: the agent is PID 1 and receives SIGTERM from `docker stop` directly.
ENTRYPOINT ["scene-agent"]
CMD ["run"]
