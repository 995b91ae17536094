"""Share groups (KIP-932, queues over Kafka topics) with confluent-kafka's ShareConsumer
(librdkafka 2.16, "preview") and raw wire requests.

Every test gets its own topic and group; the group is set to share.auto.offset.reset=earliest
with IncrementalAlterConfigs on the GROUP resource before anything consumes, so records
produced before the first fetch are delivered.

Covered: implicit and explicit acknowledgement (ACCEPT / RELEASE / REJECT, delivery counts),
the delivery count limit with a dead-letter topic (KIP-1191 header names), Fjord's redelivery
back-off, acquisition lock expiry, several consumers on one partition, durability of
acknowledgements across kill -9, group config validation and DescribeConfigs, ListGroups and
ShareGroupDescribe, and the error codes of malformed ShareFetch / ShareAcknowledge /
ShareGroupHeartbeat requests.

Kafka is the oracle (its decompiled SharePartition / SharePartitionManager / ShareSessionCache
of 4.x for the edge cases); where Fjord differs the test is xfail(strict=True) and says how.
"""

import json
import signal
import struct
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import AcknowledgeType, KafkaError, KafkaException, ShareConsumer
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   ResourceType)

import kutil
import wire
from conftest import wait_until

INVALID_REQUEST = 42
INVALID_CONFIG = 40
GROUP_ID_NOT_FOUND = 69
INVALID_RECORD_STATE = 121
SHARE_SESSION_NOT_FOUND = 122
INVALID_SHARE_SESSION_EPOCH = 123

SHARE_GROUP_HEARTBEAT, SHARE_GROUP_DESCRIBE, SHARE_FETCH, SHARE_ACKNOWLEDGE = 76, 77, 78, 79
LIST_GROUPS = 16

ACCEPT, RELEASE, REJECT = AcknowledgeType.ACCEPT, AcknowledgeType.RELEASE, AcknowledgeType.REJECT


# ---------------------------------------------------------------------------
# helpers: groups, configs, consumers
# ---------------------------------------------------------------------------

def gid(prefix="sg"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def alter_group(bootstrap, group, configs, op=AlterConfigOpType.SET):
    """IncrementalAlterConfigs on the GROUP resource; raises KafkaException on refusal."""
    res = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
        ConfigEntry(k, str(v), incremental_operation=op) for k, v in configs.items()])
    a = kutil.admin(bootstrap)  # kept alive until the futures resolve
    for f in a.incremental_alter_configs([res], request_timeout=15).values():
        f.result(timeout=15)


def share_group(bootstrap, **configs):
    """A new share group id with share.auto.offset.reset=earliest (plus `configs`)."""
    g = gid()
    alter_group(bootstrap, g, {"share.auto.offset.reset": "earliest", **configs})
    return g


def describe_group_configs(bootstrap, group):
    res = ConfigResource(ResourceType.GROUP, group)
    a = kutil.admin(bootstrap)
    return a.describe_configs([res], request_timeout=15)[res].result(timeout=15)


def share_consumer(bootstrap, group, topics, mode="implicit", **conf):
    c = ShareConsumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "share.acknowledgement.mode": mode,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        **kutil.QUIET,
        **conf,
    })
    c.subscribe(list(topics))
    return c


@pytest.fixture
def consumers():
    """Factory of ShareConsumers closed at teardown (close() leaves the group)."""
    made = []

    def make(*args, **kw):
        c = share_consumer(*args, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        try:
            c.close()
        except Exception:  # noqa: BLE001 - closed by the test already, or broker gone
            pass


def poll_records(c, timeout=1.0):
    """One poll: the real records (errors other than transport noise fail the test)."""
    out = []
    for m in c.poll(timeout):
        if m.error():
            if m.error().code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
                continue
            raise KafkaException(m.error())
        out.append(m)
    return out


def collect(c, n, timeout=15.0, on_record=None):
    """Polls until n records were returned (or timeout); returns them in order of arrival.
    on_record(msg) is called for each (explicit mode: it must acknowledge)."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        for m in poll_records(c, 0.5):
            got.append(m)
            if on_record:
                on_record(m)
    return got


def collect_for(c, seconds, on_record=None):
    """Every record returned during `seconds`."""
    got = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for m in poll_records(c, min(0.3, max(0.01, deadline - time.monotonic()))):
            got.append(m)
            if on_record:
                on_record(m)
    return got


def commit(c):
    """commit_sync: every partition's acknowledgements must have succeeded."""
    res = c.commit_sync(15)
    bad = {f"{tp.topic}[{tp.partition}]": err for tp, err in (res or {}).items() if err is not None}
    assert not bad, f"acknowledgement commit failed: {bad}"
    return res


def produce_values(bootstrap, topic, values, batch=None, **extra):
    """Produces values (bytes) to partition 0; `batch` records per produce request (each flush
    makes a separate record batch, so share fetches can split them)."""
    batch = batch or len(values) or 1
    for i in range(0, len(values), batch):
        # A long linger: nothing leaves before flush() (which sends at once), so each chunk is
        # one batch even on a loaded machine.
        kutil.produce_all(bootstrap, topic, [{"value": v, "partition": 0, **extra}
                                             for v in values[i:i + batch]],
                          conf={"linger.ms": 5000})


def hdr(msg, name):
    for k, v in msg.headers() or []:
        if k == name:
            return v
    return None


def read_topic(bootstrap, topic, n, timeout=20):
    return kutil.consume(bootstrap, topic, n, timeout=timeout)


# A share consumer in another process (so it can be killed with SIGKILL): it acquires records
# in explicit mode, accepts those whose value is listed in argv[4] (a JSON list), commits,
# prints one JSON line {"acquired": [[offset, delivery_count], ...]} and then idles forever
# without acknowledging the rest.
CHILD = r"""
import json, sys, time
from confluent_kafka import AcknowledgeType, ShareConsumer
bootstrap, group, topic, accept, want = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), int(sys.argv[5])
c = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0,
                   "share.acknowledgement.mode": "explicit"})
c.subscribe([topic])
got, deadline = [], time.monotonic() + 20
while len(got) < want and time.monotonic() < deadline:
    for m in c.poll(0.5):
        if m.error():
            continue
        got.append(m)
        if m.value().decode() in accept:
            c.acknowledge(m, AcknowledgeType.ACCEPT)
if accept:
    res = c.commit_sync(15)
    assert all(e is None for e in res.values()), res
print(json.dumps({"acquired": [[m.offset(), m.delivery_count()] for m in got]}), flush=True)
while True:
    time.sleep(1)
"""


def child_acquire(bootstrap, group, topic, want, accept=()):
    """Starts CHILD; returns (process, [(offset, delivery_count)]) once it holds its records."""
    p = subprocess.Popen([sys.executable, "-c", CHILD, bootstrap, group, topic,
                          json.dumps(list(accept)), str(want)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stdout.readline()
    if not line:
        p.kill()
        raise AssertionError(f"child consumer failed: {p.stderr.read().decode()[-2000:]}")
    return p, [tuple(x) for x in json.loads(line)["acquired"]]


def kill_child(p):
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)
    p.wait(10)


# ---------------------------------------------------------------------------
# 1. implicit acknowledgement
# ---------------------------------------------------------------------------

def test_implicit_mode_delivers_every_record_once_and_the_group_then_has_nothing(broker, topic_name, consumers):
    kutil.create_topic(broker.bootstrap, topic_name)
    values = [f"v{i}".encode() for i in range(40)]
    produce_values(broker.bootstrap, topic_name, values, batch=10)
    g = share_group(broker.bootstrap)

    a = consumers(broker.bootstrap, g, [topic_name])
    got = collect(a, len(values))
    assert sorted(m.value() for m in got) == sorted(values)
    assert Counter(m.offset() for m in got) == Counter(range(40)), "each offset exactly once"
    assert {m.delivery_count() for m in got} == {1}
    # implicit mode: commit_sync accepts what the last poll returned (librdkafka's close() does
    # not send them; an accepted record is then never delivered again)
    commit(a)
    assert collect_for(a, 1.0) == [], "nothing more for the same consumer"
    a.close()

    b = consumers(broker.bootstrap, g, [topic_name])
    assert collect_for(b, 2.5) == [], "a second consumer of the group gets nothing"
    # ...but records produced now reach it
    produce_values(broker.bootstrap, topic_name, [b"late"])
    late = collect(b, 1)
    assert [(m.value(), m.offset(), m.delivery_count()) for m in late] == [(b"late", 40, 1)]


def test_share_auto_offset_reset_latest_is_the_default(broker, topic_name, consumers):
    kutil.create_topic(broker.bootstrap, topic_name)
    produce_values(broker.bootstrap, topic_name, [b"old"] * 5)
    g = gid()  # no configs: latest
    c = consumers(broker.bootstrap, g, [topic_name])
    # the share-partition is initialised at the first fetch; produce until the consumer sees one
    got = []

    def sees_new():
        produce_values(broker.bootstrap, topic_name, [b"new"])
        got.extend(poll_records(c, 0.5))
        return got

    wait_until(sees_new, timeout=15, interval=0.01, msg="a record produced after joining")
    got.extend(collect_for(c, 1.0))
    assert got and {m.value() for m in got} == {b"new"}, "records before the start are not delivered"
    assert min(m.offset() for m in got) >= 5


# ---------------------------------------------------------------------------
# 2. explicit acknowledgement
# ---------------------------------------------------------------------------

def test_explicit_accept_release_reject(broker, topic_name, consumers):
    kutil.create_topic(broker.bootstrap, topic_name)
    values = [f"v{i}".encode() for i in range(12)]
    produce_values(broker.bootstrap, topic_name, values)
    g = share_group(broker.bootstrap)
    c = consumers(broker.bootstrap, g, [topic_name], mode="explicit")

    # offset % 3: 0 accept, 1 release, 2 reject
    seen = []

    def ack(m):
        seen.append((m.offset(), m.delivery_count()))
        kind = m.offset() % 3
        if m.delivery_count() > 1 or kind == 0:
            c.acknowledge(m, ACCEPT)
        elif kind == 1:
            c.acknowledge(m, RELEASE)
        else:
            c.acknowledge(m, REJECT)

    first = collect(c, 12, on_record=ack)
    assert sorted(m.offset() for m in first) == list(range(12))
    commit(c)
    again = collect(c, 4, on_record=ack)
    commit(c)
    again += collect_for(c, 2.0, on_record=ack)
    released = [o for o in range(12) if o % 3 == 1]
    assert sorted((m.offset(), m.delivery_count()) for m in again) == [(o, 2) for o in released], \
        "released records come back once, with delivery count 2; accepted and rejected never"
    assert [m.value() for m in sorted(again, key=lambda m: m.offset())] == [values[o] for o in released]
    commit(c)
    assert collect_for(c, 1.0, on_record=ack) == []


def test_explicit_mode_unacknowledged_records_block_the_next_poll(broker, topic_name, consumers):
    """librdkafka refuses to poll on while records of the last poll are unacknowledged (client
    behaviour; guards the tests below that rely on an idle explicit consumer)."""
    kutil.create_topic(broker.bootstrap, topic_name)
    produce_values(broker.bootstrap, topic_name, [b"a", b"b"])
    g = share_group(broker.bootstrap)
    c = consumers(broker.bootstrap, g, [topic_name], mode="explicit")
    got = collect(c, 2)
    assert len(got) == 2
    with pytest.raises(Exception):
        c.poll(0.2)
    for m in got:
        c.acknowledge(m, ACCEPT)
    commit(c)
    assert collect_for(c, 0.5) == []


# ---------------------------------------------------------------------------
# 3. delivery count limit and dead letters
# ---------------------------------------------------------------------------

def test_delivery_limit_moves_the_record_to_the_dead_letter_topic(broker, topic_name, new_topic, consumers):
    kutil.create_topic(broker.bootstrap, topic_name)
    dlq = new_topic("dlq")
    kutil.create_topic(broker.bootstrap, dlq)
    ts = int(time.time() * 1000) - 60_000
    kutil.produce_all(broker.bootstrap, topic_name, [
        {"value": b"ok", "key": b"k0", "partition": 0},
        {"value": b"poison", "key": b"k1", "partition": 0, "timestamp": ts,
         "headers": [("trace", b"t-1"), ("empty", b""), ("trace", b"t-2")]},
        {"value": b"ok2", "key": b"k2", "partition": 0},
    ])
    g = share_group(broker.bootstrap, **{"share.delivery.count.limit": 2,
                                         "errors.deadletterqueue.topic.name": dlq,
                                         "errors.deadletterqueue.copy.record.enable": "true"})
    c = consumers(broker.bootstrap, g, [topic_name], mode="explicit")
    deliveries = []

    def ack(m):
        deliveries.append((m.offset(), m.delivery_count()))
        c.acknowledge(m, RELEASE if m.value() == b"poison" else ACCEPT)

    collect(c, 3, on_record=ack)
    commit(c)
    collect(c, 1, on_record=ack)
    commit(c)
    collect_for(c, 2.0, on_record=ack)
    commit(c)
    assert sorted(deliveries) == [(0, 1), (1, 1), (1, 2), (2, 1)], \
        "delivered twice (the limit), then archived"

    [letter] = read_topic(broker.bootstrap, dlq, 1)
    assert letter.key() == b"k1" and letter.value() == b"poison"
    assert letter.timestamp()[1] == ts
    headers = letter.headers()
    assert headers[:3] == [("trace", b"t-1"), ("empty", b""), ("trace", b"t-2")], \
        "the original headers first, in order"
    assert hdr(letter, "__dlq.errors.topic") == topic_name.encode()
    assert hdr(letter, "__dlq.errors.partition") == b"0"
    assert hdr(letter, "__dlq.errors.offset") == b"1"
    assert hdr(letter, "__dlq.errors.group") == g.encode()
    assert hdr(letter, "__dlq.errors.delivery.count") is not None  # its value: checked by the test below
    assert b"delivery count limit" in hdr(letter, "__dlq.errors.message")
    assert kutil.watermarks(broker.bootstrap, dlq) == (0, 1), "exactly one dead letter"
    assert collect_for(c, 1.0, on_record=ack) == [], "an archived record is not redelivered"


def test_rejected_record_is_dead_lettered_once(broker, topic_name, new_topic, consumers):
    kutil.create_topic(broker.bootstrap, topic_name)
    dlq = new_topic("dlq")  # not created: the broker creates it
    produce_values(broker.bootstrap, topic_name, [b"a", b"bad", b"c"])
    g = share_group(broker.bootstrap, **{"errors.deadletterqueue.topic.name": dlq,
                                         "errors.deadletterqueue.copy.record.enable": "true"})
    c = consumers(broker.bootstrap, g, [topic_name], mode="explicit")
    collect(c, 3, on_record=lambda m: c.acknowledge(m, REJECT if m.value() == b"bad" else ACCEPT))
    commit(c)
    kutil.wait_topic_visible(broker.bootstrap, dlq)
    [letter] = read_topic(broker.bootstrap, dlq, 1)
    assert letter.value() == b"bad"
    assert hdr(letter, "__dlq.errors.offset") == b"1"
    assert hdr(letter, "__dlq.errors.group") == g.encode()
    assert b"rejected" in hdr(letter, "__dlq.errors.message")
    assert collect_for(c, 1.0) == []
    assert kutil.watermarks(broker.bootstrap, dlq) == (0, 1)


def test_dead_letter_delivery_count_header(broker, topic_name, new_topic, consumers):
    kutil.create_topic(broker.bootstrap, topic_name)
    dlq = new_topic("dlq")
    kutil.create_topic(broker.bootstrap, dlq)
    produce_values(broker.bootstrap, topic_name, [b"rejected", b"released"])
    g = share_group(broker.bootstrap, **{"share.delivery.count.limit": 2,
                                         "errors.deadletterqueue.topic.name": dlq,
                                         "errors.deadletterqueue.copy.record.enable": "true"})
    c = consumers(broker.bootstrap, g, [topic_name], mode="explicit")
    ack = lambda m: c.acknowledge(m, REJECT if m.value() == b"rejected" else RELEASE)  # noqa: E731
    collect(c, 2, on_record=ack)
    commit(c)
    collect(c, 1, on_record=ack)
    commit(c)
    letters = {m.value(): m for m in read_topic(broker.bootstrap, dlq, 2)}
    assert hdr(letters[b"rejected"], "__dlq.errors.delivery.count") == b"1"
    assert hdr(letters[b"released"], "__dlq.errors.delivery.count") == b"2"


# ---------------------------------------------------------------------------
# 4. redelivery back-off (Fjord extension)
# ---------------------------------------------------------------------------

def test_redelivery_backoff_delays_a_released_record(broker, topic_name, consumers):
    kutil.create_topic(broker.bootstrap, topic_name)
    produce_values(broker.bootstrap, topic_name, [b"x"])
    g = share_group(broker.bootstrap, **{"fjord.share.redelivery.backoff.ms": 3000})
    c = consumers(broker.bootstrap, g, [topic_name], mode="explicit")
    [m] = collect(c, 1, on_record=lambda m: c.acknowledge(m, RELEASE))
    assert m.delivery_count() == 1
    commit(c)
    released_at = time.monotonic()
    again = collect(c, 1, timeout=10, on_record=lambda m: c.acknowledge(m, ACCEPT))
    waited = time.monotonic() - released_at
    assert [(r.offset(), r.delivery_count()) for r in again] == [(0, 2)], "redelivered within 10 s"
    assert waited >= 1.5, f"redelivered after {waited:.2f}s, back-off is 3 s"
    commit(c)


def test_backoff_accepted_forms_are_stored_as_given(broker):
    # what each form means is unit-tested (config.rs); here: accepted and described as set
    g = gid()
    for value in ("kafka", "rocketmq", "0", "100,200, 5000"):
        alter_group(broker.bootstrap, g, {"fjord.share.redelivery.backoff.ms": value})
        entry = describe_group_configs(broker.bootstrap, g)["fjord.share.redelivery.backoff.ms"]
        assert entry.value == value


# ---------------------------------------------------------------------------
# 5. acquisition lock expiry
# ---------------------------------------------------------------------------

def test_lock_expiry_hands_records_to_another_member(broker, topic_name, consumers):
    kutil.create_topic(broker.bootstrap, topic_name)
    produce_values(broker.bootstrap, topic_name, [f"r{i}".encode() for i in range(5)])
    g = share_group(broker.bootstrap, **{"share.record.lock.duration.ms": 1000})
    a = consumers(broker.bootstrap, g, [topic_name], mode="explicit")
    held = collect(a, 5)  # acquired, never acknowledged; a stays open and does not poll
    acquired_at = time.monotonic()
    assert sorted((m.offset(), m.delivery_count()) for m in held) == [(o, 1) for o in range(5)]

    b = consumers(broker.bootstrap, g, [topic_name])
    got = collect(b, 5, timeout=10)
    waited = time.monotonic() - acquired_at
    assert sorted((m.offset(), m.delivery_count()) for m in got) == [(o, 2) for o in range(5)]
    assert waited >= 0.7, f"B got locked records after {waited:.2f}s (lock 1 s)"
    commit(b)
    assert collect_for(b, 1.0) == []


# ---------------------------------------------------------------------------
# 6. several consumers of one partition
# ---------------------------------------------------------------------------

def test_three_consumers_share_one_partition_without_duplicates(broker, topic_name, consumers):
    kutil.create_topic(broker.bootstrap, topic_name, partitions=1)
    n = 300
    values = [f"m{i}".encode() for i in range(n)]
    produce_values(broker.bootstrap, topic_name, values, batch=10)
    g = share_group(broker.bootstrap)
    cs = [consumers(broker.bootstrap, g, [topic_name], **{"max.poll.records": 10}) for _ in range(3)]
    by = {i: [] for i in range(3)}
    deadline = time.monotonic() + 30
    while sum(len(v) for v in by.values()) < n and time.monotonic() < deadline:
        for i, c in enumerate(cs):
            by[i].extend(poll_records(c, 0.1))
    for c in cs:
        commit(c)
    # and a last look: nothing is redelivered
    for i, c in enumerate(cs):
        by[i].extend(collect_for(c, 0.5))
    offsets = Counter(m.offset() for ms in by.values() for m in ms)
    dups = {o: k for o, k in offsets.items() if k > 1}
    assert not dups, f"offsets delivered more than once: {sorted(dups)[:10]}"
    assert set(offsets) == set(range(n)), f"missing: {sorted(set(range(n)) - set(offsets))[:10]}"
    assert all(m.delivery_count() == 1 for ms in by.values() for m in ms)
    busy = [i for i, ms in by.items() if ms]
    assert len(busy) >= 2, f"one partition, three members: records went to {busy} only"


# ---------------------------------------------------------------------------
# 7. durability across kill -9
# ---------------------------------------------------------------------------

def test_acknowledgements_survive_kill9_and_unacknowledged_records_come_back(make_broker, topic_name, consumers):
    b = make_broker()
    kutil.create_topic(b.bootstrap, topic_name)
    values = [f"d{i}".encode() for i in range(10)]
    produce_values(b.bootstrap, topic_name, values)
    g = share_group(b.bootstrap)
    # a member accepts d0..d4 and holds d5..d9 (acquired, no acknowledgement) when both it and
    # the broker are killed
    child, acquired = child_acquire(b.bootstrap, g, topic_name, 10, accept=[f"d{i}" for i in range(5)])
    try:
        assert sorted(acquired) == [(o, 1) for o in range(10)]
        b.kill9()
    finally:
        kill_child(child)
    b.start()

    c = consumers(b.bootstrap, g, [topic_name])
    got = collect(c, 5, timeout=15)
    got += collect_for(c, 1.5)
    assert sorted(m.offset() for m in got) == list(range(5, 10)), \
        "accepted records are never redelivered; acquired but unacknowledged ones are"
    assert {m.delivery_count() for m in got} == {2}
    commit(c)
    c.close()

    # and that acceptance is durable too
    b.kill9()
    b.start()
    d = consumers(b.bootstrap, g, [topic_name])
    assert collect_for(d, 2.0) == []


def test_group_configs_survive_a_restart(make_broker):
    b = make_broker()
    g = gid()
    alter_group(b.bootstrap, g, {"share.delivery.count.limit": 3, "share.auto.offset.reset": "earliest"})
    b.kill9()
    b.start()
    cfg = describe_group_configs(b.bootstrap, g)
    assert cfg["share.delivery.count.limit"].value == "3"
    assert cfg["share.auto.offset.reset"].value == "earliest"


# ---------------------------------------------------------------------------
# 8. group configs
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("key,value", [
    ("share.auto.offset.reset", "middle"),
    ("share.auto.offset.reset", "by_duration:1h"),
    ("share.record.lock.duration.ms", "999"),
    ("share.record.lock.duration.ms", "3600001"),
    ("share.record.lock.duration.ms", "soon"),
    ("share.isolation.level", "dirty"),
    ("share.delivery.count.limit", "1"),
    ("share.delivery.count.limit", "11"),
    ("errors.deadletterqueue.topic.name", "bad name!"),
    ("fjord.share.redelivery.backoff.ms", "1,-2"),
    ("fjord.share.redelivery.backoff.ms", "later"),
    ("fjord.share.ordering", "random"),
    ("fjord.share.filter.expression", "||"),
    ("no.such.group.config", "1"),
])
def test_invalid_group_configs_are_refused(broker, key, value):
    g = gid()
    alter_group(broker.bootstrap, g, {"share.delivery.count.limit": 4})
    with pytest.raises(KafkaException) as e:
        alter_group(broker.bootstrap, g, {key: value})
    err = e.value.args[0]
    assert err.code() == KafkaError.INVALID_CONFIG, err
    assert key in err.str(), f"the message names the config: {err.str()}"
    cfg = describe_group_configs(broker.bootstrap, g)
    assert cfg["share.delivery.count.limit"].value == "4", "nothing applied"
    if key in cfg:
        assert cfg[key].value != value


def test_one_bad_entry_refuses_the_whole_request(broker):
    g = gid()
    with pytest.raises(KafkaException) as e:
        alter_group(broker.bootstrap, g, {"share.delivery.count.limit": 3,
                                          "share.record.lock.duration.ms": 5})
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert describe_group_configs(broker.bootstrap, g)["share.delivery.count.limit"].value == "5"


def test_describe_configs_shows_set_values_and_defaults(broker):
    g = gid()
    alter_group(broker.bootstrap, g, {"share.record.lock.duration.ms": 15000,
                                      "share.isolation.level": "read_committed"})
    cfg = describe_group_configs(broker.bootstrap, g)
    assert cfg["share.record.lock.duration.ms"].value == "15000"
    assert cfg["share.record.lock.duration.ms"].source == ConfigSource.GROUP_CONFIG.value
    assert cfg["share.isolation.level"].value == "read_committed"
    assert cfg["share.delivery.count.limit"].value == "5"
    assert cfg["share.delivery.count.limit"].source == ConfigSource.DEFAULT_CONFIG.value
    assert cfg["share.auto.offset.reset"].value == "latest"
    # DELETE goes back to the default
    alter_group(broker.bootstrap, g, {"share.record.lock.duration.ms": ""}, op=AlterConfigOpType.DELETE)
    cfg = describe_group_configs(broker.bootstrap, g)
    assert cfg["share.record.lock.duration.ms"].value == "30000"
    assert cfg["share.record.lock.duration.ms"].source == ConfigSource.DEFAULT_CONFIG.value


# ---------------------------------------------------------------------------
# raw wire: flexible-version encoding of the share APIs
# ---------------------------------------------------------------------------

def uvarint(n):
    out = b""
    while True:
        b7 = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b7 | 0x80])
        else:
            return out + bytes([b7])


def cstr(s):
    if s is None:
        return b"\x00"
    b = s.encode() if isinstance(s, str) else s
    return uvarint(len(b) + 1) + b


def carr(items, enc):
    if items is None:
        return b"\x00"
    return uvarint(len(items) + 1) + b"".join(enc(x) for x in items)


TAGS = b"\x00"


class Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, n):
        v = self.b[self.o:self.o + n]
        assert len(v) == n, "truncated response"
        self.o += n
        return v

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def uv(self):
        v, self.o = wire.read_uvarint(self.b, self.o)
        return v

    def uuid(self):
        return uuid.UUID(bytes=self.take(16))

    def str(self):
        n = self.uv()
        return None if n == 0 else self.take(n - 1).decode()

    def bytes(self):
        n = self.uv()
        return None if n == 0 else self.take(n - 1)

    def arr(self, item):
        n = self.uv()
        return None if n == 0 else [item() for _ in range(n - 1)]

    def tags(self):
        for _ in range(self.uv()):
            self.uv()
            self.take(self.uv())


class Conn:
    """One connection speaking the flexible share APIs (request header v2, response header v1)."""

    def __init__(self, bootstrap):
        self.s = wire.connect(bootstrap, timeout=15)
        self.cid = 0

    def call(self, api, version, body, timeout=15):
        self.cid += 1
        self.s.sendall(wire.frame(wire.header_v2(api, version, self.cid) + body))
        cid, resp = wire.read_response(self.s, timeout=timeout)
        assert cid == self.cid
        r = Reader(resp)
        r.tags()  # response header v1
        return r

    def close(self):
        self.s.close()

    # ShareGroupHeartbeat v1 -> dict
    def heartbeat(self, group, member, epoch, topics=None, rack=None):
        body = cstr(group) + cstr(member) + struct.pack(">i", epoch) + cstr(rack) + \
            carr(topics, cstr) + TAGS
        r = self.call(SHARE_GROUP_HEARTBEAT, 1, body)
        out = {"throttle": r.i32(), "error": r.i16(), "message": r.str(), "member_id": r.str(),
               "epoch": r.i32(), "interval": r.i32(), "assignment": None}
        if r.i8() >= 0:
            def tp():
                t = (r.uuid(), r.arr(r.i32))
                r.tags()
                return t
            out["assignment"] = r.arr(tp)
            r.tags()
        r.tags()
        return out

    # ShareFetch v1 -> dict
    def share_fetch(self, group, member, epoch, topics, forgotten=(), max_wait=200,
                    max_records=500, min_bytes=1):
        """topics: [(topic_id, [(partition, [(first, last, [types])...])...])]."""
        def batch(b):
            return struct.pack(">qq", b[0], b[1]) + carr(b[2], lambda t: struct.pack(">b", t)) + TAGS

        def part(p):
            return struct.pack(">i", p[0]) + carr(p[1], batch) + TAGS

        def topic(t):
            return t[0].bytes + carr(t[1], part) + TAGS

        def forgot(t):
            return t[0].bytes + carr(t[1], lambda p: struct.pack(">i", p)) + TAGS

        body = cstr(group) + cstr(member) + struct.pack(">iiiiii", epoch, max_wait, min_bytes,
                                                        64 << 20, max_records, max_records)
        body += carr(topics, topic) + carr(list(forgotten), forgot) + TAGS
        r = self.call(SHARE_FETCH, 1, body, timeout=max_wait / 1000 + 15)
        out = {"throttle": r.i32(), "error": r.i16(), "message": r.str(), "lock_ms": r.i32(),
               "partitions": {}}

        def rpart():
            p = {"partition": r.i32(), "error": r.i16(), "message": r.str(),
                 "ack_error": r.i16(), "ack_message": r.str()}
            r.i32(), r.i32()
            r.tags()
            p["records"] = r.bytes()

            def acq():
                a = (r.i64(), r.i64(), r.i16())
                r.tags()
                return a
            p["acquired"] = r.arr(acq)
            r.tags()
            return p

        def rtopic():
            tid = r.uuid()
            for p in r.arr(rpart):
                out["partitions"][(tid, p["partition"])] = p
            r.tags()

        r.arr(rtopic)
        return out

    # ShareAcknowledge v1 -> dict
    def share_ack(self, group, member, epoch, topics):
        def batch(b):
            return struct.pack(">qq", b[0], b[1]) + carr(b[2], lambda t: struct.pack(">b", t)) + TAGS

        def part(p):
            return struct.pack(">i", p[0]) + carr(p[1], batch) + TAGS

        def topic(t):
            return t[0].bytes + carr(t[1], part) + TAGS

        body = cstr(group) + cstr(member) + struct.pack(">i", epoch) + carr(topics, topic) + TAGS
        r = self.call(SHARE_ACKNOWLEDGE, 1, body)
        out = {"throttle": r.i32(), "error": r.i16(), "message": r.str(), "partitions": {}}

        def rpart():
            p = {"partition": r.i32(), "error": r.i16(), "message": r.str()}
            r.i32(), r.i32()
            r.tags()
            r.tags()
            return p

        def rtopic():
            tid = r.uuid()
            for p in r.arr(rpart):
                out["partitions"][(tid, p["partition"])] = p
            r.tags()

        r.arr(rtopic)
        return out

    # ShareGroupDescribe v1 -> [group dict]
    def describe(self, groups):
        r = self.call(SHARE_GROUP_DESCRIBE, 1, carr(groups, cstr) + b"\x00" + TAGS)
        r.i32()

        def tps():
            t = {"topic_id": r.uuid(), "topic": r.str(), "partitions": r.arr(r.i32)}
            r.tags()
            return t

        def member():
            m = {"member_id": r.str(), "rack": r.str(), "epoch": r.i32(), "client_id": r.str(),
                 "client_host": r.str(), "topics": r.arr(r.str)}
            m["assignment"] = r.arr(tps)
            r.tags()
            r.tags()
            return m

        def group():
            g = {"error": r.i16(), "message": r.str(), "group_id": r.str(), "state": r.str(),
                 "epoch": r.i32(), "assignment_epoch": r.i32(), "assignor": r.str()}
            g["members"] = r.arr(member)
            g["authorized_operations"] = r.i32()
            r.tags()
            return g

        return r.arr(group)

    # ListGroups v5 -> (error, [(group_id, protocol_type, state, type)])
    def list_groups(self, states=(), types=()):
        r = self.call(LIST_GROUPS, 5, carr(list(states), cstr) + carr(list(types), cstr) + TAGS)
        r.i32()
        err = r.i16()

        def g():
            x = (r.str(), r.str(), r.str(), r.str())
            r.tags()
            return x
        return err, r.arr(g)


@pytest.fixture
def conn(broker):
    made = []

    def make():
        c = Conn(broker.bootstrap)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def member_id():
    return uuid.uuid4().hex[:22]


def join(c, group, topic):
    """Joins `group` subscribed to `topic`; (member id, epoch, topic id)."""
    m = member_id()
    hb = c.heartbeat(group, m, 0, topics=[topic])
    assert hb["error"] == 0, hb
    assert hb["member_id"] == m and hb["epoch"] > 0
    [(tid, parts)] = hb["assignment"]
    assert parts == [0]
    return m, hb["epoch"], tid


def open_session(c, group, member, tid, want):
    """ShareFetch epoch 0, then epoch 1, 2... until `want` offsets are acquired; returns
    (next session epoch, [(first, last, delivery count)])."""
    acquired, epoch = [], 0
    deadline = time.monotonic() + 10
    while sum(a[1] - a[0] + 1 for a in acquired) < want:
        assert time.monotonic() < deadline, f"acquired only {acquired}"
        f = c.share_fetch(group, member, epoch, [(tid, [(0, [])])] if epoch == 0 else [])
        assert f["error"] == 0, f
        epoch += 1
        p = f["partitions"].get((tid, 0))
        if p:
            assert p["error"] == 0, p
            acquired += p["acquired"]
    return epoch, acquired


# ---------------------------------------------------------------------------
# 9. ListGroups and ShareGroupDescribe
# ---------------------------------------------------------------------------

def test_list_groups_shows_the_share_group(broker, topic_name, consumers, conn):
    kutil.create_topic(broker.bootstrap, topic_name)
    produce_values(broker.bootstrap, topic_name, [b"x"])
    g = share_group(broker.bootstrap)
    c = consumers(broker.bootstrap, g, [topic_name])
    assert len(collect(c, 1)) == 1

    # librdkafka: list_consumer_groups() drops groups whose protocol type is not "consumer" (a
    # client-side filter; its ConsumerGroupType has no SHARE either); the older list_groups()
    # lists every group id of ListGroups
    admin = kutil.admin(broker.bootstrap)
    ids = [x.id for x in admin.list_groups(timeout=15)]
    assert g in ids, f"{g} not listed by AdminClient.list_groups: {ids}"

    w = conn()
    err, groups = w.list_groups(types=["share"])
    assert err == 0
    mine = [x for x in groups if x[0] == g]
    assert mine == [(g, "share", "Stable", "share")], groups
    err, groups = w.list_groups(types=["consumer", "classic"])
    assert err == 0 and g not in [x[0] for x in groups]
    err, groups = w.list_groups()
    assert (g, "share", "Stable", "share") in groups

    [d] = w.describe([g])
    assert d["error"] == 0 and d["group_id"] == g and d["state"] == "Stable", d
    [m] = d["members"]
    assert m["topics"] == [topic_name]
    assert [(a["topic"], a["partitions"]) for a in m["assignment"]] == [(topic_name, [0])]
    assert m["epoch"] > 0

    commit(c)
    c.close()
    wait_until(lambda: w.describe([g])[0]["state"] == "Empty", timeout=10, msg="group empty after close")
    err, groups = w.list_groups(types=["share"])
    assert (g, "share", "Empty", "share") in groups

    [missing] = w.describe([gid("nobody")])
    assert missing["error"] == GROUP_ID_NOT_FOUND


# ---------------------------------------------------------------------------
# 10. wire-level errors
# ---------------------------------------------------------------------------

def test_share_acknowledge_errors(broker, topic_name, conn):
    kutil.create_topic(broker.bootstrap, topic_name)
    produce_values(broker.bootstrap, topic_name, [f"w{i}".encode() for i in range(5)])
    g = share_group(broker.bootstrap)
    c = conn()
    m, _, tid = join(c, g, topic_name)
    epoch, acquired = open_session(c, g, m, tid, 5)
    assert acquired == [(0, 4, 1)]

    # offsets beyond anything acquired: INVALID_REQUEST (Kafka: "past acquired records")
    a = c.share_ack(g, m, epoch, [(tid, [(0, [(7, 9, [1])])])])
    epoch += 1
    assert a["error"] == 0
    assert a["partitions"][(tid, 0)]["error"] == INVALID_REQUEST, a
    a = c.share_ack(g, m, epoch, [(tid, [(0, [(3, 6, [1])])])])
    epoch += 1
    assert a["partitions"][(tid, 0)]["error"] == INVALID_REQUEST, a
    # malformed: batches out of order, unknown type, one type per offset count mismatch
    for batches in ([(3, 3, [1]), (1, 1, [1])], [(0, 0, [9])], [(0, 2, [1, 1])]):
        a = c.share_ack(g, m, epoch, [(tid, [(0, batches)])])
        epoch += 1
        assert a["partitions"][(tid, 0)]["error"] == INVALID_REQUEST, (batches, a)

    # a second member cannot acknowledge the first one's records
    c2 = conn()
    m2, _, _ = join(c2, g, topic_name)
    f = c2.share_fetch(g, m2, 0, [(tid, [(0, [])])], max_wait=50)
    assert f["error"] == 0 and not (f["partitions"].get((tid, 0)) or {}).get("acquired")
    a = c2.share_ack(g, m2, 1, [(tid, [(0, [(0, 0, [1])])])])
    assert a["partitions"][(tid, 0)]["error"] == INVALID_RECORD_STATE, a

    # wrong session epochs
    a = c.share_ack(g, m, epoch + 5, [(tid, [(0, [(0, 0, [1])])])])
    assert a["error"] == INVALID_SHARE_SESSION_EPOCH, a
    a = c.share_ack(g, m, 0, [(tid, [(0, [(0, 0, [1])])])])
    assert a["error"] == INVALID_SHARE_SESSION_EPOCH, a
    f = c.share_fetch(g, m, epoch + 3, [])
    assert f["error"] == INVALID_SHARE_SESSION_EPOCH, f
    # no session for this member / this group
    a = c.share_ack(g, member_id(), 1, [(tid, [(0, [(0, 0, [1])])])])
    assert a["error"] == SHARE_SESSION_NOT_FOUND, a
    a = c.share_ack(gid("none"), m, 1, [(tid, [(0, [(0, 0, [1])])])])
    assert a["error"] == SHARE_SESSION_NOT_FOUND, a
    f = c.share_fetch(g, member_id(), 4, [])
    assert f["error"] == SHARE_SESSION_NOT_FOUND, f

    # none of that changed anything: the right epoch accepts 0..1 and releases 2..4 ...
    a = c.share_ack(g, m, epoch, [(tid, [(0, [(0, 4, [1, 1, 2, 2, 2])])])])
    epoch += 1
    assert a["error"] == 0 and a["partitions"][(tid, 0)]["error"] == 0, a
    # ... 2 is available again, not acquired: acknowledging it is INVALID_RECORD_STATE
    a = c.share_ack(g, m, epoch, [(tid, [(0, [(2, 2, [1])])])])
    epoch += 1
    assert a["partitions"][(tid, 0)]["error"] == INVALID_RECORD_STATE, a
    # ... and 2..4 are redelivered, delivery count 2
    f = c.share_fetch(g, m, epoch, [])
    epoch += 1
    assert f["partitions"][(tid, 0)]["acquired"] == [(2, 4, 2)], f
    # an acknowledgement-carrying fetch opening a session is refused
    f = c.share_fetch(g, m, 0, [(tid, [(0, [(2, 4, [1])])])])
    assert f["error"] == INVALID_REQUEST, f


def test_acknowledging_an_already_accepted_record_again_is_invalid_record_state(broker, topic_name, conn):
    kutil.create_topic(broker.bootstrap, topic_name)
    produce_values(broker.bootstrap, topic_name, [b"a", b"b", b"c"])
    g = share_group(broker.bootstrap)
    c = conn()
    m, _, tid = join(c, g, topic_name)
    epoch, acquired = open_session(c, g, m, tid, 3)
    assert acquired == [(0, 2, 1)]
    a = c.share_ack(g, m, epoch, [(tid, [(0, [(0, 2, [1])])])])
    assert a["partitions"][(tid, 0)]["error"] == 0, a
    a = c.share_ack(g, m, epoch + 1, [(tid, [(0, [(1, 1, [1])])])])
    assert a["partitions"][(tid, 0)]["error"] == INVALID_RECORD_STATE, a


def test_acknowledging_a_partition_the_group_never_fetched(broker, topic_name, new_topic, conn):
    kutil.create_topic(broker.bootstrap, topic_name)
    other = new_topic("other")
    kutil.create_topic(broker.bootstrap, other)
    produce_values(broker.bootstrap, other, [b"x"])
    g = share_group(broker.bootstrap)
    c = conn()
    m, _, tid = join(c, g, topic_name)
    f = c.share_fetch(g, m, 0, [(tid, [(0, [])])], max_wait=50)
    assert f["error"] == 0
    other_id = next(t for t, _ in c.heartbeat(gid(), member_id(), 0, topics=[other])["assignment"])
    a = c.share_ack(g, m, 1, [(other_id, [(0, [(0, 0, [1])])])])
    assert a["error"] == 0
    assert a["partitions"][(other_id, 0)]["error"] == 3, a


def test_late_acknowledgement_after_lock_expiry_is_invalid_record_state(broker, topic_name, conn):
    kutil.create_topic(broker.bootstrap, topic_name)
    produce_values(broker.bootstrap, topic_name, [b"a", b"b"])
    g = share_group(broker.bootstrap, **{"share.record.lock.duration.ms": 1000})
    c = conn()
    m, _, tid = join(c, g, topic_name)
    epoch, acquired = open_session(c, g, m, tid, 2)
    assert acquired == [(0, 1, 1)]
    t0 = time.monotonic()
    c2 = conn()
    m2, _, _ = join(c2, g, topic_name)
    _, again = open_session(c2, g, m2, tid, 2)
    assert again == [(0, 1, 2)] and time.monotonic() - t0 >= 0.7
    a = c.share_ack(g, m, epoch, [(tid, [(0, [(0, 1, [1])])])])
    assert a["partitions"][(tid, 0)]["error"] == INVALID_RECORD_STATE, a


def test_share_group_heartbeat_errors_and_the_broker_keeps_serving(broker, topic_name, conn, consumers):
    kutil.create_topic(broker.bootstrap, topic_name)
    c = conn()
    g = gid()
    # joining without topics
    for topics in (None, []):
        hb = c.heartbeat(g, member_id(), 0, topics=topics)
        assert hb["error"] == INVALID_REQUEST, hb
        assert hb["message"], "an error message says why"
    # empty member id, epoch below -1
    assert c.heartbeat(g, "", 0, topics=[topic_name])["error"] == INVALID_REQUEST
    assert c.heartbeat(g, member_id(), -2, topics=[topic_name])["error"] == INVALID_REQUEST
    # a member the group does not know / a fenced epoch
    m, epoch, _ = join(c, g, topic_name)
    assert c.heartbeat(g, member_id(), 1)["error"] == 25  # UNKNOWN_MEMBER_ID
    assert c.heartbeat(g, m, epoch + 10)["error"] == 110
    ok = c.heartbeat(g, m, epoch)
    assert ok["error"] == 0 and ok["epoch"] == epoch and ok["assignment"] is None
    left = c.heartbeat(g, m, -1)
    assert left["error"] == 0 and left["epoch"] == -1

    # the same connection and a real client still work
    produce_values(broker.bootstrap, topic_name, [b"after"])
    g2 = share_group(broker.bootstrap)
    sc = consumers(broker.bootstrap, g2, [topic_name])
    assert [x.value() for x in collect(sc, 1)] == [b"after"]
    assert c.list_groups(types=["share"])[0] == 0
    assert broker.alive()


def test_acknowledgements_sent_after_the_leave_heartbeat_still_apply(broker, topic_name, conn):
    kutil.create_topic(broker.bootstrap, topic_name)
    produce_values(broker.bootstrap, topic_name, [b"a", b"b", b"c"])
    g = share_group(broker.bootstrap)
    c = conn()
    m, epoch, tid = join(c, g, topic_name)
    session_epoch, acquired = open_session(c, g, m, tid, 3)
    # the producer may have split the three records into batches: one run per batch
    assert [o for first, last, _ in acquired for o in range(first, last + 1)] == [0, 1, 2], acquired
    assert {d for _, _, d in acquired} == {1}
    assert c.heartbeat(g, m, -1)["error"] == 0
    runs = [(first, last, [1]) for first, last, _ in acquired]
    a = c.share_ack(g, m, -1, [(tid, [(0, runs)])])
    assert a["error"] == 0, a
    assert a["partitions"][(tid, 0)]["error"] == 0, a
    # nothing is left for the group
    c2 = conn()
    m2, _, _ = join(c2, g, topic_name)
    f = c2.share_fetch(g, m2, 0, [(tid, [(0, [])])], max_wait=500)
    assert not (f["partitions"].get((tid, 0)) or {}).get("acquired"), f


def test_records_of_a_killed_consumer_are_released_when_its_connection_drops(broker, topic_name, consumers):
    kutil.create_topic(broker.bootstrap, topic_name)
    produce_values(broker.bootstrap, topic_name, [f"k{i}".encode() for i in range(3)])
    g = share_group(broker.bootstrap)  # default 30 s lock
    child, acquired = child_acquire(broker.bootstrap, g, topic_name, 3)
    assert sorted(acquired) == [(0, 1), (1, 1), (2, 1)]
    kill_child(child)
    c = consumers(broker.bootstrap, g, [topic_name])
    got = collect(c, 3, timeout=8)
    assert sorted(m.offset() for m in got) == [0, 1, 2]


def test_fjord_group_describe_and_delete_of_a_share_group(broker, topic_name, consumers):
    """`fjord group describe` shows a share group's start offsets, lag and members (text and
    --json); `fjord group delete` removes it once it has no members (DeleteGroups)."""
    from conftest import fjord
    kutil.create_topic(broker.bootstrap, topic_name, partitions=2)
    produce_values(broker.bootstrap, topic_name, [f"v{i}".encode() for i in range(10)], batch=10)
    g = share_group(broker.bootstrap)
    c = consumers(broker.bootstrap, g, [topic_name])
    assert len(collect(c, 10)) == 10
    commit(c)
    p = fjord(broker, "group", "describe", g)
    assert p.returncode == 0, p.err
    assert "Type:      share" in p.out and "Members:   1" in p.out, p.out
    d = json.loads(fjord(broker, "group", "describe", g, "--json").out)
    assert d["type"] == "share" and len(d["members"]) == 1
    starts = {(r["topic"], r["partition"]): (r["start_offset"], r["lag"]) for r in d["partitions"]}
    assert sum(s for s, _ in starts.values()) == 10 and all(lag == 0 for _, lag in starts.values()), d
    refused = fjord(broker, "group", "delete", g)
    assert refused.returncode != 0 and "NON_EMPTY_GROUP" in refused.err, refused.err
    c.close()
    wait_until(lambda: json.loads(fjord(broker, "group", "describe", g, "--json").out)["members"] == [],
               timeout=15, msg="the member left")
    assert fjord(broker, "group", "delete", g).returncode == 0
    gone = fjord(broker, "group", "describe", g)
    assert gone.returncode != 0 and "GROUP_ID_NOT_FOUND" in gone.err, gone.err


def test_share_auto_offset_reset_by_duration_starts_at_the_first_record_that_recent(broker, topic_name, consumers):
    """`share.auto.offset.reset=by_duration:PT1H` (KIP-1106): a new share-partition starts at the
    first record at most an hour old (ListOffsets by timestamp), not at the log's start or end."""
    kutil.create_topic(broker.bootstrap, topic_name)
    now = int(time.time() * 1000)
    old = [f"old{i}".encode() for i in range(3)]
    recent = [f"recent{i}".encode() for i in range(2)]
    produce_values(broker.bootstrap, topic_name, old, batch=1, timestamp=now - 2 * 3600_000)
    produce_values(broker.bootstrap, topic_name, recent, batch=1, timestamp=now - 60_000)
    g = share_group(broker.bootstrap, **{"share.auto.offset.reset": "by_duration:PT1H"})
    c = consumers(broker.bootstrap, g, [topic_name])
    got = collect(c, 2)
    assert [(m.offset(), m.value()) for m in got] == [(3, recent[0]), (4, recent[1])]
    assert collect_for(c, 1.0) == [], "the older records are never delivered to the group"


@pytest.mark.parametrize("copy", ["false", "true"])
def test_fjord_dlq_list_show_and_redrive(broker, topic_name, new_topic, consumers, copy):
    """`fjord dlq list|show|redrive` over a group's dead-letter topic: dead letters are listed
    with their origin, group and reason; show prints the original record (the copy, or read
    from its topic when the group does not copy); redrive produces the originals again to their
    partition, where the group receives them as new records."""
    from conftest import fjord
    kutil.create_topic(broker.bootstrap, topic_name)
    dlq = new_topic()
    values = [f"job{i}".encode() for i in range(4)]
    produce_values(broker.bootstrap, topic_name, values, headers=[("trace", b"t1")])
    g = share_group(broker.bootstrap, **{"errors.deadletterqueue.topic.name": dlq,
                                         "errors.deadletterqueue.copy.record.enable": copy})
    c = consumers(broker.bootstrap, g, [topic_name], mode="explicit")
    got = collect(c, 4, on_record=lambda m: c.acknowledge(m, REJECT if m.offset() % 2 else ACCEPT))
    assert len(got) == 4
    commit(c)
    wait_until(lambda: len(read_topic(broker.bootstrap, dlq, 2, timeout=2)) == 2, timeout=15,
               msg="two dead letters")

    listed = json.loads(fjord(broker, "dlq", "list", dlq, "--group", g, "--json").out)
    assert sorted((l["topic"], l["topic_offset"], l["group"]) for l in listed) == \
        [(topic_name, 1, g), (topic_name, 3, g)], listed
    assert all(l["copied"] == (copy == "true") for l in listed), listed
    assert json.loads(fjord(broker, "dlq", "list", dlq, "--group", "other", "--json").out) == []
    text = fjord(broker, "dlq", "list", dlq)
    assert text.returncode == 0 and f"{topic_name}-0@1" in text.out, text.out

    first = sorted(listed, key=lambda l: l["topic_offset"])[0]
    shown = json.loads(fjord(broker, "dlq", "show", dlq, f"{first['partition']}:{first['offset']}",
                             "--json").out)
    original = shown["original"]
    assert original is not None and original["value"] == "job1", shown
    bad = fjord(broker, "dlq", "show", dlq, "nonsense")
    assert bad.returncode != 0 and "PARTITION:OFFSET" in bad.err

    plan = fjord(broker, "dlq", "redrive", dlq, "--group", g)
    assert plan.returncode == 0 and "dry run: 2 dead letter(s)" in plan.out, plan.out
    assert collect_for(c, 1.0) == [], "a dry run produces nothing"
    done = fjord(broker, "dlq", "redrive", dlq, "--group", g, "--execute")
    assert done.returncode == 0 and "2 dead letter(s) redriven" in done.out, done.out + done.err
    again = collect(c, 2, on_record=lambda m: c.acknowledge(m, ACCEPT))
    assert sorted((m.offset(), m.value(), m.delivery_count()) for m in again) == \
        [(4, b"job1", 1), (5, b"job3", 1)], "redriven records are new records of the topic"
    assert all(hdr(m, "trace") == b"t1" for m in again), "headers are kept"
