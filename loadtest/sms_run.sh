#!/usr/bin/env bash
# SMS relay through SMPP, end to end: a private redis-server, a release relay with
# one SMPP link (2 binds) to sms_bench acting as the SMS centre, then:
#   1. throughput: N texts as fast as the window allows;
#   2. latency: N texts paced at RATE/s (p99 ack -> submit_sm);
#   3. the generator alone (in-process ideal ESME, no relay), same N, for the ratio.
# Usage: loadtest/sms_run.sh [N] [RATE]   (defaults 50000 1000)
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-50000}
RATE=${2:-1000}
REDIS_PORT=${REDIS_PORT:-16398}
SMPP_PORT=${SMPP_PORT:-27750}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release -p maskline --bin maskline -p maskline-loadtest --bin sms_bench
RELAY="$TARGET/release/maskline"
BENCH="$TARGET/release/sms_bench"

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$WORK" >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

KEY=$("$RELAY" key new --role admin --name bench | sed -n 3p)
HASH=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
cat >"$WORK/maskline.toml" <<EOF
[api]
listen = "127.0.0.1:0"
rate_per_key_per_s = 1000000000
rate_burst = 1000000000
[[api.keys]]
name = "bench"
role = "admin"
hash = "sha256:$HASH"
[store]
backend = "redis"
redis_url = "redis://127.0.0.1:$REDIS_PORT/"
demo_pool = false
[secrets]
hmac_key = "$(head -c 32 /dev/urandom | base64)"
seal_keys = ["1:$(head -c 32 /dev/urandom | base64)"]
[log]
level = "warn"
[sip]
enabled = false
[sms]
enabled = true
rate_per_sender_per_hour = 100000000
[[sms.smpp]]
name = "bench"
address = "127.0.0.1:$SMPP_PORT"
system_id = "maskline"
binds = 2
window = 256
submit_rate = 100000
EOF

run() { # $1 = label, rest = sms_bench args
  local label=$1; shift
  "$RELAY" serve --config "$WORK/maskline.toml" >"$WORK/relay.out" 2>"$WORK/relay.err" &
  local pid=$!
  PIDS+=("$pid")
  local addr=""
  for _ in $(seq 200); do
    addr=$(sed -n 's/^listening on //p' "$WORK/relay.out" | head -1)
    [ -n "$addr" ] && break
    sleep 0.05
  done
  echo "== $label"
  "$BENCH" --listen "127.0.0.1:$SMPP_PORT" --url "$addr" --key "$KEY" "$@" || { tail -20 "$WORK/relay.err" >&2; exit 1; }
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

run "throughput (N=$N, as fast as the window allows)" --n "$N"
run "latency at $RATE/s (N=$N)" --n "$N" --rate "$RATE"
echo "== generator alone (N=$N)"
"$BENCH" --listen "127.0.0.1:$SMPP_PORT" --alone --n "$N"
