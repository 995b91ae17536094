#!/usr/bin/env python3
"""Transaction benchmarks: Fjord (async and sync flush) and Apache Kafka 4.4.0 in the same run,
with the same client (confluent-kafka / librdkafka), on a fresh broker each.

    python3 bench/txn.py [--records 200000] [--reps 3] [--only fjord-async,fjord-sync,kafka]

For each broker kind, on a 1-partition topic of 1 KiB records:
  idempotent   enable.idempotence, N records, flush: records/s
  txn-1000     transactions of 1000 records (begin, produce 1000, commit) for N records:
               records/s, and commit_transaction() latency p50/p99
  consume      a topic of N records written as transactions of 1000, every 10th aborted; a
               consumer from offset 0 to the end, read_uncommitted then read_committed:
               records/s traversed (log offsets per second), records delivered
Fjord's sync flush also reports the fsync rounds per commit, from fjord_flush_duration_seconds.
Each cell is the median of --reps repetitions. The report goes to stdout and bench/out/txn.json.
"""
import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as benchrun  # noqa: E402  (the broker launcher and paths of bench/run.py)

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

VALUE = b"x" * 1024
PER_TXN = 1000


def create(addr, name):
    admin = AdminClient({"bootstrap.servers": addr})
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    # Metadata may lag CreateTopics on Kafka: wait until the partition has a leader.
    t0 = time.time()
    while time.time() - t0 < 30:
        md = admin.list_topics(name, timeout=10)
        t = md.topics.get(name)
        if t and not t.error and t.partitions and t.partitions[0].leader >= 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name} has no leader")


def producer(addr, **extra):
    conf = {"bootstrap.servers": addr, "linger.ms": 5, "batch.size": 1000000, "acks": "all"}
    conf.update(extra)
    return Producer(conf)


def produce_all(p, topic, n):
    for _ in range(n):
        while True:
            try:
                p.produce(topic, VALUE)
                break
            except BufferError:
                p.poll(0.01)
    p.flush(120)


def idempotent(addr, topic, n):
    p = producer(addr, **{"enable.idempotence": True})
    t0 = time.perf_counter()
    produce_all(p, topic, n)
    return {"records_per_s": n / (time.perf_counter() - t0)}


def transactional(addr, topic, n, tid, abort_every=0, rounds=None):
    """`rounds`: a function reading the broker's fsync count, to count a commit's rounds."""
    p = producer(addr, **{"transactional.id": tid})
    p.init_transactions(60)
    commits = []
    commit_rounds = []
    t0 = time.perf_counter()
    for i in range(n // PER_TXN):
        p.begin_transaction()
        produce_all_in_txn(p, topic)
        # Only the commit is timed: the records are acknowledged first (commit_transaction
        # would otherwise include waiting out linger.ms and the last produce).
        p.flush(60)
        rounds0 = rounds() if rounds else None
        c0 = time.perf_counter()
        if abort_every and i % abort_every == abort_every - 1:
            p.abort_transaction(60)
        else:
            p.commit_transaction(60)
            commits.append(time.perf_counter() - c0)
            if rounds0 is not None:
                commit_rounds.append(rounds() - rounds0)
    elapsed = time.perf_counter() - t0
    commits.sort()
    extra = {}
    if commit_rounds:
        extra["fsync_rounds_per_commit"] = statistics.median(commit_rounds)
    return extra | {
        "records_per_s": n / elapsed,
        "commit_p50_ms": 1000 * commits[len(commits) // 2],
        "commit_p99_ms": 1000 * commits[min(len(commits) - 1, int(len(commits) * 0.99))],
        "commits": len(commits),
    }


def produce_all_in_txn(p, topic):
    for _ in range(PER_TXN):
        while True:
            try:
                p.produce(topic, VALUE)
                break
            except BufferError:
                p.poll(0.01)


def consume(addr, topic, isolation):
    c = Consumer({"bootstrap.servers": addr, "group.id": f"b{time.time()}",
                  "isolation.level": isolation, "enable.auto.commit": False,
                  "enable.partition.eof": True, "fetch.max.bytes": 52428800})
    _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    c.assign([TopicPartition(topic, 0, 0)])
    delivered = 0
    t0 = time.perf_counter()
    deadline = time.monotonic() + 120
    while True:
        # consume() waits its whole timeout unless it fills the batch: a short one, so the last,
        # partial batch costs at most 50 ms of the measurement.
        msgs = c.consume(1000, 0.05)
        if not msgs and time.monotonic() > deadline:
            raise RuntimeError(f"{isolation} consumer stalled")
        eof = False
        for m in msgs:
            if m.error() is None:
                delivered += 1
            elif m.error().code() == KafkaError._PARTITION_EOF:
                eof = True
            else:
                raise RuntimeError(f"{isolation} consumer: {m.error()}")
        if eof:
            break
    elapsed = time.perf_counter() - t0
    c.close()
    return {"offsets_per_s": high / elapsed, "delivered": delivered, "elapsed_s": elapsed}


def flush_rounds(broker):
    """fjord_flush_duration_seconds_count from /metrics (Fjord only)."""
    try:
        text = urllib.request.urlopen(f"http://{broker.http}/metrics", timeout=5).read().decode()
    except (OSError, AttributeError):
        return None
    for line in text.splitlines():
        if line.startswith("fjord_flush_duration_seconds_count"):
            return float(line.split()[-1])
    return None


def one(kind, n):
    b = start_fjord_with_http(kind) if kind.startswith("fjord") else benchrun.Broker(kind)
    try:
        out = {}
        create(b.addr, "idem")
        out["idempotent"] = idempotent(b.addr, "idem", n)
        create(b.addr, "txn")
        out["txn-1000"] = transactional(b.addr, "txn", n, f"bench-{time.time()}")
        if kind == "fjord-sync":
            # A separate, shorter pass: scraping /metrics around every commit costs time.
            counted = transactional(b.addr, "txn", 20 * PER_TXN, f"count-{time.time()}",
                                    rounds=lambda: flush_rounds(b))
            out["txn-1000"]["fsync_rounds_per_commit"] = counted["fsync_rounds_per_commit"]
        create(b.addr, "mixed")
        transactional(b.addr, "mixed", n, f"mixed-{time.time()}", abort_every=10)
        out["read_uncommitted"] = consume(b.addr, "mixed", "read_uncommitted")
        out["read_committed"] = consume(b.addr, "mixed", "read_committed")
        return out
    finally:
        b.stop()


def start_fjord_with_http(kind):
    """A fresh Fjord with /metrics on a free port (bench/run.py's launcher has none)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        http_port = s.getsockname()[1]
    b = benchrun.Broker.__new__(benchrun.Broker)
    b.kind = kind
    b.datadir = benchrun.DATA / kind
    shutil.rmtree(b.datadir, ignore_errors=True)
    b.datadir.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        b.port = s.getsockname()[1]
    b.addr = f"127.0.0.1:{b.port}"
    b.http = f"127.0.0.1:{http_port}"
    b.cmd = [str(benchrun.FJORD), "serve", "--data-dir", str(b.datadir), "--listen", b.addr,
             "--http-listen", b.http, "--log-flush", kind.split("-")[1]]
    b.err = open(benchrun.OUT / f"{kind}.stderr.log", "a")
    b.proc = subprocess.Popen(b.cmd, stdout=subprocess.DEVNULL, stderr=b.err)
    b.pid = b.proc.pid
    benchrun.wait_port(b.port, b.proc)
    return b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="fjord-async,fjord-sync,kafka")
    args = ap.parse_args()
    benchrun.OUT.mkdir(parents=True, exist_ok=True)
    kinds = args.only.split(",")
    runs = {k: [] for k in kinds}
    for rep in range(args.reps):
        for kind in kinds:  # interleaved, so machine noise hits every kind
            r = one(kind, args.records)
            runs[kind].append(r)
            print(f"rep {rep} {kind}: {json.dumps(r)}", file=sys.stderr, flush=True)
    (benchrun.OUT / "txn.json").write_text(json.dumps(runs, indent=1))
    med = lambda k, sec, f: statistics.median(r[sec][f] for r in runs[k])  # noqa: E731
    print("| broker | idempotent rec/s | txn-1000 rec/s | txn/idem | commit p50 ms | "
          "commit p99 ms | read_uncommitted offsets/s | read_committed offsets/s | rc/ru |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for k in kinds:
        idem, txn = med(k, "idempotent", "records_per_s"), med(k, "txn-1000", "records_per_s")
        ru, rc = (med(k, "read_uncommitted", "offsets_per_s"),
                  med(k, "read_committed", "offsets_per_s"))
        print(f"| {k} | {idem:,.0f} | {txn:,.0f} | {txn / idem:.2f} | "
              f"{med(k, 'txn-1000', 'commit_p50_ms'):.2f} | {med(k, 'txn-1000', 'commit_p99_ms'):.2f}"
              f" | {ru:,.0f} | {rc:,.0f} | {rc / ru:.2f} |")
    for k in kinds:
        rounds = [r["txn-1000"].get("fsync_rounds_per_commit") for r in runs[k]]
        if any(x is not None for x in rounds):
            print(f"\n{k}: fsync rounds during commit_transaction (median): "
                  f"{statistics.median(x for x in rounds if x is not None):.2f}")


if __name__ == "__main__":
    main()
