#!/usr/bin/env bash
# Starts and stops the local services the tests and the demo talk to, each on loopback:
#   MiniStack (DynamoDB, EventBridge, SQS, SSM) on :4566, moto server (second DynamoDB emulator) on :5000,
#   and, with `up sim`, the Pixlpay simulator on :8480.
# PIDs and logs go to .run/. `up` waits until each answers and fails loudly if one does not.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run="$root/.run"
tools="$root/.tools/bin"
mkdir -p "$run"

MINISTACK_PORT=${MINISTACK_PORT:-4566}
MOTO_PORT=${MOTO_PORT:-5000}
SIM_PORT=${SIM_PORT:-8480}

wait_for() { # name url seconds
  local name=$1 url=$2 seconds=$3
  for _ in $(seq $((seconds * 10))); do
    if curl -s -o /dev/null -m 1 "$url"; then echo "services: $name is up ($url)"; return 0; fi
    if ! kill -0 "$(cat "$run/$name.pid")" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "services: $name did not come up; last lines of $run/$name.log:" >&2
  tail -n 30 "$run/$name.log" >&2 || true
  return 1
}

start() { # name url command...
  local name=$1 url=$2; shift 2
  if [ -f "$run/$name.pid" ] && kill -0 "$(cat "$run/$name.pid")" 2>/dev/null; then
    echo "services: $name already running"; return 0
  fi
  if curl -s -o /dev/null -m 1 "$url"; then
    echo "services: something else already answers at $url; stop it first" >&2; return 1
  fi
  nohup "$@" >"$run/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
  wait_for "$name" "$url" 60
}

stop() { # name
  local name=$1 pidfile="$run/$1.pid"
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "services: $name stopped"
  fi
  rm -f "$pidfile"
}

up() {
  "$root/scripts/tools.sh" ministack moto
  BIND_HOST=127.0.0.1 GATEWAY_PORT=$MINISTACK_PORT \
    start ministack "http://127.0.0.1:$MINISTACK_PORT/_ministack/health" "$tools/ministack"
  start moto "http://127.0.0.1:$MOTO_PORT/moto-api/" "$tools/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"
  if [ "${1:-}" = sim ]; then
    (cd "$root" && cargo build --quiet --bin pixlpay-sim)
    start sim "http://127.0.0.1:$SIM_PORT/_sim/health" "$root/target/debug/pixlpay-sim" --port "$SIM_PORT" \
      --products "${SIM_PRODUCTS:-100}" --rpm "${SIM_RPM:-60}" --webhook-time-scale "${SIM_TIME_SCALE:-0.01}"
  fi
}

down() {
  stop sim; stop moto; stop ministack
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  *) echo "usage: scripts/services.sh up [sim] | down" >&2; exit 2 ;;
esac
