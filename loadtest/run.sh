#!/usr/bin/env bash
# Runs the API load test against a release relay, first with the memory store, then
# with the Redis store (a private redis-server on a loopback port), and stops
# everything it started. Usage: loadtest/run.sh [N] [C]   (defaults 100000 64)
# Extra api_load options can be passed in API_LOAD_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-100000}
C=${2:-64}
REDIS_PORT=${REDIS_PORT:-16399}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=$(mktemp -d)
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release -p maskline --bin maskline -p maskline-loadtest --bin api_load --bin store_bench
RELAY="$TARGET/release/maskline"
LOAD="$TARGET/release/api_load"
BENCH="$TARGET/release/store_bench"

# Starts the relay with the given env (after the function name); sets ADDR and
# waits for "listening on" on its stdout.
start_relay() {
  local out="$WORK/relay-$1.out"
  shift
  # The per-key rate limit (default 5000/s) would cap the benchmark: lift it.
  env "$@" MASKLINE_API_LISTEN=127.0.0.1:0 MASKLINE_LOG_LEVEL=warn \
    MASKLINE_API_RATE_PER_KEY_PER_S=1000000000 MASKLINE_API_RATE_BURST=1000000000 \
    "$RELAY" serve >"$out" 2>"$out.err" &
  RELAY_PID=$!
  PIDS+=("$RELAY_PID")
  for _ in $(seq 200); do
    ADDR=$(sed -n 's/^listening on //p' "$out" | head -1)
    [ -n "$ADDR" ] && break
    if ! kill -0 "$RELAY_PID" 2>/dev/null; then cat "$out.err" >&2; exit 1; fi
    sleep 0.05
  done
  [ -n "$ADDR" ] || { echo "relay did not start" >&2; cat "$out.err" >&2; exit 1; }
  RELAY_OUT=$out
}

stop_relay() {
  kill "$RELAY_PID" 2>/dev/null || true
  wait "$RELAY_PID" 2>/dev/null || true
}

echo "== memory store (N=$N, C=$C)"
start_relay memory MASKLINE_STORE_BACKEND=memory MASKLINE_STORE_DEMO_POOL=false
KEY=$(sed -n 's/^admin key: //p' "$RELAY_OUT" | head -1)
# shellcheck disable=SC2086
"$LOAD" --url "$ADDR" --key "$KEY" --n "$N" --c "$C" --watch "relay=$RELAY_PID" ${API_LOAD_ARGS:-}
stop_relay

echo "== redis store (N=$N, C=$C, redis-server on 127.0.0.1:$REDIS_PORT)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$WORK" --logfile "$WORK/redis.log" &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
KEY_OUT=$("$RELAY" key new --role admin --name loadtest)
KEY=$(echo "$KEY_OUT" | grep '^mk_')
KEYS_ENV=$(echo "$KEY_OUT" | sed -n 's/^MASKLINE_API_KEYS=//p')
start_relay redis \
  MASKLINE_STORE_BACKEND=redis \
  MASKLINE_STORE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/" \
  MASKLINE_SECRETS_HMAC_KEY="$(head -c 32 /dev/urandom | base64)" \
  MASKLINE_SECRETS_SEAL_KEYS="1:$(head -c 32 /dev/urandom | base64)" \
  MASKLINE_API_KEYS="$KEYS_ENV"
# shellcheck disable=SC2086
"$LOAD" --url "$ADDR" --key "$KEY" --n "$N" --c "$C" \
  --watch "relay=$RELAY_PID" --watch "redis=$REDIS_PID" ${API_LOAD_ARGS:-} | tee "$WORK/api-redis.out"
echo "redis: $(redis-cli -p "$REDIS_PORT" info commandstats | grep '^cmdstat_evalsha' | tr -d '\r')"
echo "redis: $(redis-cli -p "$REDIS_PORT" info memory | grep '^used_memory_human' | tr -d '\r'), $(redis-cli -p "$REDIS_PORT" dbsize) keys"
stop_relay

# The ceiling in the same run, on the same Redis: the allocation script driven
# directly (EVALSHA, pipelined), no HTTP and no relay.
echo "== raw allocation ceiling on the same redis-server (N=$N)"
"$BENCH" --url "redis://127.0.0.1:$REDIS_PORT/" --n "$N" --routes "$N" --creates 0 | tee "$WORK/raw.out"
api=$(sed -n 's/^create: .* = \([0-9]*\)\/s;.*/\1/p' "$WORK/api-redis.out" | head -1)
raw=$(sed -n 's/^raw allocation .* = \([0-9]*\) bindings\/s.*/\1/p' "$WORK/raw.out" | head -1)
if [ -n "$api" ] && [ -n "$raw" ]; then
  echo "== ratio: API create with Redis $api/s vs raw script $raw/s = $(( 100 * api / raw ))% of the ceiling"
fi
