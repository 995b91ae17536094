"""Delay and timer messages (RocketMQ R9) with real Kafka clients.

A record produced with one of RocketMQ's delay properties as a Kafka record header is not stored
in its partition at once: it is appended to the same topic-partition at its due time, at a new
offset (the end of the log then), keeping key, value, every header and its CreateTime:

- `DELAY` = level 1..18 (1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h), `0` = not
  delayed, above 18 = level 18;
- `TIMER_DELIVER_MS` = absolute epoch ms, `TIMER_DELAY_MS` = relative ms, `TIMER_DELAY_SEC` =
  relative seconds; due now or in the past = stored at once.

Values must be plain non-negative decimal integers; anything else, a null value, two delay headers
on one record or a delay beyond `--delay-max-ms` refuses the whole batch with INVALID_RECORD (87)
and nothing of it is ever stored. A batch holding a delayed record is answered with base offset
-1. Transactions refuse delayed records; idempotent producers work (also across restarts).

"Not early" is checked on the wall clock: the due time is noted when producing (before the
produce call, so it is never later than the broker's) or read from the record's own
TIMER_DELIVER_MS header, and the consumer notes when it saw the record (always after it was
appended): seen >= due - TOL_MS.

Clients: confluent-kafka (librdkafka) producers and consumers (assigned and in a group), kcat,
kafkajs (js/delay.js) and kafka-python. The operator surface (HTTP /v1/delay, `fjord delay`,
the fjord_delay_* metrics) is at the end.
"""

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

import kutil
from kutil import node, metric
from conftest import fjord_bin, wait_until

JS_DIR = Path(__file__).resolve().parent / "js"

TOL_MS = 50  # clock tolerance of the "not early" checks
LEVELS_MS = [1_000, 5_000, 10_000, 30_000, 60_000, 120_000, 180_000, 240_000, 300_000, 360_000,
             420_000, 480_000, 540_000, 600_000, 1_200_000, 1_800_000, 3_600_000, 7_200_000]
DEFAULT_MAX_MS = 400 * 24 * 3600 * 1000
INVALID_RECORD = 87


def now_ms():
    return int(time.time() * 1000)


def hdr(msg, name):
    """The value of header `name` of a confluent-kafka Message (or None)."""
    for k, v in msg.headers() or []:
        if k == name:
            return v
    return None


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def produce_reports(bootstrap, topic, messages, conf=None, timeout=30):
    """Produces `messages` (dicts: value/key/partition/headers/timestamp) with one producer and
    returns one (error, offset) per message, in input order. Messages produced back to back to
    one partition go in one batch (linger)."""
    p = kutil.producer(bootstrap, **{"linger.ms": 50, **(conf or {})})
    reports = [None] * len(messages)

    def cb_for(i):
        def cb(err, msg):
            reports[i] = (err, msg.offset())
        return cb

    for i, m in enumerate(messages):
        kw = {k: v for k, v in m.items() if k in ("value", "key", "partition", "headers", "timestamp")}
        kw.setdefault("partition", 0)
        p.produce(topic, on_delivery=cb_for(i), **kw)
    assert p.flush(timeout) == 0, "messages not delivered in time"
    return reports


def assert_delivered(reports):
    errors = [e for e, _ in reports if e is not None]
    assert not errors, f"delivery errors: {[str(e) for e in errors[:5]]}"


class Watcher:
    """A confluent-kafka consumer assigned to partitions from offset 0, polling in a thread and
    noting when it saw each record (ms). Survives broker restarts (librdkafka reconnects)."""

    def __init__(self, bootstrap, topic, partitions=(0,)):
        self.c = kutil.consumer(bootstrap, **{"fetch.wait.max.ms": 100, "fetch.error.backoff.ms": 50,
                                              "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 200})
        self.c.assign([TopicPartition(topic, p, 0) for p in partitions])
        self.seen = []  # (seen_ms, message)
        self.errors = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            m = self.c.poll(0.05)
            if m is None:
                continue
            t = time.time() * 1000
            if m.error():
                if m.error().code() not in (KafkaError._PARTITION_EOF, KafkaError._TRANSPORT,
                                            KafkaError._ALL_BROKERS_DOWN):
                    self.errors.append(m.error())
                continue
            with self._lock:
                self.seen.append((t, m))

    def snapshot(self):
        with self._lock:
            return list(self.seen)

    def values(self):
        return [m.value() for _, m in self.snapshot()]

    def wait_for(self, values, timeout, msg="records"):
        want = Counter(values)

        def ok():
            have = Counter(self.values())
            return all(have[v] >= n for v, n in want.items())

        try:
            wait_until(ok, timeout=timeout, interval=0.02, msg=msg)
        except AssertionError:
            missing = want - Counter(self.values())
            raise AssertionError(f"{msg}: {sum(missing.values())} never arrived, e.g. {list(missing)[:5]}")
        return {m.value(): (t, m) for t, m in self.snapshot()}

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.c.close()


@pytest.fixture
def watchers():
    made = []

    def make(bootstrap, topic, partitions=(0,)):
        w = Watcher(bootstrap, topic, partitions)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def read_all(bootstrap, topic, partition=0, timeout=20):
    """Every record of a partition, from the start to its current end (transaction markers take
    offsets but are not records)."""
    lo, hi = kutil.watermarks(bootstrap, topic, partition)
    assert lo == 0
    out = []
    if hi == 0:
        return out
    c = kutil.consumer(bootstrap, **{"enable.partition.eof": True})
    try:
        c.assign([TopicPartition(topic, partition, 0)])
        deadline = time.monotonic() + timeout
        while True:
            assert time.monotonic() < deadline, f"read {len(out)} records of {topic}[{partition}] up to {hi}"
            m = c.poll(0.1)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if m.offset() >= hi:
                        return out
                    continue
                raise KafkaException(m.error())
            out.append(m)
            if m.offset() + 1 >= hi:
                return out
    finally:
        c.close()


def assert_not_early(seen, due_by_value):
    early = [(v, due_by_value[v] - t) for v, (t, _) in seen.items()
             if v in due_by_value and t < due_by_value[v] - TOL_MS]
    assert not early, f"{len(early)} records seen before their due time (value, ms early): {early[:5]}"


# ---------------------------------------------------------------------------
# delivery at the due time, at a new offset, record kept
# ---------------------------------------------------------------------------

def test_delay_level_1_delivered_later_at_new_offset_keeping_the_record(broker, topic_name, watchers):
    kutil.create_topic(broker.bootstrap, topic_name)
    w = watchers(broker.bootstrap, topic_name)
    assert_delivered(produce_reports(broker.bootstrap, topic_name, [{"value": b"imm-0"}]))
    due = now_ms() + 1000
    (d,) = produce_reports(broker.bootstrap, topic_name, [{
        "value": b"delayed", "key": b"the-key", "timestamp": 1_700_000_000_123,
        "headers": [("app", b"a1"), ("DELAY", b"1"), ("UNIQ_KEY", b"u-1"), ("app", b"a2"), ("nil", None)],
    }])
    assert d == (None, None), f"delivery report of a delayed record: {d} (base offset -1 expected)"
    after = produce_reports(broker.bootstrap, topic_name, [{"value": b"imm-1"}, {"value": b"imm-2"}])
    assert_delivered(after)
    assert after[0][1] == 1, "immediate records after the delayed one take the next offsets"

    # not stored at once: the log holds only the immediate records
    w.wait_for([b"imm-0", b"imm-1", b"imm-2"], timeout=5)
    marks = kutil.watermarks(broker.bootstrap, topic_name)
    if now_ms() < due - TOL_MS:  # (else the machine was too slow to tell)
        assert marks == (0, 3)

    seen = w.wait_for([b"delayed"], timeout=6, msg="the DELAY=1 record")
    assert_not_early(seen, {b"delayed": due})
    t, m = seen[b"delayed"]
    assert m.offset() == 3, "delivered at the end of the log at its due time"
    assert m.key() == b"the-key"
    assert m.headers() == [("app", b"a1"), ("DELAY", b"1"), ("UNIQ_KEY", b"u-1"), ("app", b"a2"), ("nil", None)]
    assert m.timestamp() == (1, 1_700_000_000_123), "its own CreateTime"
    assert [x.value() for x in read_all(broker.bootstrap, topic_name)] == [b"imm-0", b"imm-1", b"imm-2", b"delayed"]


def test_timer_headers_and_delivery_in_due_order(broker, topic_name, watchers):
    """TIMER_DELIVER_MS (absolute), TIMER_DELAY_MS and TIMER_DELAY_SEC (relative); produced in
    reverse due order, delivered in due order."""
    kutil.create_topic(broker.bootstrap, topic_name)
    w = watchers(broker.bootstrap, topic_name)
    due = {}
    t0 = now_ms()
    due[b"deliver-ms"] = t0 + 2600
    r1 = produce_reports(broker.bootstrap, topic_name, [
        {"value": b"deliver-ms", "headers": [("TIMER_DELIVER_MS", str(due[b"deliver-ms"]).encode())]}])
    due[b"delay-sec"] = now_ms() + 2000
    r2 = produce_reports(broker.bootstrap, topic_name, [{"value": b"delay-sec", "headers": [("TIMER_DELAY_SEC", b"2")]}])
    due[b"delay-ms"] = now_ms() + 1300
    r3 = produce_reports(broker.bootstrap, topic_name, [{"value": b"delay-ms", "headers": [("TIMER_DELAY_MS", b"1300")]}])
    for r in (r1, r2, r3):
        assert r == [(None, None)], r
    assert kutil.watermarks(broker.bootstrap, topic_name) == (0, 0)
    seen = w.wait_for(list(due), timeout=10, msg="timer records")
    assert_not_early(seen, due)
    assert {v: m.offset() for v, (_, m) in seen.items()} == {b"delay-ms": 0, b"delay-sec": 1, b"deliver-ms": 2}
    # delivered about on time (a generous bound: the machine is shared)
    late = {v: seen[v][0] - due[v] for v in due}
    assert all(x < 3000 for x in late.values()), f"delivered late (ms): {late}"


def test_due_now_or_past_and_delay_zero_are_stored_at_once(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    msgs = [
        {"value": b"past", "headers": [("TIMER_DELIVER_MS", str(now_ms() - 60_000).encode())]},
        {"value": b"epoch0", "headers": [("TIMER_DELIVER_MS", b"0")]},
        {"value": b"ms0", "headers": [("TIMER_DELAY_MS", b"0")]},
        {"value": b"sec0", "headers": [("TIMER_DELAY_SEC", b"0")]},
        {"value": b"level0", "headers": [("DELAY", b"0")]},
    ]
    reports = produce_reports(broker.bootstrap, topic_name, msgs)
    assert_delivered(reports)
    assert reports[0][1] == 0, f"a batch without delayed records has a real base offset: {reports}"
    got = read_all(broker.bootstrap, topic_name)
    assert [(m.offset(), m.value()) for m in got] == [(i, m["value"]) for i, m in enumerate(msgs)]
    assert [m.headers() for m in got] == [m["headers"] for m in msgs]


def test_mixed_batch_immediate_at_once_delayed_later_base_offset_minus_1(broker, topic_name, watchers):
    kutil.create_topic(broker.bootstrap, topic_name)
    w = watchers(broker.bootstrap, topic_name)
    due = now_ms() + 2500
    msgs = [
        {"value": b"m-imm-0", "key": b"k0"},
        {"value": b"m-del-0", "key": b"k1", "headers": [("TIMER_DELAY_MS", b"2500")]},
        {"value": b"m-imm-1", "key": b"k2", "headers": [("x", b"y")]},
        {"value": b"m-del-1", "key": b"k3", "headers": [("TIMER_DELAY_MS", b"2500")]},
        {"value": b"m-imm-2", "key": b"k4"},
    ]
    reports = produce_reports(broker.bootstrap, topic_name, msgs, conf={"linger.ms": 200})
    assert_delivered(reports)
    # librdkafka reports base offset + index: the first record of the batch shows the base
    assert reports[0][1] is None, f"base offset of a batch with delayed records must be -1: {reports}"
    seen = w.wait_for([b"m-imm-0", b"m-imm-1", b"m-imm-2"], timeout=5)
    assert now_ms() < due - TOL_MS, "the immediate records of the batch were not stored at once"
    assert {v: m.offset() for v, (_, m) in seen.items()} == {b"m-imm-0": 0, b"m-imm-1": 1, b"m-imm-2": 2}
    assert seen[b"m-imm-1"][1].headers() == [("x", b"y")]
    assert kutil.watermarks(broker.bootstrap, topic_name) == (0, 3)
    seen = w.wait_for([b"m-del-0", b"m-del-1"], timeout=7, msg="delayed records of the mixed batch")
    assert_not_early(seen, {b"m-del-0": due, b"m-del-1": due})
    assert sorted((seen[v][1].offset(), seen[v][1].key()) for v in (b"m-del-0", b"m-del-1")) == [(3, b"k1"), (4, b"k3")]
    assert Counter(m.value() for m in read_all(broker.bootstrap, topic_name)) == Counter(m["value"] for m in msgs)


def test_compressed_mixed_batches(broker, new_topic, watchers):
    """A compressed batch with delayed records: the immediate ones are stored at once, the
    delayed ones later, each record intact."""
    codecs = ["gzip", "snappy", "lz4", "zstd"]
    topics = {c: new_topic(f"delay-{c}") for c in codecs}
    ws = {}
    for c, t in topics.items():
        kutil.create_topic(broker.bootstrap, t)
        ws[c] = watchers(broker.bootstrap, t)
    due = now_ms() + 1200
    msgs = []
    for i in range(50):
        m = {"value": b"z-%d-" % i + b"x" * 200, "key": b"k%d" % i, "headers": [("n", b"%d" % i)]}
        if i % 2:
            m["headers"].append(("TIMER_DELAY_MS", b"1200"))
        msgs.append(m)
    for c, t in topics.items():
        reports = produce_reports(broker.bootstrap, t, msgs, conf={"compression.type": c, "linger.ms": 100})
        assert_delivered(reports)
        assert reports[0][1] is None, (c, reports[:3])
    for c, t in topics.items():
        seen = ws[c].wait_for([m["value"] for m in msgs], timeout=8, msg=f"{c} records")
        assert_not_early(seen, {m["value"]: due for m in msgs[1::2]})
        got = {(m.value(), m.key(), tuple(m.headers())) for m in read_all(broker.bootstrap, t)}
        assert got == {(m["value"], m["key"], tuple(m["headers"])) for m in msgs}, c
        offsets = {seen[m["value"]][1].offset() for m in msgs[0::2]}
        assert offsets == set(range(25)), f"{c}: immediate records first, at once"


def test_not_early_many_records_with_spread_due_times(broker, topic_name, watchers):
    kutil.create_topic(broker.bootstrap, topic_name, partitions=2)
    w = watchers(broker.bootstrap, topic_name, partitions=(0, 1))
    t0 = now_ms() + 300
    msgs, due = [], {}
    for i in range(200):
        d = t0 + (i * 37) % 2200
        v = b"spread-%d" % i
        due[v] = d
        msgs.append({"value": v, "partition": i % 2, "headers": [("TIMER_DELIVER_MS", str(d).encode())]})
    assert_delivered(produce_reports(broker.bootstrap, topic_name, msgs, conf={"linger.ms": 5}))
    seen = w.wait_for(list(due), timeout=(max(due.values()) - now_ms()) / 1000 + 5, msg="spread records")
    assert_not_early(seen, due)
    assert Counter(w.values()) == Counter(list(due)), "each record exactly once"
    for p in (0, 1):
        offsets = sorted(m.offset() for _, m in seen.values() if m.partition() == p)
        assert offsets == list(range(100)), f"partition {p}: offsets {offsets[:10]}..."


# ---------------------------------------------------------------------------
# refused: INVALID_RECORD, nothing of the batch stored
# ---------------------------------------------------------------------------

INVALID_CASES = [
    ("DELAY-x", [("DELAY", b"x")]),
    ("DELAY--1", [("DELAY", b"-1")]),
    ("DELAY-+1", [("DELAY", b"+1")]),
    ("TIMER_DELAY_MS-1.5", [("TIMER_DELAY_MS", b"1.5")]),
    ("TIMER_DELAY_SEC-space5", [("TIMER_DELAY_SEC", b" 5")]),
    ("TIMER_DELAY_SEC-5space", [("TIMER_DELAY_SEC", b"5 ")]),
    ("TIMER_DELIVER_MS-empty", [("TIMER_DELIVER_MS", b"")]),
    ("TIMER_DELAY_MS-hex", [("TIMER_DELAY_MS", b"0x10")]),
    ("TIMER_DELAY_MS-null", [("TIMER_DELAY_MS", None)]),
    ("DELAY-null", [("DELAY", None)]),
    ("two-headers", [("DELAY", b"1"), ("TIMER_DELAY_MS", b"1000")]),
    ("two-headers-timer", [("TIMER_DELAY_SEC", b"1"), ("TIMER_DELIVER_MS", str(now_ms() + 1000).encode())]),
    ("above-max-sec", [("TIMER_DELAY_SEC", str(DEFAULT_MAX_MS // 1000 + 1).encode())]),
    ("above-max-ms", [("TIMER_DELAY_MS", str(DEFAULT_MAX_MS + 1).encode())]),
    ("above-max-deliver", [("TIMER_DELIVER_MS", str(now_ms() + DEFAULT_MAX_MS + 3_600_000).encode())]),
    ("above-max-huge", [("TIMER_DELAY_MS", b"99999999999999999999")]),
]


def check_refused_batches(bootstrap, topic, cases, delayed_ms=700):
    """Case i goes to partition i as one batch: [immediate, valid delayed, the bad record].
    Every record of it must fail with INVALID_RECORD and none be stored, now or later: a valid
    delayed sentinel produced afterwards (due later) is then the only record of the partition."""
    msgs = []
    for i, (_, bad) in enumerate(cases):
        msgs += [
            {"value": b"ok-imm", "partition": i},
            {"value": b"ok-delayed", "partition": i, "headers": [("TIMER_DELAY_MS", str(delayed_ms).encode())]},
            {"value": b"bad", "partition": i, "headers": bad},
        ]
    reports = produce_reports(bootstrap, topic, msgs, conf={"linger.ms": 200})
    wrong = {}
    for i, (name, _) in enumerate(cases):
        codes = [e.code() if e else None for e, _ in reports[3 * i:3 * i + 3]]
        if codes != [INVALID_RECORD] * 3:
            wrong[name] = codes
    sentinels = produce_reports(bootstrap, topic, [
        {"value": b"sentinel", "partition": i, "headers": [("TIMER_DELAY_MS", str(delayed_ms).encode())]}
        for i in range(len(cases))])
    assert_delivered(sentinels)
    stored = {}
    for i, (name, _) in enumerate(cases):
        wait_until(lambda: kutil.watermarks(bootstrap, topic, i)[1] >= 1, timeout=10, msg=f"sentinel of {name}")
        got = [(m.offset(), m.value()) for m in read_all(bootstrap, topic, i)]
        if got != [(0, b"sentinel")]:
            stored[name] = got
    assert not wrong, f"batches not refused with INVALID_RECORD (per-record error codes): {wrong}"
    assert not stored, f"records of refused batches were stored: {stored}"


def test_invalid_delay_values_refuse_the_whole_batch(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name, partitions=len(INVALID_CASES))
    check_refused_batches(broker.bootstrap, topic_name, INVALID_CASES)


def test_delay_max_ms_flag(make_broker, topic_name, watchers):
    b = make_broker("--delay-max-ms", "2000")
    cases = [
        ("ms-2001", [("TIMER_DELAY_MS", b"2001")]),
        ("sec-3", [("TIMER_DELAY_SEC", b"3")]),
        ("level-2", [("DELAY", b"2")]),
        ("deliver+5s", [("TIMER_DELIVER_MS", str(now_ms() + 5000).encode())]),
    ]
    kutil.create_topic(b.bootstrap, topic_name, partitions=len(cases) + 1)
    check_refused_batches(b.bootstrap, topic_name, cases)
    # at the maximum and below it: accepted
    p = len(cases)
    w = watchers(b.bootstrap, topic_name, partitions=(p,))
    due = now_ms() + 2000
    reports = produce_reports(b.bootstrap, topic_name, [
        {"value": b"at-max", "partition": p, "headers": [("TIMER_DELAY_MS", b"2000")]},
        {"value": b"level-1", "partition": p, "headers": [("DELAY", b"1")]},
    ])
    assert_delivered(reports)
    seen = w.wait_for([b"at-max", b"level-1"], timeout=8)
    assert_not_early(seen, {b"at-max": due})


def test_delay_at_the_default_maximum_is_accepted(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    reports = produce_reports(broker.bootstrap, topic_name, [
        {"value": b"400-days", "headers": [("TIMER_DELAY_SEC", str(DEFAULT_MAX_MS // 1000).encode())]},
        {"value": b"level-99", "headers": [("DELAY", b"99")]},
    ])
    assert_delivered(reports)
    assert reports[0][1] is None, f"base offset -1 expected: {reports}"
    assert kutil.watermarks(broker.bootstrap, topic_name) == (0, 0), "both pending"


# ---------------------------------------------------------------------------
# idempotent and transactional producers
# ---------------------------------------------------------------------------

def idempotent_producer(bootstrap, fatal):
    return kutil.producer(bootstrap, **{
        "enable.idempotence": True, "linger.ms": 2, "max.in.flight.requests.per.connection": 5,
        "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 200, "retry.backoff.ms": 50,
        "error_cb": lambda e: fatal.append(e),
    })


def produce_mixed(p, topic, start, count, partitions, reports, due):
    """Records start..start+count: every third immediate, the others delayed 300-2000 ms."""
    for i in range(start, start + count):
        v = b"idem-%d" % i
        headers = []
        if i % 3:
            delay = 300 + (i * 53) % 1700
            due[v] = now_ms() + delay
            headers = [("TIMER_DELAY_MS", str(delay).encode())]

        def cb(err, msg, v=v):
            reports.append((v, err))
        while True:
            try:
                p.produce(topic, value=v, partition=i % partitions, headers=headers, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)


def check_idempotent_run(bootstrap, topic, partitions, p, reports, fatal, due, total, w):
    assert p.flush(60) == 0, "records not acknowledged"
    errors = [(v, str(e)) for v, e in reports if e is not None]
    assert not errors, f"delivery errors: {errors[:5]}"
    assert len(reports) == total
    real_fatal = [str(e) for e in fatal if e.fatal() or e.code() not in (
        KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._MSG_TIMED_OUT)]
    assert not real_fatal, f"producer errors: {real_fatal[:5]}"
    expected = [b"idem-%d" % i for i in range(total)]
    seen = w.wait_for(expected, timeout=(max(due.values()) - now_ms()) / 1000 + 10, msg="idempotent records")
    assert_not_early(seen, due)
    stored = Counter()
    for part in range(partitions):
        stored.update(m.value() for m in read_all(bootstrap, topic, part))
    dups = {v: n for v, n in stored.items() if n != 1}
    assert not dups, f"stored more than once: {list(dups.items())[:5]}"
    assert stored == Counter(expected)


def test_idempotent_producer_delayed_and_immediate_interleaved(broker, topic_name, watchers):
    kutil.create_topic(broker.bootstrap, topic_name, partitions=2)
    w = watchers(broker.bootstrap, topic_name, partitions=(0, 1))
    fatal, reports, due = [], [], {}
    p = idempotent_producer(broker.bootstrap, fatal)
    produce_mixed(p, topic_name, 0, 600, 2, reports, due)
    check_idempotent_run(broker.bootstrap, topic_name, 2, p, reports, fatal, due, 600, w)


@pytest.mark.parametrize("how", ["graceful", "kill9"])
def test_idempotent_producer_across_broker_restart(make_broker, topic_name, watchers, how):
    """Delayed and immediate records in flight when the broker stops; the same producer goes on
    after the restart: every record stored exactly once, no sequence errors."""
    b = make_broker()
    kutil.create_topic(b.bootstrap, topic_name, partitions=2)
    w = watchers(b.bootstrap, topic_name, partitions=(0, 1))
    fatal, reports, due = [], [], {}
    p = idempotent_producer(b.bootstrap, fatal)
    produce_mixed(p, topic_name, 0, 150, 2, reports, due)
    assert p.flush(30) == 0
    # stop while the next records are being sent: some may be stored but not acknowledged
    produce_mixed(p, topic_name, 150, 300, 2, reports, due)
    in_flight = 450 - len(reports)
    if how == "kill9":
        b.kill9()
        b.start()
    else:
        b.restart()
    produce_mixed(p, topic_name, 450, 300, 2, reports, due)
    check_idempotent_run(b.bootstrap, topic_name, 2, p, reports, fatal, due, 750, w)
    assert in_flight > 0, "the broker was meant to stop with records in flight"


def test_transactional_producer_delayed_record_refused(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    p = kutil.producer(broker.bootstrap, **{"transactional.id": f"tx-{uuid.uuid4().hex[:8]}", "linger.ms": 50})
    p.init_transactions(15)
    p.begin_transaction()
    reports = []
    p.produce(topic_name, value=b"txn-imm", partition=0, on_delivery=lambda e, m: reports.append(e))
    p.produce(topic_name, value=b"txn-delayed", partition=0, headers=[("DELAY", b"1")],
              on_delivery=lambda e, m: reports.append(e))
    p.flush(15)
    with pytest.raises(KafkaException) as commit_error:
        p.commit_transaction(15)
    codes = [e.code() for e in reports if e is not None]
    assert KafkaError.INVALID_RECORD in codes or commit_error.value.args[0].code() == KafkaError.INVALID_RECORD, (
        f"INVALID_RECORD not surfaced: delivery {[str(e) for e in reports]}, commit {commit_error.value}")
    assert commit_error.value.args[0].txn_requires_abort(), commit_error.value
    p.abort_transaction(15)
    # nothing delayed delivered: a delayed sentinel due later is all a reader finds
    assert_delivered(produce_reports(broker.bootstrap, topic_name, [
        {"value": b"sentinel", "headers": [("TIMER_DELAY_MS", b"1200")]}]))
    wait_until(lambda: b"sentinel" in [m.value() for m in read_all(broker.bootstrap, topic_name)],
               timeout=10, msg="sentinel")
    assert [m.value() for m in read_all(broker.bootstrap, topic_name)] == [b"sentinel"]


# ---------------------------------------------------------------------------
# durability: kill -9 and graceful restarts with pending records
# ---------------------------------------------------------------------------

def test_kill9_while_pending_and_delivering_exactly_once_not_early(make_broker, topic_name, watchers):
    b = make_broker()
    kutil.create_topic(b.bootstrap, topic_name, partitions=3)
    w = watchers(b.bootstrap, topic_name, partitions=(0, 1, 2))
    start = now_ms()
    msgs = []
    for i in range(2000):
        d = start + 800 + (i * 7919) % 3200  # due over the next ~4 s
        msgs.append({"value": b"dur-%d" % i, "partition": i % 3, "headers": [("TIMER_DELIVER_MS", str(d).encode())]})
    assert_delivered(produce_reports(b.bootstrap, topic_name, msgs, conf={"linger.ms": 5}))
    wait_until(lambda: now_ms() >= start + 2000, timeout=10, msg="2 s in")
    before_kill = len(w.values())
    b.kill9()
    b.start()
    expected = [m["value"] for m in msgs]
    w.wait_for(expected, timeout=(start + 4000 - now_ms()) / 1000 + 15, msg="records after kill -9")
    seen = w.snapshot()
    early = [(m.value(), int(hdr(m, "TIMER_DELIVER_MS")) - t) for t, m in seen
             if t < int(hdr(m, "TIMER_DELIVER_MS")) - TOL_MS]
    assert not early, f"seen before due (value, ms early): {early[:5]}"
    stored = Counter()
    for part in range(3):
        stored.update(m.value() for m in read_all(b.bootstrap, topic_name, part))
    dups = {v: n for v, n in stored.items() if n != 1}
    assert not dups, f"delivered more than once: {len(dups)}, e.g. {list(dups.items())[:5]}"
    assert stored == Counter(expected)
    assert 0 < before_kill < 2000, f"kill -9 was meant to land mid-delivery ({before_kill} delivered before it)"


def test_graceful_restart_with_pending_records(make_broker, topic_name, watchers):
    b = make_broker()
    kutil.create_topic(b.bootstrap, topic_name)
    due = now_ms() + 2500
    msgs = [{"value": b"gr-%d" % i, "key": b"k%d" % i, "headers": [("TIMER_DELAY_MS", b"2500")]} for i in range(20)]
    msgs.append({"value": b"far", "headers": [("TIMER_DELAY_SEC", b"3600")]})
    assert_delivered(produce_reports(b.bootstrap, topic_name, msgs))
    b.restart()
    marks = kutil.watermarks(b.bootstrap, topic_name)
    if now_ms() < due - TOL_MS:
        assert marks == (0, 0), "nothing delivered before its due time"
    w = watchers(b.bootstrap, topic_name)
    expected = [m["value"] for m in msgs[:20]]
    seen = w.wait_for(expected, timeout=8, msg="pending records after the restart")
    assert_not_early(seen, {v: due for v in expected})
    got = read_all(b.bootstrap, topic_name)
    assert sorted((m.value(), m.key()) for m in got) == sorted((m["value"], m["key"]) for m in msgs[:20])
    assert all(m.headers() == [("TIMER_DELAY_MS", b"2500")] for m in got)
    # a second restart re-delivers nothing
    b.restart()
    assert_delivered(produce_reports(b.bootstrap, topic_name, [{"value": b"sentinel", "headers": [("TIMER_DELAY_MS", b"500")]}]))
    wait_until(lambda: kutil.watermarks(b.bootstrap, topic_name)[1] >= 21, timeout=10, msg="sentinel")
    assert [m.value() for m in read_all(b.bootstrap, topic_name)][20:] == [b"sentinel"]


# ---------------------------------------------------------------------------
# every kind of consumer
# ---------------------------------------------------------------------------

def test_confluent_group_consumer_commits_past_delayed_records(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    group = f"g-{topic_name}"
    due = now_ms() + 1000
    assert_delivered(produce_reports(broker.bootstrap, topic_name, [
        {"value": b"g-imm-0"}, {"value": b"g-del", "headers": [("DELAY", b"1")]}, {"value": b"g-imm-1"}]))
    c = kutil.consumer(broker.bootstrap, **{"group.id": group, "auto.offset.reset": "earliest",
                                            "session.timeout.ms": 6000, "fetch.wait.max.ms": 100})
    try:
        c.subscribe([topic_name])
        got = {}
        deadline = time.monotonic() + 15
        while len(got) < 3 and time.monotonic() < deadline:
            m = c.poll(0.1)
            if m is None or m.error():
                continue
            got[m.value()] = (now_ms(), m.offset())
            c.commit(message=m, asynchronous=False)
        assert set(got) == {b"g-imm-0", b"g-del", b"g-imm-1"}, got
        assert got[b"g-del"][0] >= due - TOL_MS, "seen before due"
        assert {v: o for v, (_, o) in got.items()} == {b"g-imm-0": 0, b"g-imm-1": 1, b"g-del": 2}
        (tp,) = c.committed([TopicPartition(topic_name, 0)], timeout=10)
        assert tp.offset == 3
    finally:
        c.close()


def kcat(bootstrap, *args):
    r = subprocess.run(["kcat", "-b", bootstrap, "-X", "log_level=3", *args], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    return [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed (scripts/test-all installs it)")
def test_kcat_sees_delayed_records_after_due(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    due = now_ms() + 1200
    assert_delivered(produce_reports(broker.bootstrap, topic_name, [
        {"value": b"kc-imm", "key": b"a"},
        {"value": b"kc-del", "key": b"b", "headers": [("TIMER_DELAY_MS", b"1200"), ("h", b"v")]},
    ]))
    before = kcat(broker.bootstrap, "-C", "-t", topic_name, "-e", "-J")
    if now_ms() < due - TOL_MS:
        assert [m["payload"] for m in before] == ["kc-imm"]
    wait_until(lambda: kutil.watermarks(broker.bootstrap, topic_name)[1] == 2, timeout=8, msg="delivery")
    after = kcat(broker.bootstrap, "-C", "-t", topic_name, "-e", "-J")
    assert now_ms() >= due - TOL_MS
    assert [(m["offset"], m["key"], m["payload"], m.get("headers")) for m in after] == [
        (0, "a", "kc-imm", None), (1, "b", "kc-del", ["TIMER_DELAY_MS", "1200", "h", "v"])]


def test_kafkajs_produce_and_consume_delayed(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    group = f"js-{topic_name}"
    rc, out, err = node("delay.js", broker.bootstrap, topic_name, group)
    assert rc == 0, (out, err[-3000:])
    sends = out["sends"]

    def base(name):
        assert sends[name]["ok"], (name, sends[name])
        (r,) = sends[name]["records"]
        assert r["errorCode"] == 0, r
        return r["baseOffset"]

    assert base("immediate") == "0"
    assert base("delayLevel1") == "-1"
    assert base("mixed") == "-1"
    assert base("deliverMs") == "-1"
    assert base("delayZero") == "2", "DELAY=0: stored at once"
    assert not sends["invalid"]["ok"] and sends["invalid"]["type"] == "INVALID_RECORD", sends["invalid"]
    assert base("idemDelayed") == "-1"
    assert int(base("idemImmediate")) >= 3, "an immediate record of an idempotent producer"
    assert not out["txn"]["ok"] and out["txn"]["type"] == "INVALID_RECORD", out["txn"]

    consumed = {m["value"]: m for m in out["consumed"]}
    assert len(consumed) == len(out["consumed"]), "a record consumed twice"
    early = {v: out["due"][v] - m["seenMs"] for v, m in consumed.items()
             if v in out["due"] and m["seenMs"] < out["due"][v] - TOL_MS}
    assert not early, f"seen before due (ms early): {early}"
    d = consumed["js-delay-1"]
    assert (d["key"], d["timestamp"], d["headers"]) == ("k1", "1700000000000", {"DELAY": "1", "app": "fjord"})
    assert consumed["js-timer-ms"]["headers"] == {"TIMER_DELAY_MS": "1500"}
    assert int(consumed["js-delay-1"]["offset"]) >= 4 and int(consumed["js-timer-ms"]["offset"]) >= 4

    # the refused batch and the transaction's delayed record never appear; a sentinel due
    # after the transaction's record marks "later"
    assert_delivered(produce_reports(broker.bootstrap, topic_name, [
        {"value": b"sentinel", "headers": [("TIMER_DELAY_MS", b"1000")]}]))
    wait_until(lambda: b"sentinel" in [m.value() for m in read_all(broker.bootstrap, topic_name)], timeout=10, msg="sentinel")
    values = [m.value().decode() for m in read_all(broker.bootstrap, topic_name)]
    assert Counter(values) == Counter(list(consumed) + ["sentinel"]), values
    assert values[:3] == ["js-imm-0", "js-imm-1", "js-delay-0"]
    assert values.index("js-idem-imm") == int(sends["idemImmediate"]["records"][0]["baseOffset"])


def test_kafka_python_delayed_records(broker, topic_name):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KTP
    from kafka.errors import InvalidRecordError

    kutil.create_topic(broker.bootstrap, topic_name)
    plain = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False, request_timeout_ms=15000)
    idem = KafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)  # idempotent by default
    try:
        assert plain.send(topic_name, value=b"kp-imm", partition=0).get(10).offset == 0
        due = {b"kp-level1": now_ms() + 1000}
        md = plain.send(topic_name, value=b"kp-level1", key=b"k", partition=0, headers=[("DELAY", b"1")]).get(10)
        assert md.offset == -1
        due[b"kp-idem"] = now_ms() + 1200
        assert idem.send(topic_name, value=b"kp-idem", partition=0, headers=[("TIMER_DELAY_MS", b"1200")]).get(10).offset == -1
        assert idem.send(topic_name, value=b"kp-idem-imm", partition=0).get(10).offset == 1
        with pytest.raises(InvalidRecordError):
            plain.send(topic_name, value=b"kp-bad", partition=0, headers=[("TIMER_DELAY_SEC", b"1s")]).get(10)
    finally:
        plain.close(5)
        idem.close(5)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", fetch_max_wait_ms=100)
    try:
        c.assign([KTP(topic_name, 0)])
        got = {}
        deadline = time.monotonic() + 10
        while len(got) < 4 and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=100).values():
                for r in recs:
                    got[r.value] = (now_ms(), r)
    finally:
        c.close()
    assert set(got) == {b"kp-imm", b"kp-idem-imm", b"kp-level1", b"kp-idem"}, list(got)
    for v, d in due.items():
        assert got[v][0] >= d - TOL_MS, f"{v} seen {d - got[v][0]} ms before due"
    r = got[b"kp-level1"][1]
    assert (r.key, list(r.headers), r.offset >= 2) == (b"k", [("DELAY", b"1")], True)


# ---------------------------------------------------------------------------
# --delay off
# ---------------------------------------------------------------------------

def test_delay_off_stores_at_once(make_broker, topic_name):
    b = make_broker("--delay", "off")
    kutil.create_topic(b.bootstrap, topic_name)
    msgs = [
        {"value": b"off-level", "headers": [("DELAY", b"1")]},
        {"value": b"off-far", "headers": [("TIMER_DELAY_SEC", b"3600")]},
        {"value": b"off-bad", "headers": [("DELAY", b"x")]},
        {"value": b"off-two", "headers": [("DELAY", b"1"), ("TIMER_DELAY_MS", b"5")]},
        {"value": b"off-deliver", "headers": [("TIMER_DELIVER_MS", str(now_ms() + 60_000).encode())]},
    ]
    reports = produce_reports(b.bootstrap, topic_name, msgs)
    assert_delivered(reports)
    assert reports[0][1] == 0, reports
    got = read_all(b.bootstrap, topic_name)
    assert [(m.offset(), m.value(), m.headers()) for m in got] == [
        (i, m["value"], m["headers"]) for i, m in enumerate(msgs)]


# ---------------------------------------------------------------------------
# operator surface: HTTP /v1/delay, `fjord delay`, metrics
# ---------------------------------------------------------------------------

def http(b, method, path):
    req = urllib.request.Request(f"http://{b.host}:{b.http_port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read().decode()
            return r.status, body
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def http_json(b, method, path, status=200):
    code, body = http(b, method, path)
    assert code == status, f"{method} {path}: {code} {body[:500]}"
    return json.loads(body) if status == 200 else body


def test_http_list_and_cancel(make_broker, topic_name, new_topic):
    b = make_broker()
    other = new_topic("other")
    kutil.create_topic(b.bootstrap, topic_name, partitions=2)
    kutil.create_topic(b.bootstrap, other)
    assert http_json(b, "GET", f"/v1/delay?topic={topic_name}&limit=10") == {"pending": 0, "messages": []}

    t_before = now_ms()
    far = [
        {"value": b"a1", "key": b"ka1", "partition": 1, "timestamp": 1_700_000_000_001,
         "headers": [("UNIQ_KEY", b"id-a1"), ("TIMER_DELAY_SEC", b"3600")]},
        {"value": b"a2", "key": b"ka2", "partition": 0, "timestamp": 1_700_000_000_002,
         "headers": [("TIMER_DELAY_SEC", b"3601"), ("UNIQ_KEY", b"id-a2")]},
        {"value": b"a3", "partition": 0, "timestamp": 1_700_000_000_003, "headers": [("TIMER_DELAY_SEC", b"3602")]},
    ]
    assert_delivered(produce_reports(b.bootstrap, topic_name, far))
    levels = [{"value": b"lvl-%d" % n, "headers": [("DELAY", b"%d" % n)]} for n in list(range(3, 19)) + [19, 100]]
    assert_delivered(produce_reports(b.bootstrap, other, levels))
    t_after = now_ms()

    listed = http_json(b, "GET", f"/v1/delay?topic={topic_name}&limit=10")
    assert listed["pending"] == 3 + len(levels)
    msgs = listed["messages"]
    assert [(m["topic"], m["partition"], m["message_id"], m["key"], m["timestamp"]) for m in msgs] == [
        (topic_name, 1, "id-a1", "ka1", 1_700_000_000_001),
        (topic_name, 0, "id-a2", "ka2", 1_700_000_000_002),
        (topic_name, 0, None, None, 1_700_000_000_003),
    ]
    for m, extra in zip(msgs, (0, 1000, 2000)):
        assert t_before + 3_600_000 + extra <= m["due_ms"] <= t_after + 3_600_000 + extra, m
    assert len({m["entry"] for m in msgs}) == 3 and all(isinstance(m["entry"], int) for m in msgs)

    # DELAY levels (3-18: level 2 is 5 s, due within the test): due = produce time + level
    # (above 18 = level 18), listed in due order
    lv = http_json(b, "GET", f"/v1/delay?topic={other}&limit=100")["messages"]
    assert len(lv) == len(levels)
    want = [LEVELS_MS[n - 1] for n in range(3, 19)] + [LEVELS_MS[17]] * 2
    for m, level_ms in zip(lv, sorted(want)):
        assert t_before + level_ms <= m["due_ms"] <= t_after + level_ms, (m, level_ms)
    assert [m["due_ms"] for m in lv] == sorted(m["due_ms"] for m in lv)
    assert http_json(b, "GET", f"/v1/delay?topic={other}&limit=5")["messages"] == lv[:5]
    everything = http_json(b, "GET", "/v1/delay?limit=1000")
    assert everything["pending"] == len(everything["messages"]) == 3 + len(levels)

    # cancel by message id, then by entry
    c = http_json(b, "DELETE", "/v1/delay?id=id-a2")
    assert c == {"cancelled": [msgs[1]]}
    c = http_json(b, "DELETE", f"/v1/delay?entry={msgs[2]['entry']}")
    assert c == {"cancelled": [msgs[2]]}
    http_json(b, "DELETE", "/v1/delay?id=id-a2", status=404)
    http_json(b, "DELETE", f"/v1/delay?entry={msgs[2]['entry']}", status=404)
    http_json(b, "DELETE", "/v1/delay?id=no-such-id", status=404)
    http_json(b, "DELETE", "/v1/delay?entry=987654321", status=404)
    assert http_json(b, "GET", f"/v1/delay?topic={topic_name}&limit=10") == {"pending": 1 + len(levels), "messages": [msgs[0]]}
    b.restart()
    assert http_json(b, "GET", f"/v1/delay?topic={topic_name}&limit=10") == {"pending": 1 + len(levels), "messages": [msgs[0]]}


def test_http_cancelled_record_never_delivered_also_after_kill9(make_broker, topic_name, watchers):
    b = make_broker()
    kutil.create_topic(b.bootstrap, topic_name)
    assert_delivered(produce_reports(b.bootstrap, topic_name, [
        {"value": b"cancel-me", "headers": [("UNIQ_KEY", b"id-short"), ("TIMER_DELAY_MS", b"2500")]},
        {"value": b"cancel-by-entry", "headers": [("TIMER_DELAY_MS", b"2500")]},
        {"value": b"keep", "headers": [("TIMER_DELAY_MS", b"2500")]},
    ]))
    listed = http_json(b, "GET", f"/v1/delay?topic={topic_name}&limit=10")["messages"]
    assert sorted(str(m["message_id"]) for m in listed) == ["None", "None", "id-short"], listed
    (c,) = http_json(b, "DELETE", "/v1/delay?id=id-short")["cancelled"]
    assert c["message_id"] == "id-short"
    # the first entry without an id is "cancel-by-entry" (produced before "keep")
    entry = min(m["entry"] for m in listed if m["message_id"] is None)
    assert http_json(b, "DELETE", f"/v1/delay?entry={entry}")["cancelled"][0]["entry"] == entry
    b.kill9()
    b.start()
    w = watchers(b.bootstrap, topic_name)
    w.wait_for([b"keep"], timeout=10)
    assert_delivered(produce_reports(b.bootstrap, topic_name, [{"value": b"sentinel", "headers": [("TIMER_DELAY_MS", b"300")]}]))
    w.wait_for([b"sentinel"], timeout=10)
    assert [m.value() for m in read_all(b.bootstrap, topic_name)] == [b"keep", b"sentinel"]


def test_delay_metrics(make_broker, topic_name):
    b = make_broker()
    kutil.create_topic(b.bootstrap, topic_name)
    assert_delivered(produce_reports(b.bootstrap, topic_name, [
        {"value": b"30s-a", "headers": [("TIMER_DELAY_SEC", b"30")]},
        {"value": b"30s-b", "headers": [("TIMER_DELAY_SEC", b"40")]},
        {"value": b"30m", "headers": [("DELAY", b"16")]},
        {"value": b"5h", "headers": [("TIMER_DELAY_SEC", b"18000")]},
        {"value": b"10d", "headers": [("TIMER_DELAY_SEC", b"864000"), ("UNIQ_KEY", b"m-10d")]},
        {"value": b"20d", "headers": [("TIMER_DELAY_SEC", b"1728000")]},
        {"value": b"soon", "headers": [("TIMER_DELAY_MS", b"300")]},
    ]))
    wait_until(lambda: kutil.watermarks(b.bootstrap, topic_name)[1] == 1, timeout=10, msg="'soon' delivered")
    assert http_json(b, "DELETE", "/v1/delay?id=m-10d")["cancelled"]

    def scrape():
        return http(b, "GET", "/metrics")[1]

    def values(text):
        return {w: metric(text, "fjord_delay_pending", within=w) for w in ("1m", "1h", "1d", "all")}

    want = {"1m": 2, "1h": 3, "1d": 4, "all": 5}
    try:
        wait_until(lambda: values(scrape()) == want, timeout=15, msg="fjord_delay_pending gauges")
    except AssertionError:
        raise AssertionError(f"fjord_delay_pending: {values(scrape())}, want {want}")
    text = scrape()
    assert metric(text, "fjord_delay_scheduled_total") == 7
    assert metric(text, "fjord_delay_delivered_total") == 1
    assert metric(text, "fjord_delay_cancelled_total") == 1


def fjord_delay(*args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("FJORD_")}
    e.update(env or {})
    r = subprocess.run([fjord_bin(), "delay", *args], capture_output=True, timeout=30, env=e)
    r.out, r.err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    return r


def test_cli_delay_list_and_cancel(make_broker, topic_name, new_topic):
    b = make_broker()
    addr = f"{b.host}:{b.http_port}"
    other = new_topic("other")
    kutil.create_topic(b.bootstrap, topic_name)
    kutil.create_topic(b.bootstrap, other)
    assert_delivered(produce_reports(b.bootstrap, topic_name, [
        {"value": b"c%d" % i, "key": b"k%d" % i, "headers": [("UNIQ_KEY", b"cli-%d" % i), ("TIMER_DELAY_SEC", b"%d" % (3600 + i))]}
        for i in range(4)]))
    assert_delivered(produce_reports(b.bootstrap, other, [{"value": b"o", "headers": [("TIMER_DELAY_SEC", b"3500")]}]))

    r = fjord_delay("list", "--http", addr, "--format", "json")
    assert r.returncode == 0, r.err
    assert json.loads(r.out) == http_json(b, "GET", "/v1/delay")
    assert json.loads(r.out)["pending"] == 5
    r = fjord_delay("list", "--http", addr, "--topic", topic_name, "--limit", "2", "--format", "json")
    assert r.returncode == 0, r.err
    listed = json.loads(r.out)
    assert listed == http_json(b, "GET", f"/v1/delay?topic={topic_name}&limit=2")
    assert listed["pending"] == 5 and [m["message_id"] for m in listed["messages"]] == ["cli-0", "cli-1"]
    # FJORD_HTTP instead of --http; the plain format names the records
    r = fjord_delay("list", "--topic", topic_name, env={"FJORD_HTTP": addr})
    assert r.returncode == 0, r.err
    assert "cli-0" in r.out and "cli-3" in r.out and topic_name in r.out

    r = fjord_delay("cancel", "--http", addr, "--id", "cli-1")
    assert r.returncode == 0, r.err
    assert re.search(r"\b1\b", r.out), f"prints how many were cancelled: {r.out!r}"
    entry = http_json(b, "GET", f"/v1/delay?topic={topic_name}&limit=10")["messages"][1]
    assert entry["message_id"] == "cli-2"
    r = fjord_delay("cancel", "--entry", str(entry["entry"]), env={"FJORD_HTTP": addr})
    assert r.returncode == 0, r.err
    assert re.search(r"\b1\b", r.out), f"prints how many were cancelled: {r.out!r}"
    r = fjord_delay("cancel", "--http", addr, "--id", "cli-1")
    assert r.returncode == 1, (r.out, r.err)
    assert (r.out + r.err).strip(), "a message when nothing matched"
    r = fjord_delay("cancel", "--http", addr, "--entry", "987654321")
    assert r.returncode == 1, (r.out, r.err)
    left = http_json(b, "GET", f"/v1/delay?topic={topic_name}&limit=10")
    assert left["pending"] == 3 and [m["message_id"] for m in left["messages"]] == ["cli-0", "cli-3"]
