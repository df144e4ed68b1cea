# hyperrec container image: the server and the trainer on Debian 12 slim.
#
#   make image        builds it as hyperrec:<version> (docs/deployment.md)
#   make image-test   builds it and runs it against a Redis on 127.0.0.1
#
# The base is pinned to a dated Debian tag. Where no registry is reachable,
# `make image` builds a Debian 12 minbase with mmdebstrap and passes it as
# BASE; the Dockerfile itself does not change.
ARG BASE=docker.io/library/debian:bookworm-20250520-slim

FROM ${BASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config libmicrohttpd-dev libuv1-dev libjansson-dev \
      libhiredis-dev libopenblas-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY include include
COPY src src
COPY clients/js/index.js clients/js/index.js
RUN make -j"$(nproc)" bin/hyperrec bin/hyperrec-train

# The runtime stage: the shared libraries, time zones and the two programs;
# no compiler, no shell tools beyond Debian's minimal set, no curl (the
# HEALTHCHECK is `hyperrec healthcheck`). The trainer ships here too: the
# CronJob runs the same image, so a model is always written by the trainer
# of the server that reads it.
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libuv1 libjansson4 libhiredis0.14 libopenblas0-pthread \
      tzdata \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && groupadd --gid 10001 hyperrec \
 && useradd --no-log-init --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin hyperrec \
 && mkdir -p /models /etc/hyperrec && chown 10001:10001 /models
COPY --from=build /src/bin/hyperrec /src/bin/hyperrec-train /usr/local/bin/
COPY config/hyperrec.json /etc/hyperrec/hyperrec.json
ENV HYPERREC_CONFIG=/etc/hyperrec/hyperrec.json \
    HYPERREC_LISTEN=0.0.0.0:8080 \
    HYPERREC_MODELS_DIR=/models \
    HYPERREC_REDIS=redis:6379
VOLUME ["/models"]
EXPOSE 8080
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001
# Reads the same configuration as the server: a port changed with
# HYPERREC_LISTEN or the config file is the port it asks.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/hyperrec", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/hyperrec"]
