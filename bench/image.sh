#!/bin/sh
# Image pull throughput (release): a ~100 MB image from a local docker-registry, pulled by the
# `image` crate (transfer, verify, unpack) against `skopeo copy` to an OCI directory. Prints the
# ratio. IMAGE_BENCH_MB (default 100) and IMAGE_BENCH_ROUNDS (default 3) tune it.
set -e
cd "$(dirname "$0")/.."
for p in docker-registry skopeo; do
    command -v "$p" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y "$p" >/dev/null
done
cargo bench -p image --bench pull
