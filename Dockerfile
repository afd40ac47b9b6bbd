# syntax=docker/dockerfile:1
#
# luas container image: built in the official Rust image, run on distroless
# (glibc, CA certificates, no shell) as the non-root user 65532.
#
#   docker build -t ghcr.io/luas-proxy/luas:0.1.0 .
#   docker run --rm -p 8080:8080 -p 9901:9901 \
#     -v "$PWD/my-config.yaml:/etc/luas/config.yaml:ro" ghcr.io/luas-proxy/luas:0.1.0
#
# The config must bind its listeners and admin to 0.0.0.0 to be reachable
# from outside the container (see examples/kubernetes/).

# The same Rust as rust-toolchain.toml (rustup reads that file here too).
FROM rust:1.95.0-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the crate registry and target/ between builds, so a
# code change does not rebuild every dependency (needs BuildKit, the default
# builder of current Docker). The binary is copied out of the cached target/
# because cache mounts are not part of the image. Debug info is stripped
# here: the release profile keeps line tables for profiling, which would add
# about 25 MB to the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo cargo build --release --locked \
    && cp target/release/luas /luas

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /luas /usr/local/bin/luas
USER 65532:65532
# Proxy listener and admin (/metrics, /ready, /live, /api/v1) in the examples.
EXPOSE 8080 9901
ENTRYPOINT ["/usr/local/bin/luas"]
CMD ["run", "--config", "/etc/luas/config.yaml"]
