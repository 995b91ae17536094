"""What client libraries report (confluent-kafka 2.16.1 / librdkafka, kafka-python 3.0.12),
Kafka vs Fjord: the same scenarios through the libraries' public APIs."""

import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, ConfigResource, NewTopic, OffsetSpec,
                                   ResourceType)

from compat import Case, D, check, params


_admins = {}


def admin(s):
    """one AdminClient per broker, kept alive (a collected client cancels its futures)"""
    if s.bs not in _admins:
        _admins[s.bs] = AdminClient({"bootstrap.servers": s.bs, "log_level": 0})
    return _admins[s.bs]


def err_name(fut, timeout=20):
    try:
        fut.result(timeout=timeout)
        return "OK"
    except KafkaException as e:
        return e.args[0].name()


def ck_create_invalid(s):
    fs = admin(s).create_topics([NewTopic("bad/name", 1, 1)], operation_timeout=10)
    return err_name(fs["bad/name"])


def ck_create_exists(s):
    n = s.topic_t()
    fs = admin(s).create_topics([NewTopic(n, 1, 1)], operation_timeout=10)
    return err_name(fs[n])


def ck_describe_topic_ops(s):
    from confluent_kafka import TopicCollection
    n = s.topic_t()
    fs = admin(s).describe_topics(TopicCollection([n]), include_authorized_operations=True)
    d = fs[n].result(timeout=20)
    ops = d.authorized_operations
    return len(d.partitions), None if ops is None else sorted(o.name for o in ops)


def ck_describe_broker_config(s):
    fs = admin(s).describe_configs([ConfigResource(ResourceType.BROKER, "1")])
    (res, fut), = fs.items()
    cfg = fut.result(timeout=20)
    # Kafka has ~350 broker configs, Fjord the ~30 it implements: both must list some.
    return len(cfg) > 20, cfg["num.partitions"].value if "num.partitions" in cfg else None


def ck_produce_keyless_compacted(s):
    n = s.topic_t(configs={"cleanup.policy": "compact"})
    out = []
    p = Producer({"bootstrap.servers": s.bs, "log_level": 0, "enable.idempotence": False,
                  "retries": 0})
    p.produce(n, value=b"no key", on_delivery=lambda e, m: out.append(e and e.name()))
    p.flush(20)
    return out


def ck_consumer_group(s):
    """subscribe with librdkafka, consume 3 records, commit; describe the group"""
    n = s.topic_t()
    s.fill(n, 3)
    g = s.group()
    c = Consumer({"bootstrap.servers": s.bs, "group.id": g, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "log_level": 0,
                  "partition.assignment.strategy": "range"})
    c.subscribe([n])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < 3 and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.append(m.offset())
    c.commit(asynchronous=False)
    committed = [tp.offset for tp in c.committed([TopicPartition(n, 0)], timeout=10)]
    d = admin(s).describe_consumer_groups([g])[g].result(timeout=20)
    view = (got, committed, d.state.name, d.is_simple_consumer_group, d.partition_assignor,
            d.coordinator.id, [sorted((tp.topic == n, tp.partition)
                                      for tp in m.assignment.topic_partitions)
                               for m in d.members])
    c.close()
    d2 = admin(s).describe_consumer_groups([g])[g].result(timeout=20)
    return view + (d2.state.name, len(d2.members))


def ck_list_offsets(s):
    n = s.topic_t()
    s.produce(n, [(b"a", b"1", 1_000_000), (b"b", b"2", 3_000_000), (b"c", b"3", 2_000_000)])
    tp = TopicPartition(n, 0)
    out = []
    for spec in (OffsetSpec.earliest(), OffsetSpec.latest(), OffsetSpec.max_timestamp(),
                 OffsetSpec.for_timestamp(1_500_000)):
        r = admin(s).list_offsets({tp: spec})[tp].result(timeout=20)
        out.append((r.offset, r.timestamp))
    return out


def ck_delete_records(s):
    n = s.topic_t()
    s.fill(n, 5)
    tp = TopicPartition(n, 0, 2)
    r = admin(s).delete_records([tp])[tp].result(timeout=20)
    return r.low_watermark


def ck_describe_cluster(s):
    d = admin(s).describe_cluster().result(timeout=20)
    return d.controller.id, [x.id for x in d.nodes], bool(d.cluster_id)


def kp_group_offsets(s):
    """kafka-python: group consumer reads 4 records and commits; admin reads the offsets"""
    from kafka import KafkaAdminClient, KafkaConsumer
    n = s.topic_t()
    s.fill(n, 4)
    g = s.group()
    c = KafkaConsumer(n, bootstrap_servers=s.bs, group_id=g, auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=20000)
    got = []
    for m in c:
        got.append(m.offset)
        if len(got) == 4:
            break
    c.commit()
    c.close()
    a = KafkaAdminClient(bootstrap_servers=s.bs)
    offs = a.list_group_offsets(g)[g]
    a.close()
    return got, sorted((tp.partition, o.offset) for tp, o in offs.items())


def kp_create_bad_partitions(s):
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic as KNewTopic
    a = KafkaAdminClient(bootstrap_servers=s.bs)
    try:
        a.create_topics([KNewTopic(s.topic(), 0, 1)])
        return "OK"
    except Exception as e:  # noqa: BLE001
        return type(e).__name__
    finally:
        a.close()


CASES = [
    Case("client/confluent-create-invalid", "confluent-kafka create_topics('bad/name')",
         ck_create_invalid, expect="TOPIC_EXCEPTION"),
    Case("client/confluent-create-exists", "confluent-kafka create_topics of an existing topic",
         ck_create_exists, expect="TOPIC_ALREADY_EXISTS"),
    Case("client/confluent-describe-topic-ops", "confluent-kafka describe_topics with "
         "include_authorized_operations", ck_describe_topic_ops,
         expect=(1, ["ALTER", "ALTER_CONFIGS", "CREATE", "DELETE", "DESCRIBE",
                     "DESCRIBE_CONFIGS", "READ", "WRITE"])),
    Case("client/confluent-describe-broker-config", "confluent-kafka describe_configs(BROKER 1)",
         ck_describe_broker_config, expect=(True, "1")),
    Case("client/confluent-keyless-compacted", "confluent-kafka produce without key to a "
         "compacted topic: delivery error", ck_produce_keyless_compacted,
         expect=["INVALID_RECORD"]),
    Case("client/confluent-consumer-group", "confluent-kafka subscribe/consume/commit, "
         "describe_consumer_groups while consuming and after close", ck_consumer_group,
         expect=([0, 1, 2], [3], "STABLE", False, "range", 1, [[(True, 0)]], "EMPTY", 0)),
    Case("client/confluent-list-offsets", "confluent-kafka list_offsets earliest/latest/"
         "max_timestamp/for_timestamp", ck_list_offsets,
         expect=[(0, -1), (3, -1), (1, 3_000_000), (1, 3_000_000)]),
    Case("client/confluent-delete-records", "confluent-kafka delete_records to offset 2",
         ck_delete_records, expect=2),
    Case("client/confluent-describe-cluster", "confluent-kafka describe_cluster",
         ck_describe_cluster, expect=(1, [1], True)),
    Case("client/kafka-python-group-offsets", "kafka-python group consumer commit, "
         "list_group_offsets", kp_group_offsets, expect=([0, 1, 2, 3], [(0, 4)])),
    Case("client/kafka-python-create-0-partitions", "kafka-python create_topics with 0 "
         "partitions", kp_create_bad_partitions, expect="InvalidPartitionsError"),
]


@pytest.mark.parametrize("case", params(CASES, "clients"))
def test_clients(pair, case):
    check(pair, case)
