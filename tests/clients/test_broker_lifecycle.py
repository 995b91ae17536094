"""Broker flags, restart and crash recovery, driven by confluent-kafka."""

import subprocess
import time

import pytest
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import ConfigResource, OffsetSpec

import kutil
import wire
from conftest import wait_until

T = 15


def test_auto_create_on_produce(make_broker, topic_name):
    b = make_broker("--num-partitions", "2")
    kutil.produce_all(b.bootstrap, topic_name, [{"value": b"auto", "partition": 0}, {"value": b"auto1", "partition": 1}])
    t = kutil.wait_topic_visible(b.bootstrap, topic_name)
    assert len(t.partitions) == 2
    assert [m.value() for m in kutil.consume(b.bootstrap, topic_name, 1, partition=1)] == [b"auto1"]


def test_auto_create_on_produce_shared_broker(broker, topic_name):
    kutil.produce_all(broker.bootstrap, topic_name, [{"value": b"hello", "partition": 0}])
    kutil.wait_topic_visible(broker.bootstrap, topic_name)
    assert [m.value() for m in kutil.consume(broker.bootstrap, topic_name, 1)] == [b"hello"]


def test_auto_create_disabled(make_broker, topic_name):
    b = make_broker("--auto-create-topics", "false")
    p = kutil.producer(b.bootstrap, **{"message.timeout.ms": 5000, "topic.metadata.propagation.max.ms": 1000})
    errs = []
    p.produce(topic_name, b"nope", on_delivery=lambda e, m: errs.append(e))
    assert p.flush(20) == 0
    assert errs and errs[0] is not None, errs
    assert errs[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC), errs[0]
    md = kutil.admin(b.bootstrap).list_topics(topic=topic_name, timeout=T)
    assert md.topics[topic_name].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert topic_name not in kutil.admin(b.bootstrap).list_topics(timeout=T).topics
    # explicit creation still works
    kutil.create_topic(b.bootstrap, topic_name)
    kutil.produce_all(b.bootstrap, topic_name, [{"value": b"yes"}])


def test_advertise(make_broker, topic_name):
    b = make_broker(start=False)
    b.extra_flags += ["--advertise", f"localhost:{b.port}"]
    b.start()
    md = kutil.admin(b.bootstrap).list_topics(timeout=T)
    assert {(x.id, x.host, x.port) for x in md.brokers.values()} == {(1, "localhost", b.port)}
    # a client following the advertised address still works
    kutil.produce_all(b.bootstrap, topic_name, [{"value": b"via-advertised"}])
    assert [m.value() for m in kutil.consume(b.bootstrap, topic_name, 1)] == [b"via-advertised"]


def test_message_max_bytes_flag(make_broker, topic_name):
    b = make_broker("--message-max-bytes", "10000")
    kutil.create_topic(b.bootstrap, topic_name)
    kutil.produce_all(b.bootstrap, topic_name, [{"value": b"s" * 5000}])
    p = kutil.producer(b.bootstrap, **{"compression.type": "none", "message.timeout.ms": 10000})
    errs = []
    p.produce(topic_name, b"L" * 20000, on_delivery=lambda e, m: errs.append(e))
    assert p.flush(15) == 0
    assert errs and errs[0] is not None and errs[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, errs
    assert kutil.watermarks(b.bootstrap, topic_name) == (0, 1)


@pytest.mark.parametrize("flush", ["async", "sync"])
def test_graceful_restart_keeps_data(make_broker, topic_name, flush):
    b = make_broker("--log-flush", flush)
    kutil.create_topic(b.bootstrap, topic_name, partitions=3, config={"retention.ms": "987654321"})
    msgs = [
        {"key": b"k%d" % i, "value": b"value-%d" % i, "partition": i % 3,
         "headers": [("h", b"%d" % i)], "timestamp": 1_600_000_000_000 + i}
        for i in range(900)
    ]
    kutil.produce_all(b.bootstrap, topic_name, msgs, conf={"acks": "all", "compression.type": "lz4"})
    b.restart()  # asserts SIGTERM -> exit code 0
    for p in range(3):
        want = [m for m in msgs if m["partition"] == p]
        assert kutil.watermarks(b.bootstrap, topic_name, p) == (0, len(want))
        got = kutil.consume(b.bootstrap, topic_name, len(want), partition=p)
        assert [(m.key(), m.value(), m.headers(), m.timestamp()[1]) for m in got] == [
            (m["key"], m["value"], m["headers"], m["timestamp"]) for m in want
        ]
    a = kutil.admin(b.bootstrap)
    res = ConfigResource(ConfigResource.Type.TOPIC, topic_name)
    assert a.describe_configs([res])[res].result(timeout=T)["retention.ms"].value == "987654321"
    # offsets continue after restart
    d = kutil.produce_all(b.bootstrap, topic_name, [{"value": b"after", "partition": 0}])
    assert d[0].offset() == 300
    # and a second restart is still clean
    b.restart()
    assert kutil.watermarks(b.bootstrap, topic_name, 0) == (0, 301)


@pytest.mark.parametrize("flush", ["async", "sync"])
def test_kill9_during_acks_all_stream(make_broker, topic_name, flush):
    """Every message acknowledged with acks=all before kill -9 must survive."""
    b = make_broker("--log-flush", flush)
    kutil.create_topic(b.bootstrap, topic_name, partitions=2)
    p = kutil.producer(
        b.bootstrap,
        **{"acks": "all", "linger.ms": 1, "message.timeout.ms": 60000,
           "enable.idempotence": False, "retries": 1000000},
    )
    acked = {}  # (partition, offset) -> value
    failed = []

    def cb(err, msg):
        if err is None:
            acked[(msg.partition(), msg.offset())] = msg.value()
        else:
            failed.append(err)

    i = 0
    deadline = time.monotonic() + 60
    while len(acked) < 3000:
        assert time.monotonic() < deadline, f"only {len(acked)} acked before kill"
        p.produce(topic_name, b"msg-%07d" % i, partition=i % 2, on_delivery=cb)
        i += 1
        if len(p) > 500:
            p.poll(0.01)
        else:
            p.poll(0)
    # keep the stream flowing while the broker dies
    for _ in range(500):
        p.produce(topic_name, b"msg-%07d" % i, partition=i % 2, on_delivery=cb)
        i += 1
    p.poll(0)
    b.kill9()
    acked_at_kill = dict(acked)
    assert len(acked_at_kill) >= 3000
    b.start()
    # queued messages may now be delivered to the restarted broker
    p.flush(30)
    for part in (0, 1):
        lo, hi = kutil.watermarks(b.bootstrap, topic_name, part)
        assert lo == 0
        mine = {o: v for (pp, o), v in acked.items() if pp == part}
        assert hi >= (max(mine) + 1 if mine else 0), (part, hi, max(mine))
        got = kutil.consume(b.bootstrap, topic_name, hi, partition=part)
        log = {m.offset(): m.value() for m in got}
        assert [m.offset() for m in got] == list(range(hi))
        missing = {o: v for o, v in mine.items() if log.get(o) != v}
        assert not missing, f"partition {part}: {len(missing)} acknowledged messages lost/changed, e.g. {sorted(missing.items())[:5]}"
    # acknowledged-before-kill is a subset of what we checked
    assert set(acked_at_kill) <= set(acked)


def test_kill9_then_restart_graceful(make_broker, topic_name):
    b = make_broker()
    kutil.create_topic(b.bootstrap, topic_name)
    kutil.produce_all(b.bootstrap, topic_name, [{"value": b"%d" % i} for i in range(100)], conf={"acks": "all"})
    b.kill9()
    b.start()
    kutil.produce_all(b.bootstrap, topic_name, [{"value": b"x"}], conf={"acks": "all"})
    b.restart()
    got = kutil.consume(b.bootstrap, topic_name, 101)
    assert [m.value() for m in got] == [b"%d" % i for i in range(100)] + [b"x"]


def test_retention_deletes_old_segments(make_broker, topic_name):
    b = make_broker("--retention-check-interval-ms", "200")
    kutil.create_topic(
        b.bootstrap, topic_name,
        config={"retention.ms": "60000", "segment.bytes": "1048576"},
    )
    old = int(time.time() * 1000) - 3_600_000  # one hour ago, far past retention
    value = b"r" * 4000
    n = 1000  # ~4 MB => several 1 MiB segments
    kutil.produce_all(b.bootstrap, topic_name, [{"value": value, "timestamp": old} for _ in range(n)],
                      conf={"compression.type": "none"})
    a = kutil.admin(b.bootstrap)
    tp = TopicPartition(topic_name, 0)

    def earliest():
        return a.list_offsets({tp: OffsetSpec.earliest()}, request_timeout=T)[tp].result(timeout=T).offset

    lo = wait_until(lambda: earliest() > 0 and earliest(), timeout=30, msg="retention to delete old segments")
    assert 0 < lo <= n
    lo2, hi = kutil.watermarks(b.bootstrap, topic_name)
    assert hi == n and lo2 >= lo
    # fresh data with current timestamps is retained
    kutil.produce_all(b.bootstrap, topic_name, [{"value": b"fresh"}])
    got = kutil.consume(b.bootstrap, topic_name, 1, offset=n)
    assert got[0].value() == b"fresh"


def test_data_dir_is_locked_against_a_second_broker(make_broker):
    first = make_broker()
    argv = [first.argv()[0], "serve", "--data-dir", first.data_dir, "--listen", "127.0.0.1:0",
            "--http-listen", "127.0.0.1:0"]
    second = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert second.returncode == 1, second
    assert "in use by another fjord process" in second.stderr, second.stderr
    assert first.alive()
    kutil.create_topic(first.bootstrap, "still-mine")


def test_idle_connections_are_closed(make_broker):
    broker = make_broker("--connections-max-idle-ms", "300")
    started = time.monotonic()
    with wire.connect(broker.bootstrap) as idle:
        wire.wait_closed(idle, timeout=10)
    assert time.monotonic() - started >= 0.25
    # A connection that keeps talking stays open across several idle periods.
    with wire.connect(broker.bootstrap) as busy:
        for i in range(8):
            busy.sendall(wire.api_versions_request(version=0, correlation_id=i))
            assert wire.read_response(busy)[0] == i
            time.sleep(0.1)  # pacing the client, not synchronisation: each reply is awaited above
