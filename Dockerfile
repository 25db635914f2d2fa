# AutoHands in a container: `docker compose up -d` (compose.yaml), or
#   docker build -t autohands . && docker run -d -v autohands-data:/data --env-file .env autohands
# Everything it keeps (config.toml, the database, logs, workspaces) lives in the /data volume.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# bubblewrap: the shell tool's command sandbox (prlimit comes with util-linux, already here).
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /build
COPY pyproject.toml README.md ./
COPY config ./config
COPY skills ./skills
COPY hub ./hub
COPY channels ./channels
COPY agents ./agents
RUN pip install . && rm -rf /build

# A user of its own; ~/.autohands is the volume, so `autohands init` run in the container
# writes /data/config.toml, which `autohands run` then reads.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin autohands \
    && mkdir -m 0700 /data \
    && chown autohands:autohands /data \
    && ln -s /data /home/autohands/.autohands
USER autohands
WORKDIR /home/autohands

# The HTTP server (the web chat, the API, /healthz and the platforms' webhook routes) must
# listen on every interface of the container to be reachable through a published port. A hub
# that listens beyond loopback needs a key, so give one: AUTOHANDS__SERVER__API_KEYS='["…"]'
# (compose.yaml reads it from AUTOHANDS_API_KEY in .env); without one `run` stops with that
# advice. compose.yaml publishes the port on the host's loopback only.
ENV AUTOHANDS__HUB__DATA_DIR=/data \
    AUTOHANDS__SERVER__HOST=0.0.0.0 \
    AUTOHANDS__SERVER__PORT=8080
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('AUTOHANDS__SERVER__PORT', '8080'), timeout=4); sys.exit(0)"]

CMD ["autohands", "run"]
