#!/usr/bin/env bash
# Samples a server's CPU (perf record -g) over one handshake ramp and
# splits it by where it went (perfsplit.py): GC and allocation, each
# system call, the runtime's sysmon and scheduler, and the user-space
# steps of the upgrade. bench/HANDSHAKE.md has the figures.
#
#   bash bench/handshake-perf.sh OUT URL SERVER [ARGS...]
#
# e.g. (from the repository root, after bench/run.sh has built bin/):
#   bash bench/handshake-perf.sh /tmp/herald 'ws://127.0.0.1:23300/ws?channel=bench' \
#     bin/herald serve --listen 127.0.0.1:23300 --api-listen 127.0.0.1:23301 \
#     --log-level error --ping-interval 0 --max-handshakes-per-ip -1 --allow-anonymous
#   bash bench/handshake-perf.sh /tmp/gnet ws://127.0.0.1:23300/ \
#     bin/peers/gnet -listen 127.0.0.1:23300 -pub-listen 127.0.0.1:23301
#
# Server on CPU 0, load generator on CPU 1 (as benchrun pins them), or
# both free to run anywhere with UNPINNED=1 (benchrun's unpinned mode);
# 10,000 connections (CONNS), unbounded connect rate; sampling stops when
# the ramp ends.
# Needs perf and taskset; run as root or with perf_event_paranoid <= 1.
set -euo pipefail
out=$1 url=$2
shift 2
conns=${CONNS:-10000}
srvcpu=(taskset -c 0) lgcpu=(taskset -c 1)
if [ -n "${UNPINNED:-}" ]; then srvcpu=() lgcpu=(); fi
"${srvcpu[@]}" "$@" >/dev/null 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null || true' EXIT
sleep 1
ready=$(mktemp)
perf record -F 9999 -g -p "$srv" -o "$out.data" 2>/dev/null &
rec=$!
sleep 0.3
"${lgcpu[@]}" bin/loadgen -url "$url" -quiet -connect-rate -1 -scenario idle -conns "$conns" \
	-duration 10m -source-addrs 127.0.5.$((RANDOM % 200 + 2)) -print-ready >"$ready" 2>&1 &
lg=$!
until grep -q READY "$ready"; do
	kill -0 "$lg" 2>/dev/null || { echo "load generator exited before its ramp ended" >&2; exit 1; }
	sleep 0.01
done
kill -INT "$rec"
wait "$rec" || true
kill -INT "$lg"
wait "$lg" || true
rm -f "$ready"
python3 "$(dirname "$0")/perfsplit.py" "$out.data" "$conns"
