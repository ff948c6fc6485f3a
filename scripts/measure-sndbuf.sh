#!/usr/bin/env bash
# Measures the effect of a fixed SO_SNDBUF (--socket-send-buffer) against
# the kernel's autotuning during a broadcast to N connections: completion
# time, latency and the server's peak RSS. Runs each setting REPS times,
# interleaved, in one session. Loopback only; bounded; stops what it starts.
#
#   bash scripts/measure-sndbuf.sh            # N=19000, REPS=2, settings "0 4096"
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-19000}
REPS=${REPS:-2}
SETTINGS=${SETTINGS:-"0 4096"}
PAYLOAD=${PAYLOAD:-1024}
go build -o bin/herald ./cmd/herald
go build -o bin/loadgen ./cmd/loadgen
ulimit -n "$(ulimit -Hn)"
out=$(mktemp -d)
printf "%-8s %-4s %12s %10s %10s %16s\n" sndbuf rep "complete ms" "p50 ms" "p99 ms" "peak RSS KiB"
for rep in $(seq 1 "$REPS"); do
	for sb in $SETTINGS; do
		port=$((20000 + RANDOM % 5000)); api=$((port + 1))
		bin/herald serve --listen 127.0.0.1:$port --api-listen 127.0.0.1:$api --allow-anonymous \
			--log-level error --ping-interval 0 --socket-send-buffer "$sb" --demo=false --max-handshakes-per-ip -1 &
		pid=$!
		sleep 1
		bin/loadgen -url "ws://127.0.0.1:$port/ws?channel=b" -quiet -connect-rate -1 -scenario broadcast \
			-conns "$N" -count 5 -interval 1s -drain 5s -payload-size "$PAYLOAD" \
			-pub-http "http://127.0.0.1:$api/api/publish?channel=b" -source-addrs 127.0.9.1+4 \
			-json "$out/r.json" >/dev/null 2>&1 || true
		rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
		kill -TERM $pid; wait $pid 2>/dev/null || true
		python3 - "$out/r.json" "$sb" "$rep" "$rss" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat, comp = r["latency"], r["completion"]
ms = lambda us: "%.0f" % (us / 1000)
print("%-8s %-4s %12s %10s %10s %16s" % (sys.argv[2], sys.argv[3], ms(comp["p50_us"]), ms(lat["p50_us"]), ms(lat["p99_us"]), sys.argv[4]))
PY
	done
done
rm -rf "$out"
