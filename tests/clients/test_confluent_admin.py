"""confluent-kafka AdminClient against the real broker."""

import concurrent.futures

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)

import kutil

T = 15


def err_code(fut):
    try:
        fut.result(timeout=T)
    except KafkaException as e:
        return e.args[0].code()
    return None


def describe_topic_configs(a, topic):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return a.describe_configs([res], request_timeout=T)[res].result(timeout=T)


def test_create_topic_with_partitions_and_configs(broker, topic_name):
    a = kutil.admin(broker.bootstrap)
    fs = a.create_topics(
        [NewTopic(topic_name, num_partitions=5, replication_factor=1,
                  config={"retention.ms": "3600000", "cleanup.policy": "delete"})],
        operation_timeout=T,
    )
    assert fs[topic_name].result(timeout=T) is None
    t = kutil.wait_topic_visible(broker.bootstrap, topic_name, partitions=5)
    assert sorted(t.partitions) == [0, 1, 2, 3, 4]
    for p in t.partitions.values():
        assert p.leader == 1 and p.replicas == [1] and p.isrs == [1]
    cfg = describe_topic_configs(a, topic_name)
    assert cfg["retention.ms"].value == "3600000"
    assert cfg["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert cfg["cleanup.policy"].value == "delete"
    # duplicate create
    fs = a.create_topics([NewTopic(topic_name, 1, 1)], operation_timeout=T)
    assert err_code(fs[topic_name]) == KafkaError.TOPIC_ALREADY_EXISTS


def test_create_topic_default_partitions(make_broker, topic_name):
    b = make_broker("--num-partitions", "3")
    a = kutil.admin(b.bootstrap)
    # num_partitions=-1 / replication_factor=-1 => broker defaults (KIP-464)
    fs = a.create_topics([NewTopic(topic_name)], operation_timeout=T)
    assert fs[topic_name].result(timeout=T) is None
    t = kutil.wait_topic_visible(b.bootstrap, topic_name)
    assert len(t.partitions) == 3


def test_create_topic_validate_only(broker, topic_name):
    a = kutil.admin(broker.bootstrap)
    fs = a.create_topics([NewTopic(topic_name, 3, 1)], validate_only=True, operation_timeout=T)
    assert fs[topic_name].result(timeout=T) is None
    md = a.list_topics(timeout=T)
    assert topic_name not in md.topics
    # validate_only still validates
    fs = a.create_topics([NewTopic(topic_name, 3, 2)], validate_only=True, operation_timeout=T)
    assert err_code(fs[topic_name]) == KafkaError.INVALID_REPLICATION_FACTOR


def test_create_topic_replication_factor_2_rejected(broker, topic_name):
    a = kutil.admin(broker.bootstrap)
    fs = a.create_topics([NewTopic(topic_name, 1, 2)], operation_timeout=T)
    assert err_code(fs[topic_name]) == KafkaError.INVALID_REPLICATION_FACTOR
    assert topic_name not in a.list_topics(timeout=T).topics


@pytest.mark.parametrize("name", ["bad name!", "a" * 250, "..", ".", "slash/topic"])
def test_create_topic_invalid_name(broker, name):
    a = kutil.admin(broker.bootstrap)
    fs = a.create_topics([NewTopic(name, 1, 1)], operation_timeout=T)
    assert err_code(fs[name]) == KafkaError.TOPIC_EXCEPTION


def test_create_topic_invalid_partitions_and_config(broker, topic_name, new_topic):
    a = kutil.admin(broker.bootstrap)
    fs = a.create_topics([NewTopic(topic_name, 0, 1)], operation_timeout=T)
    assert err_code(fs[topic_name]) == KafkaError.INVALID_PARTITIONS
    bad = new_topic("badcfg")
    fs = a.create_topics([NewTopic(bad, 1, 1, config={"retention.ms": "not-a-number"})], operation_timeout=T)
    assert err_code(fs[bad]) == KafkaError.INVALID_CONFIG
    unknown = new_topic("unknowncfg")
    fs = a.create_topics([NewTopic(unknown, 1, 1, config={"no.such.config": "1"})], operation_timeout=T)
    assert err_code(fs[unknown]) == KafkaError.INVALID_CONFIG
    topics = a.list_topics(timeout=T).topics
    assert topic_name not in topics and bad not in topics and unknown not in topics


def test_delete_topics(broker, topic_name, new_topic):
    a = kutil.admin(broker.bootstrap)
    kutil.create_topic(broker.bootstrap, topic_name, partitions=2)
    kutil.produce_all(broker.bootstrap, topic_name, [{"value": b"x", "partition": 1}])
    fs = a.delete_topics([topic_name], operation_timeout=T)
    assert fs[topic_name].result(timeout=T) is None
    md = a.list_topics(timeout=T)
    assert topic_name not in md.topics
    # deleting an unknown topic
    missing = new_topic("missing")
    fs = a.delete_topics([missing], operation_timeout=T)
    assert err_code(fs[missing]) == KafkaError.UNKNOWN_TOPIC_OR_PART
    # re-create with the same name starts empty
    kutil.create_topic(broker.bootstrap, topic_name, partitions=1)
    assert kutil.watermarks(broker.bootstrap, topic_name) == (0, 0)


def test_list_topics(broker, topic_name, new_topic):
    other = new_topic("other")
    kutil.create_topic(broker.bootstrap, topic_name, partitions=2)
    kutil.create_topic(broker.bootstrap, other, partitions=3)
    md = kutil.admin(broker.bootstrap).list_topics(timeout=T)
    assert list(md.brokers) == [1]
    assert md.brokers[1].host == "127.0.0.1" and md.brokers[1].port == broker.port
    assert len(md.topics[topic_name].partitions) == 2
    assert len(md.topics[other].partitions) == 3
    assert md.cluster_id  # non-empty cluster id
    assert md.controller_id == 1


def test_describe_configs_defaults(broker, topic_name):
    a = kutil.admin(broker.bootstrap)
    kutil.create_topic(broker.bootstrap, topic_name)
    cfg = describe_topic_configs(a, topic_name)
    for key in ("retention.ms", "retention.bytes", "segment.bytes", "cleanup.policy",
                "max.message.bytes", "message.timestamp.type", "min.insync.replicas"):
        assert key in cfg, f"{key} missing from DescribeConfigs: {sorted(cfg)}"
    assert cfg["retention.ms"].value == "604800000"  # Kafka default: 7 days
    assert cfg["retention.bytes"].value == "-1"
    assert cfg["cleanup.policy"].value == "delete"
    assert cfg["message.timestamp.type"].value == "CreateTime"
    assert cfg["retention.ms"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    # unknown topic
    res = ConfigResource(ConfigResource.Type.TOPIC, topic_name + "-nope")
    fut = a.describe_configs([res], request_timeout=T)[res]
    assert err_code(fut) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_describe_broker_config(broker):
    a = kutil.admin(broker.bootstrap)
    res = ConfigResource(ConfigResource.Type.BROKER, "1")
    cfg = a.describe_configs([res], request_timeout=T)[res].result(timeout=T)
    assert isinstance(cfg, dict)


def test_alter_configs_legacy(broker, topic_name):
    a = kutil.admin(broker.bootstrap)
    kutil.create_topic(broker.bootstrap, topic_name)
    res = ConfigResource(ConfigResource.Type.TOPIC, topic_name, set_config={"retention.ms": "120000"})
    a.alter_configs([res], request_timeout=T)[res].result(timeout=T)
    assert describe_topic_configs(a, topic_name)["retention.ms"].value == "120000"
    bad = ConfigResource(ConfigResource.Type.TOPIC, topic_name, set_config={"retention.ms": "abc"})
    assert err_code(a.alter_configs([bad], request_timeout=T)[bad]) == KafkaError.INVALID_CONFIG
    assert describe_topic_configs(a, topic_name)["retention.ms"].value == "120000"


def test_incremental_alter_configs(broker, topic_name):
    a = kutil.admin(broker.bootstrap)
    kutil.create_topic(broker.bootstrap, topic_name, config={"segment.bytes": "1048576"})

    def inc(*entries):
        res = ConfigResource(ConfigResource.Type.TOPIC, topic_name, incremental_configs=list(entries))
        return a.incremental_alter_configs([res], request_timeout=T)[res]

    inc(
        ConfigEntry("retention.ms", "86400000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("retention.bytes", "1073741824", incremental_operation=AlterConfigOpType.SET),
    ).result(timeout=T)
    cfg = describe_topic_configs(a, topic_name)
    assert cfg["retention.ms"].value == "86400000"
    assert cfg["retention.bytes"].value == "1073741824"
    assert cfg["segment.bytes"].value == "1048576"  # untouched by incremental SET

    # DELETE reverts to the default
    inc(ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)).result(timeout=T)
    cfg = describe_topic_configs(a, topic_name)
    assert cfg["retention.ms"].value == "604800000"
    assert cfg["retention.bytes"].value == "1073741824"

    # invalid value / unknown key -> INVALID_CONFIG, nothing changes
    assert err_code(inc(ConfigEntry("retention.ms", "-5x", incremental_operation=AlterConfigOpType.SET))) == KafkaError.INVALID_CONFIG
    assert err_code(inc(ConfigEntry("cleanup.policy", "shred", incremental_operation=AlterConfigOpType.SET))) == KafkaError.INVALID_CONFIG
    assert err_code(inc(ConfigEntry("no.such.config", "1", incremental_operation=AlterConfigOpType.SET))) == KafkaError.INVALID_CONFIG
    cfg = describe_topic_configs(a, topic_name)
    assert cfg["retention.bytes"].value == "1073741824"
    assert cfg["cleanup.policy"].value == "delete"

    # unknown topic
    res = ConfigResource(ConfigResource.Type.TOPIC, topic_name + "-nope", incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
    assert err_code(a.incremental_alter_configs([res], request_timeout=T)[res]) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_create_partitions(broker, topic_name):
    a = kutil.admin(broker.bootstrap)
    kutil.create_topic(broker.bootstrap, topic_name, partitions=1)
    kutil.produce_all(broker.bootstrap, topic_name, [{"value": b"p0"}])
    fs = a.create_partitions([NewPartitions(topic_name, 3)], operation_timeout=T)
    assert fs[topic_name].result(timeout=T) is None
    kutil.wait_topic_visible(broker.bootstrap, topic_name, partitions=3)
    kutil.produce_all(broker.bootstrap, topic_name, [{"value": b"p2", "partition": 2}])
    assert [m.value() for m in kutil.consume(broker.bootstrap, topic_name, 1, partition=2)] == [b"p2"]
    assert [m.value() for m in kutil.consume(broker.bootstrap, topic_name, 1, partition=0)] == [b"p0"]
    # shrinking or same count -> INVALID_PARTITIONS
    fs = a.create_partitions([NewPartitions(topic_name, 2)], operation_timeout=T)
    assert err_code(fs[topic_name]) == KafkaError.INVALID_PARTITIONS
    fs = a.create_partitions([NewPartitions(topic_name, 3)], operation_timeout=T)
    assert err_code(fs[topic_name]) == KafkaError.INVALID_PARTITIONS
    # validate_only
    fs = a.create_partitions([NewPartitions(topic_name, 10)], validate_only=True, operation_timeout=T)
    assert fs[topic_name].result(timeout=T) is None
    assert len(kutil.wait_topic_visible(broker.bootstrap, topic_name).partitions) == 3
    # unknown topic
    missing = topic_name + "-nope"
    fs = a.create_partitions([NewPartitions(missing, 2)], operation_timeout=T)
    assert err_code(fs[missing]) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_delete_records(broker, topic_name):
    a = kutil.admin(broker.bootstrap)
    kutil.create_topic(broker.bootstrap, topic_name)
    kutil.produce_all(broker.bootstrap, topic_name, [{"value": b"%d" % i} for i in range(10)])
    fs = a.delete_records([TopicPartition(topic_name, 0, 4)], operation_timeout=T)
    (res,) = [f.result(timeout=T) for f in fs.values()]
    assert res.low_watermark == 4
    assert kutil.watermarks(broker.bootstrap, topic_name) == (4, 10)
    got = kutil.consume(broker.bootstrap, topic_name, 6, offset=4)
    assert [m.value() for m in got] == [b"%d" % i for i in range(4, 10)]
    # earliest now resolves to 4
    off = a.list_offsets({TopicPartition(topic_name, 0): OffsetSpec.earliest()}, request_timeout=T)
    (r,) = [f.result(timeout=T) for f in off.values()]
    assert r.offset == 4
    # beyond the high watermark -> OFFSET_OUT_OF_RANGE
    fs = a.delete_records([TopicPartition(topic_name, 0, 11)], operation_timeout=T)
    (f,) = fs.values()
    assert err_code(f) == KafkaError.OFFSET_OUT_OF_RANGE
    # OFFSET_END (-1): delete everything
    fs = a.delete_records([TopicPartition(topic_name, 0, -1)], operation_timeout=T)
    (res,) = [f.result(timeout=T) for f in fs.values()]
    assert res.low_watermark == 10
    assert kutil.watermarks(broker.bootstrap, topic_name) == (10, 10)


def test_list_offsets(broker, topic_name):
    a = kutil.admin(broker.bootstrap)
    kutil.create_topic(broker.bootstrap, topic_name)
    base = 1_650_000_000_000
    ts = [base + 5000, base + 1000, base + 9000, base + 3000]
    kutil.produce_all(broker.bootstrap, topic_name, [{"value": b"v", "timestamp": t} for t in ts])
    tp = TopicPartition(topic_name, 0)

    def lo(spec):
        fs = a.list_offsets({tp: spec}, request_timeout=T)
        return fs[tp].result(timeout=T)

    assert lo(OffsetSpec.earliest()).offset == 0
    assert lo(OffsetSpec.latest()).offset == 4
    r = lo(OffsetSpec.max_timestamp())
    assert (r.offset, r.timestamp) == (2, base + 9000)
    assert lo(OffsetSpec.for_timestamp(base + 2000)).offset == 0  # first offset with ts >= target
    assert lo(OffsetSpec.for_timestamp(base + 6000)).offset == 2


def test_unknown_topic_metadata_error(make_broker, topic_name):
    b = make_broker("--auto-create-topics", "false")
    md = kutil.admin(b.bootstrap).list_topics(topic=topic_name, timeout=T)
    assert md.topics[topic_name].error is not None
    assert md.topics[topic_name].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_many_topics_concurrently(broker, new_topic):
    a = kutil.admin(broker.bootstrap)
    names = [new_topic("bulk") for _ in range(30)]
    fs = a.create_topics([NewTopic(n, 2, 1) for n in names], operation_timeout=T)
    concurrent.futures.wait(list(fs.values()), timeout=T)
    assert all(f.result() is None for f in fs.values())
    md = a.list_topics(timeout=T)
    assert all(len(md.topics[n].partitions) == 2 for n in names)
    fs = a.delete_topics(names, operation_timeout=T)
    assert all(f.result(timeout=T) is None for f in fs.values())
    md = a.list_topics(timeout=T)
    assert not set(names) & set(md.topics)
