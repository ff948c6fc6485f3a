#!/usr/bin/env bash
# Installs what the interop tests need and is idempotent:
#   - Node's `ws` package (npm) into test/interop/node
#   - the eventsource package (npm, pinned) into test/sse/node
#   - Pusher's Node server library (npm `pusher`) into test/pusherapi/node
#   - pusher-js, laravel-echo and pusher (npm) into test/pusher/node
#   - the TypeScript compiler (npm, pinned) into client/js/types-test
#   - Debian's chromium (apt) for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1; then
	echo "test-deps: node is required (Node 18+); install it with: apt-get install -y nodejs npm" >&2
	exit 1
fi
if [ ! -d test/interop/node/node_modules/ws ]; then
	echo "test-deps: installing Node's ws package"
	(cd test/interop/node && npm install --no-audit --no-fund --silent)
fi
if [ ! -d test/sse/node/node_modules/eventsource ]; then
	echo "test-deps: installing the eventsource package"
	(cd test/sse/node && npm ci --no-audit --no-fund --silent)
fi
if [ ! -d test/pusherapi/node/node_modules/pusher ]; then
	echo "test-deps: installing Pusher's Node server library"
	(cd test/pusherapi/node && npm install --no-audit --no-fund --silent)
fi

if [ ! -d test/pusher/node/node_modules/pusher-js ] || [ ! -d test/pusher/node/node_modules/laravel-echo ] || [ ! -d test/pusher/node/node_modules/pusher ]; then
	echo "test-deps: installing pusher-js, laravel-echo and pusher"
	(cd test/pusher/node && npm install --no-audit --no-fund --silent)
fi
if [ ! -d client/js/types-test/node_modules/typescript ]; then
	echo "test-deps: installing the TypeScript compiler for herald.js's declarations"
	(cd client/js/types-test && npm ci --no-audit --no-fund --silent)
fi

if [ ! -x /usr/bin/chromium ]; then
	echo "test-deps: installing chromium"
	if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
echo "test-deps: ok (node $(node --version), $(/usr/bin/chromium --version 2>/dev/null | head -1))"
