# hyperrec container image: build on bookworm, run on bookworm-slim.
# The models directory is a volume: mount trained models at /models
# (models/<slot>/<version>/), and point HYPERREC_REDIS at your Redis.
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config libmicrohttpd-dev libuv1-dev libjansson-dev \
      libhiredis-dev libopenblas-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY include include
COPY src src
RUN make -j"$(nproc)" all

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libuv1 libjansson4 libhiredis0.14 libopenblas0-pthread \
      tzdata curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin hyperrec \
 && mkdir -p /models /etc/hyperrec && chown hyperrec /models
COPY --from=build /src/bin/hyperrec /src/bin/hyperrec-train /usr/local/bin/
COPY config/hyperrec.json /etc/hyperrec/hyperrec.json
ENV HYPERREC_CONFIG=/etc/hyperrec/hyperrec.json \
    HYPERREC_LISTEN=0.0.0.0:8080 \
    HYPERREC_MODELS_DIR=/models \
    HYPERREC_REDIS=redis:6379
VOLUME ["/models"]
EXPOSE 8080
USER hyperrec
HEALTHCHECK --interval=10s --timeout=2s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/hyperrec"]
