# One image holding both daemons, authd and registryd; docker-compose.yml picks one per service.
#
#   docker build -t berth .
#       compiles in the official rust:1-bookworm image (stage `build`), then copies the two
#       binaries onto debian:bookworm-slim with just CA roots and curl (for the healthchecks).
#   cargo build --release -p authd -p registryd
#   docker build --build-arg PREBUILT=1 --build-arg BUILD_IMAGE=debian:bookworm-slim -t berth .
#       takes target/release/authd and target/release/registryd built on this machine (Debian 12
#       or another system with bookworm's glibc) instead, and needs no Rust image.
#
# .dockerignore keeps target/ out of the build context except those two binaries.

ARG BUILD_IMAGE=rust:1-bookworm
FROM ${BUILD_IMAGE} AS build
ARG PREBUILT=
WORKDIR /src
# The migrations/ folder (sqlite/ and postgres/) is compiled into registryd.
COPY . .
RUN if [ -n "$PREBUILT" ]; then \
      test -x target/release/authd -a -x target/release/registryd \
        || { echo "PREBUILT=1 needs target/release/authd and registryd: cargo build --release first" >&2; exit 1; }; \
    else \
      cargo build --release --locked -p authd -p registryd; \
    fi \
 && cp target/release/authd target/release/registryd /usr/local/bin/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 berth \
 && useradd --system --uid 10001 --gid 10001 --home-dir /etc/berth --shell /usr/sbin/nologin berth \
 && mkdir -p /etc/berth/certs /etc/berth/data \
 && chown 10001:10001 /etc/berth/data
COPY --from=build /usr/local/bin/authd /usr/local/bin/registryd /usr/local/bin/
# Numeric, so that runtimes can check it is not root without reading /etc/passwd.
USER 10001:10001
WORKDIR /etc/berth
EXPOSE 5000 5001
