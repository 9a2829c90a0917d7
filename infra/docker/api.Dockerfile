# syntax=docker/dockerfile:1
# The API function's container image: the `ludex-api-lambda` binary as the `bootstrap` of
# the AWS Lambda base image for custom runtimes. Built from the repository root:
#
#   docker buildx build --platform linux/arm64 --provenance=false \
#     -f infra/docker/api.Dockerfile -t ludex-api .
#
# On an x86_64 machine that compiles under arm64 emulation, which is slow; the release workflow
# instead wraps the binary cargo-lambda cross-compiled (see the `binary` stage):
#
#   cargo lambda build --profile lambda-release --locked --arm64 --bin ludex-api-lambda
#   docker buildx build --platform linux/arm64 --provenance=false \
#     --build-context binary=target/lambda/ludex-api-lambda \
#     -f infra/docker/api.Dockerfile -t ludex-api .
#
# The binary is built for the image's platform with the `lambda-release` profile, as the ZIP of the
# ingest function is (`cargo lambda build --profile lambda-release`). Debian bookworm's glibc is newer
# than Amazon Linux 2023's (2.36 and 2.34), but the binary needs no symbol newer than 2.34
# (scripts/check-lambda checks the host-built one).

ARG RUST_VERSION=1.95

# cargo-chef turns the manifests into a recipe, so the dependencies are compiled in a layer
# that only a change of Cargo.toml or Cargo.lock invalidates.
FROM public.ecr.aws/docker/library/rust:${RUST_VERSION}-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.73
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --profile lambda-release --locked --recipe-path recipe.json \
      --package ludex-lambda --bin ludex-api-lambda
COPY . .
RUN cargo build --profile lambda-release --locked --package ludex-lambda --bin ludex-api-lambda

# The binary alone, as /bootstrap. The release workflow replaces this stage with the binary
# cargo-lambda cross-compiled for arm64 on the runner (`--build-context binary=DIR`, DIR holding
# `bootstrap`): the stages above are then skipped and no instruction runs under emulation.
FROM scratch AS binary
COPY --from=build /src/target/lambda-release/ludex-api-lambda /bootstrap

# Only the binary: no compiler, no sources, no credentials.
FROM public.ecr.aws/lambda/provided:al2023
COPY --from=binary --chmod=755 /bootstrap ${LAMBDA_RUNTIME_DIR}/bootstrap
# The custom runtime's handler setting; the binary serves every request with the router.
CMD ["ludex-api"]
