# One image holding both daemons, authd and registryd; docker-compose.yml picks one per service.
#   docker build -t berth .
# Stage 1 builds the release binaries; stage 2 is a slim Debian with just the binaries, CA roots
# and curl (for the healthchecks).

FROM rust:1-bookworm AS build
WORKDIR /src
# The migrations/ folder is compiled into registryd.
COPY . .
RUN cargo build --release --locked -p authd -p registryd \
 && cp target/release/authd target/release/registryd /usr/local/bin/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /etc/berth --shell /usr/sbin/nologin berth \
 && mkdir -p /etc/berth/certs /etc/berth/data \
 && chown berth /etc/berth/data
COPY --from=build /usr/local/bin/authd /usr/local/bin/registryd /usr/local/bin/
USER berth
WORKDIR /etc/berth
EXPOSE 5000 5001
