# maskline relay image: build the release binary, run it as a non-root user.
#   docker build -t maskline .
#   docker run --rm -p 8080:8080 maskline
# The image ships config/maskline.toml (memory store, demo pool) as
# /etc/maskline/maskline.toml; for production mount your own file there or set
# MASKLINE_* variables (MASKLINE_STORE_BACKEND=redis, MASKLINE_SECRETS_*, ...).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p maskline --bin maskline \
 && cp target/release/maskline /usr/local/bin/maskline

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 maskline \
 && useradd --system --uid 10001 --gid maskline --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin maskline
COPY --from=build /usr/local/bin/maskline /usr/local/bin/maskline
COPY config/maskline.toml /etc/maskline/maskline.toml
# Inside a container the API must listen on all interfaces to be reachable.
ENV MASKLINE_API_LISTEN=0.0.0.0:8080
USER maskline:maskline
EXPOSE 8080
CMD ["maskline", "serve", "--config", "/etc/maskline/maskline.toml"]
