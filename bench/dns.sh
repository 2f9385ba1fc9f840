#!/bin/sh
# Cluster DNS benchmark (release): paddock's DNS server against dnsmasq (the Debian package
# dnsmasq-base; CoreDNS itself is not packaged in Debian bookworm: `apt-cache policy coredns`
# finds nothing) serving the same records: DNS_BENCH_SERVICES A records
# svcN.default.svc.cluster.local (TTL 30), every other name of cluster.local NXDOMAIN, no
# upstream. dnsperf (Debian) sends a mix of 80% A for existing names, 10% AAAA of them
# (NODATA) and 10% A for missing names (NXDOMAIN), closed loop, over UDP from 127.0.0.1;
# each server's CPU time is read from /proc/<pid>/stat around each run. Prints queries/s,
# queries per server CPU-second and paddock's ratio to dnsmasq per CPU-second (the servers take
# turns going first; the median ratio of DNS_BENCH_ROUNDS rounds last).
# DNS_BENCH_SECS (default 10), DNS_BENCH_ROUNDS (default 3), DNS_BENCH_SERVICES (default 1000).
#
# Measured 2026-12-08 on the 2-core CI machine (load average 2-3 from other builds; dnsperf
# shares the cores), release build with LTO off and 16 codegen units, dnsmasq 2.90, dnsperf
# 2.10, 1,000 services, 10 s x 3 rounds, two runs:
#   glibc malloc in the example:
#     paddock  75,400-76,200 q/s at 10.5-11.1 CPU-s: 68,500-72,000 queries per CPU-second
#     dnsmasq  93,100-105,800 q/s at 7.7-8.4 CPU-s: 120,600-126,100 queries per CPU-second
#     paddock / dnsmasq per CPU-second: 0.54 0.57 0.60, median 0.57x
#   jemalloc, as the paddock binary (what the example uses now):
#     paddock  68,300-77,300 q/s: 63,600-74,000 queries per CPU-second
#     dnsmasq  82,500-88,800 q/s: 102,600-114,000 queries per CPU-second
#     paddock / dnsmasq per CPU-second: 0.62 0.65 0.61, median 0.62x (no target was set).
set -e
cd "$(dirname "$0")/.."
SECS=${DNS_BENCH_SECS:-10}
ROUNDS=${DNS_BENCH_ROUNDS:-3}
COUNT=${DNS_BENCH_SERVICES:-1000}
if ! command -v dnsmasq >/dev/null 2>&1 || ! command -v dnsperf >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y dnsmasq-base dnsperf >/dev/null
fi
cargo build --release -p dns --example dns_bench_server
BIN=${CARGO_TARGET_DIR:-target}/release/examples/dns_bench_server
D=$(mktemp -d)
PAD=
DM=
cleanup() {
    exec 3>&- 2>/dev/null || true
    [ -n "$PAD" ] && kill "$PAD" 2>/dev/null || true
    [ -n "$DM" ] && kill "$DM" 2>/dev/null || true
    rm -rf "$D"
}
trap cleanup EXIT INT TERM
TCK=$(getconf CLK_TCK)
cpu() { awk -v t="$TCK" '{printf "%.3f", ($14 + $15) / t}' "/proc/$1/stat"; }

# The records, for dnsmasq, and the queries, for dnsperf.
i=0
: >"$D/dnsmasq.conf"
while [ "$i" -lt "$COUNT" ]; do
    echo "host-record=svc$i.default.svc.cluster.local,10.96.$((i / 250)).$((i % 250 + 1))" >>"$D/dnsmasq.conf"
    i=$((i + 1))
done
cat >>"$D/dnsmasq.conf" <<CONF
port=5302
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
local=/cluster.local/
local-ttl=30
dns-forward-max=1000
CONF
awk -v n="$COUNT" 'BEGIN { srand(1); for (i = 0; i < 20000; i++) { r = rand(); s = int(rand() * n);
    if (r < 0.8) print "svc" s ".default.svc.cluster.local A";
    else if (r < 0.9) print "svc" s ".default.svc.cluster.local AAAA";
    else print "missing" s ".default.svc.cluster.local A" } }' >"$D/queries"

mkfifo "$D/in"
"$BIN" 127.0.0.1:5301 "$COUNT" <"$D/in" >"$D/paddock.out" &
PAD=$!
exec 3>"$D/in"
dnsmasq --keep-in-foreground --conf-file="$D/dnsmasq.conf" --user=root 2>"$D/dnsmasq.err" &
DM=$!
sleep 2
# Both answer the same.
echo "svc7.default.svc.cluster.local A" >"$D/one"
for p in 5301 5302; do
    dnsperf -s 127.0.0.1 -p $p -d "$D/one" -n 1 2>/dev/null | grep -q "NOERROR 1" ||
        { echo "server on port $p does not answer" >&2; exit 1; }
done

run() { # name port pid -> "qps per_cpu"
    before=$(cpu "$3")
    out=$(dnsperf -s 127.0.0.1 -p "$2" -d "$D/queries" -l "$SECS" -c 8 -q 200 2>&1)
    after=$(cpu "$3")
    qps=$(echo "$out" | awk '/Queries per second:/ {print $4}')
    lost=$(echo "$out" | awk '/Queries lost:/ {print $3}')
    per=$(awk -v q="$qps" -v s="$SECS" -v a="$before" -v b="$after" 'BEGIN { c = b - a; if (c <= 0) c = 0.001; printf "%.0f", q * s / c }')
    printf '%-8s %10.0f q/s  %5.2f CPU-s  %10s q per CPU-s  lost %s\n' "$1" "$qps" \
        "$(awk -v a="$before" -v b="$after" 'BEGIN {print b - a}')" "$per" "$lost" >&2
    echo "$per"
}

: >"$D/ratios"
r=1
while [ "$r" -le "$ROUNDS" ]; do
    echo "round $r:" >&2
    if [ $((r % 2)) -eq 1 ]; then
        p=$(run paddock 5301 "$PAD"); d=$(run dnsmasq 5302 "$DM")
    else
        d=$(run dnsmasq 5302 "$DM"); p=$(run paddock 5301 "$PAD")
    fi
    awk -v p="$p" -v d="$d" 'BEGIN { printf "%.2f\n", p / d }' >>"$D/ratios"
    r=$((r + 1))
done
echo "paddock / dnsmasq queries per CPU-second, per round: $(tr '\n' ' ' <"$D/ratios")"
echo "median: $(sort -n "$D/ratios" | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')x"
