# Release build of the server, the seed and the doctor on a slim runtime image.
FROM rust:1-bookworm AS build
# The commit /health reports (the build context has no .git):
#   docker compose build --build-arg HEALTHCRM_GIT_COMMIT=$(git rev-parse --short=12 HEAD)
ARG HEALTHCRM_GIT_COMMIT=unknown
ENV HEALTHCRM_GIT_COMMIT=$HEALTHCRM_GIT_COMMIT
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY seeds ./seeds
RUN cargo build --release --locked --bins

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 healthcrm \
    && mkdir -p /var/lib/healthcrm/documents \
    && chown healthcrm /var/lib/healthcrm/documents
COPY --from=build /src/target/release/healthcrm /usr/local/bin/healthcrm
COPY --from=build /src/target/release/seed /src/target/release/doctor /usr/local/bin/
COPY seeds /app/seeds
WORKDIR /app
USER healthcrm
ENV BIND_ADDR=0.0.0.0:8080
EXPOSE 8080
CMD ["healthcrm"]
