# Release build of the server, the seed and the doctor on a slim runtime
# image. Dependencies are compiled in a layer of their own (cargo-chef): a
# change to the project's code rebuilds only the project.
#
# Base images are pinned to exact releases; bump them deliberately.
ARG RUST_IMAGE=rust:1.95.0-bookworm
ARG RUNTIME_IMAGE=debian:12.12-slim

FROM ${RUST_IMAGE} AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The recipe: the dependency graph only, from the manifests.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --bins
# The commit /health reports (the build context has no .git):
#   docker compose build --build-arg HEALTHCRM_GIT_COMMIT=$(git rev-parse --short=12 HEAD)
ARG HEALTHCRM_GIT_COMMIT=unknown
ENV HEALTHCRM_GIT_COMMIT=$HEALTHCRM_GIT_COMMIT
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY seeds ./seeds
RUN cargo build --release --locked --bins

FROM ${RUNTIME_IMAGE}
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
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["healthcrm", "healthcheck"]
CMD ["healthcrm"]
