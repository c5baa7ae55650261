# The cloudpf CLI (demo, seed, poll, serve, es-setup) for docker-compose.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p cloudpf

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/cloudpf /usr/local/bin/cloudpf
# Named volumes take the ownership of the directory they are mounted on.
RUN mkdir -p /shared /srv/poller /srv/api && chown 10001 /shared /srv/poller /srv/api
USER 10001
ENTRYPOINT ["cloudpf"]
