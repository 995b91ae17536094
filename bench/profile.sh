#!/usr/bin/env bash
# Profiles Fjord (async flush) on a short produce run and a catch-up fetch run with perf
# (software cpu-clock sampling: this VM exposes no hardware counters) and writes flat
# (self) and inclusive (children) reports to bench/out/perf-{produce,fetch}-{self,children}.txt.
#   bench/profile.sh [size=1024] [count=1500000] [partitions=1]
set -euo pipefail
cd "$(dirname "$0")"
OUT="$PWD/out"; ROOT="$(cd .. && pwd)"
SIZE=${1:-1024}; COUNT=${2:-1500000}; PARTS=${3:-1}
FJORD=${FJORD_BIN:-$ROOT/target/release/fjord}
PORT=19095; D="$OUT/data/profile"
rm -rf "$D"; mkdir -p "$D"
"$FJORD" serve --data-dir "$D" --listen 127.0.0.1:$PORT --log-flush async 2>"$OUT/profile.stderr.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
"$OUT/tansu" topic create --broker tcp://127.0.0.1:$PORT --partitions "$PARTS" prof
PARTARGS=(); for ((p = 0; p < PARTS; p++)); do PARTARGS+=(-p "$p"); done
RDK=("$OUT/rdkafka_performance" -b 127.0.0.1:$PORT -t prof -q -X linger.ms=5 -X message.timeout.ms=60000)

profile() { # name, command...
  local name=$1; shift
  perf record -q -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$PID" -o "$OUT/perf-$name.data" &
  local PP=$!
  sleep 0.5
  timeout 300 "$@" 2>&1 | grep -E '^% [0-9]+ messages' | tail -1
  kill -INT $PP; wait $PP || true
  perf report -i "$OUT/perf-$name.data" --no-children --sort symbol --stdio -g none 2>/dev/null \
    | grep -E "^ +[0-9]" | head -40 > "$OUT/perf-$name-self.txt" || true
  perf report -i "$OUT/perf-$name.data" --children --sort symbol --stdio -g none 2>/dev/null \
    | grep -E "^ +[0-9]" | head -60 > "$OUT/perf-$name-children.txt" || true
  echo "== $name: top self"; head -25 "$OUT/perf-$name-self.txt"
}
profile produce "${RDK[@]}" -P -s "$SIZE" -c "$COUNT" -a 1
profile fetch "${RDK[@]}" -C -o beginning -c "$COUNT" "${PARTARGS[@]}"
