#!/usr/bin/env bash
# Builds herald, the load generator and the peer servers, then runs the
# side-by-side benchmark and writes bench/RESULTS.md and bench/results/*.svg.
#
#   bash bench/run.sh            full run: pinned and unpinned, 3 runs each (~15-20 min)
#   QUICK=1 bash bench/run.sh    one pinned run per server (~3 min)
#
# Extra arguments go to bench/cmd/benchrun (e.g. -only herald,nbio).
# Needs Linux (taskset, /proc). As root it raises the accept backlog; it
# changes nothing else. Servers listen on ports below the kernel's
# ephemeral range (32768-60999 by default), so keep that range as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
mkdir -p bin/peers
$GO build -o bin/herald ./cmd/herald
$GO build -o bin/loadgen ./cmd/loadgen
(cd bench && for s in gnet nbio gws gorilla; do $GO build -o "../bin/peers/$s" "./servers/$s"; done)

if [ "$(id -u)" = 0 ]; then
	sysctl -qw net.core.somaxconn=65535 || true
fi
ulimit -n "$(ulimit -Hn)"

if [ "${QUICK:-0}" = 1 ]; then
	args=(-reps 1 -modes pinned -sust-duration 3s -settle 1s)
else
	args=(-reps 3 -modes pinned,unpinned)
fi
(cd bench && $GO run ./cmd/benchrun -loadgen ../bin/loadgen -herald ../bin/herald -peers ../bin/peers -out . "${args[@]}" "$@")
echo "wrote bench/RESULTS.md"
