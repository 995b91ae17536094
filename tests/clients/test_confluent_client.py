"""confluent-kafka (librdkafka 2.x) Producer + Consumer (explicit assign, no groups)."""

import time

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    KafkaError,
    TopicPartition,
)

import kutil

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_produce_acks_roundtrip(broker, topic_name, acks):
    kutil.create_topic(broker.bootstrap, topic_name)
    msgs = [{"key": f"k{i}".encode(), "value": f"v{i}".encode()} for i in range(200)]
    delivered = kutil.produce_all(broker.bootstrap, topic_name, msgs, conf={"acks": acks})
    assert len(delivered) == 200
    if acks != "0":
        # acknowledged offsets are assigned by the broker, contiguous from 0
        assert sorted(m.offset() for m in delivered) == list(range(200))
    got = kutil.consume(broker.bootstrap, topic_name, 200)
    assert [(m.key(), m.value()) for m in got] == [(m["key"], m["value"]) for m in msgs]
    assert [m.offset() for m in got] == list(range(200))
    lo, hi = kutil.watermarks(broker.bootstrap, topic_name)
    assert (lo, hi) == (0, 200)


def test_null_key_null_value_empty_value(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    msgs = [
        {"key": None, "value": b"no-key"},
        {"key": b"tombstone", "value": None},
        {"key": None, "value": None},
        {"key": b"", "value": b""},
    ]
    kutil.produce_all(broker.bootstrap, topic_name, msgs)
    got = kutil.consume(broker.bootstrap, topic_name, 4)
    assert [(m.key(), m.value()) for m in got] == [
        (None, b"no-key"),
        (b"tombstone", None),
        (None, None),
        (b"", b""),
    ]


def test_headers(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    headers = [("a", b"1"), ("b", b""), ("a", b"2"), ("nullh", None), ("utf8-\u00e9", b"\xff\x00")]
    kutil.produce_all(
        broker.bootstrap, topic_name,
        [{"value": b"with-headers", "headers": headers}, {"value": b"no-headers"}],
    )
    got = kutil.consume(broker.bootstrap, topic_name, 2)
    assert got[0].headers() == headers
    assert got[1].headers() is None


@pytest.mark.parametrize("codec", CODECS)
def test_compression(broker, topic_name, codec):
    kutil.create_topic(broker.bootstrap, topic_name, partitions=2)
    msgs = [
        {"key": f"key-{i}".encode(), "value": (f"{codec}-{i}-" + "abc" * (i % 97)).encode(),
         "partition": i % 2, "headers": [("i", str(i).encode())]}
        for i in range(1000)
    ]
    kutil.produce_all(
        broker.bootstrap, topic_name, msgs,
        conf={"compression.type": codec, "linger.ms": 20, "batch.num.messages": 300},
    )
    for p in (0, 1):
        want = [m for m in msgs if m["partition"] == p]
        got = kutil.consume(broker.bootstrap, topic_name, len(want), partition=p)
        assert [(m.key(), m.value(), m.headers()) for m in got] == [
            (m["key"], m["value"], m["headers"]) for m in want
        ]
        assert [m.offset() for m in got] == list(range(len(want)))


def test_large_batch_multiple_partitions(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name, partitions=4)
    value = b"x" * 10_000
    msgs = [{"value": value + str(i).encode(), "partition": i % 4} for i in range(400)]
    kutil.produce_all(broker.bootstrap, topic_name, msgs, conf={"acks": "all"})
    for p in range(4):
        lo, hi = kutil.watermarks(broker.bootstrap, topic_name, p)
        assert (lo, hi) == (0, 100)
    got = kutil.consume(broker.bootstrap, topic_name, 50, partition=3, offset=50)
    assert [m.value() for m in got] == [value + str(i).encode() for i in range(203, 400, 4)]


def test_create_time_preserved(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    base = 1_600_000_000_123
    kutil.produce_all(
        broker.bootstrap, topic_name, [{"value": b"%d" % i, "timestamp": base + i * 1000} for i in range(5)]
    )
    got = kutil.consume(broker.bootstrap, topic_name, 5)
    assert [m.timestamp() for m in got] == [(TIMESTAMP_CREATE_TIME, base + i * 1000) for i in range(5)]


def test_log_append_time(broker, topic_name):
    kutil.create_topic(
        broker.bootstrap, topic_name, config={"message.timestamp.type": "LogAppendTime"}
    )
    before = int(time.time() * 1000)
    kutil.produce_all(
        broker.bootstrap, topic_name,
        [{"value": b"%d" % i, "timestamp": 1_000_000_000_000 + i} for i in range(5)],
    )
    after = int(time.time() * 1000)
    got = kutil.consume(broker.bootstrap, topic_name, 5)
    for m in got:
        ts_type, ts = m.timestamp()
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME, m.timestamp()
        assert before - 1000 <= ts <= after + 1000, (before, ts, after)


def test_offsets_for_times(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    base = 1_700_000_000_000
    kutil.produce_all(
        broker.bootstrap, topic_name, [{"value": b"%d" % i, "timestamp": base + i * 1000} for i in range(10)]
    )
    c = kutil.consumer(broker.bootstrap)
    try:
        def lookup(ts):
            (tp,) = c.offsets_for_times([TopicPartition(topic_name, 0, ts)], timeout=10)
            assert tp.error is None, tp.error
            return tp.offset

        assert lookup(base) == 0
        assert lookup(base - 5000) == 0
        assert lookup(base + 3000) == 3
        assert lookup(base + 3500) == 4  # first offset with timestamp >= target
        assert lookup(base + 9000) == 9
        assert lookup(base + 9001) in (-1, OFFSET_END)  # no such message: -1
    finally:
        c.close()


def test_seek_offsets_and_out_of_range(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    kutil.produce_all(broker.bootstrap, topic_name, [{"value": b"%d" % i} for i in range(10)])
    got = kutil.consume(broker.bootstrap, topic_name, 3, offset=7)
    assert [m.value() for m in got] == [b"7", b"8", b"9"]
    got = kutil.consume(broker.bootstrap, topic_name, 10, offset=OFFSET_BEGINNING)
    assert [m.offset() for m in got] == list(range(10))
    # fetch beyond the high watermark -> broker answers OFFSET_OUT_OF_RANGE and
    # auto.offset.reset=error surfaces it to the application
    c = kutil.consumer(broker.bootstrap)
    try:
        c.assign([TopicPartition(topic_name, 0, 1000)])
        deadline = time.monotonic() + 15
        err = None
        while time.monotonic() < deadline and err is None:
            m = c.poll(0.2)
            if m is not None and m.error() and m.error().code() != KafkaError._PARTITION_EOF:
                err = m.error()
            elif m is not None and not m.error():
                pytest.fail(f"unexpected message at offset {m.offset()}")
        assert err is not None, "no OFFSET_OUT_OF_RANGE reported"
        assert err.code() == KafkaError._AUTO_OFFSET_RESET, err
        assert "out of range" in err.str().lower(), err
    finally:
        c.close()


def test_topic_max_message_bytes(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name, config={"max.message.bytes": "2000"})
    kutil.produce_all(broker.bootstrap, topic_name, [{"value": b"s" * 500}])
    p = kutil.producer(broker.bootstrap, **{"compression.type": "none", "message.timeout.ms": 10000})
    errs = []
    p.produce(topic_name, b"L" * 5000, on_delivery=lambda e, m: errs.append(e))
    assert p.flush(15) == 0
    assert errs and errs[0] is not None and errs[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, errs
    lo, hi = kutil.watermarks(broker.bootstrap, topic_name)
    assert hi == 1
