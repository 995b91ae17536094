#!/usr/bin/env python3
"""Filtered-view benchmark (R10/R11): a tag filter matching 1% of a topic, read through a view
(the broker filters) against reading the whole topic and filtering in the client — same client
(confluent-kafka / librdkafka), same run, one fresh Fjord broker.

    python3 bench/filter.py [--records 2000000] [--reps 3]

The topic has one partition of --records 1 KiB records, every 100th with header TAGS=hit, the
others TAGS=miss. Each repetition reads from offset 0 to the end (partition EOF):
  view     the view `fjord.view.filter.expression=hit`: records received, seconds, bytes the
           broker sent (fjord_topic_bytes_out_total of the view) and read from the source to
           filter (fjord_view_bytes_scanned_total)
  client   the topic itself, every record received and its TAGS header checked in the client
The report (medians) goes to stdout and bench/out/filter.json.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
FJORD = Path(os.environ.get("FJORD_BIN", ROOT / "target" / "release" / "fjord"))
DATA = OUT / "data" / "filter"
VALUE = b"v" * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start():
    port, http = free_port(), free_port()
    proc = subprocess.Popen([str(FJORD), "serve", "--data-dir", str(DATA), "--listen",
                             f"127.0.0.1:{port}", "--http-listen", f"127.0.0.1:{http}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, RUST_LOG="warn"))
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{http}/health", timeout=1)
            return proc, f"127.0.0.1:{port}", http
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("fjord did not start")


def counter(http, name, topic):
    text = urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics").read().decode()
    m = re.search(rf'^{name}{{topic="{re.escape(topic)}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def fill(addr, topic, n):
    p = Producer({"bootstrap.servers": addr, "linger.ms": 5, "batch.size": 1000000})
    for i in range(n):
        tag = b"hit" if i % 100 == 0 else b"miss"
        while True:
            try:
                p.produce(topic, VALUE, headers=[("TAGS", tag)])
                break
            except BufferError:
                p.poll(0.01)
    p.flush(300)


def read_all(addr, topic, keep):
    """Seconds to read the partition from 0 to EOF, and how many records `keep` accepted."""
    c = Consumer({"bootstrap.servers": addr, "group.id": f"b-{time.time_ns()}",
                  "enable.partition.eof": True, "enable.auto.commit": False,
                  "fetch.max.bytes": 52428800, "max.partition.fetch.bytes": 10485760})
    c.assign([TopicPartition(topic, 0, 0)])
    kept = 0
    t0 = time.perf_counter()
    idle_since = time.perf_counter()
    while True:
        # A short timeout: consume() waits it out whenever fewer than the count are ready, which
        # would end every run with a wait.
        msgs = c.consume(10000, timeout=0.05)
        if not msgs:
            if time.perf_counter() - idle_since > 30:
                raise RuntimeError(f"{topic}: no EOF")
            continue
        idle_since = time.perf_counter()
        eof = False
        for m in msgs:
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof = True
                    continue
                raise RuntimeError(m.error())
            kept += keep(m)
        if eof:
            break
    secs = time.perf_counter() - t0
    c.close()
    return secs, kept


def is_hit(m):
    return any(k == "TAGS" and v == b"hit" for k, v in (m.headers() or []))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(DATA, ignore_errors=True)
    proc, addr, http = start()
    try:
        admin = AdminClient({"bootstrap.servers": addr})
        admin.create_topics([NewTopic("src", 1, 1)])["src"].result(30)
        fill(addr, "src", a.records)
        cfg = {"fjord.view.source": "src", "fjord.view.filter.type": "tag",
               "fjord.view.filter.expression": "hit"}
        admin.create_topics([NewTopic("hits", -1, -1, config=cfg)])["hits"].result(30)
        runs = {"view_s": [], "client_s": [], "view_sent": [], "view_scanned": [],
                "client_sent": []}
        want = (a.records + 99) // 100
        for _ in range(a.reps):
            sent0 = counter(http, "fjord_topic_bytes_out_total", "hits")
            scan0 = counter(http, "fjord_view_bytes_scanned_total", "hits")
            secs, got = read_all(addr, "hits", lambda m: 1)
            assert got == want, (got, want)
            runs["view_s"].append(secs)
            runs["view_sent"].append(counter(http, "fjord_topic_bytes_out_total", "hits") - sent0)
            runs["view_scanned"].append(
                counter(http, "fjord_view_bytes_scanned_total", "hits") - scan0)
            sent0 = counter(http, "fjord_topic_bytes_out_total", "src")
            secs, got = read_all(addr, "src", is_hit)
            assert got == want, (got, want)
            runs["client_s"].append(secs)
            runs["client_sent"].append(counter(http, "fjord_topic_bytes_out_total", "src") - sent0)
        med = {k: statistics.median(v) for k, v in runs.items()}
        report = {
            "records": a.records, "matching": want, **med,
            "bytes_sent_ratio_client_over_view": med["client_sent"] / med["view_sent"],
            "speedup_view_over_client": med["client_s"] / med["view_s"],
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        shutil.rmtree(DATA, ignore_errors=True)
    (OUT / "filter.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
