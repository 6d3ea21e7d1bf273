#!/usr/bin/env bash
# Media relay benchmark: maskline's MediaRelay (media_relay_ng, its own process)
# and rtpengine (userspace forwarding, table = -1) driven by the same load
# generator (media_load) over rtpengine's ng protocol, in one run, alternating
# at each call count. Stops everything it started.
#
# Usage: loadtest/media.sh [CALLS ...]          (default: 1000 1600 2000 2400)
# Env:   MEDIA_SECONDS   measured window per run, s (default 20)
#        MEDIA_WORKERS   maskline forwarding threads (default 1)
#        MEDIA_THREADS   generator threads (default 1)
#        MEDIA_COALESCE_US  maskline's [media] coalesce_us (default: the relay's, 1000)
# Needs: rtpengine-daemon (Debian package), Linux.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${MEDIA_SECONDS:-20}
WORKERS=${MEDIA_WORKERS:-1}
THREADS=${MEDIA_THREADS:-1}
if [ $# -gt 0 ]; then CALLS=("$@"); else CALLS=(1000 1600 2000 2400); fi
TARGET=${CARGO_TARGET_DIR:-target}
WORK=$(mktemp -d)
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v rtpengine >/dev/null || {
  echo "rtpengine not found: apt-get install rtpengine-daemon" >&2
  exit 1
}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

cargo build --release -p maskline-loadtest --bin media_load --bin media_relay_ng
LOAD="$TARGET/release/media_load"

rtpengine --config-file=loadtest/peers/rtpengine/rtpengine.conf >"$WORK/rtpengine.log" 2>&1 &
RTPE=$!
PIDS+=("$RTPE")
"$TARGET/release/media_relay_ng" --listen 127.0.0.1:22223 --ports 40000-51999 \
  --workers "$WORKERS" ${MEDIA_COALESCE_US:+--coalesce-us "$MEDIA_COALESCE_US"} >"$WORK/maskline.log" 2>&1 &
MASK=$!
PIDS+=("$MASK")
sleep 1
for p in "$RTPE" "$MASK"; do
  kill -0 "$p" 2>/dev/null || { cat "$WORK"/*.log >&2; exit 1; }
done

echo "== $(date -u '+%F %T') UTC, load average $(cut -d' ' -f1-3 /proc/loadavg), ${SECS} s per run"
# One run; a failed run is reported and the sweep goes on.
run() {
  local name=$1 ng=$2 pid=$3 n=$4
  if ! "$LOAD" --ng "$ng" --name "$name" --pid "$pid" --calls "$n" \
    --seconds "$SECS" --threads "$THREADS" 2>"$WORK/load.err"; then
    echo "$name: calls $n FAILED: $(tail -3 "$WORK/load.err" | tr '\n' ' ')"
  fi
  kill -0 "$pid" 2>/dev/null || { echo "$name died" >&2; tail -20 "$WORK"/*.log >&2; exit 1; }
}
for n in "${CALLS[@]}"; do
  run "maskline  " 127.0.0.1:22223 "$MASK" "$n"
  run "rtpengine " 127.0.0.1:22222 "$RTPE" "$n"
done
echo "== done $(date -u '+%T') UTC, load average $(cut -d' ' -f1-3 /proc/loadavg)"
