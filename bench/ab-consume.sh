#!/usr/bin/env bash
# A/B catch-up consume: two fjord binaries serve the same log in turn, rdkafka_performance reads
# it from the start; prints MB/s and the broker's CPU time (utime+stime) per run.
#   bench/ab-consume.sh OLD_FJORD NEW_FJORD [REPS]      (SIZE, COUNT, PARTS from the environment)
# Tools from bench/setup.sh. The log is written once (by NEW) under bench/out/ab and kept.
set -euo pipefail
cd "$(dirname "$0")"
A=$(realpath "$1"); B=$(realpath "$2"); REPS=${3:-5}
SIZE=${SIZE:-1024}; COUNT=${COUNT:-2000000}; PARTS=${PARTS:-1}
RDK=$PWD/out/rdkafka_performance; D=$PWD/out/ab/data-$SIZE-$COUNT-$PARTS; P=19501
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
serve() { "$1" serve --data-dir "$D" --listen 127.0.0.1:$P --http-listen 127.0.0.1:19502 \
            >>"$PWD/out/ab/serve.log" 2>&1 & echo $!; }
up() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$P) 2>/dev/null && return; sleep 0.1; done
       echo "broker did not start" >&2; exit 1; }
stop() { kill "$1"; while kill -0 "$1" 2>/dev/null; do sleep 0.1; done; }
parts() { for p in $(seq 0 $((PARTS - 1))); do echo -n " -p $p"; done; }
mkdir -p out/ab
if [ ! -d "$D" ]; then
  pid=$(serve "$B"); up
  "$B" topic create ab -b 127.0.0.1:$P --partitions "$PARTS" >/dev/null
  "$RDK" -P -t ab -b 127.0.0.1:$P -s "$SIZE" -c "$COUNT" -a 1 -q 2>&1 | tail -1
  stop "$pid"
fi
cat "$D"/ab-*/*.log >/dev/null  # both runs start from a warm page cache
for rep in $(seq "$REPS"); do
  for which in A B; do
    bin=$A; [ $which = B ] && bin=$B
    pid=$(serve "$bin"); up
    t0=$(ticks "$pid")
    # shellcheck disable=SC2046
    out=$("$RDK" -C -t ab -b 127.0.0.1:$P $(parts) -o beginning -c "$COUNT" -q 2>&1 \
          | grep -o "consumed in [0-9]*ms: [0-9]* msgs/s ([0-9.]* MB/s)" | tail -1)
    t1=$(ticks "$pid"); stop "$pid"
    echo "$which rep $rep: $out; broker CPU $(( (t1 - t0) * 10 )) ms; load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
