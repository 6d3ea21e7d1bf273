#!/usr/bin/env bash
# Call-setup load: maskline's voice relay beside Kamailio 5.6 (stateful proxy,
# dialog, topoh, uac From rewrite, one ndb_redis lookup per call), both driven by
# the same SIPp scenarios (tests/sipp/uac.xml -> relay -> tests/sipp/uas.xml,
# 1 s calls) with one Redis on the same box, in the same run.
#
#   loadtest/voice.sh [RATES] [SECONDS]      e.g. loadtest/voice.sh "500 1000 2000 3000" 20
#
# For each rate and each relay it prints: calls attempted, failed, failed %, the
# relay's CPU (user+sys from /proc) in ms per call, and for maskline the added
# post-dial delay (INVITE in -> B-leg INVITE out) p50/p99 from its own histogram,
# and the SIP messages per call one engine thread read and another handled.
# It also prints SIPp's own CPU (caller and callee together) in ms per call: the
# load generator shares the two cores, so its share bounds what any relay can
# be shown to sustain here.
# Env: PIN=1 pins the relay to CPU 0 and SIPp and Redis to CPU 1;
# BUDGET=F gives each relay the same CPU budget, F of one core (cgroup v1 `cpu`
# quota, 10 ms period; e.g. BUDGET=0.25): the relay, not the load generator that
# shares the box, is then what runs out first, so the highest rate each relay
# passes is its sustainable rate at equal CPU (needs a writable
# /sys/fs/cgroup/cpu; combine with PIN=1 to keep SIPp and Redis off its core);
# HOLD_MS, each call's length (default 1000); ROUNDS, how many turns each
# relay takes at each rate (default 1; the ratio line sums them); RELAYS, which relays run
# (default "maskline kamailio"; "direct" runs the caller straight to the callee,
# SIPp alone);
# MASKLINE_SIP_ENGINES, MASKLINE_SIP_ENGINE_PORT_BASE pass through to maskline;
# MASKLINE_BIN, a maskline binary to run instead of building this checkout;
# KAM_SHM_MB is Kamailio's shared memory (default 2048: 512 ran out at 3,000
# calls/s sustained).
# Needs: sipp (sip-tester), kamailio + kamailio-redis-modules, redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=${1:-"500 1000 2000"}
SECS=${2:-20}
ulimit -n 65536 2>/dev/null || true

for b in sipp kamailio redis-server curl python3; do
  command -v "$b" >/dev/null || { echo "missing $b (apt-get install sip-tester kamailio kamailio-redis-modules redis-server curl)"; exit 1; }
done
# MASKLINE_BIN runs another build (an A/B against an older commit) instead.
if [ -z "${MASKLINE_BIN:-}" ]; then cargo build --release -q --bin maskline; fi
BIN=${MASKLINE_BIN:-target/release/maskline}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  # maskline drains live calls on SIGTERM (up to sip.drain_timeout_s); calls
  # SIPp left half-open would keep it, and its ports, past this script.
  for _ in $(seq 30); do kill -0 "${MLPID:-0}" 2>/dev/null || break; sleep 0.1; done
  kill -9 "${MLPID:-0}" 2>/dev/null || true
  pkill -f "$WORK" 2>/dev/null || true
  # A group can only go once its last process has exited (Kamailio's children
  # take a moment after SIGKILL): retry for a few seconds.
  if [ -n "${BUDGET:-}" ]; then
    for _ in $(seq 30); do rmdir "$CG"/maskline-bench-* 2>/dev/null; ls -d "$CG"/maskline-bench-* >/dev/null 2>&1 || break; sleep 0.2; done
  fi
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT

RPORT=$((20000 + RANDOM % 5000))
# PIN=1: the relay runs on CPU 0, SIPp and Redis on CPU 1 (either relay alike),
# so that neither shares a core with its load generator and the scheduler's
# placement does not move the figures from one turn to the next.
if [ -n "${PIN:-}" ]; then RELAY_CPU=(taskset -c 0); LOAD_CPU=(taskset -c 1); else RELAY_CPU=(); LOAD_CPU=(); fi
# BUDGET: one cpu cgroup per relay with the same quota; `in_budget NAME cmd...`
# runs cmd (and everything it forks) in NAME's group; call it in the background
# (`in_budget ... &`): it execs, so $! is the relay's own pid.
CG=/sys/fs/cgroup/cpu
in_budget() { local name=$1; shift; if [ -n "${BUDGET:-}" ]; then exec sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG/maskline-bench-$name" "$@"; else exec "$@"; fi; }
if [ -n "${BUDGET:-}" ]; then
  [ -w "$CG" ] || { echo "BUDGET needs a writable $CG (cgroup v1 cpu controller)"; exit 1; }
  for r in maskline kamailio; do
    mkdir -p "$CG/maskline-bench-$r"
    echo 10000 > "$CG/maskline-bench-$r/cpu.cfs_period_us"
    awk -v b="$BUDGET" 'BEGIN{printf "%d\n", b * 10000}' > "$CG/maskline-bench-$r/cpu.cfs_quota_us"
  done
  echo "each relay's CPU budget: $BUDGET of one core (cpu.cfs_quota_us $(cat $CG/maskline-bench-maskline/cpu.cfs_quota_us) per 10 ms)"
fi
"${LOAD_CPU[@]}" redis-server --port $RPORT --bind 127.0.0.1 --save '' --appendonly no --daemonize no >/dev/null &
PIDS+=($!)
sleep 0.5

X=+8617100000001; A=+8613800138000; B=+8613900139000
GW=5080; ML=5062; KM=5060  # Kamailio on 5060: topoh masks Contact to mask_ip without a port

# maskline on Redis, per-caller limit out of the way (one caller places every call).
KEY=$($BIN key new --role admin --name bench | sed -n 3p)
HASH=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
cat > "$WORK/maskline.toml" <<TOML
[api]
listen = "127.0.0.1:18080"
rate_per_key_per_s = 100000
[[api.keys]]
name = "bench"
role = "admin"
hash = "sha256:$HASH"
[store]
backend = "redis"
redis_url = "redis://127.0.0.1:$RPORT/"
demo_pool = false
[secrets]
hmac_key = "$(head -c 32 /dev/urandom | base64)"
seal_keys = ["1:$(head -c 32 /dev/urandom | base64)"]
[log]
level = "warn"
[sip]
listen = ["udp:127.0.0.1:$ML"]
calls_per_caller_per_min = 100000000
[[sip.trunks]]
name = "bench"
sources = ["127.0.0.0/8"]
gateway = "127.0.0.1:$GW"
cps = 100000
TOML
in_budget maskline "${RELAY_CPU[@]}" $BIN serve --config "$WORK/maskline.toml" > "$WORK/maskline.out" 2> "$WORK/maskline.err" &
MLPID=$!; PIDS+=($MLPID)
for _ in $(seq 100); do grep -q "^listening on" "$WORK/maskline.out" 2>/dev/null && break; sleep 0.1; done
API=http://127.0.0.1:18080
auth=(-H "Authorization: Bearer $KEY" -H 'Content-Type: application/json')
curl -sf "${auth[@]}" -d '{"name":"bench","country":86}' $API/v1/pools >/dev/null
curl -sf "${auth[@]}" -d "{\"numbers\":[{\"number\":\"$X\",\"area\":\"sh\"}]}" $API/v1/pools/bench/numbers >/dev/null
curl -sf "${auth[@]}" -d "{\"pool\":\"bench\",\"shipment_id\":\"S1\",\"party_a\":\"$A\",\"party_b\":\"$B\",\"ttl_s\":86400}" $API/v1/bindings >/dev/null

# Kamailio on the same Redis with the same mapping (plain key, its own format).
redis-cli -p $RPORT SET "route:$X:$A" "$B" >/dev/null
sed -e "s/LISTEN_PORT/$KM/; s/REDIS_PORT/$RPORT/; s/GATEWAY_PORT/$GW/" loadtest/peers/kamailio/kamailio.cfg > "$WORK/kamailio.cfg"
# Kamailio starts afresh for each of its turns: its dialog module does not see
# the ACK of every call through topoh, and those dialogs time out together a
# minute later (noack_timeout); in a long-lived process that burst fell on a
# later turn (of either relay) and, with ROUNDS, broke Kamailio's own third turn.
start_kamailio() {
  if [ -n "${KMPID:-}" ]; then
    kill "$KMPID" 2>/dev/null || true
    for _ in $(seq 50); do [ -z "$(kam_pids)" ] && break; sleep 0.1; done
    pkill -9 -f "$WORK/kamailio.cfg" 2>/dev/null || true
  fi
  in_budget kamailio "${RELAY_CPU[@]}" kamailio -f "$WORK/kamailio.cfg" -DD -E -x tlsf -m "${KAM_SHM_MB:-2048}" -M 32 -P "$WORK/kamailio.pid" >> "$WORK/kamailio.log" 2>&1 &
  KMPID=$!; PIDS+=($KMPID)
  for _ in $(seq 50); do listening $KM && break; sleep 0.1; done
  sleep 0.5
}

sed -e "s/@CALLER@/$A/g; s/@CALLED@/$X/g; s/@HOLD_MS@/${HOLD_MS:-1000}/g" tests/sipp/uac.xml > "$WORK/uac.xml"
cp loadtest/sipp/uas_answer.xml "$WORK/uas.xml"

cpu_ms() { # user+sys ms of a process and its threads/children
  local total=0
  for p in "$@"; do
    if [ -r /proc/$p/stat ]; then
      total=$((total + $(awk '{print $14+$15}' /proc/$p/stat)))
    fi
  done
  echo $((total * 1000 / $(getconf CLK_TCK)))
}
# Whether a UDP socket is bound to this port (ss filters: maskline's thousands of
# media sockets would make `ss | grep -q` die of SIGPIPE under pipefail).
listening() { [ -n "$(ss -Hlun "sport = :$1" 2>/dev/null)" ]; }
kam_pids() { pgrep -f "$WORK/kamailio.cfg" | tr '\n' ' '; }
pdd() { curl -s $API/metrics | grep '^maskline_call_setup_seconds_bucket' || true; }
handoffs() { curl -s $API/metrics | awk '/^maskline_sip_shard_handoffs_total/ {print $2}' | head -1; }

printf "%-9s %6s %8s %7s %8s %10s %10s %s\n" relay cps calls failed "fail%" "cpu_ms/call" "sipp_ms" "pdd(ms) p50/p99"
for rate in $RATES; do
  declare -A sum_calls=() sum_cpu=()
  for round in $(seq "${ROUNDS:-1}"); do
  for relay in ${RELAYS:-maskline kamailio}; do
    case $relay in maskline) port=$ML ;; kamailio) port=$KM ;; *) port=$GW ;; esac
    n=$((rate * SECS))
    # The previous callee may still hold its port for a moment after it left
    # the process list; start this one only once the port is free, and only go
    # on once it listens (a missing callee fails every call of the run).
    for _ in $(seq 100); do listening $GW || break; sleep 0.1; done
    "${LOAD_CPU[@]}" sipp -sf "$WORK/uas.xml" -i 127.0.0.1 -p $GW -nostdin -bg -trace_err -error_file "$WORK/uas.err" >> "$WORK/uas.out" 2>&1 || true
    for _ in $(seq 50); do listening $GW && break; sleep 0.1; done
    listening $GW || { echo "the callee's SIPp does not listen on port $GW"; exit 1; }
    if [ $relay = kamailio ]; then start_kamailio; fi
    case $relay in
      maskline) pids=$MLPID; before_pdd=$(pdd); h0=$(handoffs) ;;
      kamailio) pids=$(kam_pids) ;;
      *) pids="" ;;
    esac
    uas=$(pgrep -f "$WORK/uas.xml" | tr '\n' ' ')
    c0=$(cpu_ms $pids); s0=$(cpu_ms $uas)
    if [ "${PERF:-}" = stat ]; then
      # System calls and context switches per call, by kind (either relay).
      perf stat -x, -o "$WORK/stat_${relay}_${rate}.txt" -e task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_sendto,syscalls:sys_enter_sendmmsg,syscalls:sys_enter_recvfrom,syscalls:sys_enter_recvmmsg,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_clock_nanosleep,syscalls:sys_enter_writev,syscalls:sys_enter_write,syscalls:sys_enter_read,syscalls:sys_enter_futex \
        -p "$(echo $pids | tr ' ' ',')" -- sleep $SECS >/dev/null 2>&1 &
      PERFPID=$!
    elif [ -n "${PERF:-}" ] && [ $relay = maskline ]; then
      perf record -F 499 -g -o "$WORK/perf.data" -p $MLPID -- sleep $SECS >/dev/null 2>&1 &
      PERFPID=$!
    fi
    # `time` gives the caller's CPU (user and system seconds) once it exits.
    { TIMEFORMAT='%3U %3S'; time (cd "$WORK" && timeout $((SECS * 3 + 60)) "${LOAD_CPU[@]}" sipp 127.0.0.1:$port -sf uac.xml -i 127.0.0.1 -p 5070 \
      -r $rate -m $n -l $((rate * 4)) -nostdin -trace_err -error_file uac_${relay}_${rate}.err -trace_stat -stf uac_${relay}_${rate}.csv -fd 1 \
      -timeout $((SECS * 3 + 30))s > uac.out 2>&1 || true); } 2> "$WORK/uac.time"
    c1=$(cpu_ms $pids); s1=$(cpu_ms $uas)
    sipp_cpu=$(( s1 - s0 + $(awk '{printf "%d", ($1 + $2) * 1000}' "$WORK/uac.time") ))
    if [ "${PERF:-}" = stat ]; then
      wait $PERFPID || true
      awk -F, -v n=$((rate * SECS)) -v r=$relay '$3 != "" && $1 ~ /^[0-9.]+$/ {printf "  %s %-34s %8.2f per call\n", r, $3, $1 / n}' "$WORK/stat_${relay}_${rate}.txt"
    elif [ -n "${PERF:-}" ] && [ $relay = maskline ]; then
      wait $PERFPID || true
      perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio -g none \
        > /tmp/maskline-voice-perf.txt 2>&1 || true
      perf report -i "$WORK/perf.data" --no-children --sort comm --stdio -g none \
        > /tmp/maskline-voice-perf-threads.txt 2>&1 || true
      perf report -i "$WORK/perf.data" --children --comm sip-engine --sort symbol --stdio -g none \
        > /tmp/maskline-voice-perf-engine.txt 2>&1 || true
    fi
    # The next run's callee binds the same port: kill this one outright (on
    # SIGTERM SIPp waits for the calls it still holds, and after a long run that
    # outlasted the pause, so the next relay's run found no callee).
    pkill -9 -f "$WORK/uas.xml" || true
    sleep 1
    stats=$(ls -t "$WORK"/uac_*.csv 2>/dev/null | head -1)
    read -r ok fail < <(python3 - "$stats" <<'PY'
import csv,sys
rows=list(csv.reader(open(sys.argv[1]),delimiter=';'))
h=rows[0]; last=rows[-1]
print(last[h.index('SuccessfulCall(C)')], last[h.index('FailedCall(C)')])
PY
)
    total=$((ok + fail))
    extra=""
    if [ $relay = maskline ]; then
      extra=$(python3 - "$before_pdd" "$(pdd)" <<'PY'
import sys,re
def parse(t):
    d={}
    for l in t.splitlines():
        m=re.search(r'le="([^"]+)"\} (\d+)',l)
        if m: d[m.group(1)]=int(m.group(2))
    return d
a,b=parse(sys.argv[1]),parse(sys.argv[2])
keys=sorted((k for k in b if k!='+Inf'), key=float)+['+Inf']
n=b.get('+Inf',0)-a.get('+Inf',0)
def q(p):
    for k in keys:
        if b.get(k,0)-a.get(k,0) >= p*n: return '<=%gms'%(float(k)*1000) if k!='+Inf' else '>10s'
    return '-'
print(f"{q(0.5)} / {q(0.99)}" if n else "-")
PY
)
      h1=$(handoffs)
      extra="$extra; hand-offs/call $(awk -v a="${h0:-0}" -v b="${h1:-0}" -v t=$total 'BEGIN{printf "%.2f", t ? (b-a)/t : 0}')"
    fi
    awk -v r=$relay -v c=$rate -v t=$total -v f=$fail -v cpu=$((c1 - c0)) -v sc=$sipp_cpu -v e="$extra" \
      'BEGIN{printf "%-9s %6d %8d %7d %7.2f%% %10.3f %10.3f %s\n", r, c, t, f, (t?100*f/t:0), (t?cpu/t:0), (t?sc/t:0), e}'
    sum_calls[$relay]=$(( ${sum_calls[$relay]:-0} + total ))
    sum_cpu[$relay]=$(( ${sum_cpu[$relay]:-0} + c1 - c0 ))
  done
  done
  # The relays take turns ROUNDS times at each rate, so that a slow spell of
  # this shared machine (SIPp's own cost moves by a third between runs) falls
  # on both: the ratio is over the summed calls and CPU of every turn.
  if [ -n "${sum_calls[maskline]:-}" ] && [ -n "${sum_calls[kamailio]:-}" ]; then
    awk -v c=$rate -v n="${ROUNDS:-1}" -v mt="${sum_calls[maskline]}" -v mc="${sum_cpu[maskline]}" \
        -v kt="${sum_calls[kamailio]}" -v kc="${sum_cpu[kamailio]}" \
      'BEGIN{m=(mt?mc/mt:0); k=(kt?kc/kt:0); printf "ratio     %6d over %d turn(s): maskline %.3f / kamailio %.3f ms per call = %.2fx\n", c, n, m, k, (k?m/k:0)}'
  fi
done
