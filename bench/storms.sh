#!/usr/bin/env bash
# storms.sh — herald against its peers under loadgen's recovery scenarios,
# on one box, loopback only, medians of ROUNDS rounds (bench/STORMS.md):
#
#   shootout  herald, gnet, nbio, gws, gorilla: the largest client count
#             whose broadcast round trips keep p95 <= 500 ms, the servers
#             interleaved within each round;
#   jitter    herald alone, and 3 herald nodes on NATS, clients cut at
#             random every JITTER_EVERY and offline OFFLINE, with recovery
#             (the peers have none: they take no part);
#   deploy    3 herald nodes on NATS, one SIGTERMed under load, its clients
#             moving to the others; and herald alone restarted (SIGTERM,
#             then started again on the same port), in memory and on NATS.
#
# NATS is one natsd (NATS_SERVERS=1, the default), or with NATS_SERVERS=3
# a 3-server NATS cluster (natsd -cluster -routes, JetStream clustered):
# the stream and the presence bucket are created with --broker-replicas 3
# and herald node i connects to NATS server i (its URL only: the cluster
# tells it of the others, which it fails over to).
#
#   bash bench/storms.sh                 # or: make bench-storms (~20 min)
#   ROUNDS=1 SHOOT_MAX=8000 bash bench/storms.sh   # a short look
#   SCENARIOS=shootout ROUNDS=5 OUT=dir bash bench/storms.sh  # a subset
#   NATS_SERVERS=3 SCENARIOS="jitter deploy" bash bench/storms.sh  # on a NATS cluster
#
# Results: JSON and plots in OUT (default bench/results/storms), the
# medians in OUT/summary.md and OUT/summary.json; logs and NATS's store in
# a temporary directory (kept, its path printed). Every process started
# here is stopped by PID on exit; every run is bounded by loadgen's
# -deadline and by timeout(1).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

GO=${GO:-go}
BIN=${BIN:-$ROOT/bin}
NATS_SERVERS=${NATS_SERVERS:-1} # 1: one natsd; 3: a 3-server NATS cluster
case $NATS_SERVERS in
1) OUT=${OUT:-$ROOT/bench/results/storms} ;;
3) OUT=${OUT:-$ROOT/bench/results/storms-cluster} ;;
*) echo "NATS_SERVERS=$NATS_SERVERS: want 1 or 3" >&2; exit 2 ;;
esac
ROUNDS=${ROUNDS:-3}
PEERS=${PEERS:-gnet nbio gws gorilla}
SCENARIOS=${SCENARIOS:-shootout jitter deploy} # a subset runs only those
PORT_BASE=${PORT_BASE:-18600} # below the kernel's ephemeral range

# shootout: one loadgen process holds every client, and both it and the
# server stop at the open-file limit (20000 here), so the count is capped.
SHOOT_MAX=${SHOOT_MAX:-19000}
SHOOT_START=${SHOOT_START:-2000}
SHOOT_FACTOR=${SHOOT_FACTOR:-1.5}
SHOOT_COUNT=${SHOOT_COUNT:-5}
SHOOT_INTERVAL=${SHOOT_INTERVAL:-100ms}
P95_BOUND=${P95_BOUND:-500ms}

# jitter and deploy
JITTER_CONNS=${JITTER_CONNS:-1500}
JITTER_RATE=${JITTER_RATE:-50}
JITTER_DURATION=${JITTER_DURATION:-25s}
JITTER_EVERY=${JITTER_EVERY:-5s}
OFFLINE=${OFFLINE:-1s}
DEPLOY_CONNS=${DEPLOY_CONNS:-1500}
DEPLOY_RATE=${DEPLOY_RATE:-50}
DEPLOY_DURATION=${DEPLOY_DURATION:-25s}
DEPLOY_AT=${DEPLOY_AT:-8s}
HISTORY=${HISTORY:-2000}
RUN_LIMIT=${RUN_LIMIT:-150} # seconds: timeout(1) around each loadgen run

WORK=$(mktemp -d -t herald-storms.XXXXXX)
mkdir -p "$OUT" "$BIN/peers" "$WORK/plots"
log() { printf '%s %s\n' "$(date -u +%T)" "$*" | tee -a "$WORK/run.log" >&2; }

PIDS=()
cleanup() {
	local p
	# Nodes restarted by the deploy command wrote their PIDs to files.
	for f in "$WORK"/*.pid; do [ -f "$f" ] && PIDS+=("$(cat "$f")"); done
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	[ "${#PIDS[@]}" = 0 ] || sleep 1
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	log "logs in $WORK"
}
trap cleanup EXIT

log "building herald, loadgen, the peers and natsd"
$GO build -o "$BIN/herald" ./cmd/herald
$GO build -o "$BIN/loadgen" ./cmd/loadgen
(cd bench && for s in $PEERS; do $GO build -o "$BIN/peers/$s" "./servers/$s"; done)
(cd test && $GO build -o "$BIN/natsd" ./cmd/natsd)
ulimit -n "$(ulimit -Hn)"
log "open-file limit $(ulimit -n); $(nproc) cores; results in $OUT, logs in $WORK"

# wait_url URL: polls until URL answers 2xx (20 s at most).
wait_url() {
	local i
	for i in $(seq 200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
	log "no answer from $1"; return 1
}

# wait_gone PID: until the process has exited (or is a zombie), 20 s at most.
wait_gone() {
	local i
	for i in $(seq 200); do
		[ -d "/proc/$1" ] || return 0
		grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# forget PID: takes a PID that has been waited for off the list the exit
# trap kills (so that a reused PID is never signalled).
forget() {
	local p keep=()
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

# stop PID: SIGTERM, then SIGKILL if it has not gone within 20 s.
stop() {
	kill -TERM "$1" 2>/dev/null || true
	wait_gone "$1" || kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	forget "$1"
}

HERALD_FLAGS=(--allow-anonymous --log-level warn --ping-interval 0 --pprof=false
	--max-handshakes-per-ip -1 --max-handshakes -1 --max-conns-per-ip 0)

# herald_cmd WS API [flags...]: the command line of one node.
herald_cmd() {
	local ws=$1 api=$2; shift 2
	echo "$BIN/herald" serve --listen "127.0.0.1:$ws" --api-listen "127.0.0.1:$api" "${HERALD_FLAGS[@]}" "$@"
}

# start_herald NAME WS API [flags...]: starts a node, sets LAST_PID.
start_herald() {
	local name=$1 ws=$2 api=$3; shift 3
	echo "bin/herald serve --listen 127.0.0.1:$ws --api-listen 127.0.0.1:$api ${HERALD_FLAGS[*]} $*" >>"$WORK/commands.txt"
	"$BIN/herald" serve --listen "127.0.0.1:$ws" --api-listen "127.0.0.1:$api" "${HERALD_FLAGS[@]}" "$@" \
		>>"$WORK/$name.log" 2>&1 &
	LAST_PID=$!; PIDS+=("$LAST_PID")
	wait_url "http://127.0.0.1:$api/readyz"
}

# start_peer NAME WS PUB: starts a peer server, sets LAST_PID.
start_peer() {
	echo "bin/peers/$1 -listen 127.0.0.1:$2 -pub-listen 127.0.0.1:$3" >>"$WORK/commands.txt"
	"$BIN/peers/$1" -listen "127.0.0.1:$2" -pub-listen "127.0.0.1:$3" >>"$WORK/$1.log" 2>&1 &
	LAST_PID=$!; PIDS+=("$LAST_PID")
	wait_url "http://127.0.0.1:$3/stats"
}

# loadgen NAME [args...]: one bounded loadgen run; its JSON goes to
# OUT/NAME.json and its scenario plot to OUT/NAME.svg. A failed run is
# logged, not fatal: the summary shows it as missing.
loadgen() {
	local name=$1; shift
	local rc=0
	echo "bin/loadgen $* -json $name.json" | sed "s#$WORK/#WORK/#g" >>"$WORK/commands.txt"
	timeout -k 5 "$RUN_LIMIT" "$BIN/loadgen" "$@" -quiet -json "$OUT/$name.json" -plots "$WORK/plots/$name" \
		>"$WORK/$name.out" 2>"$WORK/$name.log" &
	local p=$!; PIDS+=("$p")
	wait "$p" || rc=$?
	forget "$p"
	[ "$rc" = 0 ] || log "$name: loadgen exited $rc (see $WORK/$name.log)"
	# The deploy command names a script in the work directory.
	[ -f "$OUT/$name.json" ] && sed -i "s#$WORK/#WORK/#g" "$OUT/$name.json"
	for svg in shootout recovery; do
		[ -f "$WORK/plots/$name/$svg.svg" ] && cp "$WORK/plots/$name/$svg.svg" "$OUT/$name.svg"
	done
	return 0
}

# metrics NAME API: keeps the node's non-zero counters and gauges.
metrics() {
	curl -sf "http://127.0.0.1:$2/metrics" 2>/dev/null | grep -v '^#' | grep -v '_bucket' |
		awk '$NF != 0' >"$OUT/$1.metrics.txt" || true
}

WS1=$PORT_BASE API1=$((PORT_BASE + 1))
WS2=$((PORT_BASE + 2)) API2=$((PORT_BASE + 3))
WS3=$((PORT_BASE + 4)) API3=$((PORT_BASE + 5))
NATS_PORT=$((PORT_BASE + 10))   # NATS server k (1..3): client port NATS_PORT+k-1,
NATS_ROUTE=$((PORT_BASE + 13))  # route port NATS_ROUTE+k-1 (with NATS_SERVERS=3)

# want SCENARIO: whether SCENARIOS names it.
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# start_nats starts NATS_SERVERS natsd and waits until each printed READY
# (in a cluster: JetStream takes streams with 3 replicas through it); it
# sets NATS_PIDS. stop_nats stops them.
NATS_PIDS=()
start_nats() {
	local k nlog i args routes=
	for k in $(seq "$NATS_SERVERS"); do routes+="${routes:+,}nats-route://127.0.0.1:$((NATS_ROUTE + k - 1))"; done
	for k in $(seq "$NATS_SERVERS"); do
		args=(-port "$((NATS_PORT + k - 1))" -store "$WORK/nats-store-$k")
		[ "$NATS_SERVERS" = 1 ] || args+=(-name "nats-$k" -cluster "127.0.0.1:$((NATS_ROUTE + k - 1))" -routes "$routes")
		echo "bin/natsd ${args[*]}" | sed "s#$WORK/#WORK/#g" >>"$WORK/commands.txt"
		nlog="$WORK/natsd-$k-r$r.log" # one log per start: READY is this start's
		"$BIN/natsd" "${args[@]}" >"$nlog" 2>&1 &
		NATS_PIDS+=("$!"); PIDS+=("$!")
	done
	for k in $(seq "$NATS_SERVERS"); do
		for i in $(seq 600); do grep -q READY "$WORK/natsd-$k-r$r.log" 2>/dev/null && continue 2; sleep 0.1; done
		log "natsd $k not ready (see $WORK/natsd-$k-r$r.log)"; return 1
	done
}
stop_nats() {
	local p
	for p in "${NATS_PIDS[@]}"; do stop "$p"; done
	NATS_PIDS=()
}

# nats_flags K sets NATS to the broker flags of a node on NATS server K:
# its URL only (a cluster's servers tell their clients of the others),
# and replicas for as many servers.
nats_flags() {
	local k=$1
	if [ "$NATS_SERVERS" = 1 ]; then k=1; fi
	NATS=(--broker "nats://127.0.0.1:$((NATS_PORT + k - 1))" --broker-replicas "$NATS_SERVERS")
}

# start_nodes starts herald nodes 1..3 for jitter and deploy, node k on
# NATS server k (all on the one natsd with NATS_SERVERS=1); sets n1 n2 n3.
start_nodes() {
	nats_flags 1; start_herald "herald-n1" "$WS1" "$API1" --history-size "$HISTORY" "${NATS[@]}"; n1=$LAST_PID
	nats_flags 2; start_herald "herald-n2" "$WS2" "$API2" --history-size "$HISTORY" "${NATS[@]}"; n2=$LAST_PID
	nats_flags 3; start_herald "herald-n3" "$WS3" "$API3" --history-size "$HISTORY" "${NATS[@]}"; n3=$LAST_PID
}

shootout_run() { # NAME WSURL PUBURL
	loadgen "$1" -url "$2" -scenario shootout -conns "$SHOOT_MAX" -shootout-start "$SHOOT_START" \
		-shootout-factor "$SHOOT_FACTOR" -count "$SHOOT_COUNT" -interval "$SHOOT_INTERVAL" \
		-p95-bound "$P95_BOUND" -drain 5s -pub-http "$3"
}

# jitter_args CHANNEL PUBAPI and deploy_args CHANNEL PUBAPI set ARGS.
jitter_args() {
	ARGS=(-scenario jitter -conns "$JITTER_CONNS" -rate "$JITTER_RATE" -duration "$JITTER_DURATION" \
		-jitter-every "$JITTER_EVERY" -offline "$OFFLINE" -drain 15s -channel "$1" \
		-pub-http "http://127.0.0.1:$2/api/publish?channel=$1")
}

deploy_args() {
	ARGS=(-scenario deploy -conns "$DEPLOY_CONNS" -rate "$DEPLOY_RATE" -duration "$DEPLOY_DURATION" \
		-deploy-at "$DEPLOY_AT" -drain 15s -channel "$1" \
		-pub-http "http://127.0.0.1:$2/api/publish?channel=$1")
}

# restart_script FILE PIDFILE NAME WS API [flags...]: writes the deploy
# command that SIGTERMs the node in PIDFILE, waits for it to go, starts it
# again on the same ports and records the new PID in PIDFILE.
restart_script() {
	local file=$1 pidfile=$2 name=$3 ws=$4 api=$5; shift 5
	cat >"$file" <<EOF
#!/usr/bin/env bash
pid=\$(cat "$pidfile")
kill -TERM "\$pid"
for i in \$(seq 300); do
	[ -d "/proc/\$pid" ] || break
	grep -q '^State:[[:space:]]*Z' "/proc/\$pid/status" 2>/dev/null && break
	sleep 0.05
done
$(herald_cmd "$ws" "$api" "$@") >>"$WORK/$name.log" 2>&1 &
echo \$! >"$pidfile"
EOF
	chmod +x "$file"
}

log "rounds $ROUNDS of: $SCENARIOS (shootout up to $SHOOT_MAX clients: herald, $PEERS; NATS: $NATS_SERVERS server(s))"
for r in $(seq 1 "$ROUNDS"); do
	# shootout, herald and the peers in turn, the same client settings.
	if want shootout; then
		log "round $r: shootout herald"
		start_herald "herald-shootout" "$WS1" "$API1"
		shootout_run "shootout-herald-r$r" "ws://127.0.0.1:$WS1/ws?channel=bench" \
			"http://127.0.0.1:$API1/api/publish?channel=bench"
		stop "$LAST_PID"
		for s in $PEERS; do
			log "round $r: shootout $s"
			start_peer "$s" "$WS1" "$API1"
			shootout_run "shootout-$s-r$r" "ws://127.0.0.1:$WS1/ws" "http://127.0.0.1:$API1/publish"
			stop "$LAST_PID"
		done
	fi

	# jitter, herald alone (memory broker).
	if want jitter; then
		log "round $r: jitter herald alone"
		start_herald "herald-jitter" "$WS1" "$API1" --history-size "$HISTORY"
		h=$LAST_PID
		jitter_args "jitter-alone-r$r" "$API1"
		loadgen "jitter-alone-r$r" -url "ws://127.0.0.1:$WS1/ws" "${ARGS[@]}"
		metrics "jitter-alone-r$r" "$API1"
		stop "$h"

		# jitter, 3 nodes on NATS, clients spread over the nodes.
		log "round $r: jitter 3 nodes on NATS ($NATS_SERVERS server(s))"
		start_nats
		start_nodes
		jitter_args "jitter-nats3-r$r" "$API1"
		loadgen "jitter-nats3-r$r" -urls "ws://127.0.0.1:$WS1/ws,ws://127.0.0.1:$WS2/ws,ws://127.0.0.1:$WS3/ws" \
			"${ARGS[@]}"
		metrics "jitter-nats3-r$r-n1" "$API1"; metrics "jitter-nats3-r$r-n2" "$API2"; metrics "jitter-nats3-r$r-n3" "$API3"
		stop "$n1"; stop "$n2"; stop "$n3"
		want deploy || stop_nats
	fi

	# deploy, 3 nodes on NATS: node 3 SIGTERMed, publishing through node 1.
	if want deploy; then
		[ "${#NATS_PIDS[@]}" -gt 0 ] || start_nats
		log "round $r: deploy 3 nodes on NATS ($NATS_SERVERS server(s))"
		start_nodes
		deploy_args "deploy-nats3-r$r" "$API1"
		loadgen "deploy-nats3-r$r" -urls "ws://127.0.0.1:$WS1/ws,ws://127.0.0.1:$WS2/ws,ws://127.0.0.1:$WS3/ws" \
			-deploy-cmd "kill -TERM $n3" "${ARGS[@]}"
		metrics "deploy-nats3-r$r-n1" "$API1"; metrics "deploy-nats3-r$r-n2" "$API2"
		stop "$n1"; stop "$n2"; stop "$n3"

		# deploy, herald alone on NATS restarted on the same port.
		log "round $r: restart herald alone on NATS"
		nats_flags 1
		start_herald "herald-restart-nats" "$WS1" "$API1" --history-size "$HISTORY" "${NATS[@]}"
		echo "$LAST_PID" >"$WORK/restart-nats.pid"
		restart_script "$WORK/restart-nats.sh" "$WORK/restart-nats.pid" "herald-restart-nats" "$WS1" "$API1" \
			--history-size "$HISTORY" "${NATS[@]}"
		deploy_args "restart-alone-nats-r$r" "$API1"
		loadgen "restart-alone-nats-r$r" -url "ws://127.0.0.1:$WS1/ws" -deploy-cmd "$WORK/restart-nats.sh" \
			"${ARGS[@]}"
		metrics "restart-alone-nats-r$r" "$API1"
		stop "$(cat "$WORK/restart-nats.pid")"; rm -f "$WORK/restart-nats.pid"
		stop_nats

		# deploy, herald alone in memory restarted: its history goes with it.
		log "round $r: restart herald alone in memory"
		start_herald "herald-restart-mem" "$WS1" "$API1" --history-size "$HISTORY"
		echo "$LAST_PID" >"$WORK/restart-mem.pid"
		restart_script "$WORK/restart-mem.sh" "$WORK/restart-mem.pid" "herald-restart-mem" "$WS1" "$API1" \
			--history-size "$HISTORY"
		deploy_args "restart-alone-mem-r$r" "$API1"
		loadgen "restart-alone-mem-r$r" -url "ws://127.0.0.1:$WS1/ws" -deploy-cmd "$WORK/restart-mem.sh" \
			"${ARGS[@]}"
		metrics "restart-alone-mem-r$r" "$API1"
		stop "$(cat "$WORK/restart-mem.pid")"; rm -f "$WORK/restart-mem.pid"
	fi
done

cp "$WORK/commands.txt" "$OUT/commands.txt"
nats_desc=NATS
[ "$NATS_SERVERS" = 1 ] || nats_desc="a $NATS_SERVERS-server NATS cluster"
python3 bench/storms_summary.py "$OUT" "$ROUNDS" "$OFFLINE" "$PEERS" "$nats_desc" | tee "$OUT/summary.md"
log "done: $OUT/summary.md"
