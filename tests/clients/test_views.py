"""Filtered views (SPEC R10/R11): RocketMQ-style broker-side filters for every Kafka client.

A view is a topic created with all three of `fjord.view.source=<topic>`,
`fjord.view.filter.type=tag|sql92` and `fjord.view.filter.expression=<expr>`. It has the source's
partition count; a fetch from view partition P returns exactly the records of source partition P
whose headers match the filter, at the source's offsets (gaps where records did not match),
unchanged. Watermarks, the log start offset and ListOffsets are the source's. Message properties
are record headers; the RocketMQ tag is the header `TAGS`. Producing to a view is refused
(INVALID_TOPIC_EXCEPTION); the filter expression can be altered, the source cannot.

Clients: confluent-kafka (librdkafka) admin, producers and consumers (assigned, in a group,
read_committed), kcat, kafkajs (js/views.js), kafka-python, the fjord CLI, and a raw Fetch v4 for
what no client shows (error codes, response sizes).
"""

import json
import shutil
import struct
import subprocess
import time
import urllib.request
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic,
                                   ResourceType)

import kutil
import wire
from conftest import fjord, wait_until
from kutil import metric, node

VIEW_SOURCE = "fjord.view.source"
VIEW_TYPE = "fjord.view.filter.type"
VIEW_EXPR = "fjord.view.filter.expression"

OFFSET_OUT_OF_RANGE = 1
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TOPIC_EXCEPTION = 17
INVALID_PARTITIONS = 37
INVALID_CONFIG = 40

T0 = 1_700_000_000_000  # explicit CreateTime base


def view_config(source, ftype, expr):
    return {VIEW_SOURCE: source, VIEW_TYPE: ftype, VIEW_EXPR: expr}


def try_create(bootstrap, name, partitions, config):
    """CreateTopics with confluent-kafka; None on success, else the KafkaError."""
    a = kutil.admin(bootstrap)
    fut = a.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=-1 if partitions == -1 else 1,
                  config=config)],
        operation_timeout=15, request_timeout=15)
    try:
        fut[name].result(timeout=20)
        return None
    except KafkaException as e:
        return e.args[0]


def create_view(bootstrap, name, source, ftype, expr, partitions=-1, source_partitions=1):
    err = try_create(bootstrap, name, partitions, view_config(source, ftype, expr))
    assert err is None, f"creating view {name} ({ftype} {expr!r} on {source}) failed: {err}"
    kutil.wait_topic_visible(bootstrap, name, source_partitions)
    return name


def exists(bootstrap, name):
    # all topics: a Metadata request naming the topic could auto-create it
    t = kutil.admin(bootstrap).list_topics(timeout=5).topics.get(name)
    return t is not None and t.error is None


def describe_configs(bootstrap, name):
    a = kutil.admin(bootstrap)
    res = ConfigResource(ResourceType.TOPIC, name)
    return {k: v.value for k, v in a.describe_configs([res])[res].result(timeout=15).items()}


def alter_expr(bootstrap, name, key, value):
    """IncrementalAlterConfigs SET key=value; None on success, else the KafkaError."""
    a = kutil.admin(bootstrap)
    res = ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
    try:
        a.incremental_alter_configs([res])[res].result(timeout=15)
        return None
    except KafkaException as e:
        return e.args[0]


def rec(m):
    """A comparable view of a confluent-kafka Message."""
    return (m.partition(), m.offset(), m.key(), m.value(), m.headers() or [], m.timestamp())


def read_to_end(bootstrap, tps, conf=None, timeout=15):
    """Assigns [(topic, partition, offset)] and reads until every partition reported its end
    (librdkafka's partition EOF: the position reached the high watermark). Returns the
    messages. A consumer whose position cannot get past a run of non-matching records never
    reaches the end: that fails here."""
    c = kutil.consumer(bootstrap, **{"enable.partition.eof": True, "fetch.wait.max.ms": 100,
                                     **(conf or {})})
    try:
        c.assign([TopicPartition(t, p, o) for t, p, o in tps])
        pending = {(t, p) for t, p, _ in tps}
        out = []
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                positions = c.position([TopicPartition(t, p) for t, p in sorted(pending)])
                raise AssertionError(
                    f"partitions never reached their end within {timeout}s: "
                    f"{[(tp.topic, tp.partition, tp.offset) for tp in positions]} (positions); got "
                    f"{[(m.topic(), m.partition(), m.offset()) for m in out][:50]}")
            m = c.poll(0.1)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard((m.topic(), m.partition()))
                    continue
                raise KafkaException(m.error())
            out.append(m)
        return out
    finally:
        c.close()


def offsets_of(msgs, topic=None):
    return [(m.partition(), m.offset()) for m in msgs if topic is None or m.topic() == topic]


def produce(p, topic, items, flush=True):
    """items: dicts for Producer.produce; returns [(partition, offset)] in input order."""
    reports = [None] * len(items)
    errors = []

    def cb_for(i):
        def cb(err, msg):
            if err:
                errors.append(err)
            reports[i] = (msg.partition(), msg.offset())
        return cb

    for i, kw in enumerate(items):
        p.produce(topic, on_delivery=cb_for(i), **{"partition": 0, **kw})
        p.poll(0)
    if flush:
        assert p.flush(30) == 0, "messages not delivered in time"
        assert not errors, f"delivery errors: {[str(e) for e in errors[:5]]}"
    return reports


def tagged(tag, value, **kw):
    return {"value": value, "headers": [("TAGS", tag)] if tag is not None else None, **kw}


def fetch_v4(bootstrap, topic, partition=0, offset=0):
    """A raw Fetch v4 (max_wait 0); returns (error_code, high_watermark, records_bytes_len,
    response_size)."""
    s = wire.connect(bootstrap)
    try:
        s.sendall(wire.fetch_request_v4(topic, partition, offset))
        _, body = wire.read_response(s)
    finally:
        s.close()
    pos = 4  # throttle_time_ms
    (ntopics,) = struct.unpack_from(">i", body, pos)
    pos += 4
    assert ntopics == 1, ntopics
    (tlen,) = struct.unpack_from(">h", body, pos)
    pos += 2 + tlen
    (nparts,) = struct.unpack_from(">i", body, pos)
    pos += 4
    assert nparts == 1, nparts
    _pidx, err, hw, _lso, naborted = struct.unpack_from(">ihqqi", body, pos)
    pos += 4 + 2 + 8 + 8 + 4 + max(naborted, 0) * 16
    (rlen,) = struct.unpack_from(">i", body, pos)
    return err, hw, max(rlen, 0), len(body)


def http_metrics(b):
    with urllib.request.urlopen(f"http://{b.host}:{b.http_port}/metrics", timeout=5) as r:
        return r.read().decode()


# ---------------------------------------------------------------------------
# creation, refusals, configs
# ---------------------------------------------------------------------------

def test_view_has_source_partitions_and_describes_its_configs(broker, topic_name):
    b = broker.bootstrap
    src = kutil.create_topic(b, topic_name, partitions=3)
    v1 = create_view(b, f"{topic_name}-v1", src, "tag", "TagA || TagB", partitions=-1,
                     source_partitions=3)
    v2 = create_view(b, f"{topic_name}-v2", src, "sql92", "a > 5 AND b = 'x'", partitions=3,
                     source_partitions=3)
    for v in (v1, v2):
        t = kutil.admin(b).list_topics(topic=v, timeout=5).topics[v]
        assert sorted(t.partitions) == [0, 1, 2]
    cfg = describe_configs(b, v1)
    assert (cfg.get(VIEW_SOURCE), cfg.get(VIEW_TYPE), cfg.get(VIEW_EXPR)) == (src, "tag", "TagA || TagB")
    cfg = describe_configs(b, v2)
    assert (cfg.get(VIEW_SOURCE), cfg.get(VIEW_TYPE), cfg.get(VIEW_EXPR)) == (src, "sql92", "a > 5 AND b = 'x'")
    # any other partition count is refused, nothing is created
    for n in (1, 2, 5):
        name = f"{topic_name}-p{n}"
        err = try_create(b, name, n, view_config(src, "tag", "TagA"))
        assert err is not None and err.code() == INVALID_PARTITIONS, (n, err)
        assert not exists(b, name)


def test_partition_count_follows_source(broker, topic_name):
    from confluent_kafka.admin import NewPartitions

    b = broker.bootstrap
    src = kutil.create_topic(b, topic_name)
    view = create_view(b, f"{topic_name}-view", src, "tag", "A")
    a = kutil.admin(b)
    a.create_partitions([NewPartitions(src, 3)])[src].result(timeout=15)
    kutil.wait_topic_visible(b, src, 3)
    produce(kutil.producer(b), src, [tagged("A", "p2", partition=2)])
    # the view has the source's partition count
    kutil.wait_topic_visible(b, view, 3, timeout=5)
    assert [(m.partition(), m.offset(), m.value()) for m in read_to_end(b, [(view, 2, 0)])] == [(2, 0, b"p2")]
    # and cannot be given another one
    with pytest.raises(KafkaException):
        a.create_partitions([NewPartitions(view, 4)])[view].result(timeout=15)
    assert sorted(a.list_topics(timeout=5).topics[view].partitions) == [0, 1, 2]


def _refusal_cases():
    # (id, config builder(source, existing_view)) -> INVALID_CONFIG
    return [
        ("only-source", lambda s, v: {VIEW_SOURCE: s}),
        ("only-type", lambda s, v: {VIEW_TYPE: "tag"}),
        ("only-expression", lambda s, v: {VIEW_EXPR: "TagA"}),
        ("no-expression", lambda s, v: {VIEW_SOURCE: s, VIEW_TYPE: "tag"}),
        ("no-type", lambda s, v: {VIEW_SOURCE: s, VIEW_EXPR: "TagA"}),
        ("no-source", lambda s, v: {VIEW_TYPE: "sql92", VIEW_EXPR: "a > 1"}),
        ("unknown-source", lambda s, v: view_config(f"nope-{uuid.uuid4().hex[:8]}", "tag", "TagA")),
        ("source-is-view", lambda s, v: view_config(v, "tag", "TagA")),
        ("source-consumer-offsets", lambda s, v: view_config("__consumer_offsets", "tag", "TagA")),
        ("source-fjord-schedule", lambda s, v: view_config("__fjord_schedule", "tag", "TagA")),
        ("type-regex", lambda s, v: view_config(s, "regex", "TagA")),
        ("type-empty", lambda s, v: view_config(s, "", "TagA")),
        ("sql-dangling-op", lambda s, v: view_config(s, "sql92", "a >")),
        ("sql-open-string", lambda s, v: view_config(s, "sql92", "a = 'x")),
        ("sql-trailing-input", lambda s, v: view_config(s, "sql92", "a = 1 b = 2")),
        ("sql-not-boolean", lambda s, v: view_config(s, "sql92", "5")),
        # `a ||` is `a` (empty pieces are dropped, as in RocketMQ); no tag at all is an error
        ("tag-no-tag", lambda s, v: view_config(s, "tag", "||")),
        ("tag-blank-or", lambda s, v: view_config(s, "tag", " || ")),
    ]


@pytest.mark.parametrize("case", _refusal_cases(), ids=[c[0] for c in _refusal_cases()])
def test_create_refusals_are_invalid_config(broker, topic_name, case):
    b = broker.bootstrap
    _, build = case
    src = kutil.create_topic(b, f"{topic_name}-src")
    view = create_view(b, f"{topic_name}-view", src, "tag", "TagA")
    name = f"{topic_name}-bad"
    err = try_create(b, name, 1, build(src, view))
    assert err is not None, "created"
    assert err.code() == INVALID_CONFIG, err
    assert err.str().strip(), "no error message"
    assert not exists(b, name)


def test_cli_create_describe_and_kcat(broker, topic_name):
    """`fjord topic create V --config ...` without --partitions takes the source's count;
    `kcat -C -t V -e` exits at the end and shows only the matches, at source offsets."""
    if shutil.which("kcat") is None:
        pytest.skip("kcat not installed")
    b = broker.bootstrap
    src = kutil.create_topic(b, topic_name, partitions=2)
    view = f"{topic_name}-view"
    r = fjord(broker, "topic", "create", view, "--config", f"{VIEW_SOURCE}={src}",
              "--config", f"{VIEW_TYPE}=tag", "--config", f"{VIEW_EXPR}=TagA || TagB")
    assert r.returncode == 0, r.err
    kutil.wait_topic_visible(b, view, 2)
    r = fjord(broker, "topic", "describe", view, check=0)
    for k in (VIEW_SOURCE, VIEW_TYPE, VIEW_EXPR):
        assert k in r.out, r.out
    p = kutil.producer(b)
    tags = {0: ["TagA", "TagC", "TagB", None, "TagC"], 1: ["TagC", "TagC", "TagB", "TagC", "TagC", "TagC"]}
    for part, ts in tags.items():
        produce(p, src, [tagged(t, f"p{part}-{i}", partition=part) for i, t in enumerate(ts)])
    want = sorted((part, i, f"p{part}-{i}") for part, ts in tags.items()
                  for i, t in enumerate(ts) if t in ("TagA", "TagB"))
    r = subprocess.run(["kcat", "-b", b, "-X", "log_level=3", "-C", "-t", view, "-e", "-J"],
                       capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr.decode()
    got = [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]
    assert sorted((m["partition"], m["offset"], m["payload"]) for m in got) == want
    assert all(m["topic"] == view for m in got)
    # a refusal from the CLI names the error
    r = fjord(broker, "topic", "create", f"{topic_name}-bad", "--config", f"{VIEW_SOURCE}={src}")
    assert r.returncode != 0 and "INVALID_CONFIG" in r.err, r.err


# ---------------------------------------------------------------------------
# what a fetch returns
# ---------------------------------------------------------------------------

def test_tag_view_records_offsets_offsets_api(broker, topic_name):
    b = broker.bootstrap
    src = kutil.create_topic(b, topic_name, partitions=2)
    # partition 0: one lz4 batch (the broker must look inside compressed batches)
    p0 = [
        tagged("TagA", b"v0", key=b"k0", timestamp=T0),
        tagged("TagC", b"v1", key=b"k1", timestamp=T0 + 1000),
        tagged(None, b"v2", key=b"k2", timestamp=T0 + 2000),
        {"value": b"v3", "key": b"k3", "timestamp": T0 + 3000,
         "headers": [("other", b"x"), ("TAGS", b"TagB"), ("dup", b"1"), ("dup", b"2")]},
        tagged("tagA", b"v4", key=b"k4", timestamp=T0 + 4000),  # tags are case-sensitive
        tagged("TagA", None, key=b"k5", timestamp=T0 + 5000),   # null value
        tagged("TagC", b"v6", key=b"k6", timestamp=T0 + 6000),
    ]
    p1 = [
        tagged("TagC", b"w0", timestamp=T0),
        tagged("TagB", b"w1", key=None, timestamp=T0 + 1000),
        {"value": b"w2", "timestamp": T0 + 2000, "headers": [("x", b"TagA")]},  # not the TAGS header
        tagged("TagA", b"w3", key=b"kw3", timestamp=T0 + 3000),
    ]
    produce(kutil.producer(b, **{"compression.type": "lz4", "linger.ms": 100}), src, p0)
    produce(kutil.producer(b), src, [{**r, "partition": 1} for r in p1])
    view = create_view(b, f"{topic_name}-tag", src, "tag", "TagA || TagB", source_partitions=2)
    star = create_view(b, f"{topic_name}-star", src, "tag", "*", source_partitions=2)

    source_msgs = read_to_end(b, [(src, 0, 0), (src, 1, 0)])
    assert len(source_msgs) == len(p0) + len(p1)
    by_tag = [m for m in source_msgs
              if dict(m.headers() or []).get("TAGS") in (b"TagA", b"TagB")]
    got = read_to_end(b, [(view, 0, 0), (view, 1, 0)])
    assert sorted(offsets_of(got)) == [(0, 0), (0, 3), (0, 5), (1, 1), (1, 3)]
    assert sorted(map(rec, got)) == sorted(map(rec, by_tag)), "records changed by the view"
    assert {m.topic() for m in got} == {view}
    # `*` is every record, with or without a tag
    assert sorted(map(rec, read_to_end(b, [(star, 0, 0), (star, 1, 0)]))) == sorted(map(rec, source_msgs))
    # starting at a non-matching offset: the next match
    assert offsets_of(read_to_end(b, [(view, 0, 1)])) == [(0, 3), (0, 5)]
    assert offsets_of(read_to_end(b, [(view, 0, 4)])) == [(0, 5)]
    assert offsets_of(read_to_end(b, [(view, 0, 6)])) == []

    # watermarks, ListOffsets by timestamp: the source's
    c = kutil.consumer(b)
    try:
        for part in (0, 1):
            assert c.get_watermark_offsets(TopicPartition(view, part), timeout=10, cached=False) == \
                c.get_watermark_offsets(TopicPartition(src, part), timeout=10, cached=False)
        for ts in (T0 - 1, T0 + 1000, T0 + 1500, T0 + 4000, T0 + 99_000):
            q = [TopicPartition(t, part, ts) for t in (view, src) for part in (0, 1)]
            res = c.offsets_for_times(q, timeout=10)
            got_v = [(tp.partition, tp.offset) for tp in res if tp.topic == view]
            got_s = [(tp.partition, tp.offset) for tp in res if tp.topic == src]
            assert got_v == got_s, (ts, got_v, got_s)
        assert [tp.offset for tp in c.offsets_for_times([TopicPartition(view, 0, T0 + 1000)], timeout=10)] == [1]
    finally:
        c.close()

    # the log start offset follows the source's (DeleteRecords on the source)
    a = kutil.admin(b)
    for fut in a.delete_records([TopicPartition(src, 0, 2)]).values():
        fut.result(timeout=15)
    c = kutil.consumer(b)
    try:
        wait_until(lambda: c.get_watermark_offsets(TopicPartition(view, 0), timeout=10, cached=False)
                   == (2, len(p0)), msg="view log start offset 2")
    finally:
        c.close()
    assert offsets_of(read_to_end(b, [(view, 0, OFFSET_BEGINNING)])) == [(0, 3), (0, 5)]


def test_non_matching_records_are_not_sent(broker, topic_name):
    """A raw fetch of the view carries no byte of the large non-matching records."""
    b = broker.bootstrap
    src = kutil.create_topic(b, topic_name)
    big = b"x" * 20_000
    p = kutil.producer(b)
    produce(p, src, [tagged("TagB", big) for _ in range(10)])
    produce(p, src, [tagged("TagA", b"small")])
    produce(p, src, [tagged("TagB", big) for _ in range(10)])
    view = create_view(b, f"{topic_name}-view", src, "tag", "TagA")
    err, hw, rlen, size = fetch_v4(b, src)
    assert (err, hw) == (0, 21) and rlen > 200_000, (err, hw, rlen)
    for offset in (0, 5, 10, 11):
        err, hw, rlen, size = fetch_v4(b, view, offset=offset)
        assert (err, hw) == (0, 21), (offset, err, hw)
        assert size < 20_000, f"fetch of the view at {offset}: {size} bytes (records {rlen})"
    assert offsets_of(read_to_end(b, [(view, 0, 0)])) == [(0, 10)]
    assert fetch_v4(b, view, offset=22)[0] == OFFSET_OUT_OF_RANGE


SQL_RECORDS = [
    {"a": "10", "b": "x"},             # 0
    {"a": "9", "b": "x"},              # 1
    {"a": "3", "b": "y"},              # 2
    {"b": "x"},                        # 3  no a
    {"a": "6", "b": "z", "TAGS": "TagA"},  # 4
    {},                                # 5  no headers at all
    {"a": "11", "b": "y"},             # 6
]
SQL_CASES = [
    ("a > 5 AND b = 'x'", [0, 1]),
    ("a > 9", [0, 6]),                      # numeric: '10' > 9 ('10' < '9' as strings)
    ("a BETWEEN 3 AND 9", [1, 2, 4]),
    ("a NOT BETWEEN 4 AND 10", [2, 6]),
    ("b IN ('x', 'z')", [0, 1, 3, 4]),
    ("b NOT IN ('x', 'z')", [2, 6]),         # 5: b missing -> unknown
    ("a IS NULL", [3, 5]),
    ("a IS NOT NULL", [0, 1, 2, 4, 6]),
    ("NOT (a > 5)", [2]),                    # missing a: NOT unknown is unknown
    ("a > 5 OR b = 'y'", [0, 1, 2, 4, 6]),
    ("a IS NULL OR a < 4", [2, 3, 5]),
    ("TRUE", [0, 1, 2, 3, 4, 5, 6]),
    ("FALSE", []),
    ("TAGS = 'TagA'", [4]),
    ("(a >= 6 AND a <= 10) AND NOT (b = 'z')", [0, 1]),
]


def test_sql92_views(broker, topic_name):
    b = broker.bootstrap
    src = kutil.create_topic(b, topic_name)
    produce(kutil.producer(b), src, [
        {"value": f"r{i}".encode(), "headers": [(k, v) for k, v in h.items()] or None}
        for i, h in enumerate(SQL_RECORDS)])
    views = {}
    for i, (expr, _) in enumerate(SQL_CASES):
        views[expr] = create_view(b, f"{topic_name}-s{i}", src, "sql92", expr)
    got = read_to_end(b, [(v, 0, 0) for v in views.values()])
    failures = []
    for expr, want in SQL_CASES:
        offs = [m.offset() for m in got if m.topic() == views[expr]]
        if offs != want:
            failures.append(f"{expr!r}: got {offs}, want {want}")
    assert not failures, "\n".join(failures)
    for m in got:
        assert m.value() == f"r{m.offset()}".encode()


# ---------------------------------------------------------------------------
# consumers: groups, gaps, the end of the log, long polling
# ---------------------------------------------------------------------------

def _group_consumer(b, group, topic):
    c = kutil.consumer(b, **{"group.id": group, "auto.offset.reset": "earliest",
                             "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                             "fetch.wait.max.ms": 200})
    c.subscribe([topic])
    return c


def _poll_until(c, pred, timeout, what):
    out = []
    deadline = time.monotonic() + timeout
    while not pred(out):
        assert time.monotonic() < deadline, f"{what}: got {[m.offset() for m in out]}"
        m = c.poll(0.1)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise KafkaException(m.error())
        out.append(m)
    return out


def test_group_consumer_commit_restart_and_lag(broker, topic_name):
    b = broker.bootstrap
    src = kutil.create_topic(b, topic_name)
    produce(kutil.producer(b), src, [tagged("TagA" if i % 3 == 0 else "TagB", f"m{i}") for i in range(31)])
    view = create_view(b, f"{topic_name}-view", src, "tag", "TagA")
    group = f"g-{topic_name}"
    c = _group_consumer(b, group, view)
    try:
        first = _poll_until(c, lambda o: len(o) >= 5, 20, "first 5 matches")
        assert [m.offset() for m in first[:5]] == [0, 3, 6, 9, 12]
        c.commit(offsets=[TopicPartition(view, 0, 13)], asynchronous=False)
    finally:
        c.close()
    lag = json.loads(fjord(broker, "group", "describe", group, "--json", check=0).out)
    row = [r for r in lag["partitions"] if r["topic"] == view]
    assert [(r["partition"], r["committed"], r["log_end"], r["lag"]) for r in row] == [(0, 13, 31, 18)]

    c = _group_consumer(b, group, view)
    try:
        rest = _poll_until(c, lambda o: o and o[-1].offset() == 30, 20, "the rest")
        assert [m.offset() for m in rest] == [15, 18, 21, 24, 27, 30]
        assert [m.value() for m in rest] == [f"m{i}".encode() for i in (15, 18, 21, 24, 27, 30)]
        pos = c.position([TopicPartition(view, 0)])
        assert [tp.offset for tp in pos] == [31]
        c.commit(offsets=pos, asynchronous=False)
        assert [tp.offset for tp in c.committed([TopicPartition(view, 0)], timeout=10)] == [31]
    finally:
        c.close()
    lag = json.loads(fjord(broker, "group", "describe", group, "--json", check=0).out)
    row = [r for r in lag["partitions"] if r["topic"] == view]
    assert [(r["committed"], r["log_end"], r["lag"]) for r in row] == [(31, 31, 0)]


def test_non_matching_tail_does_not_spin_and_new_match_arrives(make_broker, topic_name):
    """A long run of non-matching records at the end: the consumer reaches the end (fetch position
    = high watermark), idles in long polls instead of re-fetching in a loop, and a new match
    arrives promptly."""
    bk = make_broker()
    b = bk.bootstrap
    src = kutil.create_topic(b, topic_name)
    p = kutil.producer(b)
    produce(p, src, [tagged("TagA", b"first")])
    for _ in range(3):  # three separate batches
        produce(p, src, [tagged("TagB", b"n") for _ in range(200)])
    view = create_view(b, f"{topic_name}-view", src, "tag", "TagA")
    c = kutil.consumer(b, **{"enable.partition.eof": True, "fetch.wait.max.ms": 500})
    try:
        c.assign([TopicPartition(view, 0, 0)])
        msgs, eof = [], None
        deadline = time.monotonic() + 10
        while eof is None:
            assert time.monotonic() < deadline, (
                f"no end of the view within 10 s: position {c.position([TopicPartition(view, 0)])[0].offset}, "
                f"got {offsets_of(msgs)}")
            m = c.poll(0.1)
            if m is None:
                continue
            if m.error():
                assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                eof = m.offset()
                continue
            msgs.append(m)
        assert [(m.offset(), m.value()) for m in msgs] == [(0, b"first")]
        # the fetch position got past the trailing run (one empty batch); librdkafka's position()
        # is the application's (after the last message), as after a compacted-away tail
        assert eof == 601
        # idle at the end: a few long polls, not a fetch loop
        before = metric(http_metrics(bk), "fjord_requests_total", api="Fetch")
        idle_until = time.monotonic() + 1.5
        while time.monotonic() < idle_until:
            m = c.poll(0.1)
            assert m is None or (m.error() and m.error().code() == KafkaError._PARTITION_EOF), rec(m)
        fetches = metric(http_metrics(bk), "fjord_requests_total", api="Fetch") - before
        assert fetches <= 12, f"{fetches} fetches in 1.5 s at the end of the view (fetch.wait.max.ms 500)"
        # more non-matching records, then a match: it arrives promptly
        produce(p, src, [tagged("TagB", b"n") for _ in range(100)])
        sent = time.monotonic()
        produce(p, src, [tagged("TagA", b"late")])
        late = _poll_until(c, lambda o: o, 5, "the late match")
        took = time.monotonic() - sent
        assert [(m.offset(), m.value()) for m in late] == [(701, b"late")]
        assert took < 2.0, f"late match took {took:.2f}s"
    finally:
        c.close()


@pytest.mark.parametrize("fetch_conf", [{}, {"max.partition.fetch.bytes": 512, "fetch.max.bytes": 1024,
                                                    "message.max.bytes": 1000}],
                         ids=["default-fetch", "small-fetch"])
def test_large_gaps_between_matches(broker, topic_name, fetch_conf):
    """Matches separated by 2000 non-matching records each, in many batches."""
    b = broker.bootstrap
    src = kutil.create_topic(b, topic_name)
    p = kutil.producer(b, **{"linger.ms": 5})
    want = []
    # the last match is larger than max.partition.fetch.bytes of the small-fetch case: a fetch
    # still returns it (at least one batch, KIP-74)
    value = {j: f"match-{j}".encode() for j in range(4)}
    value[4] = b"match-4" + b"." * 5000
    for j in range(5):
        want += produce(p, src, [tagged("TagA", value[j], key=f"k{j}".encode())])
        if j < 4:
            for _ in range(4):  # 4 batches of 500
                produce(p, src, [{"value": b"filler", "headers": [("TAGS", b"TagZ"), ("n", b"1")]}
                                 for _ in range(500)])
    assert want == [(0, 2001 * j) for j in range(5)]
    view = create_view(b, f"{topic_name}-view", src, "tag", "TagA")
    start = time.monotonic()
    got = read_to_end(b, [(view, 0, 0)], conf=fetch_conf, timeout=20)
    assert [(m.offset(), m.key(), m.value()) for m in got] == \
        [(2001 * j, f"k{j}".encode(), value[j]) for j in range(5)]
    assert time.monotonic() - start < 15


def test_long_poll_wakes_on_a_match(broker, topic_name):
    """A consumer long-polling the view (fetch.wait.max.ms 5000) gets a match well under 2 s
    after it is produced; non-matching records are not delivered."""
    b = broker.bootstrap
    src = kutil.create_topic(b, topic_name)
    view = create_view(b, f"{topic_name}-view", src, "sql92", "kind = 'hit'")
    p = kutil.producer(b, **{"linger.ms": 0})
    produce(p, src, [{"value": b"start", "headers": [("kind", b"hit")]}])
    c = kutil.consumer(b, **{"fetch.wait.max.ms": 5000})
    try:
        c.assign([TopicPartition(view, 0, 0)])
        assert [m.value() for m in _poll_until(c, lambda o: o, 5, "start")] == [b"start"]
        for i in range(3):
            # a quiet period: the consumer sits in a long poll; a miss is not delivered
            produce(p, src, [{"value": b"miss", "headers": [("kind", b"miss")]}])
            quiet_until = time.monotonic() + 0.6
            while time.monotonic() < quiet_until:
                m = c.poll(0.1)
                assert m is None or (m.error() and m.error().code() == KafkaError._PARTITION_EOF), rec(m)
            sent = time.monotonic()
            produce(p, src, [{"value": f"hit-{i}".encode(), "headers": [("kind", b"hit")]}])
            got = _poll_until(c, lambda o: o, 6, f"hit-{i}")
            took = time.monotonic() - sent
            assert [(m.offset(), m.value()) for m in got] == [(2 * i + 2, f"hit-{i}".encode())]
            assert took < 2.0, f"hit-{i} arrived {took:.2f}s after it was produced"
    finally:
        c.close()


def _poll_until_eof(c, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline, "no partition EOF"
        m = c.poll(0.1)
        if m is not None and m.error() and m.error().code() == KafkaError._PARTITION_EOF:
            return
        assert m is None or m.error() is None, m.error()


def test_kafka_python_consumer(broker, topic_name):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    b = broker.bootstrap
    src = kutil.create_topic(b, topic_name, partitions=2)
    p = kutil.producer(b)
    produce(p, src, [tagged("TagA", b"a0", timestamp=T0), tagged("TagB", b"b1", timestamp=T0 + 10),
                     tagged("TagA", b"a2", timestamp=T0 + 20, key=b"k")])
    for _ in range(2):
        produce(p, src, [tagged("TagB", b"tail") for _ in range(300)])
    produce(p, src, [tagged("TagB", b"x", partition=1), tagged("TagA", b"a1-1", partition=1)])
    view = create_view(b, f"{topic_name}-view", src, "tag", "TagA", source_partitions=2)
    c = KafkaConsumer(bootstrap_servers=b, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", fetch_max_wait_ms=500)
    try:
        tps = [KTP(view, 0), KTP(view, 1)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        got = []
        deadline = time.monotonic() + 15
        while len(got) < 3:
            assert time.monotonic() < deadline, f"got {[(r.partition, r.offset) for r in got]}"
            for recs in c.poll(timeout_ms=200).values():
                got.extend(recs)
        assert sorted((r.partition, r.offset, r.value, r.key) for r in got) == \
            [(0, 0, b"a0", None), (0, 2, b"a2", b"k"), (1, 1, b"a1-1", None)]
        assert all(r.headers == [("TAGS", b"TagA")] for r in got)
        assert [r.timestamp for r in sorted(got, key=lambda r: (r.partition, r.offset))][:2] == [T0, T0 + 20]
        src_tps = [KTP(src, 0), KTP(src, 1)]
        ends, src_ends = c.end_offsets(tps), c.end_offsets(src_tps)
        assert [ends[t] for t in tps] == [src_ends[t] for t in src_tps] == [603, 2]
        starts = c.beginning_offsets(tps)
        assert [starts[t] for t in tps] == [0, 0]
        ot = c.offsets_for_times({KTP(view, 0): T0 + 10})[KTP(view, 0)]
        assert ot.offset == 1
        # the position gets past the non-matching tail; a new match arrives promptly
        wait_until(lambda: (c.poll(timeout_ms=100) or True) and c.position(KTP(view, 0)) == 603,
                   timeout=10, msg="kafka-python position at the end of the view")
        sent = time.monotonic()
        produce(p, src, [tagged("TagA", b"late")])
        late = []
        while not late:
            assert time.monotonic() - sent < 5, "late match not received"
            for recs in c.poll(timeout_ms=100).values():
                late.extend(recs)
        assert [(r.offset, r.value) for r in late] == [(603, b"late")]
        assert time.monotonic() - sent < 2.0
    finally:
        c.close()


def test_kafkajs_views(broker, topic_name):
    b = broker.bootstrap
    src = kutil.create_topic(b, topic_name, partitions=2)
    p = kutil.producer(b)
    produce(p, src, [tagged("TagA", b"a", key=b"ka", timestamp=T0), tagged("TagC", b"c"),
                     {"value": b"b", "headers": [("TAGS", b"TagB"), ("x", b"1")]}, {"value": b"none"}])
    produce(p, src, [tagged("TagC", b"c", partition=1), tagged("TagA", b"a1", partition=1)])
    for _ in range(2):  # a non-matching tail on partition 1
        produce(p, src, [tagged("TagC", b"tail", partition=1) for _ in range(25)])
    view = f"{topic_name}-view"
    group = f"g-{topic_name}"
    rc, out, err = node("views.js", b, src, view, group, "3")
    assert rc == 0 and "error" not in out, (out, err[-2000:])
    assert out["create"]["ok"], out["create"]
    assert out["createBad"]["ok"] is False and out["createBad"]["type"] == "INVALID_CONFIG", out["createBad"]
    assert {k: out["configs"].get(k) for k in (VIEW_SOURCE, VIEW_TYPE, VIEW_EXPR)} == \
        {VIEW_SOURCE: src, VIEW_TYPE: "tag", VIEW_EXPR: "TagA || TagB"}
    assert out["viewOffsets"] == out["sourceOffsets"] == [
        {"partition": 0, "low": "0", "high": "4"}, {"partition": 1, "low": "0", "high": "52"}]
    assert out["produceToView"]["ok"] is False, out["produceToView"]
    assert out["produceToView"]["type"] == "INVALID_TOPIC_EXCEPTION", out["produceToView"]
    consumed = out["consumed"]
    assert sorted((m["partition"], int(m["offset"]), m["value"]) for m in consumed) == \
        [(0, 0, "a"), (0, 2, "b"), (0, 5, "js-live"), (1, 1, "a1")]
    first = [m for m in consumed if m["value"] == "a"][0]
    assert (first["key"], first["headers"], first["timestamp"]) == ("ka", {"TAGS": "TagA"}, str(T0))
    assert [m["headers"] for m in consumed if m["value"] == "b"] == [{"TAGS": "TagB", "x": "1"}]
    live = [m for m in consumed if m["value"] == "js-live"][0]
    assert live["seenMs"] - out["liveSentMs"] < 2000, live["seenMs"] - out["liveSentMs"]
    committed = {c["partition"]: int(c["offset"]) for c in out["committed"]}
    assert committed[0] == 6
    # kafkajs (like librdkafka) commits the offset after its last message: the trailing empty
    # batch moves its fetch position, not what it commits (here 2)
    assert 2 <= committed[1] <= 52
    # nothing reached the view or the source through the refused produce
    assert kutil.watermarks(b, src, 0) == (0, 6)


# ---------------------------------------------------------------------------
# produce refused, alter, delete, transactions, restart
# ---------------------------------------------------------------------------

def test_produce_to_view_is_refused(broker, topic_name):
    b = broker.bootstrap
    src = kutil.create_topic(b, topic_name)
    view = create_view(b, f"{topic_name}-view", src, "tag", "*")
    p = kutil.producer(b, **{"message.timeout.ms": 10000, "enable.idempotence": False})
    errors = []
    p.produce(view, value=b"to-view", headers=[("TAGS", b"TagA")], partition=0,
              on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(15) == 0
    assert len(errors) == 1 and errors[0] is not None, errors
    assert errors[0].code() == KafkaError.TOPIC_EXCEPTION == INVALID_TOPIC_EXCEPTION, errors[0]
    # kafka-python too
    from kafka import KafkaProducer
    from kafka import errors as Errors
    kp = KafkaProducer(bootstrap_servers=b, enable_idempotence=False, retries=0, request_timeout_ms=10000)
    try:
        with pytest.raises(Errors.InvalidTopicError):
            kp.send(view, value=b"to-view-2", partition=0).get(timeout=15)
    finally:
        kp.close()
    assert kutil.watermarks(b, src) == (0, 0)
    assert kutil.watermarks(b, view) == (0, 0)


def test_alter_filter_expression(broker, topic_name):
    b = broker.bootstrap
    src = kutil.create_topic(b, topic_name)
    other = kutil.create_topic(b, f"{topic_name}-other")
    p = kutil.producer(b)
    produce(p, src, [tagged(t, t) for t in ("A", "B", "C")])
    view = create_view(b, f"{topic_name}-view", src, "tag", "A")
    assert offsets_of(read_to_end(b, [(view, 0, 0)])) == [(0, 0)]
    # a consumer that stays at the end across the change
    live = kutil.consumer(b, **{"enable.partition.eof": True, "fetch.wait.max.ms": 200})
    try:
        live.assign([TopicPartition(view, 0, 3)])
        _poll_until_eof(live)
        assert alter_expr(b, view, VIEW_EXPR, "B || C") is None
        assert describe_configs(b, view)[VIEW_EXPR] == "B || C"
        assert offsets_of(read_to_end(b, [(view, 0, 0)])) == [(0, 1), (0, 2)]
        produce(p, src, [tagged("A", "A2"), tagged("B", "B2")])
        got = _poll_until(live, lambda o: o, 5, "B2")
        assert [(m.offset(), m.value()) for m in got] == [(4, b"B2")]
        quiet_until = time.monotonic() + 0.5
        while time.monotonic() < quiet_until:
            m = live.poll(0.1)
            assert m is None or m.error(), rec(m)
    finally:
        live.close()
    # invalid expression, a new source: refused, nothing changes
    for key, value in ((VIEW_EXPR, "||"), (VIEW_SOURCE, other), (VIEW_SOURCE, f"nope-{uuid.uuid4().hex[:6]}")):
        err = alter_expr(b, view, key, value)
        assert err is not None and err.code() == INVALID_CONFIG, (key, value, err)
    # the expression must parse as the type it would have: `B || C` is no SQL92
    err = alter_expr(b, view, VIEW_TYPE, "sql92")
    assert err is not None and err.code() == INVALID_CONFIG, err
    # a view keeps all three keys; an ordinary topic does not become a view
    a = kutil.admin(b)
    res = ConfigResource(ResourceType.TOPIC, view, incremental_configs=[
        ConfigEntry(VIEW_EXPR, None, incremental_operation=AlterConfigOpType.DELETE)])
    with pytest.raises(KafkaException) as e:
        a.incremental_alter_configs([res])[res].result(timeout=15)
    assert e.value.args[0].code() == INVALID_CONFIG, e.value.args[0]
    err = alter_expr(b, other, VIEW_SOURCE, src)
    assert err is not None and err.code() == INVALID_CONFIG, err
    assert not any(k.startswith("fjord.view.") for k in describe_configs(b, other))
    cfg = describe_configs(b, view)
    assert (cfg[VIEW_SOURCE], cfg[VIEW_TYPE], cfg[VIEW_EXPR]) == (src, "tag", "B || C")
    # the CLI
    fjord(broker, "topic", "alter", view, "--config", f"{VIEW_EXPR}=A", check=0)
    assert offsets_of(read_to_end(b, [(view, 0, 0)])) == [(0, 0), (0, 3)]
    r = fjord(broker, "topic", "alter", view, "--config", f"{VIEW_EXPR}=||")
    assert r.returncode != 0 and "INVALID_CONFIG" in r.err, r.err
    assert describe_configs(b, view)[VIEW_EXPR] == "A"


def test_delete_source_and_view(broker, topic_name):
    b = broker.bootstrap
    src = kutil.create_topic(b, topic_name)
    produce(kutil.producer(b), src, [tagged("A", "a"), tagged("B", "b")])
    view = create_view(b, f"{topic_name}-view", src, "tag", "A")
    view2 = create_view(b, f"{topic_name}-view2", src, "tag", "B")
    assert offsets_of(read_to_end(b, [(view, 0, 0)])) == [(0, 0)]
    a = kutil.admin(b)
    # deleting a view leaves the source alone
    a.delete_topics([view2], operation_timeout=15)[view2].result(timeout=20)
    wait_until(lambda: not exists(b, view2), msg="view2 gone")
    assert offsets_of(read_to_end(b, [(src, 0, 0)])) == [(0, 0), (0, 1)]
    # deleting the source: fetching the view fails with UNKNOWN_TOPIC_OR_PARTITION
    a.delete_topics([src], operation_timeout=15)[src].result(timeout=20)
    wait_until(lambda: not exists(b, src), msg="source gone")
    err, _, rlen, _ = fetch_v4(b, view)
    assert err == UNKNOWN_TOPIC_OR_PARTITION and rlen == 0, (err, rlen)
    c = kutil.consumer(b, **{"fetch.wait.max.ms": 100, "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition(view, 0, 0)])
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            m = c.poll(0.1)
            assert m is None or m.error() is not None, f"a record from a view of a deleted topic: {rec(m)}"
    finally:
        c.close()
    assert broker.alive()


def test_read_committed_view_skips_aborted(broker, topic_name):
    b = broker.bootstrap
    src = kutil.create_topic(b, topic_name)
    view = create_view(b, f"{topic_name}-view", src, "tag", "A")
    tp = Producer({"bootstrap.servers": b, "transactional.id": f"tx-{topic_name}", "linger.ms": 5,
                   **kutil.QUIET})

    def settle(high):  # the COMMIT / ABORT marker is written (Kafka writes it after EndTxn)
        wait_until(lambda: kutil.watermarks(b, src)[1] == high, msg=f"source high watermark {high}")

    tp.init_transactions(30)
    tp.begin_transaction()
    produce(tp, src, [tagged("A", "c0"), tagged("B", "c1")])
    tp.commit_transaction(30)
    settle(3)
    tp.begin_transaction()
    produce(tp, src, [tagged("A", "x0"), tagged("A", "x1"), tagged("B", "x2")])
    tp.abort_transaction(30)
    settle(7)
    # the same producer (same producer id) commits again after its abort
    tp.begin_transaction()
    produce(tp, src, [tagged("B", "c2"), tagged("A", "c3")])
    tp.commit_transaction(30)
    settle(10)
    produce(kutil.producer(b), src, [tagged("A", "plain")])
    # source offsets: c0 0, c1 1, COMMIT 2, x0 3, x1 4, x2 5, ABORT 6, c2 7, c3 8, COMMIT 9, plain 10
    committed = read_to_end(b, [(view, 0, 0)], conf={"isolation.level": "read_committed"})
    assert [(m.offset(), m.value()) for m in committed] == [(0, b"c0"), (8, b"c3"), (10, b"plain")]
    uncommitted = read_to_end(b, [(view, 0, 0)], conf={"isolation.level": "read_uncommitted"})
    assert [(m.offset(), m.value()) for m in uncommitted] == \
        [(0, b"c0"), (3, b"x0"), (4, b"x1"), (8, b"c3"), (10, b"plain")]
    # an open transaction: read_committed stops at the last stable offset (the source's)
    tp.begin_transaction()
    produce(tp, src, [tagged("A", "open")])
    produce(kutil.producer(b), src, [tagged("A", "after-open")])
    rc = {"isolation.level": "read_committed"}
    c = kutil.consumer(b, **rc)
    try:
        assert c.get_watermark_offsets(TopicPartition(view, 0), timeout=10, cached=False) == (0, 11)
    finally:
        c.close()
    assert [m.offset() for m in read_to_end(b, [(view, 0, 8)], conf=rc)] == [8, 10]
    tp.commit_transaction(30)
    settle(14)
    assert [(m.offset(), m.value()) for m in read_to_end(b, [(view, 0, 9)], conf=rc)] == \
        [(10, b"plain"), (11, b"open"), (12, b"after-open")]


def test_restart_keeps_views(make_broker, topic_name):
    """Views, their altered expressions and their refusal of produce survive a graceful restart
    and kill -9."""
    bk = make_broker()
    b = bk.bootstrap
    src = kutil.create_topic(b, topic_name, partitions=2)
    p = kutil.producer(b)
    produce(p, src, [{"value": f"n{i}".encode(), "headers": [("n", str(i).encode())], "partition": i % 2}
                     for i in range(10)])
    view = create_view(b, f"{topic_name}-view", src, "sql92", "n >= 5", source_partitions=2)
    before = sorted(offsets_of(read_to_end(b, [(view, 0, 0), (view, 1, 0)])))
    assert before == [(0, 3), (0, 4), (1, 2), (1, 3), (1, 4)]
    bk.restart()
    kutil.wait_topic_visible(b, view, 2)
    cfg = describe_configs(b, view)
    assert (cfg[VIEW_SOURCE], cfg[VIEW_TYPE], cfg[VIEW_EXPR]) == (src, "sql92", "n >= 5")
    assert sorted(offsets_of(read_to_end(b, [(view, 0, 0), (view, 1, 0)]))) == before
    produce(kutil.producer(b), src, [{"value": b"late", "headers": [("n", b"42")], "partition": 1},
                                     {"value": b"low", "headers": [("n", b"1")], "partition": 1}])
    got = read_to_end(b, [(view, 1, 5)])
    assert [(m.offset(), m.value()) for m in got] == [(5, b"late")]
    # still a view: producing to it is refused
    errors = []
    p2 = kutil.producer(b, **{"message.timeout.ms": 10000})
    p2.produce(view, value=b"x", partition=0, on_delivery=lambda err, msg: errors.append(err))
    p2.flush(15)
    assert [e and e.code() for e in errors] == [INVALID_TOPIC_EXCEPTION]
    # an altered expression and a new view survive kill -9
    assert alter_expr(b, view, VIEW_EXPR, "n < 5") is None
    view2 = create_view(b, f"{topic_name}-view2", src, "tag", "*", source_partitions=2)
    bk.kill9()
    bk.start()
    kutil.wait_topic_visible(b, view2, 2)
    assert describe_configs(b, view)[VIEW_EXPR] == "n < 5"
    assert sorted(offsets_of(read_to_end(b, [(view, 0, 0), (view, 1, 0)]))) == \
        [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 6)]
    assert len(read_to_end(b, [(view2, 0, 0), (view2, 1, 0)])) == 12
