"""Consumer groups and committed offsets with real clients (librdkafka, kafka-python,
aiokafka, kafkajs) and raw wire requests.

Every wait polls for a condition; nothing sleeps as synchronisation.
"""

import asyncio
import json
import os
import signal
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

import kutil
import wire
from conftest import wait_until

JS_DIR = Path(__file__).resolve().parent / "js"
SESSION_MS = 6000


def gid(prefix="g"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def member(bootstrap, group, **conf):
    base = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": SESSION_MS,
        "heartbeat.interval.ms": 300,
        **kutil.QUIET,
    }
    base.update(conf)
    return Consumer(base)


def produce_n(bootstrap, topic, n, partitions=1, prefix="v"):
    kutil.produce_all(
        bootstrap,
        topic,
        [{"value": f"{prefix}{i}".encode(), "partition": i % partitions} for i in range(n)],
    )


def assigned(c):
    return {(tp.topic, tp.partition) for tp in c.assignment()}


def pump(consumers, sink, rounds=1):
    """Poll each consumer briefly; append (consumer index, msg) of real records to sink."""
    for _ in range(rounds):
        for i, c in enumerate(consumers):
            m = c.poll(0.05)
            if m is not None and not m.error():
                sink.append((i, (m.partition(), m.offset(), m.value())))


def assignments_settle(consumers, partitions, sink):
    """Poll until every consumer owns something, owners are disjoint and cover all."""

    def check():
        pump(consumers, sink)
        sets = [assigned(c) for c in consumers]
        union = set().union(*sets)
        disjoint = sum(len(s) for s in sets) == len(union)
        return all(sets) and disjoint and len(union) == partitions and sets

    return check


def test_members_split_partitions_spread_and_take_over_from_a_killed_member(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name, partitions=6)
    group = gid()
    c1, c2 = member(broker.bootstrap, group), member(broker.bootstrap, group)
    seen = []
    try:
        c1.subscribe([topic_name])
        c2.subscribe([topic_name])
        wait_until(assignments_settle([c1, c2], 6, seen), timeout=30, msg="two-way split")
        produce_n(broker.bootstrap, topic_name, 600, partitions=6)
        wait_until(lambda: pump([c1, c2], seen, 5) or len(seen) >= 600, timeout=30, msg="600 records")
        records = [r for _, r in seen]
        assert len(records) == 600 and len(set(records)) == 600, "every record exactly once"
        assert {i for i, _ in seen} == {0, 1}, "both members consumed"

        # A third member (a separate process, so it can be killed -9) joins.
        script = (
            "import sys\nfrom confluent_kafka import Consumer\n"
            "c = Consumer({'bootstrap.servers': sys.argv[1], 'group.id': sys.argv[2],"
            " 'session.timeout.ms': %d, 'heartbeat.interval.ms': 300, 'log_level': 0})\n"
            "c.subscribe([sys.argv[3]])\n"
            "while True: c.poll(0.2)\n" % SESSION_MS
        )
        third = subprocess.Popen([sys.executable, "-c", script, broker.bootstrap, group, topic_name])
        try:
            wait_until(
                lambda: pump([c1, c2], seen) or (assigned(c1) and assigned(c2) and len(assigned(c1) | assigned(c2)) == 4),
                timeout=40,
                msg="third member takes 2 partitions",
            )
        finally:
            third.send_signal(signal.SIGKILL)
            third.wait()
        killed_at = time.monotonic()
        wait_until(assignments_settle([c1, c2], 6, seen), timeout=SESSION_MS / 1000 + 25, msg="takeover")
        takeover = time.monotonic() - killed_at
        print(f"\npartitions of the killed member moved after {takeover:.2f}s (session {SESSION_MS} ms)")
    finally:
        c1.close()
        c2.close()


def test_two_groups_and_a_kafka_python_group_each_get_every_record(broker, topic_name):
    from kafka import KafkaConsumer

    kutil.create_topic(broker.bootstrap, topic_name, partitions=3)
    produce_n(broker.bootstrap, topic_name, 300, partitions=3)
    for group in (gid("pubsub-a"), gid("pubsub-b")):
        c = member(broker.bootstrap, group)
        got = []
        try:
            c.subscribe([topic_name])
            wait_until(lambda: pump([c], got, 10) or len(got) >= 300, timeout=30, msg=group)
        finally:
            c.close()
        assert len({r for _, r in got}) == 300
    kp = KafkaConsumer(
        topic_name,
        bootstrap_servers=broker.bootstrap,
        group_id=gid("pubsub-kp"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=500,
    )
    got = set()
    try:
        deadline = time.monotonic() + 30
        while len(got) < 300 and time.monotonic() < deadline:
            for m in kp:
                got.add((m.partition, m.offset))
    finally:
        kp.close()
    assert len(got) == 300


def test_manual_commit_resumes_after_broker_restart(make_broker, topic_name):
    b = make_broker()
    kutil.create_topic(b.bootstrap, topic_name)
    produce_n(b.bootstrap, topic_name, 10_000)
    group = gid("resume")
    c = member(b.bootstrap, group)
    got = []
    try:
        c.subscribe([topic_name])
        wait_until(lambda: pump([c], got, 50) or len(got) >= 5000, timeout=30, msg="5000 records")
        # Commit exactly "next offset = 5000" whatever was prefetched.
        c.commit(offsets=[TopicPartition(topic_name, 0, 5000)], asynchronous=False)
    finally:
        c.close()
    b.restart()
    c = member(b.bootstrap, group)
    try:
        committed = c.committed([TopicPartition(topic_name, 0)], timeout=20)
        assert committed[0].offset == 5000
        c.subscribe([topic_name])
        first = []
        wait_until(lambda: pump([c], first) or first, timeout=30, msg="first record after restart")
        assert first[0][1][1] == 5000
    finally:
        c.close()


def committed_offset(bootstrap, group, topic):
    c = member(bootstrap, group)
    try:
        return c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
    finally:
        c.close()


def consume_librdkafka(bootstrap, topic, group, n):
    c = member(bootstrap, group, **{"enable.auto.commit": True, "auto.commit.interval.ms": 100})
    got = []
    try:
        c.subscribe([topic])
        wait_until(lambda: pump([c], got, 10) or len(got) >= n, timeout=30, msg="librdkafka")
    finally:
        c.close()


def consume_kafka_python(bootstrap, topic, group, n):
    from kafka import KafkaConsumer

    c = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        auto_commit_interval_ms=100,
        consumer_timeout_ms=500,
    )
    got = 0
    deadline = time.monotonic() + 30
    try:
        while got < n and time.monotonic() < deadline:
            got += sum(1 for _ in c)
    finally:
        c.close(autocommit=True)


def consume_aiokafka(bootstrap, topic, group, n):
    from aiokafka import AIOKafkaConsumer

    async def run():
        c = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=True,
            auto_commit_interval_ms=100,
        )
        await c.start()
        try:
            got = 0
            while got < n:
                batch = await asyncio.wait_for(c.getmany(timeout_ms=500), 30)
                got += sum(len(v) for v in batch.values())
        finally:
            await c.stop()

    asyncio.run(run())


def consume_kafkajs(bootstrap, topic, group, n):
    if not (JS_DIR / "node_modules" / "kafkajs").is_dir():
        pytest.fail(f"kafkajs not installed: run `npm ci` in {JS_DIR}")
    r = subprocess.run(
        ["node", str(JS_DIR / "consume_group.js"), bootstrap, topic, group, str(n)],
        capture_output=True,
        timeout=90,
        cwd=JS_DIR,
    )
    out = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert r.returncode == 0, (out, r.stderr.decode()[-2000:])
    assert len(out["values"]) >= n


@pytest.mark.parametrize(
    "client", [consume_librdkafka, consume_kafka_python, consume_aiokafka, consume_kafkajs],
    ids=["librdkafka", "kafka-python", "aiokafka", "kafkajs"],
)
def test_auto_commit(broker, topic_name, client):
    kutil.create_topic(broker.bootstrap, topic_name)
    produce_n(broker.bootstrap, topic_name, 50)
    group = gid("auto")
    client(broker.bootstrap, topic_name, group, 50)
    assert committed_offset(broker.bootstrap, group, topic_name) == 50


def test_static_member_rejoins_without_rebalance(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name, partitions=4)
    group = gid("static")
    events = []
    on_b = dict(on_assign=lambda c, ps: events.append("assign"), on_revoke=lambda c, ps: events.append("revoke"))
    a = member(broker.bootstrap, group, **{"group.instance.id": "a", "session.timeout.ms": 30000})
    b = member(broker.bootstrap, group, **{"group.instance.id": "b", "session.timeout.ms": 30000})
    sink = []
    try:
        a.subscribe([topic_name])
        b.subscribe([topic_name], **on_b)
        wait_until(assignments_settle([a, b], 4, sink), timeout=30, msg="static split")
        before = assigned(a)
        events_before = list(events)
        a.close()  # a static member leaves no LeaveGroup behind (KIP-345)
        a = member(broker.bootstrap, group, **{"group.instance.id": "a", "session.timeout.ms": 30000})
        a.subscribe([topic_name])
        wait_until(lambda: pump([a, b], sink) or assigned(a), timeout=20, msg="restarted static member")
        assert assigned(a) == before, "same partitions back"
        for _ in range(10):
            pump([a, b], sink)
        assert events == events_before, "the other member saw no rebalance"
    finally:
        a.close()
        b.close()


def test_cooperative_sticky(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name, partitions=6)
    group = gid("coop")
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    c1 = member(broker.bootstrap, group, **conf)
    c2 = member(broker.bootstrap, group, **conf)
    seen = []
    try:
        c1.subscribe([topic_name])
        wait_until(lambda: pump([c1], seen) or len(assigned(c1)) == 6, timeout=30, msg="c1 owns all")
        c2.subscribe([topic_name])
        wait_until(assignments_settle([c1, c2], 6, seen), timeout=30, msg="cooperative split")
        produce_n(broker.bootstrap, topic_name, 300, partitions=6)
        wait_until(lambda: pump([c1, c2], seen, 5) or len(seen) >= 300, timeout=30, msg="300 records")
        assert len({r for _, r in seen}) == 300 == len(seen)
    finally:
        c1.close()
        c2.close()


def test_lone_consumer_time_to_first_record(broker, topic_name, record_property):
    kutil.create_topic(broker.bootstrap, topic_name)
    produce_n(broker.bootstrap, topic_name, 1)
    c = member(broker.bootstrap, gid("ttfr"))
    got = []
    try:
        started = time.monotonic()
        c.subscribe([topic_name])
        while not got and time.monotonic() - started < 10:
            m = c.poll(0.01)
            if m is not None and not m.error():
                got.append(m)
        elapsed = time.monotonic() - started
    finally:
        c.close()
    record_property("time_to_first_record_s", round(elapsed, 3))
    print(f"\nlone consumer time to first record: {elapsed * 1000:.0f} ms")
    assert got and elapsed < 3.0


# ---- raw wire: errors and isolation ----

def s16(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def join_v1(group, member_id="", session=SESSION_MS, meta=b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"):
    body = s16(group) + struct.pack(">ii", session, 60000) + s16(member_id) + s16("consumer")
    body += struct.pack(">i", 1) + s16("range") + struct.pack(">i", len(meta)) + meta
    return body


def call(sock, api, version, body, cid=7, timeout=10):
    sock.sendall(wire.frame(wire.header_v1(api, version, cid) + body))
    got, resp = wire.read_response(sock, timeout)
    assert got == cid
    return resp


def parse_join_v1(resp):
    err, generation = struct.unpack(">hi", resp[:6])
    off = 6
    fields = []
    for _ in range(3):  # protocol, leader, member id
        (n,) = struct.unpack(">h", resp[off:off + 2])
        fields.append(resp[off + 2:off + 2 + n].decode())
        off += 2 + n
    return err, generation, fields[1], fields[2]


def heartbeat_v0(group, generation, member_id):
    return s16(group) + struct.pack(">i", generation) + s16(member_id)


def test_malformed_group_requests_get_the_right_errors_and_never_stall_others(broker):
    group = gid("raw")
    s = wire.connect(broker.bootstrap)
    other = wire.connect(broker.bootstrap)
    try:
        err, generation, leader, me = parse_join_v1(call(s, 11, 1, join_v1(group)))
        assert (err, generation, leader) == (0, 1, me)
        # SyncGroup v0 from the leader with a 4 MB assignment blob.
        blob = b"x" * (4 << 20)
        body = s16(group) + struct.pack(">i", 1) + s16(me) + struct.pack(">i", 1) + s16(me)
        body += struct.pack(">i", len(blob)) + blob
        resp = call(s, 14, 0, body)
        assert struct.unpack(">h", resp[:2])[0] == 0
        assert struct.unpack(">i", resp[2:6])[0] == len(blob)

        hb = lambda g, gen, m: struct.unpack(">h", call(s, 12, 0, heartbeat_v0(g, gen, m))[:2])[0]
        assert hb(group, 1, me) == 0
        assert hb(group, 99, me) == 22  # ILLEGAL_GENERATION
        assert hb(group, 1, "nobody") == 25  # UNKNOWN_MEMBER_ID
        assert hb("", 1, me) == 24  # INVALID_GROUP_ID
        assert hb(gid("none"), 1, me) == 25
        bad_protocol = join_v1(group).replace(s16("consumer"), s16("connect"))
        assert parse_join_v1(call(s, 11, 1, bad_protocol))[0] == 23  # INCONSISTENT_GROUP_PROTOCOL

        # A second member's JoinGroup long-polls until the first rejoins; meanwhile other
        # groups on other connections answer at once.
        other.sendall(wire.frame(wire.header_v1(11, 1, 8) + join_v1(group)))
        t0 = time.monotonic()
        for i in range(2000):
            g = f"{group}-many-{i}"
            err, gen, _, _ = parse_join_v1(call(s, 11, 1, join_v1(g), cid=100 + i))
            assert (err, gen) == (0, 1), g
        assert hb(group, 1, me) == 27  # REBALANCE_IN_PROGRESS: the first member must rejoin
        err, gen, _, _ = parse_join_v1(call(s, 11, 1, join_v1(group, me)))
        assert (err, gen) == (0, 2)
        cid, resp = wire.read_response(other, 10)
        assert cid == 8 and parse_join_v1(resp)[:2] == (0, 2)
        print(f"\n2000 groups joined in {time.monotonic() - t0:.2f}s while a join was pending")

        # ListGroups v0 sees them all.
        resp = call(s, 16, 0, b"")
        err, count = struct.unpack(">hi", resp[:6])
        assert err == 0 and count >= 2001
    finally:
        s.close()
        other.close()


def test_commit_errors_describe_and_delete(broker, topic_name):
    from confluent_kafka.admin import AdminClient
    from confluent_kafka import ConsumerGroupState

    kutil.create_topic(broker.bootstrap, topic_name)
    group = gid("admin")
    c = member(broker.bootstrap, group)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, **kutil.QUIET})
    try:
        c.subscribe([topic_name])
        wait_until(lambda: c.poll(0.05) is None and assigned(c), timeout=20, msg="assigned")
        with pytest.raises(KafkaException) as e:
            c.commit(offsets=[TopicPartition(f"{topic_name}-nope", 0, 5)], asynchronous=False)
        assert e.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
        assert desc.state == ConsumerGroupState.STABLE and len(desc.members) == 1
        with pytest.raises(KafkaException) as e:
            admin.delete_consumer_groups([group])[group].result(timeout=10)
        assert e.value.args[0].code() == KafkaError.NON_EMPTY_GROUP
    finally:
        c.close()
    listed = admin.list_consumer_groups().result(timeout=10)
    assert group in {g.group_id for g in listed.valid}
    admin.delete_consumer_groups([group])[group].result(timeout=10)
    with pytest.raises(KafkaException) as e:
        admin.delete_consumer_groups([group])[group].result(timeout=10)
    assert e.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND


def test_kcat_balanced_consumer_librdkafka_2_0(broker, topic_name):
    """Debian's kcat links librdkafka 2.0.2: an older group protocol negotiation."""
    kutil.create_topic(broker.bootstrap, topic_name, partitions=2)
    produce_n(broker.bootstrap, topic_name, 40, partitions=2)
    group = gid("kcat")
    r = subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-G", group, topic_name, "-e", "-q", "-f", "%s\\n",
         "-X", "auto.offset.reset=earliest", "-X", "enable.auto.commit=true",
         "-X", "auto.commit.interval.ms=100"],
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert sorted(r.stdout.decode().split()) == sorted(f"v{i}" for i in range(40))
    c = member(broker.bootstrap, group)
    try:
        committed = c.committed([TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)], timeout=10)
        assert [tp.offset for tp in committed] == [20, 20]
    finally:
        c.close()
