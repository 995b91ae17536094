"""aiokafka (asyncio client) against the real broker. Each test runs its own event loop."""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

import kutil

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def consume(bootstrap, topic, n, partition=0, offset=None):
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest")
    await c.start()
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        if offset is None:
            await c.seek_to_beginning(tp)
        else:
            c.seek(tp, offset)
        out = []
        while len(out) < n:
            batch = await c.getmany(tp, timeout_ms=500)
            out.extend(batch.get(tp, []))
        return out
    finally:
        await c.stop()


@pytest.mark.parametrize("codec", CODECS)
def test_send_and_wait_roundtrip(broker, topic_name, codec):
    kutil.create_topic(broker.bootstrap, topic_name)

    async def main():
        p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=codec, acks="all")
        await p.start()
        try:
            metas = []
            for i in range(50):
                metas.append(await p.send_and_wait(
                    topic_name, value=b"v%d" % i, key=b"k%d" % i, headers=[("n", b"%d" % i)]))
            # batched sends too
            futs = [await p.send(topic_name, value=b"b%d" % i) for i in range(200)]
            metas += [await f for f in futs]
        finally:
            await p.stop()
        assert [m.offset for m in metas] == list(range(250))
        recs = await consume(broker.bootstrap, topic_name, 250)
        assert [(r.key, r.value) for r in recs[:50]] == [(b"k%d" % i, b"v%d" % i) for i in range(50)]
        assert [list(r.headers) for r in recs[:50]] == [[("n", b"%d" % i)] for i in range(50)]
        assert [r.value for r in recs[50:]] == [b"b%d" % i for i in range(200)]
        assert [r.offset for r in recs] == list(range(250))

    run(main())


def test_seek_and_offsets(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name, partitions=2)

    async def main():
        p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await p.start()
        try:
            for i in range(20):
                await p.send_and_wait(topic_name, value=b"%d" % i, partition=1,
                                      timestamp_ms=1_700_000_000_000 + i)
        finally:
            await p.stop()
        recs = await consume(broker.bootstrap, topic_name, 5, partition=1, offset=15)
        assert [(r.offset, r.value, r.timestamp) for r in recs] == [
            (i, b"%d" % i, 1_700_000_000_000 + i) for i in range(15, 20)
        ]
        c = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False)
        await c.start()
        try:
            tps = [TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)]
            assert await c.end_offsets(tps) == {tps[0]: 0, tps[1]: 20}
            assert await c.beginning_offsets(tps) == {tps[0]: 0, tps[1]: 0}
            r = await c.offsets_for_times({tps[1]: 1_700_000_000_007})
            assert r[tps[1]].offset == 7
        finally:
            await c.stop()

    run(main())


def test_admin_basics(broker, topic_name, new_topic):
    other = new_topic("aio-other")

    async def main():
        a = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
        await a.start()
        try:
            resp = await a.create_topics([
                NewTopic(topic_name, num_partitions=2, replication_factor=1,
                         topic_configs={"retention.ms": "123456"}),
                NewTopic(other, num_partitions=1, replication_factor=1),
            ])
            errs = {t[0]: t[1] for t in resp.topic_errors}
            assert errs == {topic_name: 0, other: 0}, resp

            kutil.wait_topic_visible(broker.bootstrap, topic_name, partitions=2)
            assert {topic_name, other} <= set(await a.list_topics())

            (desc,) = await a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic_name)])
            (resource,) = desc.resources
            # resources: (error_code, error_message, resource_type, resource_name, config_entries)
            assert resource[0] == 0, resource
            entries = {e[0]: e[1] for e in resource[4]}
            assert entries["retention.ms"] == "123456"

            await a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic_name,
                                                  configs={"retention.ms": "654321"})])
            (desc,) = await a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic_name)])
            assert {e[0]: e[1] for e in desc.resources[0][4]}["retention.ms"] == "654321"

            resp = await a.create_partitions({topic_name: NewPartitions(total_count=4)})
            assert [e[1] for e in resp.topic_errors] == [0], resp
            kutil.wait_topic_visible(broker.bootstrap, topic_name, partitions=4)

            p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
            await p.start()
            try:
                for i in range(10):
                    await p.send_and_wait(topic_name, b"%d" % i, partition=3)
            finally:
                await p.stop()
            tp = TopicPartition(topic_name, 3)
            res = await a.delete_records({tp: RecordsToDelete(before_offset=6)})
            assert res[tp] == 6
            recs = await consume(broker.bootstrap, topic_name, 4, partition=3)
            assert [r.offset for r in recs] == [6, 7, 8, 9]

            resp = await a.delete_topics([other])
            assert [e[1] for e in resp.topic_error_codes] == [0], resp
            kutil.wait_until(lambda: other not in kutil.admin(broker.bootstrap).list_topics(timeout=5).topics,
                             timeout=15, msg="topic deletion")
        finally:
            await a.close()

    run(main())
