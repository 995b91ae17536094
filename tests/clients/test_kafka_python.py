"""kafka-python (pure Python client) against the real broker.

Compression codecs need python-snappy, lz4 and zstandard (installed by
scripts/test-all); gzip is built in.
"""

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka import errors as Errors
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.structs import OffsetAndTimestamp  # noqa: F401 - imported for API presence

import kutil

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]


def make_producer(bootstrap, **kw):
    # kafka-python 3.x enables idempotence by default (KIP-679), which needs
    # InitProducerId; the plain (non-idempotent) path is tested here and the
    # default configuration in test_default_idempotent_producer.
    kw.setdefault("enable_idempotence", False)
    kw.setdefault("linger_ms", 5)
    return KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=15000, **kw)


def make_consumer(bootstrap, **kw):
    # no group_id: pure assign() consumer, nothing is committed
    return KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", consumer_timeout_ms=1000, **kw,
    )


def consume_n(bootstrap, topic, n, partition=0, seek=None, timeout=20, **kw):
    c = make_consumer(bootstrap, **kw)
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        if seek is None:
            c.seek_to_beginning(tp)
        else:
            c.seek(tp, seek)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=200).values():
                out.extend(recs)
        assert len(out) >= n, f"got {len(out)}/{n} records"
        return out[:n] if len(out) == n else out
    finally:
        c.close()


def admin(bootstrap):
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)


@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_produce_consume_assign(broker, topic_name, acks):
    kutil.create_topic(broker.bootstrap, topic_name)
    p = make_producer(broker.bootstrap, acks=acks)
    futs = [p.send(topic_name, key=b"k%d" % i, value=b"v%d" % i, partition=0) for i in range(100)]
    p.flush(timeout=20)
    metas = [f.get(timeout=20) for f in futs]
    if acks != 0:
        assert [m.offset for m in metas] == list(range(100))
    p.close()
    recs = consume_n(broker.bootstrap, topic_name, 100)
    assert [(r.offset, r.key, r.value) for r in recs] == [(i, b"k%d" % i, b"v%d" % i) for i in range(100)]


def test_nulls_headers_timestamps(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    p = make_producer(broker.bootstrap, acks="all")
    ts = 1_600_000_000_000
    p.send(topic_name, value=b"v", key=None, headers=[("h1", b"a"), ("h2", b""), ("h1", b"b")], timestamp_ms=ts).get(20)
    p.send(topic_name, value=None, key=b"tomb").get(20)
    p.close()
    r0, r1 = consume_n(broker.bootstrap, topic_name, 2)
    assert (r0.key, r0.value, r0.timestamp, r0.timestamp_type) == (None, b"v", ts, 0)
    assert list(r0.headers) == [("h1", b"a"), ("h2", b""), ("h1", b"b")]
    assert (r1.key, r1.value) == (b"tomb", None)


@pytest.mark.parametrize("codec", CODECS)
def test_compression(broker, topic_name, codec):
    kutil.create_topic(broker.bootstrap, topic_name)
    p = make_producer(broker.bootstrap, compression_type=codec, batch_size=32768, linger_ms=20)
    vals = [(f"{codec}-{i}-" + "z" * (i % 200)).encode() for i in range(600)]
    futs = [p.send(topic_name, value=v, key=b"%d" % i, headers=[("i", b"%d" % i)]) for i, v in enumerate(vals)]
    p.flush(20)
    assert [f.get(20).offset for f in futs] == list(range(600))
    p.close()
    recs = consume_n(broker.bootstrap, topic_name, 600)
    assert [r.value for r in recs] == vals
    assert [list(r.headers) for r in recs] == [[("i", b"%d" % i)] for i in range(600)]
    # cross-check with librdkafka decoding the same batches
    got = kutil.consume(broker.bootstrap, topic_name, 600)
    assert [m.value() for m in got] == vals


def test_seek_and_end_offsets(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name, partitions=2)
    p = make_producer(broker.bootstrap)
    for i in range(30):
        p.send(topic_name, value=b"%d" % i, partition=i % 2, timestamp_ms=1_700_000_000_000 + i * 10)
    p.flush(20)
    p.close()
    c = make_consumer(broker.bootstrap)
    try:
        tps = [TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)]
        assert c.end_offsets(tps) == {tps[0]: 15, tps[1]: 15}
        assert c.beginning_offsets(tps) == {tps[0]: 0, tps[1]: 0}
        r = c.offsets_for_times({tps[1]: 1_700_000_000_000 + 105})
        # partition 1 holds i = 1,3,5,... at ts +10, +30, +50 ...: first ts >= +105 is i=11 -> offset 5
        assert r[tps[1]].offset == 5 and r[tps[1]].timestamp == 1_700_000_000_000 + 110
        assert c.offsets_for_times({tps[1]: 1_800_000_000_000})[tps[1]] is None
    finally:
        c.close()
    recs = consume_n(broker.bootstrap, topic_name, 5, partition=1, seek=10)
    assert [r.value for r in recs] == [b"%d" % i for i in range(21, 30, 2)]


def test_admin_create_describe_alter_delete(broker, topic_name):
    a = admin(broker.bootstrap)
    try:
        res = a.create_topics(
            {topic_name: {"num_partitions": 3, "replication_factor": 1, "configs": {"retention.ms": "7200000"}}},
        )
        assert all(t["error_code"] == 0 for t in res["topics"]), res
        kutil.wait_topic_visible(broker.bootstrap, topic_name, partitions=3)
        assert topic_name in a.list_topics()
        desc = a.describe_topics([topic_name])
        assert len(desc[0]["partitions"]) == 3

        cfg = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic_name)], config_filter="all")
        topic_cfg = cfg["topic"][topic_name]
        assert topic_cfg["retention.ms"]["value"] == "7200000"
        assert topic_cfg["cleanup.policy"]["value"] == "delete"

        a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic_name, configs={"retention.ms": "60000"})])
        cfg = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic_name)], config_filter="all")
        assert cfg["topic"][topic_name]["retention.ms"]["value"] == "60000"

        with pytest.raises(Errors.TopicAlreadyExistsError):
            a.create_topics({topic_name: {"num_partitions": 1, "replication_factor": 1}})
        with pytest.raises(Errors.InvalidReplicationFactorError):
            a.create_topics({topic_name + "-rf": {"num_partitions": 1, "replication_factor": 2}})

        a.delete_topics([topic_name])
        kutil.wait_until(lambda: topic_name not in a.list_topics(), timeout=15, msg="topic deletion")
        with pytest.raises(Errors.UnknownTopicOrPartitionError):
            a.delete_topics([topic_name])
    finally:
        a.close()


def test_metadata_for_unknown_topic_auto_creates(make_broker, topic_name):
    """Metadata v4+ allow_auto_topic_creation=true (kafka-python producer) creates the topic."""
    b = make_broker("--num-partitions", "2")
    p = make_producer(b.bootstrap)
    md = p.send(topic_name, value=b"x").get(20)
    p.close()
    assert md.topic == topic_name and md.offset == 0
    assert len(kutil.wait_topic_visible(b.bootstrap, topic_name).partitions) == 2


def test_default_idempotent_producer(broker, topic_name):
    """kafka-python 3.x defaults: acks=all + enable_idempotence=True (KIP-679).

    Real Kafka answers InitProducerId and accepts idempotent batches
    (producer id/epoch/sequence numbers in the record batch header).
    """
    kutil.create_topic(broker.bootstrap, topic_name)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        metas = [p.send(topic_name, value=b"idem-%d" % i) for i in range(20)]
        assert [m.get(20).offset for m in metas] == list(range(20))
    finally:
        p.close(timeout=5)
    recs = consume_n(broker.bootstrap, topic_name, 20)
    assert [r.value for r in recs] == [b"idem-%d" % i for i in range(20)]
