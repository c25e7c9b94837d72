# syntax=docker/dockerfile:1
#
# Octohooks image: both binaries, `octohooks-api` (the default command) and
# `octohooks-dispatcher`. Build with BuildKit (the default of current Docker and of
# `docker compose`), which the cache mounts below need:
#
#   docker build -t octohooks:local .
#   docker run --rm octohooks:local octohooks-api migrate     # apply migrations
#   docker run --rm -p 8080:8080 octohooks:local             # the API
#   docker run --rm octohooks:local octohooks-dispatcher     # the dispatcher
#
# Configuration comes from OCTOHOOKS_* environment variables
# (see crates/platform/src/defaults.toml).

########## web console ##########
# The console (console/dist) is built on the TypeScript SDK and embedded into the API binary.
FROM node:20-bookworm AS console
WORKDIR /src
COPY clients/typescript/package.json clients/typescript/package-lock.json clients/typescript/
COPY console/package.json console/package-lock.json console/
RUN cd clients/typescript && npm ci --no-audit --no-fund \
 && cd ../../console && npm ci --no-audit --no-fund
COPY clients/typescript clients/typescript
COPY console console
RUN cd clients/typescript && npm run build \
 && cd ../../console && npm run build

########## build ##########
FROM rust:1-bookworm AS builder
WORKDIR /src

# The whole workspace is needed: every member's manifest, and migrations/ (compiled in by
# embed_migrations!). The cache mounts keep the crates.io downloads and the target directory
# between builds, so a source change rebuilds only the workspace crates. A cache mount is not
# part of the image, hence the copy of the binaries to /out.
COPY . .
COPY --from=console /src/console/dist console/dist
RUN --mount=type=cache,id=octohooks-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=octohooks-cargo-git,target=/usr/local/cargo/git \
    --mount=type=cache,id=octohooks-target,target=/src/target \
    cargo build --release --locked --bins \
 && mkdir -p /out \
 && cp target/release/octohooks-api target/release/octohooks-dispatcher /out/

########## runtime ##########
FROM debian:bookworm-slim AS runtime

# System CA certificates, for amqps:// connections (webhook deliveries carry their own roots).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 octohooks \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin octohooks

COPY --from=builder /out/octohooks-api /out/octohooks-dispatcher /usr/local/bin/

# In a container the services must listen on every interface, not on loopback (the
# defaults of defaults.toml). Deployments may still override these.
ENV OCTOHOOKS_LISTEN_ADDR=0.0.0.0:8080 \
    OCTOHOOKS_DISPATCHER_LISTEN_ADDR=0.0.0.0:8081 \
    OCTOHOOKS_METRICS_LISTEN_ADDR=0.0.0.0:8082

USER 10001
WORKDIR /
# 8080: the API; 8081: the dispatcher's /health/live, /health/ready and /metrics; 8082: the
# API's /metrics.
EXPOSE 8080 8081 8082
# Both binaries stop gracefully on SIGTERM (Docker's default stop signal): the API finishes
# in-flight requests (up to 25 s), the dispatcher finishes its in-flight deliveries.
STOPSIGNAL SIGTERM
CMD ["octohooks-api"]
