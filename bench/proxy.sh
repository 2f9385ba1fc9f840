#!/bin/sh
# Service proxy benchmark (release): paddock's proxy against HAProxy from the Debian package
# (mode tcp, roundrobin, same two backends) and a direct connection, at fixed request rates
# (open loop) and at saturation: requests per proxy CPU-second, p50/p99 and the latency each
# proxy adds; then readiness -> routing p50/p99. Takes about five minutes.
# PROXY_BENCH_SECS (seconds per run, default 5), PROXY_BENCH_ROUNDS (default 3) and PROXY_BENCH_RATES (default
# 1000,3000,5000) tune it.
set -e
cd "$(dirname "$0")/.."
if ! command -v haproxy >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y haproxy >/dev/null
fi
cargo bench -p proxy --bench haproxy
