#!/usr/bin/env bash
# load-cluster.sh — many connections on one box: K herald nodes sharing one
# NATS server (each node a process under the open-file cap), one loadgen
# process per node binding its own loopback source address, then ONE
# broadcast published on node 1 that must reach every connection.
#
# Reports: connections held, connect rate, broadcast completion (publish to
# the last connection's receipt), memory (herald RSS, loadgen RSS, NATS RSS,
# kernel slab from /proc/meminfo, each also per connection) and which limit
# stopped the run. Everything it starts is stopped by PID at the end.
#
#   scripts/load-cluster.sh                       # aims at 1,000,000
#   CONNS=300000 scripts/load-cluster.sh          # smaller
#   PER_NODE=19000 RATE=8000 HOLD=60 OUT=dir scripts/load-cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-1000000}         # connections wanted in total
PER_NODE=${PER_NODE:-19000}     # per herald node (and per loadgen): under the 20000 open files of a process
RATE=${RATE:-10000}             # connection attempts per second, all loadgens together
HOLD=${HOLD:-180}               # seconds each loadgen holds after ITS ramp: must exceed the spread
                                # between the first and the last loadgen's ramp (~90 s at 1M here),
                                # or early loadgens close before the broadcast
RAMP_MAX=${RAMP_MAX:-600}       # give up waiting for the ramp after this many seconds
MIN_AVAIL_MB=${MIN_AVAIL_MB:-1500} # stop adding load below this much MemAvailable
NODES=${NODES:-$(( (CONNS + PER_NODE - 1) / PER_NODE ))}
OUT=${OUT:-$(mktemp -d -t herald-load-cluster.XXXXXX)}
BIN=${BIN:-bin}
mkdir -p "$OUT" "$BIN"
BIN=$(cd "$BIN" && pwd)
OUT=$(cd "$OUT" && pwd)

log() { printf '%s %s\n' "$(date +%T)" "$*" | tee -a "$OUT/run.log" >&2; }

# Binaries (the same ones `make build` makes) and the NATS helper.
go build -o "$BIN/herald" ./cmd/herald
go build -o "$BIN/loadgen" ./cmd/loadgen
(cd test && go build -o "$BIN/natsd" ./cmd/natsd) # the test module: nats-server stays out of the root one

# Kernel settings that matter for many loopback sockets (root only); the
# previous values are put back when the run ends.
SAVED_SYSCTL=()
if [ "$(id -u)" = 0 ]; then
  for k in net.ipv4.ip_local_port_range net.core.somaxconn net.ipv4.tcp_max_syn_backlog; do
    SAVED_SYSCTL+=("$k=$(sysctl -n "$k" | tr '\t' ' ')")
  done
  sysctl -qw net.ipv4.ip_local_port_range="1024 65000" || true
  sysctl -qw net.core.somaxconn=65535 || true
  sysctl -qw net.ipv4.tcp_max_syn_backlog=65535 || true
fi

PIDS=()
cleanup() {
  for kv in "${SAVED_SYSCTL[@]}"; do sysctl -qw "$kv" || true; done
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 2
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

meminfo() { awk -v k="$1:" '$1==k {print $2}' /proc/meminfo; }  # kB
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

SLAB0=$(meminfo Slab); AVAIL0=$(meminfo MemAvailable)
log "target $CONNS connections: $NODES nodes x $PER_NODE, $RATE connects/s; results in $OUT"

NATS_PORT=$(free_port)
"$BIN/natsd" -port "$NATS_PORT" -store "$OUT/nats-store" >"$OUT/natsd.log" 2>&1 &
NATS_PID=$!; PIDS+=("$NATS_PID")
for _ in $(seq 100); do grep -q READY "$OUT/natsd.log" && break; sleep 0.1; done
NATS_URL="nats://127.0.0.1:$NATS_PORT"

declare -a WS API HPID
for i in $(seq 1 "$NODES"); do
  WS[$i]=$(free_port); API[$i]=$(free_port)
  "$BIN/herald" serve --listen "127.0.0.1:${WS[$i]}" --api-listen "127.0.0.1:${API[$i]}" \
    --allow-anonymous --demo=false --pprof=false --ping-interval 0 --log-level warn \
    --max-handshakes-per-ip -1 --max-handshakes -1 \
    --broker "$NATS_URL" >"$OUT/herald-$i.log" 2>&1 &
  HPID[$i]=$!; PIDS+=("${HPID[$i]}")
done
for i in $(seq 1 "$NODES"); do
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:${API[$i]}/readyz" >/dev/null && break; sleep 0.1; done
done
log "nats and $NODES herald nodes ready"

# One loadgen per node, each from its own source address 127.0.<i>.1, at an
# equal share of the connect rate; the whole run's clock starts here.
NODE_RATE=$(python3 -c "print(max(1.0, $RATE / $NODES))")
START=$(date +%s.%N)
declare -a LPID
for i in $(seq 1 "$NODES"); do
  src="127.$(( i / 250 )).$(( i % 250 + 1 )).1"
  "$BIN/loadgen" -url "ws://127.0.0.1:${WS[$i]}/ws?channel=bench" -scenario idle \
    -conns "$PER_NODE" -connect-rate "$NODE_RATE" -connect-concurrency 64 -loops 1 \
    -duration "${HOLD}s" -drain 1s -deadline "$(( RAMP_MAX + HOLD + 60 ))s" \
    -source-addrs "$src" -print-ready -quiet -json "$OUT/loadgen-$i.json" \
    >"$OUT/loadgen-$i.out" 2>"$OUT/loadgen-$i.log" &
  LPID[$i]=$!; PIDS+=("${LPID[$i]}")
done

# Wait for every ramp, watching memory: the run stops adding load when the
# box runs low, and says so.
STOPPED_BY="none: every connection of the target was opened"
while :; do
  ready=$(cat "$OUT"/loadgen-*.out 2>/dev/null | grep -c READY || true)
  [ "$ready" -ge "$NODES" ] && break
  avail=$(meminfo MemAvailable)
  if [ "$avail" -lt $(( MIN_AVAIL_MB * 1024 )) ]; then
    STOPPED_BY="memory: MemAvailable fell to $(( avail / 1024 )) MB (floor $MIN_AVAIL_MB MB)"; break
  fi
  if python3 -c "import sys,time; sys.exit(0 if time.time()-$START > $RAMP_MAX else 1)"; then
    STOPPED_BY="time: ramp not over after ${RAMP_MAX}s"; break
  fi
  sleep 1
done
RAMP_END=$(date +%s.%N)
OPEN=$(cat "$OUT"/loadgen-*.out 2>/dev/null | awk '/READY/ {s += $2} END {print s + 0}')
log "ramp over: $OPEN connections open ($STOPPED_BY)"

# Memory with every connection open.
HRSS=0; for i in $(seq 1 "$NODES"); do HRSS=$(( HRSS + $(rss_kb "${HPID[$i]}") )); done
LRSS=0; for i in $(seq 1 "$NODES"); do LRSS=$(( LRSS + $(rss_kb "${LPID[$i]}") )); done
NRSS=$(rss_kb "$NATS_PID")
SLAB1=$(meminfo Slab); AVAIL1=$(meminfo MemAvailable)

# One broadcast, published on node 1, stamped for the loadgens' clocks.
T0=$(date +%s%N)
curl -sf -o "$OUT/publish.json" --data "{\"t\":$T0,\"seq\":1}" \
  "http://127.0.0.1:${API[1]}/api/publish?channel=bench" || log "publish failed"
log "broadcast published; waiting for the loadgens to finish (hold ${HOLD}s)"
for i in $(seq 1 "$NODES"); do wait "${LPID[$i]}" 2>/dev/null || true; done

python3 - "$OUT" "$NODES" "$PER_NODE" "$CONNS" "$OPEN" "$START" "$RAMP_END" "$T0" \
  "$HRSS" "$LRSS" "$NRSS" "$SLAB0" "$SLAB1" "$AVAIL0" "$AVAIL1" "$STOPPED_BY" <<'EOF'
import glob, json, sys
(out, nodes, per_node, target, opened, start, ramp_end, t0,
 hrss, lrss, nrss, slab0, slab1, avail0, avail1, stopped) = sys.argv[1:]
nodes, per_node, target, opened = int(nodes), int(per_node), int(target), int(opened)
t0 = int(t0)
deliv, last, failures, connected = 0, 0, {}, 0
for f in sorted(glob.glob(out + "/loadgen-*.json")):
    r = json.load(open(f))
    deliv += r.get("deliveries", 0)
    connected += r.get("connected", 0)
    last = max(last, r.get("last_recv_ns", 0))
    for k, v in (r.get("connect_failures") or {}).items():
        failures[k] = failures.get(k, 0) + v
ramp = float(ramp_end) - float(start)
conns = max(opened, 1)
kb = lambda x: int(x) * 1024
res = {
    "target": target, "nodes": nodes, "per_node": per_node,
    "connections": opened, "connect_rate_per_s": round(opened / ramp) if ramp > 0 else 0,
    "ramp_s": round(ramp, 1),
    "broadcast_deliveries": deliv, "broadcast_missing": opened - deliv,
    "broadcast_completion_ms": round((last - t0) / 1e6, 1) if last > t0 else None,
    "herald_rss_bytes": kb(hrss), "herald_rss_per_conn": round(kb(hrss) / conns),
    "loadgen_rss_bytes": kb(lrss), "nats_rss_bytes": kb(nrss),
    "slab_delta_bytes": kb(int(slab1) - int(slab0)),
    "slab_per_socket": round(kb(int(slab1) - int(slab0)) / (2 * conns)),
    "memavailable_drop_bytes": kb(int(avail0) - int(avail1)),
    "connect_failures": failures,
    "stopped_by": stopped,
}
if opened < nodes * per_node and stopped.startswith("none"):
    res["stopped_by"] = ("handshakes: %d of %d connections did not open within their attempts (%s); "
                         "the connect rate was bound by CPU (%d/s on this box)"
                         % (nodes * per_node - opened, nodes * per_node, failures or "no failure reported", res["connect_rate_per_s"]))
if deliv < opened:
    res["stopped_by"] += "; broadcast reached %d of %d connections" % (deliv, opened)
json.dump(res, open(out + "/summary.json", "w"), indent=2)
print(json.dumps(res, indent=2))
EOF
