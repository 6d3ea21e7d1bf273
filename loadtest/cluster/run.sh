#!/usr/bin/env bash
# maskline on a Redis Cluster, on loopback: starts a 3-master/3-replica cluster
# (appendonly yes, appendfsync everysec) and two relay instances on it
# (store.backend = "redis-cluster", store.subpools = 3), runs the allocation and
# route-view load (api_load) against both relays at once, then the store-level
# allocation/route benchmark (cluster_bench) on 3 masters and, for the ratio, on a
# 1-master cluster. Stops everything it started (by PID) and removes its files.
#
# Usage: loadtest/cluster/run.sh [N] [C]   (defaults 50000 64; N bindings per relay)
# Ports: a random free base in 21000-21899 (+10000 for the cluster bus); set BASE to
# choose. Needs redis-server and redis-cli (Debian: redis-server, redis-tools).
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${1:-50000}
C=${2:-64}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=$(mktemp -d)
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free() { ! (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -z "${BASE:-}" ]; then
  for _ in $(seq 50); do
    BASE=$((21000 + RANDOM % 900))
    ok=1
    for i in 0 1 2 3 4 5 6 7; do
      free $((BASE + i)) && free $((BASE + i + 10000)) || ok=0
    done
    [ $ok = 1 ] && break
  done
fi

cargo build --release -p maskline --bin maskline \
  -p maskline-loadtest --bin api_load --bin cluster_bench
RELAY="$TARGET/release/maskline"
LOAD="$TARGET/release/api_load"
BENCH="$TARGET/release/cluster_bench"

# Starts redis-server cluster nodes on the given ports.
start_nodes() {
  for p in "$@"; do
    mkdir -p "$WORK/$p"
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
      --appendonly yes --appendfsync everysec --save '' \
      --dir "$WORK/$p" --logfile "$WORK/$p/redis.log" &
    PIDS+=("$!")
  done
  for p in "$@"; do
    for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
  done
}

wait_ok() {
  for _ in $(seq 200); do
    ok=1
    for p in "$@"; do
      redis-cli -p "$p" cluster info | grep -q 'cluster_state:ok' || ok=0
    done
    [ $ok = 1 ] && return 0
    sleep 0.1
  done
  echo "cluster did not become ready" >&2
  exit 1
}

nodes_csv() { local out=""; for p in "$@"; do out="$out${out:+,}redis://127.0.0.1:$p"; done; echo "$out"; }

echo "== load on the box before the run: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"

# ---- 3 masters + 3 replicas
P3=($BASE $((BASE + 1)) $((BASE + 2)) $((BASE + 3)) $((BASE + 4)) $((BASE + 5)))
start_nodes "${P3[@]}"
redis-cli --cluster create $(for p in "${P3[@]}"; do echo "127.0.0.1:$p"; done) \
  --cluster-replicas 1 --cluster-yes >/dev/null
wait_ok "${P3[@]}"
NODES=$(nodes_csv "${P3[@]}")
echo "== cluster: 3 masters + 3 replicas on 127.0.0.1:${P3[0]}-${P3[5]}"

KEY_OUT=$("$RELAY" key new --role admin --name loadtest)
KEY=$(echo "$KEY_OUT" | grep '^mk_')
KEYS_ENV=$(echo "$KEY_OUT" | sed -n 's/^MASKLINE_API_KEYS=//p')
HMAC="$(head -c 32 /dev/urandom | base64)"
SEAL="1:$(head -c 32 /dev/urandom | base64)"

# Starts one relay on the cluster; sets ADDR and RELAY_PID.
start_relay() {
  local out="$WORK/relay-$1.out"
  env MASKLINE_API_LISTEN=127.0.0.1:0 MASKLINE_LOG_LEVEL=warn MASKLINE_SIP_ENABLED=false \
    MASKLINE_API_RATE_PER_KEY_PER_S=1000000000 MASKLINE_API_RATE_BURST=1000000000 \
    MASKLINE_STORE_BACKEND=redis-cluster MASKLINE_STORE_CLUSTER_NODES="$NODES" \
    MASKLINE_STORE_SUBPOOLS=3 MASKLINE_SECRETS_HMAC_KEY="$HMAC" \
    MASKLINE_SECRETS_SEAL_KEYS="$SEAL" MASKLINE_API_KEYS="$KEYS_ENV" \
    "$RELAY" serve >"$out" 2>"$out.err" &
  RELAY_PID=$!
  PIDS+=("$RELAY_PID")
  ADDR=""
  for _ in $(seq 200); do
    ADDR=$(sed -n 's/^listening on //p' "$out" | head -1)
    [ -n "$ADDR" ] && break
    if ! kill -0 "$RELAY_PID" 2>/dev/null; then cat "$out.err" >&2; exit 1; fi
    sleep 0.05
  done
  [ -n "$ADDR" ] || { echo "relay did not start" >&2; cat "$out.err" >&2; exit 1; }
}
start_relay 1; ADDR1=$ADDR; PID1=$RELAY_PID
start_relay 2; ADDR2=$ADDR; PID2=$RELAY_PID

echo "== API load: two relays at once (N=$N each, C=$C each), pool of 3 sub-pools"
"$LOAD" --url "$ADDR1" --key "$KEY" --pool lt-cluster --n "$N" --c "$C" --routes "$N" \
  --watch "relay1=$PID1" >"$WORK/load1.out" 2>&1 &
L1=$!
# The second starts once the first created the pool (it reuses it).
sleep 2
"$LOAD" --url "$ADDR2" --key "$KEY" --pool lt-cluster --n "$N" --c "$C" --routes "$N" \
  --watch "relay2=$PID2" >"$WORK/load2.out" 2>&1 &
L2=$!
wait $L1 $L2
sed 's/^/relay 1: /' "$WORK/load1.out"
sed 's/^/relay 2: /' "$WORK/load2.out"
kill "$PID1" "$PID2" 2>/dev/null || true

echo "== store benchmark, 3 masters, one pool of 3 sub-pools (N=$N)"
"$BENCH" --nodes "$NODES" --subpools 3 --n "$N" --raw "$N" --routes "$N" | tee "$WORK/bench3.out"

echo "== store benchmark, 3 masters, replica_ack = 1 (each create waits for a replica; N=$N)"
"$BENCH" --nodes "$NODES" --subpools 3 --n "$N" --routes 0 --replica-ack 1 | tee "$WORK/bench3ack.out"
a0=$(sed -n 's/^allocation: .* = \([0-9]*\)\/s;.*/\1/p' "$WORK/bench3.out")
a1=$(sed -n 's/^allocation: .* = \([0-9]*\)\/s;.*/\1/p' "$WORK/bench3ack.out")
if [ -n "$a0" ] && [ -n "$a1" ]; then
  echo "== replica_ack = 1: $a1/s vs $a0/s without = $(awk "BEGIN{printf \"%.2f\", $a1/$a0}")x"
fi

# ---- 1 master (all slots) + 1 replica
P1=($((BASE + 6)) $((BASE + 7)))
start_nodes "${P1[@]}"
redis-cli -p "${P1[0]}" cluster addslotsrange 0 16383 >/dev/null
redis-cli -p "${P1[1]}" cluster meet 127.0.0.1 "${P1[0]}" >/dev/null
for _ in $(seq 100); do
  id=$(redis-cli -p "${P1[0]}" cluster myid)
  redis-cli -p "${P1[1]}" cluster replicate "$id" 2>/dev/null | grep -q OK && break
  sleep 0.1
done
wait_ok "${P1[@]}"
for _ in $(seq 100); do
  redis-cli -p "${P1[1]}" info replication | grep -q 'master_link_status:up' && break
  sleep 0.1
done
echo "== 1 master: $(redis-cli -p "${P1[0]}" info replication | grep -E '^connected_slaves' | tr -d '\r')"
echo "== store benchmark, 1 master, one pool of 3 sub-pools (N=$N)"
"$BENCH" --nodes "$(nodes_csv "${P1[@]}")" --subpools 3 --n "$N" --raw "$N" --routes "$N" | tee "$WORK/bench1.out"

for phase in "raw allocation" allocation; do
  r3=$(sed -n "s/^$phase: .* = \([0-9]*\)\/s;.*/\1/p" "$WORK/bench3.out")
  r1=$(sed -n "s/^$phase: .* = \([0-9]*\)\/s;.*/\1/p" "$WORK/bench1.out")
  if [ -n "$r1" ] && [ -n "$r3" ]; then
    echo "== $phase: 3 masters $r3/s vs 1 master $r1/s = $(awk "BEGIN{printf \"%.2f\", $r3/$r1}")x"
  fi
done
echo "== load on the box after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
