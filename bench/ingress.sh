#!/bin/sh
# Ingress benchmark (release): paddock's Ingress data path against nginx (the Debian package)
# as a reverse proxy to the same two backends (an nginx of its own answering `ok`, on
# 127.0.0.2 and 127.0.0.3), configured as ingress-nginx proxies: HTTP/1.1 upstream with
# keep-alive, round robin, Host and X-Forwarded-*/X-Real-IP set, no access log. wrk (Debian),
# keep-alive, 2 threads x 64 connections, closed loop, Host bench.example; each proxy's CPU
# time (nginx: master and workers) is read from /proc/<pid>/stat around each run. Prints
# requests/s, requests per proxy CPU-second, p99, the p99 each adds over going to the
# backends directly, and paddock's ratios to nginx (proxies take turns going first; medians of
# INGRESS_BENCH_ROUNDS rounds last). Targets: >= 1.0x nginx per CPU-second, added p99 <= nginx's.
# INGRESS_BENCH_SECS (default 10), INGRESS_BENCH_ROUNDS (default 3).
#
# Measured 2026-12-08 on the 2-core CI machine (wrk and the backends share the cores with the
# proxy), release build with LTO off and 16 codegen units, jemalloc (as the paddock binary),
# nginx 1.22.1, wrk 4.1.0, 10 s rounds; other builds kept the load average at 3.5-6.3, so
# the direct p99s (7-15 ms) and every added p99 below are noise, only the CPU ratios mean
# something. Before and after, the same day, same script:
#   8a72572 (hyper-util's pooled client, on the caller's multi-threaded runtime), 3 rounds,
#   load 4.8-6.3:
#     paddock  16,000-20,500 req/s at 5.7-5.9 CPU-s: 27,900-35,400 req per CPU-second
#     nginx    27,800-39,500 req/s at 4.8-7.2 CPU-s: 55,100-57,900 req per CPU-second
#     paddock / nginx per CPU-second 0.48 0.52 0.64, median 0.52x
#     (an earlier quiet run, load 2-3: 0.51x; added p99 2.07 ms against nginx's 0.28 ms)
#   47e6879 (one single-threaded runtime per core with its own SO_REUSEPORT socket; upstream
#   connections driven by the request's own task and parked per worker; the accept loop's
#   idle timer lazy), 5 rounds, load 3.5-6.3:
#     paddock  18,900-32,000 req/s at 6.9-10.0 CPU-s: 27,300-32,700 req per CPU-second
#     nginx    31,600-39,200 req/s at 6.2-8.1 CPU-s: 46,900-54,100 req per CPU-second
#     paddock / nginx per CPU-second 0.58 0.68 0.60 0.63 0.68, median 0.63x
#     added p99 median: paddock 0.53 ms, nginx -0.23 ms (rounds: -2.1 to 7.8 ms against
#     -2.7 to 3.0 ms: noise at this load; measure again on a quiet machine)
#   Target missed: 0.63x, not 1.0x. Where the rest goes (perf stat and perf record on each
#   proxy, 4 s under the same wrk load, load average 4): CPU per request paddock 35 us, nginx
#   23 us; both make 4-5 syscalls and 0.3-0.4 context switches per request and spend about
#   the same time in the kernel (18-20 us, mostly the loopback writev waking its reader);
#   the difference is user space, 3x nginx's (15 us against 5 us), spread thin over hyper's
#   server and client state machines, tokio's task and timer machinery, header maps and
#   allocations, with no single hot function left. The cross-thread wake-ups the previous
#   profile showed (~20% in the scheduler) are gone: a proxied request wakes no other task
#   or thread.
set -e
cd "$(dirname "$0")/.."
SECS=${INGRESS_BENCH_SECS:-10}
ROUNDS=${INGRESS_BENCH_ROUNDS:-3}
if ! command -v nginx >/dev/null 2>&1 || ! command -v wrk >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y nginx-light wrk >/dev/null ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y nginx wrk >/dev/null
fi
cargo build --release -p ingress --example ingress_bench_server
BIN=${CARGO_TARGET_DIR:-target}/release/examples/ingress_bench_server
D=$(mktemp -d)
PAD=
NGX=
BACK=
cleanup() {
    exec 3>&- 2>/dev/null || true
    for p in $PAD $NGX $BACK; do kill "$p" 2>/dev/null || true; done
    sleep 1
    rm -rf "$D"
}
trap cleanup EXIT INT TERM
TCK=$(getconf CLK_TCK)
# CPU seconds of a process and its children's processes (nginx's workers).
cpu() {
    pids="$1 $(ps -o pid= --ppid "$1" 2>/dev/null | tr '\n' ' ')"
    for p in $pids; do cat "/proc/$p/stat" 2>/dev/null; done |
        awk -v t="$TCK" '{s += $14 + $15} END {printf "%.3f", s / t}'
}
mkdir -p "$D/back" "$D/proxy"
cat >"$D/back/nginx.conf" <<CONF
worker_processes 1;
error_log $D/back/error.log;
pid $D/back/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.2:8080 reuseport;
        listen 127.0.0.3:8080 reuseport;
        location / { return 200 "ok\n"; }
    }
}
CONF
cat >"$D/proxy/nginx.conf" <<CONF
worker_processes auto;
error_log $D/proxy/error.log;
pid $D/proxy/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    upstream web {
        server 127.0.0.2:8080;
        server 127.0.0.3:8080;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:8091;
        location / {
            proxy_pass http://web;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Real-IP \$remote_addr;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Host \$host;
            proxy_set_header X-Forwarded-Port \$server_port;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
CONF
nginx -p "$D/back" -c "$D/back/nginx.conf" -g 'daemon off;' &
BACK=$!
nginx -p "$D/proxy" -c "$D/proxy/nginx.conf" -g 'daemon off;' &
NGX=$!
mkfifo "$D/in"
"$BIN" 127.0.0.1:8090 127.0.0.2:8080 127.0.0.3:8080 <"$D/in" >"$D/paddock.out" &
PAD=$!
exec 3>"$D/in"
sleep 2
for url in http://127.0.0.2:8080/ http://127.0.0.1:8091/ http://127.0.0.1:8090/; do
    body=$(curl -sS -m 5 -H 'Host: bench.example' "$url")
    [ "$body" = ok ] || { echo "$url answered '$body'" >&2; exit 1; }
done

# wrk against URL for SECS: "req_per_s p99_ms"
load() {
    wrk -t2 -c64 -d"${SECS}s" --latency -H 'Host: bench.example' "$1" | awk '
        /Requests\/sec:/ {rps = $2}
        $1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
                      ms = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v }
        END {printf "%s %.3f\n", rps, ms}'
}
run() { # name url pid -> "per_cpu p99"
    before=$(cpu "$3")
    set -- "$1" "$2" "$3" $(load "$2")
    after=$(cpu "$3")
    per=$(awk -v q="$4" -v s="$SECS" -v a="$before" -v b="$after" 'BEGIN { c = b - a; if (c <= 0) c = 0.001; printf "%.0f", q * s / c }')
    printf '%-8s %9.0f req/s  %5.2f CPU-s  %8s req per CPU-s  p99 %7.3f ms\n' "$1" "$4" \
        "$(awk -v a="$before" -v b="$after" 'BEGIN {print b - a}')" "$per" "$5" >&2
    echo "$per $5"
}

: >"$D/ratios"
r=1
while [ "$r" -le "$ROUNDS" ]; do
    echo "round $r:" >&2
    direct=$(load http://127.0.0.2:8080/ | awk '{print $2}')
    printf '%-8s p99 %7.3f ms\n' direct "$direct" >&2
    if [ $((r % 2)) -eq 1 ]; then
        p=$(run paddock http://127.0.0.1:8090/ "$PAD"); n=$(run nginx http://127.0.0.1:8091/ "$NGX")
    else
        n=$(run nginx http://127.0.0.1:8091/ "$NGX"); p=$(run paddock http://127.0.0.1:8090/ "$PAD")
    fi
    echo "$p $n $direct" | awk '{ pa = $2 - $5; na = $4 - $5;
        printf "%.2f %.3f %.3f\n", $1 / $3, pa, na }' >>"$D/ratios"
    tail -1 "$D/ratios" | awk '{printf "  per CPU-second %.2fx nginx; added p99: paddock %.3f ms, nginx %.3f ms\n", $1, $2, $3}' >&2
    r=$((r + 1))
done
med() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo "paddock / nginx requests per CPU-second, median: $(awk '{print $1}' "$D/ratios" | med)x"
echo "added p99, median: paddock $(awk '{print $2}' "$D/ratios" | med) ms, nginx $(awk '{print $3}' "$D/ratios" | med) ms"
