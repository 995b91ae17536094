#!/usr/bin/env python3
"""Share-group (KIP-932 queue) benchmarks, a fresh Fjord broker for each measurement, the same
client throughout (confluent-kafka 2.16 / librdkafka 2.16: Consumer and ShareConsumer):

    python3 bench/share.py [--records 500000] [--reps 3] [--work-ms 1] [--secs 10]
                           [--mem-groups 125] [--mem-partitions 8] [--backlog 1000000]
                           [--dlq-records 1000000] [--only throughput,scaling,memory,dlq]

  throughput  --records 1 KiB records on one partition (`fjord bench produce`), drained from
              offset 0 by a classic Consumer and by a ShareConsumer in implicit mode (each
              poll accepts the previous poll's records, piggy-backed on the next ShareFetch),
              alternated, a new group each time: records/s from the first record to the last
              (median of --reps), share / classic. The ShareConsumer runs with librdkafka's
              defaults, then with fetch.max.bytes=4 MiB (and max.poll.records=2000)
  scaling     one partition; every record costs the application --work-ms of sleeping (work
              that is not CPU). 1, 2, 4 and 8 ShareConsumers (threads, max.poll.records
              --max-poll) of one share group, 8 with librdkafka's max.poll.records, and 1 and 8
              members of a classic group: records/s over --secs after --warmup seconds
  memory      --mem-groups share groups of one member each, on --mem-partitions partitions,
              every window filled to the lock limit (2000) with acquired records that are never
              acknowledged (raw ShareGroupHeartbeat + ShareFetch v1; lock 1 h): first over a
              topic of about one window per partition, then over one of --backlog records (all
              but the windows stay pending in the log). Broker VmRSS and RssAnon before and
              after each: bytes per in-flight record
  dlq         --dlq-records records (--dlq-partitions) through redelivery into the dead-letter
              topic: group configs share.delivery.count.limit=2 and
              errors.deadletterqueue.topic.name; --dlq-consumers processes (explicit mode)
              RELEASE every first delivery, then REJECT (even offsets) or RELEASE again (odd
              offsets: archived at the limit). Broker RSS every --sample s (start, peak, end),
              the rate, and the dead-letter topic's record count at the end (must equal
              --dlq-records)
The report goes to stdout and bench/out/share.json.
"""
import argparse
import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from confluent_kafka import (AcknowledgeType, Consumer, KafkaError, ShareConsumer,
                             TopicPartition)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ResourceType)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
FJORD = Path(os.environ.get("FJORD_BIN", ROOT / "target" / "release" / "fjord"))
DATA = OUT / "data" / "share"
QUIET = {"log_level": 0}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fjord:
    """A fresh broker over an empty DATA."""

    def __init__(self):
        shutil.rmtree(DATA, ignore_errors=True)
        self.port, self.http = free_port(), free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(FJORD), "serve", "--data-dir", str(DATA), "--listen", self.addr,
             "--http-listen", f"127.0.0.1:{self.http}"],
            stdout=subprocess.DEVNULL, stderr=open(OUT / "share.stderr.log", "w"),
            env=dict(os.environ, RUST_LOG="warn"))
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.http}/health", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("fjord did not start: see bench/out/share.stderr.log")
                time.sleep(0.05)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        alive = self.proc.poll() is None
        self.proc.terminate()
        self.proc.wait(60)
        shutil.rmtree(DATA, ignore_errors=True)
        if not alive and exc[0] is None:
            raise RuntimeError("the broker died during the measurement")

    def mem_mb(self):
        """(VmRSS, RssAnon) in MiB."""
        v = {}
        for line in open(f"/proc/{self.proc.pid}/status"):
            k, _, rest = line.partition(":")
            if k in ("VmRSS", "RssAnon"):
                v[k] = int(rest.split()[0]) / 1024
        return v["VmRSS"], v["RssAnon"]

    def counter(self, name, **labels):
        """Sum of every sample of `name` whose labels include `labels`."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.http}/metrics").read().decode()
        total = 0.0
        for m in re.finditer(rf"^{name}(?:{{(.*)}})? (\S+)$", text, re.M):
            have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
            if all(have.get(k) == v for k, v in labels.items()):
                total += float(m.group(2))
        return total

    def produce(self, topic, count, partitions=1, size=1024):
        """`fjord bench produce`: pre-encoded 64 KiB batches, so filling is fast."""
        r = subprocess.run([str(FJORD), "bench", "produce", "-b", self.addr, "--topic", topic,
                            "--partitions", str(partitions), "--record-size", str(size),
                            "--count", str(count), "--json", "-q"],
                           capture_output=True, text=True, timeout=1800)
        out = json.loads(r.stdout[r.stdout.index("{"):])
        if out["errors"] or out["records"] != count:
            raise RuntimeError(f"bench produce: {out}")
        return out


def new_group(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def alter_groups(addr, groups, configs):
    """IncrementalAlterConfigs SET on GROUP resources (before anything consumes)."""
    res = [ConfigResource(ResourceType.GROUP, g, incremental_configs=[
        ConfigEntry(k, str(v), incremental_operation=AlterConfigOpType.SET)
        for k, v in configs.items()]) for g in groups]
    admin = AdminClient({"bootstrap.servers": addr, **QUIET})
    for i in range(0, len(res), 100):
        for f in admin.incremental_alter_configs(res[i:i + 100], request_timeout=30).values():
            f.result(timeout=30)


def share_group(addr, **configs):
    g = new_group("sg")
    alter_groups(addr, [g], {"share.auto.offset.reset": "earliest", **configs})
    return g


def share_consumer(addr, group, topic, **conf):
    c = ShareConsumer({"bootstrap.servers": addr, "group.id": group, **QUIET, **conf})
    c.subscribe([topic])
    return c


def classic_consumer(addr, group, topic):
    c = Consumer({"bootstrap.servers": addr, "group.id": group, "auto.offset.reset": "earliest",
                  **QUIET})
    c.subscribe([topic])
    return c


def real(msgs):
    """The records of a poll; errors other than transport noise stop the benchmark."""
    out = []
    for m in msgs:
        e = m.error()
        if e is None:
            out.append(m)
        elif e.code() not in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN,
                              KafkaError._PARTITION_EOF):
            raise RuntimeError(e)
    return out


# ---------------------------------------------------------------------------------------------
# throughput: classic Consumer vs ShareConsumer (implicit acknowledgement)
# ---------------------------------------------------------------------------------------------

def drain(poll, n, timeout=120):
    """Polls until n records arrived: (seconds from the first record to the n-th, from start)."""
    got, t0, first = 0, time.perf_counter(), None
    deadline = time.monotonic() + timeout
    while got < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {got} of {n} records in {timeout}s")
        k = len(real(poll()))
        if k and first is None:
            first = time.perf_counter()
        got += k
    end = time.perf_counter()
    return end - first, end - t0, got


# librdkafka's defaults, then two workarounds for the per-fetch read of fetch.max.bytes (50 MiB
# by default) that the broker does whatever room the window has (see docs/BENCHMARKS.md)
SHARE_VARIANTS = {
    "share": {},
    "share_fetch_4mib": {"fetch.max.bytes": 4 << 20},
    "share_fetch_4mib_poll_2000": {"fetch.max.bytes": 4 << 20, "max.poll.records": 2000},
    # a group window of 10000 records (Kafka's largest) instead of 2000: more per round trip
    "share_locks_10000": {"max.poll.records": 10000},
}
# Group configs of a variant (the rest of a variant is consumer config).
VARIANT_GROUP_CONFIGS = {"share_locks_10000": {"share.partition.max.record.locks": "10000"}}


def throughput(a):
    with Fjord() as f:
        f.produce("tput", a.records)
        runs = {"classic": [], **{k: [] for k in SHARE_VARIANTS}}
        for _ in range(a.reps):
            c = classic_consumer(f.addr, new_group("cg"), "tput")
            # consume() waits out its timeout while fewer than num_messages are queued: 500
            # (as many as a ShareConsumer poll) never waits here, 10000 did (5x slower)
            secs, total, got = drain(lambda: c.consume(500, timeout=0.05), a.records)
            c.close()
            runs["classic"].append({"records_per_s": got / secs, "secs": secs, "with_join_s": total})
            for name, conf in SHARE_VARIANTS.items():
                g = share_group(f.addr, **VARIANT_GROUP_CONFIGS.get(name, {}))
                s = share_consumer(f.addr, g, "tput", **conf)
                secs, total, got = drain(lambda: s.poll(0.05), a.records)
                s.commit_sync(30)  # implicit mode: accepts the last poll (close() does not)
                s.close()
                accepted = f.counter("fjord_share_acknowledgements_total", group=g, type="accept")
                runs[name].append({"records_per_s": got / secs, "secs": secs,
                                   "with_join_s": total, "received": got, "accepted": accepted,
                                   "redelivered": f.counter("fjord_share_redeliveries_total",
                                                            group=g)})
    med = {k: statistics.median(r["records_per_s"] for r in v) for k, v in runs.items()}
    return {"records": a.records, "runs": runs, "median_records_per_s": med,
            "over_classic": {k: med[k] / med["classic"] for k in SHARE_VARIANTS}}


# ---------------------------------------------------------------------------------------------
# scaling: members of one partition, each record costing --work-ms of non-CPU work
# ---------------------------------------------------------------------------------------------

def work_run(addr, topic, kind, members, a, max_poll=None):
    """records/s over a.secs (after a.warmup) and each member's share of them."""
    max_poll = max_poll or a.max_poll
    stop, counts = threading.Event(), [0] * members
    work = a.work_ms / 1000
    group = share_group(addr) if kind == "share" else new_group("cg")
    errors = []

    def member(i):
        try:
            if kind == "share":
                conf = {"max.poll.records": max_poll} if max_poll > 0 else {}
                c = share_consumer(addr, group, topic, **conf)
                poll = lambda: c.poll(0.1)  # noqa: E731
            else:
                c = classic_consumer(addr, group, topic)
                poll = lambda: c.consume(max_poll, timeout=0.1)  # noqa: E731
            while not stop.is_set():
                for _ in real(poll()):
                    time.sleep(work)
                    counts[i] += 1
            c.close()
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(repr(e))

    threads = [threading.Thread(target=member, args=(i,)) for i in range(members)]
    for t in threads:
        t.start()
    time.sleep(a.warmup)
    c0, t0 = list(counts), time.perf_counter()
    time.sleep(a.secs)
    c1, t1 = list(counts), time.perf_counter()
    stop.set()
    for t in threads:
        t.join(60)
    if errors:
        raise RuntimeError(errors)
    per = [y - x for x, y in zip(c0, c1)]
    return {"records_per_s": sum(per) / (t1 - t0), "per_member": per,
            "busy_members": sum(1 for p in per if p)}


def scaling(a):
    with Fjord() as f:
        # enough for the fastest run: 8 members for warmup + secs, a new group each run
        need = int(1.5 * 8 * (a.warmup + a.secs) * 1000 / a.work_ms)
        f.produce("work", need)
        out = {"work_ms_per_record": a.work_ms, "records_in_topic": need,
               "max_poll_records": a.max_poll, "share": {}, "classic": {}}
        for n in (1, 2, 4, 8):
            out["share"][n] = work_run(f.addr, "work", "share", n, a)
        # librdkafka's own max.poll.records (500; whole batches make it 512): 8 x 512 is more
        # than the 2000-record window, so some members wait for records
        out["share_8_default_max_poll"] = work_run(f.addr, "work", "share", 8, a, max_poll=-1)
        for n in (1, 8):
            out["classic"][n] = work_run(f.addr, "work", "classic", n, a)
    one = out["share"][1]["records_per_s"]
    out["share_8_over_1"] = out["share"][8]["records_per_s"] / one
    out["classic_8_over_1"] = out["classic"][8]["records_per_s"] / out["classic"][1]["records_per_s"]
    out["ideal_1_consumer_per_s"] = 1000 / a.work_ms
    return out


# ---------------------------------------------------------------------------------------------
# memory: raw ShareGroupHeartbeat / ShareFetch v1, so every window is filled and left acquired
# ---------------------------------------------------------------------------------------------

def uvarint(n):
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def cstr(s):
    return b"\x00" if s is None else uvarint(len(s.encode()) + 1) + s.encode()


def carr(items, enc):
    return uvarint(len(items) + 1) + b"".join(enc(x) for x in items)


class Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, n):
        self.o += n
        return self.b[self.o - n:self.o]

    def int(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def uv(self):
        n = shift = 0
        while True:
            c = self.b[self.o]
            self.o += 1
            n |= (c & 0x7F) << shift
            shift += 7
            if c < 0x80:
                return n

    def str(self):
        n = self.uv()
        return None if n == 0 else self.take(n - 1).decode()

    def arr(self, item):
        return [item() for _ in range(self.uv() - 1)]

    def tags(self):
        for _ in range(self.uv()):
            self.uv()
            self.take(self.uv())


class Wire:
    """One connection speaking ShareGroupHeartbeat (76) and ShareFetch (78), v1."""

    def __init__(self, addr):
        host, port = addr.split(":")
        self.s = socket.create_connection((host, int(port)), timeout=30)
        self.cid = 0

    def call(self, api, body):
        self.cid += 1
        head = struct.pack(">hhih", api, 1, self.cid, 5) + b"bench" + b"\x00"
        self.s.sendall(struct.pack(">i", len(head) + len(body)) + head + body)
        size = struct.unpack(">i", self.recv(4))[0]
        r = Reader(self.recv(size))
        assert r.int(">i") == self.cid
        r.tags()
        return r

    def recv(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise RuntimeError("connection closed")
            buf += chunk
        return bytes(buf)

    def join(self, group, topic):
        """A new member subscribed to topic: (member id, topic id, its partitions)."""
        member = uuid.uuid4().hex[:22]
        r = self.call(76, cstr(group) + cstr(member) + struct.pack(">i", 0) + cstr(None)
                      + carr([topic], cstr) + b"\x00")
        r.int(">i")
        err, msg = r.int(">h"), r.str()
        if err:
            raise RuntimeError(f"heartbeat: error {err} {msg}")
        r.str(), r.int(">i"), r.int(">i")
        assert r.int(">b") >= 0, "no assignment in the first heartbeat"
        [(tid, parts)] = r.arr(lambda: (r.take(16), r.arr(lambda: r.int(">i")), r.tags())[:2])
        return member, tid, parts

    def fetch(self, group, member, epoch, topic_id, parts, max_bytes=4 << 20):
        """One ShareFetch (epoch 0 opens the session on `parts`): offsets acquired per
        partition. The broker reads up to max_bytes of log per partition and fetch, whatever
        the window takes: kept small so that read buffers do not blur the RSS of the state."""
        part = lambda p: struct.pack(">i", p) + carr([], None) + b"\x00"  # noqa: E731
        topics = carr([topic_id], lambda t: t + carr(parts, part) + b"\x00") if epoch == 0 \
            else carr([], None)
        body = (cstr(group) + cstr(member)
                + struct.pack(">iiiiii", epoch, 20, 1, max_bytes, 100000, 100000)
                + topics + carr([], None) + b"\x00")
        r = self.call(78, body)
        r.int(">i")
        err, msg = r.int(">h"), r.str()
        if err:
            raise RuntimeError(f"share fetch: error {err} {msg}")
        r.int(">i")
        acquired = {}

        def rpart():
            p = r.int(">i")
            perr, pmsg = r.int(">h"), r.str()
            if perr:
                raise RuntimeError(f"share fetch partition {p}: error {perr} {pmsg}")
            r.int(">h"), r.str(), r.int(">i"), r.int(">i")
            r.tags()
            r.take(max(r.uv() - 1, 0))  # the records themselves
            for first, last in r.arr(lambda: (r.int(">q"), r.int(">q"), r.int(">h"), r.tags())[:2]):
                acquired[p] = acquired.get(p, 0) + last - first + 1
            r.tags()

        r.arr(lambda: (r.take(16), r.arr(rpart), r.tags()))
        return acquired


def fill_windows(f, groups, topic):
    """Each group's one member acquires until the broker hands out nothing more: the records
    each share-partition holds (acquired, never acknowledged), and the connection (kept open)."""
    w = Wire(f.addr)
    held = []
    for g in groups:
        member, tid, parts = w.join(g, topic)
        per, epoch = dict.fromkeys(parts, 0), 0
        while True:
            got = w.fetch(g, member, epoch, tid, parts)
            epoch += 1
            for p, k in got.items():
                per[p] += k
            if not got and epoch > 1:
                break
        held.extend(per.values())
    return w, held


def memory(a):
    """Two phases of --mem-groups groups on --mem-partitions partitions: `window_only` over a
    topic holding about one window per partition, `backlog` over one of --backlog records."""
    window, parts = 2000, a.mem_partitions
    with Fjord() as f:
        f.produce("window_only", window * parts, partitions=parts)
        f.produce("backlog", a.backlog, partitions=parts)
        conf = {"share.auto.offset.reset": "earliest", "share.record.lock.duration.ms": 3600000}
        phases = {"window_only": [new_group("w") for _ in range(a.mem_groups)],
                  "backlog": [new_group("b") for _ in range(a.mem_groups)]}
        warm = [new_group("warm") for _ in range(4)]
        alter_groups(f.addr, warm + phases["window_only"] + phases["backlog"], conf)
        # Warm-up: the first fetches' buffers and the allocator's first pages are not state.
        conns = [fill_windows(f, warm[:2], "window_only")[0],
                 fill_windows(f, warm[2:], "backlog")[0]]
        time.sleep(1)
        out = {"groups_per_phase": a.mem_groups, "partitions": parts, "lock_limit": window,
               "backlog_records": a.backlog}
        t_start = time.perf_counter()
        before = f.mem_mb()
        for name, groups in phases.items():
            t0 = time.perf_counter()
            w, held = fill_windows(f, groups, name)
            conns.append(w)
            fill_s = time.perf_counter() - t0
            time.sleep(1)
            after = f.mem_mb()
            n = sum(held)
            out[name] = {"fill_s": fill_s, "in_flight": n, "share_partitions": len(held),
                         "max_held_per_share_partition": max(held),
                         "min_held_per_share_partition": min(held),
                         "vmrss_mb_before": before[0], "vmrss_mb_after": after[0],
                         "rssanon_mb_before": before[1], "rssanon_mb_after": after[1],
                         "vmrss_bytes_per_record": (after[0] - before[0]) * 2**20 / n,
                         "rssanon_bytes_per_record": (after[1] - before[1]) * 2**20 / n}
            before = after
        # Members are removed after 45 s of silence (their records released): all measured
        # before that, or the counts above are not all still acquired.
        out["all_measured_within_s"] = time.perf_counter() - t_start
        for w in conns:
            w.s.close()
    return out


# ---------------------------------------------------------------------------------------------
# dlq: every record released once, then rejected or released past the limit: dead-lettered
# ---------------------------------------------------------------------------------------------

def dlq_member(addr, group, topic, stop, conf):
    """Runs in its own process (the GIL would serialise threads' acknowledge calls)."""
    c = share_consumer(addr, group, topic, **{"share.acknowledgement.mode": "explicit", **conf})
    release, reject = AcknowledgeType.RELEASE, AcknowledgeType.REJECT
    while not stop.is_set():
        for m in real(c.poll(0.1)):
            if m.delivery_count() == 1 or m.offset() % 2:
                c.acknowledge(m, release)  # the second release is past the limit: archived
            else:
                c.acknowledge(m, reject)
    c.commit_sync(30)
    c.close()


def dlq(a):
    with Fjord() as f:
        f.produce("orders", a.dlq_records, partitions=a.dlq_partitions)
        g = share_group(f.addr, **{"share.delivery.count.limit": 2,
                                   "errors.deadletterqueue.topic.name": "orders.dlq"})
        samples = [(0.0, *f.mem_mb(), 0.0)]
        ctx = multiprocessing.get_context("fork")
        stop = ctx.Event()
        conf = {"fetch.max.bytes": a.dlq_fetch_max_bytes} if a.dlq_fetch_max_bytes else {}
        procs = [ctx.Process(target=dlq_member, args=(f.addr, g, "orders", stop, conf))
                 for _ in range(a.dlq_consumers)]
        t0 = time.perf_counter()
        for p in procs:
            p.start()
        done = 0.0
        while done < a.dlq_records:
            time.sleep(0.1)
            done = f.counter("fjord_share_dead_letters_total", group=g)
            now = time.perf_counter() - t0
            if now - samples[-1][0] >= a.sample or done >= a.dlq_records:
                samples.append((now, *f.mem_mb(), done))
            if now > a.dlq_timeout or not all(p.is_alive() for p in procs):
                break
        secs = time.perf_counter() - t0
        stop.set()
        for p in procs:
            p.join(60)
        c = Consumer({"bootstrap.servers": f.addr, "group.id": "wm", **QUIET})
        md = c.list_topics("orders.dlq", timeout=10).topics["orders.dlq"]
        in_dlq = sum(c.get_watermark_offsets(TopicPartition("orders.dlq", p), timeout=10)[1]
                     for p in md.partitions)
        c.close()
        redelivered = f.counter("fjord_share_redeliveries_total", group=g)
        acks = {t: f.counter("fjord_share_acknowledgements_total", group=g, type=t)
                for t in ("accept", "release", "reject")}
        end = f.mem_mb()
    rss = [s[1] for s in samples]
    return {"records": a.dlq_records, "partitions": a.dlq_partitions, "consumer_conf": conf,
            "consumers": a.dlq_consumers, "secs": secs,
            "records_per_s": done / secs, "deliveries_per_s": (done + redelivered) / secs,
            "dead_letters": done, "dlq_topic_records": in_dlq, "redeliveries": redelivered,
            "acknowledgements": acks, "vmrss_mb_start": rss[0], "vmrss_mb_peak": max(rss),
            "vmrss_mb_end": end[0], "rssanon_mb_start": samples[0][2],
            "rssanon_mb_peak": max(s[2] for s in samples), "rssanon_mb_end": end[1],
            "samples": [[round(x, 1) for x in s] for s in samples]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=500_000, help="throughput: records drained")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--work-ms", type=float, default=1.0, help="scaling: sleep per record")
    ap.add_argument("--max-poll", type=int, default=50,
                    help="scaling: max.poll.records (8 members x 50 fit in one window)")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--secs", type=float, default=10.0)
    ap.add_argument("--mem-groups", type=int, default=125)
    ap.add_argument("--mem-partitions", type=int, default=8)
    ap.add_argument("--backlog", type=int, default=1_000_000)
    ap.add_argument("--dlq-records", type=int, default=1_000_000)
    ap.add_argument("--dlq-partitions", type=int, default=2)
    ap.add_argument("--dlq-consumers", type=int, default=2)
    ap.add_argument("--dlq-fetch-max-bytes", type=int, default=0,
                    help="dlq: the consumers' fetch.max.bytes (0: librdkafka's 50 MiB)")
    ap.add_argument("--dlq-timeout", type=float, default=900.0)
    ap.add_argument("--sample", type=float, default=2.0, help="dlq: seconds between RSS samples")
    ap.add_argument("--only", default="throughput,scaling,memory,dlq")
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    report = {"load_average_at_start": os.getloadavg()}
    for name in a.only.split(","):
        t0 = time.time()
        report[name] = globals()[name](a)
        report[name]["elapsed_s"] = time.time() - t0
        print(json.dumps({name: report[name]}, indent=2), flush=True)
    report["load_average_at_end"] = os.getloadavg()
    (OUT / "share.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
