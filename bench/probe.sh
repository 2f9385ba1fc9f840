#!/bin/sh
# Probe engine benchmarks (release): CPU per probe against in-run floors, and worker lateness
# and memory with 1,000 / 10,000 workers on one core. Each takes well under two minutes.
set -e
cd "$(dirname "$0")/.."
cargo bench -p probe --bench cpu
cargo bench -p probe --bench lateness
