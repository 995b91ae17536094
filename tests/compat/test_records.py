"""Produce, Fetch, ListOffsets, DeleteRecords: error codes and offsets, Kafka vs Fjord."""

import struct
import time

import pytest

import kw
from compat import Case, D, check, params

E = "error_code"
EARLIEST, LATEST, MAX_TS, EARLIEST_LOCAL = -2, -1, -3, -4


def now_ms():
    return int(time.time() * 1000)


# ----------------------------------------------------------------- produce
def produce(records=((b"k", b"v"),), partition=0, acks=-1, configs=None, topic=None,
            compression=0, fields=("error_code", "base_offset", "log_append_time_ms",
                                   "log_start_offset")):
    def fn(s):
        n = topic(s) if topic else s.topic_t(configs=configs)
        recs = records(s) if callable(records) else records
        p = s.produce_raw(n, partition, s.batch(recs, compression), acks=acks)
        if p is None:
            return None
        return tuple(p[f] for f in fields)
    return fn


def produce_delay_header(s):
    """One record with TIMER_DELAY_MS=600000: the answer's base offset and the log end after."""
    from kafka.record.default_records import DefaultRecordBatchBuilder
    n = s.topic_t()
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                  producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                  batch_size=1 << 30)
    b.append(0, timestamp=int(time.time() * 1000), key=b"k", value=b"v",
             headers=[("TIMER_DELAY_MS", b"600000")])
    p = s.produce_raw(n, 0, bytes(b.build()))
    return p["error_code"], p["base_offset"], s.list_offsets(n, 0, LATEST)[1]


def produce_twice(s):
    n = s.topic_t()
    a = s.produce(n, [(b"a", b"1"), (b"b", b"2")])
    b = s.produce(n, [(b"c", b"3")])
    return a, b


def produce_acks0(s):
    n = s.topic_t()
    s.produce_raw(n, 0, s.batch([(b"k", b"v")]), acks=0)
    deadline = time.monotonic() + 10
    while True:
        r = s.list_offsets(n, 0, LATEST)
        if r[1] == 1 or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


def keyless_compacted(s):
    n = s.topic_t(configs={"cleanup.policy": "compact"})
    p = s.produce_raw(n, 0, s.batch([(None, b"v"), (b"k", b"v")]))
    return p[E], [e["batch_index"] for e in p["record_errors"]], s.list_offsets(n, 0, LATEST)[1]


def log_append_time(s):
    n = s.topic_t(configs={"message.timestamp.type": "LogAppendTime"})
    before = now_ms()
    p = s.produce_raw(n, 0, s.batch([(b"k", b"v", 1000)]))
    return p[E], before - 5000 <= p["log_append_time_ms"] <= now_ms() + 5000


def corrupt_crc(s):
    n = s.topic_t()
    b = bytearray(s.batch([(b"k", b"v")]))
    b[-1] ^= 0xFF  # last byte of the value: CRC no longer matches
    p = s.produce_raw(n, 0, bytes(b))
    return p[E], s.list_offsets(n, 0, LATEST)[1]


def legacy_magic1(s):
    from kafka.record.legacy_records import LegacyRecordBatchBuilder
    b = LegacyRecordBatchBuilder(magic=1, compression_type=0, batch_size=1 << 20)
    b.append(0, timestamp=now_ms(), key=b"k", value=b"v")
    n = s.topic_t()
    p = s.produce_raw(n, 0, bytes(b.build()))
    return p[E]


def empty_records(s):
    n = s.topic_t()
    p = s.produce_raw(n, 0, b"")
    return p[E]


def old_produce_version(version):
    def fn(s):
        n = s.topic_t()
        try:
            r = s.call("Produce", version, acks=-1, timeout_ms=5000, topic_data=[
                {"name": n, "partition_data": [{"index": 0, "records": s.batch([(b"k", b"v")])}]}])
        except (ConnectionError, OSError, struct.error) as e:
            return f"closed ({type(e).__name__})"
        return r["responses"][0]["partition_responses"][0][E]
    return fn


def init_pid_raw(s):
    deadline = time.monotonic() + 20
    while True:  # Kafka answers 14 COORDINATOR_LOAD_IN_PROGRESS right after startup
        r = s.call("InitProducerId", 4, transactional_id=None, transaction_timeout_ms=-1,
                   producer_id=-1, producer_epoch=-1)
        if r[E] not in (14, 15) or time.monotonic() > deadline:
            return r
        time.sleep(0.1)


def init_pid(s):
    r = init_pid_raw(s)
    assert r[E] == 0, r
    return r["producer_id"], r["producer_epoch"]


def idem_batch(s, pid, epoch, seq, n=1):
    return s.batch([(b"k%d" % i, b"v") for i in range(n)], producer_id=pid,
                   producer_epoch=epoch, base_sequence=seq)


def idempotent(scenario):
    def fn(s):
        n = s.topic_t()
        pid, epoch = init_pid(s)
        out = []
        for seq, ep_delta, cnt in scenario:
            p = s.produce_raw(n, 0, idem_batch(s, pid, epoch + ep_delta, seq, cnt))
            out.append((p[E], p["base_offset"]))
        return out, s.list_offsets(n, 0, LATEST)[1]
    return fn


def unknown_producer_id(s):
    n = s.topic_t()
    p = s.produce_raw(n, 0, idem_batch(s, 987654321, 0, 0))
    return p[E]


def init_producer_id(s):
    r = init_pid_raw(s)
    return r[E], r["producer_id"] >= 0, r["producer_epoch"]


def wait_txn_coordinator(s, txid):
    """Kafka creates and loads __transaction_state on the first FindCoordinator(key_type=1):
    15 until it exists, then 16/14 from InitProducerId while it loads (a client retries)"""
    from test_transactions import txn_coordinator
    c = txn_coordinator(s, txid)
    assert c[E] == 0, c


def init_transactional(s):
    txid = "tx-" + s.topic()
    wait_txn_coordinator(s, txid)
    deadline = time.monotonic() + 20
    while True:
        r = s.call("InitProducerId", 4, transactional_id=txid,
                   transaction_timeout_ms=60000, producer_id=-1, producer_epoch=-1)
        if r[E] not in (14, 15, 16) or time.monotonic() > deadline:
            return r[E], r["producer_id"] >= 0, r["producer_epoch"]
        time.sleep(0.1)


def transactional_batch_outside_txn(s):
    """a transactional batch from a producer id that never added the partition to a txn"""
    from kafka.record.default_records import DefaultRecordBatchBuilder
    n = s.topic_t()
    pid, epoch = init_pid(s)
    wait_txn_coordinator(s, "tx-" + s.topic())
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=True,
                                  producer_id=pid, producer_epoch=epoch, base_sequence=0,
                                  batch_size=1 << 20)
    b.append(0, timestamp=None, key=b"k", value=b"v", headers=[])
    deadline = time.monotonic() + 20
    while True:  # Kafka: 19 NOT_ENOUGH_REPLICAS (retriable) while its verification cannot
        # reach the loading transaction coordinator
        r = s.call("Produce", 9, transactional_id="tx-" + s.topic(), acks=-1, timeout_ms=5000,
                   topic_data=[{"name": n, "partition_data": [{"index": 0,
                                                                "records": bytes(b.build())}]}])
        err = r["responses"][0]["partition_responses"][0][E]
        if err != 19 or time.monotonic() > deadline:
            return err
        time.sleep(0.1)


def log_dirs(s):
    n = s.topic_t()
    s.fill(n, 3)
    r = s.call("DescribeLogDirs", 4, topics=[{"topic": n, "partitions": [0]}])
    return r[E], [(d[E], [(t["name"] == n, [(p["partition_index"], p["partition_size"] > 0,
                                            p["offset_lag"], p["is_future_key"])
                                           for p in t["partitions"]]) for t in d["topics"]],
                   d["total_bytes"] > 0, d["usable_bytes"] > 0) for d in r["results"]]


# ----------------------------------------------------------------- fetch
def fetch_view(p):
    if "top_error" in p:
        return p
    return (p[E], p["high_watermark"], p["last_stable_offset"], p["log_start_offset"],
            len(p["records"] or b"") > 0)


def fetch(offset, n_records=3, topic=None, partition=0, delete_to=None, **kw_):
    def fn(s):
        n = topic(s) if topic else s.topic_t()
        if n_records and not topic:
            s.fill(n, n_records)
        if delete_to is not None:
            assert s.delete_records(n, 0, delete_to)[0] == 0
        return fetch_view(s.fetch(n, partition, offset, **kw_))
    return fn


def fetch_records(offset):
    def fn(s):
        n = s.topic_t()
        s.fill(n, 3)
        s.fill(n, 2)
        return s.fetch_records(n, 0, offset)
    return fn


def fetch_unknown_topic_id(s):
    r = s.call("Fetch", 13, replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20,
               isolation_level=0, session_id=0, session_epoch=-1,
               topics=[{"topic_id": "11111111-2222-3333-4444-555555555555", "partitions": [
                   {"partition": 0, "current_leader_epoch": -1, "fetch_offset": 0,
                    "last_fetched_epoch": -1, "log_start_offset": -1,
                    "partition_max_bytes": 1 << 20}]}],
               forgotten_topics_data=[], rack_id="")
    if r[E]:
        return ("top", r[E])
    return r["responses"][0]["partitions"][0][E]


def fetch_long_poll(s):
    """max_wait_ms 500 at the end of the log: waits, then an empty answer"""
    n = s.topic_t()
    t0 = time.monotonic()
    p = s.fetch(n, 0, 0, max_wait_ms=500)
    waited = time.monotonic() - t0
    return p[E], len(p["records"] or b""), waited >= 0.4


def fetch_woken_by_produce(s):
    """a long-polling Fetch (max_wait 10 s) at the end returns soon after a produce"""
    n = s.topic_t()
    with s.conn() as c:
        t0 = time.monotonic()
        pending = c.send("Fetch", 12, replica_id=-1, max_wait_ms=10000, min_bytes=1,
                         max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1,
                         topics=[{"topic": n, "partitions": [
                             {"partition": 0, "current_leader_epoch": -1, "fetch_offset": 0,
                              "last_fetched_epoch": -1, "log_start_offset": -1,
                              "partition_max_bytes": 1 << 20}]}],
                         forgotten_topics_data=[], rack_id="")
        time.sleep(0.3)  # let the fetch park (nothing to poll for: it is in the broker)
        s.fill(n, 1)
        r = pending()
        p = r["responses"][0]["partitions"][0]
        return p[E], p["high_watermark"], len(p["records"] or b"") > 0, \
            time.monotonic() - t0 < 5


def fetch_two_partitions(s):
    n = s.topic_t(partitions=2)
    s.fill(n, 2, partition=0)
    s.fill(n, 3, partition=1)
    r = s.call("Fetch", 12, replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20,
               isolation_level=0, session_id=0, session_epoch=-1,
               topics=[{"topic": n, "partitions": [
                   {"partition": i, "current_leader_epoch": -1, "fetch_offset": 0,
                    "last_fetched_epoch": -1, "log_start_offset": -1,
                    "partition_max_bytes": 1 << 20} for i in (0, 1)]}],
               forgotten_topics_data=[], rack_id="")
    return sorted((p["partition_index"], p[E], p["high_watermark"])
                  for p in r["responses"][0]["partitions"])


def fetch_small_max_bytes(s):
    """KIP-74: the first batch is returned even when larger than max_bytes"""
    n = s.topic_t()
    s.produce(n, [(b"k", b"x" * 5000)])
    p = s.fetch(n, 0, 0, max_bytes=100)
    return p[E], len(p["records"] or b"") > 5000


def batches(s, n, offset=0):
    """-> [(base_offset, last_offset_delta, codec, timestamp_type, [(key, value)])]"""
    from kafka.record.memory_records import MemoryRecords
    p = s.fetch(n, 0, offset)
    out = []
    mr = MemoryRecords(bytes(p["records"] or b""))
    while mr.has_next():
        b = mr.next_batch()
        out.append((b.base_offset, b.last_offset_delta, b.compression_type, b.timestamp_type,
                    [(r.key, r.value) for r in b]))
    return out


def codec_round_trip(codec, topic_codec=None):
    """a batch compressed with `codec` (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd) is fetched
    back: codec and records as stored"""
    def fn(s):
        n = s.topic_t(configs={"compression.type": topic_codec} if topic_codec else None)
        err, base = s.produce(n, [(b"k%d" % i, b"v%d" % i) for i in range(3)],
                              compression=codec)
        return err, batches(s, n)
    return fn


def timestamps_fetched(configs=None):
    def fn(s):
        n = s.topic_t(configs=configs)
        s.produce(n, [(b"a", b"1", 1_000_000), (b"b", b"2", 2_000_000)])
        from kafka.record.memory_records import MemoryRecords
        mr = MemoryRecords(bytes(s.fetch(n, 0, 0)["records"]))
        b = mr.next_batch()
        ts = [r.timestamp for r in b]
        recent = all(abs(t - now_ms()) < 120_000 for t in ts)
        return b.timestamp_type, ts if not recent else "now"
    return fn


# ----------------------------------------------------------------- list offsets
def list_offsets(ts, records=None, topic=None, partition=0, delete_to=None, version=7,
                 isolation=0, configs=None):
    def fn(s):
        n = topic(s) if topic else s.topic_t(configs=configs)
        if records and not topic:
            s.produce(n, records)
        if delete_to is not None:
            assert s.delete_records(n, 0, delete_to)[0] == 0
        t = ts(s) if callable(ts) else ts
        err, off, found = s.list_offsets(n, partition, t, version=version, isolation=isolation)
        if found > 1_000_000_000_000:  # a wall-clock (log append) time: only "recent" compares
            found = "now" if abs(found - now_ms()) < 120_000 else found
        return err, off, found
    return fn


TS3 = [(b"a", b"1", 1_000_000), (b"b", b"2", 3_000_000), (b"c", b"3", 2_000_000)]
REC3 = [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]


# ----------------------------------------------------------------- delete records
def delete_records(offset, n_records=3, topic=None, partition=0, first=None):
    def fn(s):
        n = topic(s) if topic else s.topic_t()
        if n_records and not topic:
            s.fill(n, n_records)
        if first is not None:
            assert s.delete_records(n, 0, first)[0] == 0
        return s.delete_records(n, partition, offset)
    return fn


def delete_then_earliest(s):
    n = s.topic_t()
    s.fill(n, 5)
    s.delete_records(n, 0, 3)
    return s.list_offsets(n, 0, EARLIEST), fetch_view(s.fetch(n, 0, 1))


CASES = [
    # produce
    Case("produce/ok", "Produce v9: error, base offset, log_append_time, log_start_offset",
         produce(), expect=(0, 0, -1, 0)),
    Case("produce/delay-header", "Produce: a record with header TIMER_DELAY_MS=600000 (base "
         "offset, log end after)", produce_delay_header,
         diff=D((0, 0, 1), (0, -1, 0),
                "Fjord extension (docs/DELAY.md): RocketMQ's delay headers schedule the record; "
                "it is appended at its due time, the answer's base offset is -1")),
    Case("produce/base-offsets", "Produce: base offsets of two consecutive batches",
         produce_twice, expect=((0, 0), (0, 2))),
    Case("produce/unknown-partition", "Produce to a partition that does not exist",
         produce(partition=5), expect=(3, -1, -1, -1)),
    Case("produce/unknown-topic", "Produce to a topic that does not exist (no auto-create)",
         produce(topic=lambda s: s.topic("missing")), expect=(3, -1, -1, -1)),
    Case("produce/acks-1", "Produce acks=1", produce(acks=1), expect=(0, 0, -1, 0)),
    Case("produce/acks-2", "Produce acks=2 (invalid)", produce(acks=2),
         expect=(21, -1, -1, -1)),
    Case("produce/acks-minus-2", "Produce acks=-2 (invalid)", produce(acks=-2),
         expect=(21, -1, -1, -1)),
    Case("produce/acks-0", "Produce acks=0: no answer, record appended", produce_acks0,
         expect=(0, 1, -1)),
    Case("produce/too-large", "Produce a 1.1 MB batch (> message.max.bytes)",
         produce(records=((b"k", b"v" * 1_100_000),)), expect=(10, -1, -1, -1)),
    Case("produce/too-large-topic", "Produce 500 B to a topic with max.message.bytes=200",
         produce(records=((b"k", b"v" * 500),), configs={"max.message.bytes": "200"}),
         expect=(10, -1, -1, -1)),
    Case("produce/keyless-compacted", "Produce a keyless record to a compacted topic (KIP-467)",
         keyless_compacted, expect=(87, [0], 0)),
    Case("produce/log-append-time", "Produce to a LogAppendTime topic: log_append_time_ms set",
         log_append_time, expect=(0, True)),
    Case("produce/future-timestamp", "Produce a record stamped 2 h in the future",
         produce(records=lambda s: [(b"k", b"v", now_ms() + 7_200_000)],
                 fields=("error_code",)), expect=(32,)),
    Case("produce/past-timestamp", "Produce a 1-hour-old record, message.timestamp.before.max.ms"
         "=60000", produce(records=lambda s: [(b"k", b"v", now_ms() - 3_600_000)],
                           configs={"message.timestamp.before.max.ms": "60000"},
                           fields=("error_code",)), expect=(32,)),
    Case("produce/corrupt-crc", "Produce a batch whose CRC does not match", corrupt_crc,
         expect=(2, 0)),
    Case("produce/magic-1", "Produce a magic v1 (legacy) message set with Produce v9",
         legacy_magic1, expect=87),
    Case("produce/empty-records", "Produce with an empty records field", empty_records,
         expect=87),
    Case("produce/v2", "Produce v2 (removed in Kafka 4.0, KIP-896)", old_produce_version(2)),
    Case("produce/v3", "Produce v3 (the oldest Kafka 4 accepts)", old_produce_version(3),
         expect=0),
    Case("produce/min-isr-above-rf", "Produce acks=all to a topic with min.insync.replicas=2 "
         "and RF 1", produce(configs={"min.insync.replicas": "2"}), expect=(0, 0, -1, 0)),
    Case("produce/min-isr-above-rf-acks1", "Produce acks=1 to a topic with "
         "min.insync.replicas=2", produce(acks=1, configs={"min.insync.replicas": "2"}),
         expect=(0, 0, -1, 0)),
    Case("produce/transactional-outside-txn", "Produce a transactional batch whose partition "
         "was never added to a transaction (an idempotent producer id, a transactional id "
         "never initialized)", transactional_batch_outside_txn, expect=49),
    Case("init-producer-id/transactional", "InitProducerId with a transactional id",
         init_transactional, expect=(0, True, 0)),
    Case("log-dirs/describe", "DescribeLogDirs v4: partition size, lag, total/usable bytes",
         log_dirs, expect=(0, [(0, [(True, [(0, True, 0, False)])], True, True)])),
    Case("init-producer-id", "InitProducerId v4 (idempotent): id >= 0, epoch 0",
         init_producer_id, expect=(0, True, 0)),
    Case("idempotent/in-order", "Idempotent produce: seq 0 then seq 2 (2 records each)",
         idempotent([(0, 0, 2), (2, 0, 2)]), expect=([(0, 0), (0, 2)], 4)),
    Case("idempotent/duplicate", "Idempotent produce: the same batch twice (duplicate)",
         idempotent([(0, 0, 2), (0, 0, 2)]), expect=([(0, 0), (0, 0)], 2)),
    Case("idempotent/gap", "Idempotent produce: seq 0 then seq 5 (gap)",
         idempotent([(0, 0, 1), (5, 0, 1)]), expect=([(0, 0), (45, -1)], 1)),
    Case("idempotent/first-seq-not-0", "Idempotent produce: first batch with seq 3",
         idempotent([(3, 0, 1)]), expect=([(0, 0)], 1)),
    Case("idempotent/old-epoch", "Idempotent produce: epoch -1 after epoch 0... (fenced)",
         idempotent([(0, 1, 1), (1, 0, 1)])),
    Case("idempotent/unknown-producer-id", "Idempotent produce with a never-issued producer id",
         unknown_producer_id),
    Case("codec/none", "Produce+Fetch an uncompressed batch", codec_round_trip(0)),
    Case("codec/gzip", "Produce+Fetch a gzip batch", codec_round_trip(1)),
    Case("codec/snappy", "Produce+Fetch a snappy batch", codec_round_trip(2)),
    Case("codec/lz4", "Produce+Fetch an lz4 batch", codec_round_trip(3)),
    Case("codec/zstd", "Produce+Fetch a zstd batch", codec_round_trip(4)),
    Case("codec/topic-lz4-uncompressed-in", "Topic compression.type=lz4, uncompressed batch "
         "in: the codec fetched", codec_round_trip(0, "lz4")),
    Case("codec/topic-gzip-zstd-in", "Topic compression.type=gzip, zstd batch in: the codec "
         "fetched", codec_round_trip(4, "gzip")),
    Case("codec/topic-uncompressed-lz4-in", "Topic compression.type=uncompressed, lz4 batch "
         "in: the codec fetched", codec_round_trip(3, "uncompressed")),
    Case("timestamps/create-time", "Fetched timestamps of a CreateTime topic",
         timestamps_fetched(), expect=(0, [1_000_000, 2_000_000])),
    Case("timestamps/log-append-time", "Fetched timestamps of a LogAppendTime topic",
         timestamps_fetched({"message.timestamp.type": "LogAppendTime"}), expect=(1, "now")),
    # fetch
    Case("fetch/out-of-range", "Fetch at offset 5 of an empty partition",
         fetch(5, n_records=0), expect=(1, -1, -1, -1, False)),
    Case("fetch/at-end", "Fetch at the high watermark: empty, offsets reported",
         fetch(3), expect=(0, 3, 3, 0, False)),
    Case("fetch/beyond-end", "Fetch at HW+1", fetch(4), expect=(1, -1, -1, -1, False)),
    Case("fetch/negative-offset", "Fetch at offset -1", fetch(-1),
         expect=(1, -1, -1, -1, False)),
    Case("fetch/records", "Fetch from 0: offsets, keys, values of two batches",
         fetch_records(0)),
    Case("fetch/middle", "Fetch from 3 (a batch boundary inside the log)", fetch_records(3)),
    Case("fetch/mid-batch", "Fetch from 1 (inside the first batch)", fetch_records(1)),
    Case("fetch/below-log-start", "Fetch below the log start offset after DeleteRecords",
         fetch(0, delete_to=2), expect=(1, -1, -1, -1, False)),
    Case("fetch/log-start-reported", "Fetch at the log start after DeleteRecords",
         fetch(2, delete_to=2), expect=(0, 3, 3, 2, True)),
    Case("fetch/unknown-topic", "Fetch v12: unknown topic",
         fetch(0, topic=lambda s: s.topic("missing")), expect=(3, -1, -1, -1, False)),
    Case("fetch/unknown-partition", "Fetch v12: partition 7 of a 1-partition topic",
         fetch(0, partition=7), expect=(3, -1, -1, -1, False)),
    Case("fetch/unknown-topic-id", "Fetch v13: unknown topic id", fetch_unknown_topic_id,
         expect=100),
    Case("fetch/read-committed", "Fetch read_committed: LSO = HW without transactions",
         fetch(0, isolation=1), expect=(0, 3, 3, 0, True)),
    Case("fetch/long-poll", "Fetch with max_wait_ms=500 at the end: waits, empty",
         fetch_long_poll, expect=(0, 0, True)),
    Case("fetch/woken-by-produce", "Long-polling Fetch (10 s) returns when a record arrives",
         fetch_woken_by_produce, expect=(0, 1, True, True)),
    Case("fetch/two-partitions", "Fetch of two partitions in one request",
         fetch_two_partitions, expect=[(0, 0, 2), (1, 0, 3)]),
    Case("fetch/kip-74", "Fetch max_bytes=100 still returns the first (5 kB) batch",
         fetch_small_max_bytes, expect=(0, True)),
    # list offsets
    Case("offsets/earliest-empty", "ListOffsets EARLIEST of an empty partition",
         list_offsets(EARLIEST), expect=(0, 0, -1)),
    Case("offsets/latest-empty", "ListOffsets LATEST of an empty partition",
         list_offsets(LATEST), expect=(0, 0, -1)),
    Case("offsets/earliest", "ListOffsets EARLIEST after 3 records", list_offsets(
        EARLIEST, REC3), expect=(0, 0, -1)),
    Case("offsets/latest", "ListOffsets LATEST after 3 records", list_offsets(LATEST, REC3),
         expect=(0, 3, -1)),
    Case("offsets/by-timestamp", "ListOffsets by timestamp (between records)",
         list_offsets(1_500_000, TS3), expect=(0, 1, 3_000_000)),
    Case("offsets/by-timestamp-exact", "ListOffsets by a record's exact timestamp",
         list_offsets(2_000_000, TS3), expect=(0, 1, 3_000_000)),
    Case("offsets/by-timestamp-first", "ListOffsets by timestamp 0", list_offsets(0, TS3),
         expect=(0, 0, 1_000_000)),
    Case("offsets/by-timestamp-after-all", "ListOffsets by a timestamp after every record",
         list_offsets(3_000_001, TS3), expect=(0, -1, -1)),
    Case("offsets/by-timestamp-empty", "ListOffsets by timestamp of an empty partition",
         list_offsets(1000), expect=(0, -1, -1)),
    Case("offsets/max-timestamp", "ListOffsets MAX_TIMESTAMP (-3, KIP-734)",
         list_offsets(MAX_TS, TS3), expect=(0, 1, 3_000_000)),
    Case("offsets/max-timestamp-empty", "ListOffsets MAX_TIMESTAMP of an empty partition",
         list_offsets(MAX_TS), expect=(0, -1, -1)),
    Case("offsets/earliest-local", "ListOffsets EARLIEST_LOCAL (-4, KIP-1005) v8",
         list_offsets(EARLIEST_LOCAL, REC3, version=8)),
    Case("offsets/earliest-after-delete", "ListOffsets EARLIEST after DeleteRecords to 2",
         list_offsets(EARLIEST, REC3, delete_to=2), expect=(0, 2, -1)),
    Case("offsets/latest-read-committed", "ListOffsets LATEST read_committed (= LSO)",
         list_offsets(LATEST, REC3, isolation=1), expect=(0, 3, -1)),
    Case("offsets/unknown-topic", "ListOffsets: unknown topic",
         list_offsets(LATEST, topic=lambda s: s.topic("missing")), expect=(3, -1, -1)),
    Case("offsets/unknown-partition", "ListOffsets: partition 9 of a 1-partition topic",
         list_offsets(LATEST, partition=9), expect=(3, -1, -1)),
    Case("offsets/v1", "ListOffsets v1 LATEST", list_offsets(LATEST, REC3, version=1)),
    Case("offsets/log-append-time", "ListOffsets by timestamp on a LogAppendTime topic "
         "(record timestamps replaced)", list_offsets(lambda s: now_ms() - 60_000, TS3,
                                                      configs={"message.timestamp.type":
                                                               "LogAppendTime"}),
         ),
    # delete records
    Case("delete-records/ok", "DeleteRecords to offset 2 of 3", delete_records(2),
         expect=(0, 2)),
    Case("delete-records/hw", "DeleteRecords to -1 (the high watermark)", delete_records(-1),
         expect=(0, 3)),
    Case("delete-records/zero", "DeleteRecords to offset 0", delete_records(0), expect=(0, 0)),
    Case("delete-records/beyond-hw", "DeleteRecords to offset 10 of 3", delete_records(10),
         expect=(1, -1)),
    Case("delete-records/backwards", "DeleteRecords to 1 after deleting to 2",
         delete_records(1, first=2), expect=(0, 2)),
    Case("delete-records/unknown-topic", "DeleteRecords: unknown topic",
         delete_records(1, topic=lambda s: s.topic("missing")), expect=(3, -1)),
    Case("delete-records/unknown-partition", "DeleteRecords: partition 4 of 1",
         delete_records(1, partition=4), expect=(3, -1)),
    Case("delete-records/then-earliest-and-fetch", "After DeleteRecords to 3: EARLIEST and a "
         "fetch at 1", delete_then_earliest, expect=((0, 3, -1), (1, -1, -1, -1, False))),
]


@pytest.mark.parametrize("case", params(CASES, "records"))
def test_records(pair, case):
    check(pair, case)
