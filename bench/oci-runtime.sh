#!/bin/bash
# Which OCI runtime the `oci` crate drives: start latency, driver memory and leftovers of `crun`
# and `runc` (Debian packages `crun`, `runc`, `busybox-static`), as root. Prints, per runtime:
# the median and p90 of N runs of a busybox `true` from `create` to its exit (create + start +
# the exit seen by `delete`), the peak RSS of the `create` and `start` processes, and what a
# SIGKILLed driver leaves behind (the container keeps running; its state dir and cgroup stay
# until `delete`). The numbers from one run are in the `oci` crate's `//!` doc.
#
# With --youki it also builds bench/oci-youki (youki's libcontainer in process, without C
# libseccomp and systemd; about 5 minutes on 2 cores) and runs the same loop with it. The
# start through the `oci` crate itself is `cargo bench -p oci --bench start`.
#
#   bench/oci-runtime.sh [--youki] [N]     (default 50)
set -euo pipefail
YOUKI=
if [ "${1:-}" = --youki ]; then YOUKI=1; shift; fi
N=${1:-50}
[ "$(id -u)" = 0 ] || { echo "oci-runtime bench: needs root" >&2; exit 1; }
for p in crun runc busybox jq; do
  command -v "$p" >/dev/null || { echo "oci-runtime bench: install Debian package ${p/busybox/busybox-static}" >&2; exit 1; }
done
W=$(mktemp -d /tmp/oci-bench.XXXXXX)
trap 'for r in crun runc; do for c in $($r --root "$W/state-$r" list -q 2>/dev/null); do $r --root "$W/state-$r" delete -f "$c" >/dev/null 2>&1 || true; done; done; rm -rf "$W"' EXIT
mkdir -p "$W/bundle/rootfs/bin" "$W/bundle/rootfs/proc" "$W/bundle/rootfs/dev" "$W/bundle/rootfs/sys"
cp "$(command -v busybox)" "$W/bundle/rootfs/bin/busybox"
for a in true sh sleep cat; do ln -s busybox "$W/bundle/rootfs/bin/$a"; done
(cd "$W/bundle" && runc spec && jq '.process.args=["/bin/true"] | .process.terminal=false | .linux.cgroupsPath="/oci-bench/c"' config.json > c.json && mv c.json config.json)

ms() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", (b-a)/1e6}'; }
cgdirs() { local n=0 d; for d in /sys/fs/cgroup/*/oci-bench/k /sys/fs/cgroup/oci-bench/k; do [ -d "$d" ] && n=$((n+1)); done; echo $n; }
stats() { sort -n | awk '{v[NR]=$1} END{printf "median %.2f ms  p90 %.2f ms  (n=%d)", v[int((NR+1)/2)], v[int(NR*0.9+0.5)], NR}'; }

for r in crun runc; do
  root="$W/state-$r"
  mkdir -p "$root"
  if ! out=$($r --root "$root" run --bundle "$W/bundle" probe </dev/null 2>&1); then
    # Debian 12's crun 1.8.1 refuses a hybrid hierarchy whose cgroup2 tree has a controller
    # (hugetlb is not mounted as v1 on these machines), even with --cgroup-manager=disabled.
    echo "$r: cannot run a container here: $out"
    $r --root "$root" delete -f probe >/dev/null 2>&1 || true
    continue
  fi
  $r --root "$root" delete -f probe >/dev/null 2>&1 || true
  : > "$W/$r.lat"
  for i in $(seq "$N"); do
    t0=$(date +%s%N)
    $r --root "$root" create --bundle "$W/bundle" "b$i" </dev/null >/dev/null 2>/dev/null
    $r --root "$root" start "b$i"
    # The container's end: its state says "stopped" once `true` has exited.
    while [ "$($r --root "$root" state "b$i" | jq -r .status)" != stopped ]; do :; done
    t1=$(date +%s%N)
    $r --root "$root" delete "b$i"
    echo "$(ms "$t0" "$t1")" >> "$W/$r.lat"
  done
  echo "$r $($r --version | head -1 | awk '{print $3}'): create+start+exit: $(stats < "$W/$r.lat")"
  # Peak RSS of the driver processes.
  # (`time -o`: the created container holds the driver's stdio, so no pipe may be read to EOF.)
  /usr/bin/time -o "$W/rss" -f %M $r --root "$root" create --bundle "$W/bundle" mem </dev/null >/dev/null 2>&1
  c=$(tail -1 "$W/rss")
  /usr/bin/time -o "$W/rss" -f %M $r --root "$root" start mem >/dev/null 2>&1
  s=$(tail -1 "$W/rss")
  $r --root "$root" delete -f mem >/dev/null 2>&1 || true
  echo "$r: peak RSS create ${c} KiB, start ${s} KiB (each exits; nothing stays in the driver)"
  # Leftovers: a `run` (create+start+wait in one driver process) SIGKILLed while its container
  # sleeps.
  mkdir -p "$W/b2"
  jq --arg root "$W/bundle/rootfs" '.process.args=["/bin/sleep","30"] | .root.path=$root | .linux.cgroupsPath="/oci-bench/k"' \
    "$W/bundle/config.json" > "$W/b2/config.json"
  $r --root "$root" run --bundle "$W/b2" kill-me </dev/null >/dev/null 2>"$W/run.err" &
  drv=$!
  n=0; until [ "$($r --root "$root" state kill-me 2>/dev/null | jq -r .status 2>/dev/null)" = running ]; do sleep 0.01; n=$((n+1)); [ $n -lt 500 ] || { echo "$r run failed: $(cat "$W/run.err")"; exit 1; }; done
  kill -9 $drv; wait $drv 2>/dev/null || true
  st=$($r --root "$root" state kill-me | jq -r .status)
  cg=$(cgdirs)
  echo "$r: driver SIGKILLed -> container $st, state dir $(ls "$root" | tr '\n' ' '), $cg cgroup dirs left"
  $r --root "$root" delete -f kill-me
  cg=$(cgdirs)
  echo "$r: after delete -f: state dir [$(ls "$root" | tr '\n' ' ')], $cg cgroup dirs left, mounts under bench dir: $(grep -c "$W" /proc/self/mountinfo || true)"
done
if [ -n "$YOUKI" ]; then
  here=$(cd "$(dirname "$0")" && pwd)
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/oci-youki-target}" cargo build --release \
    --manifest-path "$here/oci-youki/Cargo.toml" -q
  jq '.linux.cgroupsPath="/oci-bench/y"' "$W/bundle/config.json" > "$W/y.json" && cp "$W/y.json" "$W/bundle/config.json"
  "${CARGO_TARGET_DIR:-/var/tmp/oci-youki-target}/release/oci-youki-probe" "$W/bundle" "$W/state-youki" "$N"
fi
for d in /sys/fs/cgroup/*/oci-bench/* /sys/fs/cgroup/oci-bench/* /sys/fs/cgroup/*/oci-bench /sys/fs/cgroup/oci-bench; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done; true
