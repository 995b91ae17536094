"""Fjord's share-group extensions with confluent-kafka's ShareConsumer (librdkafka 2.16) and raw
share-API frames: ordering by key (`fjord.share.ordering=key`) and broker-side filters
(`fjord.share.filter.type` / `fjord.share.filter.expression`, the language of docs/FILTERS.md).

Ordering by key promises: at most one record per key in flight in the whole group (acquired, or
released and waiting for its back-off), each key's records delivered in offset order, a retried
record holding back only its own key, null keys unordered, and all of it after kill -9.

In-flight bookkeeping (`Run`) is conservative so that an overlap it reports is real: a record
counts as held from the moment a poll returned it (the broker acquired it earlier) until the
test starts to settle it: explicit mode, when it calls acknowledge(); implicit mode, when it
starts the member's next poll (librdkafka acknowledges a poll's records with the next one).
"""

import json
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict

import pytest
from confluent_kafka import KafkaError, KafkaException

import kutil
from test_share import (ACCEPT, RELEASE, alter_group, collect, collect_for, commit,  # noqa: F401
                        conn, consumers, describe_group_configs, gid, join, kill_child,
                        open_session, poll_records, share_group)

ONE_BATCH = {"linger.ms": 5000}  # one batch: the producer waits for flush(), which sends at once

ORDERING = "fjord.share.ordering"
FILTER_TYPE = "fjord.share.filter.type"
FILTER_EXPR = "fjord.share.filter.expression"
BACKOFF = "fjord.share.redelivery.backoff.ms"
KEYS = [f"k{i}".encode() for i in range(4)]


def produce_keyed(bootstrap, topic, per_key, keys=KEYS, extra=()):
    """per_key records of each key, interleaved (offset i has key keys[i % len(keys)]), in one
    partition and one batch; then `extra` (dicts for produce_all). {offset: key} of all."""
    msgs = [{"value": f"{keys[i % len(keys)].decode()}-{i // len(keys)}".encode(),
             "key": keys[i % len(keys)], "partition": 0} for i in range(per_key * len(keys))]
    msgs += [{"partition": 0, **m} for m in extra]
    kutil.produce_all(bootstrap, topic, msgs, conf=ONE_BATCH)
    return {i: m.get("key") for i, m in enumerate(msgs)}


def http_metric(b, name):
    with urllib.request.urlopen(f"http://{b.host}:{b.http_port}/metrics", timeout=5) as r:
        return kutil.metric(r.read().decode(), name) or 0.0


# ---------------------------------------------------------------------------
# the driver: members of one group take turns; the group's behaviour is recorded
# ---------------------------------------------------------------------------

class Member:
    def __init__(self, name, consumer, mode):
        self.name, self.c, self.mode, self.holding = name, consumer, mode, []


class Run:
    """decide(msg) -> ACCEPT or RELEASE for explicit members (implicit members accept)."""

    def __init__(self, decide=lambda m: ACCEPT):
        self.decide = decide
        self.held = defaultdict(dict)  # key -> {offset: member} (null keys are not tracked)
        self.overlaps = []             # (member, key, offsets held at once)
        self.deliveries = []           # (t, member, key, offset, delivery count)
        self.accepted = defaultdict(list)  # key -> offsets, in the order they were accepted
        self.releases = []             # (t the release was committed, offset)

    def turn(self, mb, timeout=0.1):
        if mb.holding:
            self.settle(mb)
        recs = poll_records(mb.c, timeout)
        now = time.monotonic()
        for m in recs:
            self.deliveries.append((now, mb.name, m.key(), m.offset(), m.delivery_count()))
            if m.key() is not None:
                held = self.held[m.key()]
                held[m.offset()] = mb.name
                if len(held) > 1:
                    self.overlaps.append((mb.name, m.key(), dict(held)))
        mb.holding = recs
        return recs

    def settle(self, mb):
        recs, mb.holding = mb.holding, []
        for m in recs:
            self.held[m.key()].pop(m.offset(), None)
        if mb.mode == "implicit":
            for m in recs:
                self.accepted[m.key()].append(m.offset())
            return  # acknowledged by the poll that follows
        kinds = [(m, self.decide(m)) for m in recs]
        for m, kind in kinds:
            mb.c.acknowledge(m, kind)
        commit(mb.c)
        now = time.monotonic()
        for m, kind in kinds:
            if kind == ACCEPT:
                self.accepted[m.key()].append(m.offset())
            else:
                self.releases.append((now, m.offset()))

    def until(self, members, done, timeout=20):
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            for mb in members:
                self.turn(mb)
        for mb in members:
            if mb.holding:
                self.settle(mb)
            if mb.mode == "implicit":
                commit(mb.c)
        return done()

    def n_accepted(self):
        return sum(len(v) for v in self.accepted.values())

    def order_of(self, key):
        return [o for _, _, k, o, _ in self.deliveries if k == key]


def check_key_order(run, keys_of):
    """Every key's records accepted exactly once, in offset order, none two at a time."""
    assert not run.overlaps, f"two records of one key in flight at once: {run.overlaps[:3]}"
    for key in {k for k in keys_of.values() if k is not None}:
        mine = sorted(o for o, k in keys_of.items() if k == key)
        assert run.accepted[key] == mine, f"{key}: accepted {run.accepted[key]}, want {mine}"
        order = run.order_of(key)
        assert order == sorted(order), f"{key} delivered out of offset order: {order}"


# ---------------------------------------------------------------------------
# 1. ordering by key
# ---------------------------------------------------------------------------

def test_key_ordering_a_retried_record_holds_back_only_its_key(broker, topic_name, consumers):
    kutil.create_topic(broker.bootstrap, topic_name)
    keys_of = produce_keyed(broker.bootstrap, topic_name, per_key=5)
    g = share_group(broker.bootstrap, **{ORDERING: "key", BACKOFF: 2000})
    k0 = KEYS[0]
    # the first delivery of offset 0 (key k0) is released; everything else accepted
    run = Run(decide=lambda m: RELEASE if m.offset() == 0 and m.delivery_count() == 1 else ACCEPT)

    # two records a poll for the explicit members, so that each holds only some keys
    two = {"max.poll.records": 2}
    a = Member("a", consumers(broker.bootstrap, g, [topic_name], mode="explicit", **two), "explicit")
    assert wait_until_polled(run, a), "a got nothing"
    assert sorted(m.offset() for m in a.holding) == [0, 1], "each key's first record only"
    b = Member("b", consumers(broker.bootstrap, g, [topic_name], mode="explicit", **two), "explicit")
    assert wait_until_polled(run, b), "b got nothing"
    assert sorted(m.offset() for m in b.holding) == [2, 3], "the other keys' first records"
    # a and b hold one record of every key: nothing else of the partition may be handed out
    c = Member("c", consumers(broker.bootstrap, g, [topic_name]), "implicit")
    t_end = time.monotonic() + 1.0
    while time.monotonic() < t_end:
        assert run.turn(c) == [], "a record of a key that a or b holds was handed out"

    assert run.until([a, b, c], lambda: run.n_accepted() == len(keys_of), timeout=25), \
        f"accepted {run.n_accepted()}/{len(keys_of)}: {dict(run.accepted)}"
    check_key_order(run, keys_of)

    [(released_at, released)] = run.releases
    assert released == 0
    redelivered = [d for d in run.deliveries if d[3] == 0 and d[4] == 2]
    assert len(redelivered) == 1, run.order_of(k0)
    t_back = redelivered[0][0]
    assert t_back - released_at >= 1.5, f"redelivered {t_back - released_at:.2f}s after release (back-off 2 s)"
    assert run.order_of(k0) == [0, 0, 4, 8, 12, 16], "k0 waits for its retried record"
    between = [d for d in run.deliveries if released_at < d[0] < t_back]
    assert not [d for d in between if d[2] == k0], "k0's later records waited for offset 0"
    others = Counter(d[2] for d in between)
    assert set(others) == set(KEYS[1:]) and sum(others.values()) >= 6, \
        f"other keys flow during k0's back-off: {others}"
    assert collect_for(a.c, 1.0) == [], "nothing is left"


def wait_until_polled(run, mb, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.turn(mb, 0.3):
            return True
    return False


@pytest.mark.parametrize("ordering", ["none", "key"])
def test_how_many_records_of_one_key_a_consumer_holds_at_once(broker, topic_name, consumers, ordering):
    """The contrast: without ordering one poll holds many records of one key."""
    kutil.create_topic(broker.bootstrap, topic_name)
    nulls = [{"value": f"null-{i}".encode()} for i in range(3)]
    keys_of = produce_keyed(broker.bootstrap, topic_name, per_key=5, extra=nulls)
    g = share_group(broker.bootstrap, **{ORDERING: ordering})
    c = consumers(broker.bootstrap, g, [topic_name], mode="explicit")
    first = collect(c, 1)
    per_key = Counter(m.key() for m in first)
    if ordering == "none":
        assert max(per_key[k] for k in KEYS) > 1, f"ordering=none: {per_key}"
    else:
        assert [m.offset() for m in first] == [0, 1, 2, 3, 20, 21, 22], \
            "each key's first record, and every record without a key (unordered)"
    for m in first:
        c.acknowledge(m, ACCEPT)
    commit(c)
    rest = collect(c, len(keys_of) - len(first), on_record=lambda m: c.acknowledge(m, ACCEPT))
    commit(c)
    assert sorted(m.offset() for m in first + rest) == sorted(keys_of)


def test_key_ordering_on_the_wire_one_record_per_key_and_null_keys_unordered(broker, topic_name, conn):
    """Raw ShareFetch shows exactly what the broker acquired, to the offset."""
    kutil.create_topic(broker.bootstrap, topic_name)
    produce_keyed(broker.bootstrap, topic_name, per_key=3, keys=KEYS[:2],
                  extra=[{"value": b"n0"}, {"value": b"n1"}])  # offsets 0..5 keyed, 6..7 null
    g = share_group(broker.bootstrap, **{ORDERING: "key"})
    w1, w2 = conn(), conn()
    m1, _, tid = join(w1, g, topic_name)
    m2, _, _ = join(w2, g, topic_name)
    epoch, acquired = open_session(w1, g, m1, tid, 4)
    assert acquired == [(0, 1, 1), (6, 7, 1)], acquired
    f = w2.share_fetch(g, m2, 0, [(tid, [(0, [])])], max_wait=300)
    assert not (f["partitions"].get((tid, 0)) or {}).get("acquired"), f"a held key leaked: {f}"
    # accept k0's record only: k0's next one goes out, k1's does not
    a = w1.share_ack(g, m1, epoch, [(tid, [(0, [(0, 0, [1])])])])
    assert a["partitions"][(tid, 0)]["error"] == 0, a
    f = w2.share_fetch(g, m2, 1, [], max_wait=300)
    assert f["partitions"][(tid, 0)]["acquired"] == [(2, 2, 1)], f


def test_key_ordering_across_lock_expiry_and_the_delivery_limit(broker, topic_name, conn):
    """An expired lock gives the key's record back first; an archived one frees its key."""
    kutil.create_topic(broker.bootstrap, topic_name)
    produce_keyed(broker.bootstrap, topic_name, per_key=3, keys=KEYS[:2])  # k0: 0 2 4, k1: 1 3 5
    g = share_group(broker.bootstrap, **{ORDERING: "key", "share.record.lock.duration.ms": 1000,
                                         "share.delivery.count.limit": 2})
    w1, w2 = conn(), conn()
    m1, _, tid = join(w1, g, topic_name)
    m2, _, _ = join(w2, g, topic_name)
    _, acquired = open_session(w1, g, m1, tid, 2)  # held by m1 until the lock expires
    assert acquired == [(0, 1, 1)]
    epoch, again = open_session(w2, g, m2, tid, 2)
    assert again == [(0, 1, 2)], "the expired records again, not their keys' next ones"
    # m2 accepts 1 and releases 0 for the last time allowed: 0 is archived, both keys move on
    a = w2.share_ack(g, m2, epoch, [(tid, [(0, [(0, 1, [2, 1])])])])
    assert a["partitions"][(tid, 0)]["error"] == 0, a
    f = w2.share_fetch(g, m2, epoch + 1, [], max_wait=300)
    assert f["partitions"][(tid, 0)]["acquired"] == [(2, 3, 1)], f


@pytest.mark.parametrize("before", [
    "plain",
    "filtered",
])
def test_switching_to_key_ordering_orders_the_records_already_in_the_window(broker, topic_name, conn, before):
    kutil.create_topic(broker.bootstrap, topic_name)
    kutil.produce_all(broker.bootstrap, topic_name, [
        {"partition": 0, "key": KEYS[i % 2], "value": b"v", "headers": [("TAGS", b"go")]}
        for i in range(6)], conf=ONE_BATCH)
    g = share_group(broker.bootstrap, **({FILTER_EXPR: "go"} if before == "filtered" else {}))
    w = conn()
    m, _, tid = join(w, g, topic_name)
    epoch, acquired = open_session(w, g, m, tid, 6)
    # ordering=none: all at once (in one run per producer batch: a loaded machine may split them)
    assert [o for first, last, _ in acquired for o in range(first, last + 1)] == list(range(6)), acquired
    assert {d for _, _, d in acquired} == {1}, acquired
    runs = [(first, last, [2]) for first, last, _ in acquired]
    a = w.share_ack(g, m, epoch, [(tid, [(0, runs)])])  # release all
    assert a["partitions"][(tid, 0)]["error"] == 0, a
    alter_group(broker.bootstrap, g, {ORDERING: "key"})
    f = w.share_fetch(g, m, epoch + 1, [], max_wait=300)
    assert f["partitions"][(tid, 0)]["acquired"] == [(0, 1, 2)], f


# ---------------------------------------------------------------------------
# 2. kill -9 with records of keys in flight
# ---------------------------------------------------------------------------

# A member in another process (to die with the broker): explicit mode, accepts the offsets in
# argv[4] (a JSON list), commits after each poll, and at the first poll holding an offset not in
# that list prints {"delivered": [[offset, delivery count], ...]} and idles, holding those.
CHILD = r"""
import json, sys, time
from confluent_kafka import AcknowledgeType, ShareConsumer
bootstrap, group, topic, accept = sys.argv[1], sys.argv[2], sys.argv[3], set(json.loads(sys.argv[4]))
c = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0,
                   "share.acknowledgement.mode": "explicit"})
c.subscribe([topic])
got, holding, deadline = [], False, time.monotonic() + 20
while not holding and time.monotonic() < deadline:
    recs = [m for m in c.poll(0.5) if not m.error()]
    got += recs
    for m in recs:
        if m.offset() in accept:
            c.acknowledge(m, AcknowledgeType.ACCEPT)
        else:
            holding = True
    if recs:
        res = c.commit_sync(15)
        assert all(e is None for e in res.values()), res
print(json.dumps({"delivered": [[m.offset(), m.delivery_count()] for m in got]}), flush=True)
while True:
    time.sleep(1)
"""


def test_key_ordering_holds_after_kill9_and_accepted_records_stay_accepted(make_broker, topic_name, consumers):
    b = make_broker()
    kutil.create_topic(b.bootstrap, topic_name)
    keys_of = produce_keyed(b.bootstrap, topic_name, per_key=5)  # offset i: key k(i % 4)
    g = share_group(b.bootstrap, **{ORDERING: "key"})
    child = subprocess.Popen([sys.executable, "-c", CHILD, b.bootstrap, g, topic_name,
                              json.dumps([0, 1, 2, 3, 4, 5])],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = child.stdout.readline()
        assert line, f"child failed: {child.stderr.read().decode()[-2000:]}"
        delivered = sorted(tuple(x) for x in json.loads(line)["delivered"])
        # 0..3 (each key's first), accepted; then 4..7: 4, 5 accepted, 6 (k2) and 7 (k3) held
        assert delivered == [(o, 1) for o in range(8)], delivered
        b.kill9()
    finally:
        kill_child(child)
    b.start()

    run = Run()
    a = Member("a", consumers(b.bootstrap, g, [topic_name], mode="explicit"), "explicit")
    assert wait_until_polled(run, a, timeout=15), "nothing after the restart"
    assert sorted(m.offset() for m in a.holding) == [6, 7, 8, 9], \
        "after the restart: the held records of k2/k3 again, and k0/k1's next, one per key"
    assert {m.offset(): m.delivery_count() for m in a.holding if m.offset() in (6, 7)} == {6: 2, 7: 2}
    c = Member("c", consumers(b.bootstrap, g, [topic_name]), "implicit")
    remaining = {o: k for o, k in keys_of.items() if o >= 6}
    assert run.until([a, c], lambda: run.n_accepted() == len(remaining)), dict(run.accepted)
    check_key_order(run, remaining)
    assert min(d[3] for d in run.deliveries) == 6, "an accepted record was delivered again"

    # and the acceptances are durable too
    b.kill9()
    b.start()
    d = consumers(b.bootstrap, g, [topic_name])
    assert collect_for(d, 2.0) == []


# ---------------------------------------------------------------------------
# 3. filters
# ---------------------------------------------------------------------------

def tagged(tag, value, **headers):
    h = ([("TAGS", tag.encode())] if tag is not None else []) + \
        [(k, v.encode()) for k, v in headers.items()]
    return {"value": value.encode(), "headers": h}


def test_tag_filter_delivers_exactly_the_matching_records(broker, topic_name, consumers):
    kutil.create_topic(broker.bootstrap, topic_name)
    msgs = [tagged("paid", "p0"), tagged("new", "x1"), tagged(None, "x2"), tagged("refunded", "r3"),
            tagged("Paid", "x4"), tagged("paid", "p5"), tagged("paid || refunded", "x6"),
            tagged("new", "x7"), tagged("new", "x8"), tagged("", "x9")]
    before = http_metric(broker, "fjord_share_filtered_total")
    kutil.produce_all(broker.bootstrap, topic_name, [{"partition": 0, **m} for m in msgs])
    g = share_group(broker.bootstrap, **{FILTER_EXPR: "paid || refunded"})  # type: tag, the default

    c = consumers(broker.bootstrap, g, [topic_name])
    got = collect(c, 3)
    got += collect_for(c, 1.0)
    assert [(m.offset(), m.value()) for m in got] == [(0, b"p0"), (3, b"r3"), (5, b"p5")]
    assert {m.delivery_count() for m in got} == {1}
    commit(c)
    c.close()
    assert http_metric(broker, "fjord_share_filtered_total") - before == 7, "x1 x2 x4 x6 x7 x8 x9"

    # the group has nothing left: the filtered records count as settled, the start is past them
    d = consumers(broker.bootstrap, g, [topic_name])
    assert collect_for(d, 1.5) == []
    kutil.produce_all(broker.bootstrap, topic_name, [{"partition": 0, **tagged("refunded", "late")}])
    [late] = collect(d, 1)
    assert (late.offset(), late.value(), late.delivery_count()) == (10, b"late", 1)
    commit(d)

    # a new expression applies to records read after it is set
    alter_group(broker.bootstrap, g, {FILTER_EXPR: "new"})
    kutil.produce_all(broker.bootstrap, topic_name,
                      [{"partition": 0, **tagged(t, f"n{i}")} for i, t in enumerate(["paid", "new"])])
    got = collect(d, 1) + collect_for(d, 1.0)
    assert [(m.offset(), m.value()) for m in got] == [(12, b"n1")]
    commit(d)


def test_sql92_filter_sees_every_header_as_a_property(broker, topic_name, consumers):
    kutil.create_topic(broker.bootstrap, topic_name)
    msgs = [  # value: "y..." matches, "n..." does not
        tagged(None, "y-eu-150", region="eu", amount="150"),
        tagged(None, "n-eu-50", region="eu", amount="50"),
        tagged(None, "n-us-500", region="us", amount="500"),
        tagged(None, "n-noregion", amount="200"),          # region missing: NULL, unknown
        tagged(None, "n-eu-abc", region="eu", amount="abc"),  # not a number: evaluation error
        tagged("vip", "y-vip"),                            # unknown OR TRUE
        tagged("other", "y-eu-101", region="eu", amount="101"),
        tagged(None, "n-plain"),
    ]
    before = http_metric(broker, "fjord_share_filtered_total")
    kutil.produce_all(broker.bootstrap, topic_name, [{"partition": 0, **m} for m in msgs])
    g = share_group(broker.bootstrap, **{
        FILTER_TYPE: "sql92", FILTER_EXPR: "(region = 'eu' AND amount > 100) OR TAGS = 'vip'"})
    c = consumers(broker.bootstrap, g, [topic_name], mode="explicit")
    got = collect(c, 3, on_record=lambda m: c.acknowledge(m, ACCEPT))
    commit(c)
    got += collect_for(c, 1.0, on_record=lambda m: c.acknowledge(m, ACCEPT))
    assert [m.value() for m in got] == [b"y-eu-150", b"y-vip", b"y-eu-101"]
    assert [m.offset() for m in got] == [0, 5, 6]
    commit(c)
    c.close()
    assert http_metric(broker, "fjord_share_filtered_total") - before == 5
    d = consumers(broker.bootstrap, g, [topic_name])
    assert collect_for(d, 1.5) == [], "the filtered records are settled for the group"


def test_a_repeated_header_is_read_as_its_last_value(broker, topic_name, consumers):
    kutil.create_topic(broker.bootstrap, topic_name)
    kutil.produce_all(broker.bootstrap, topic_name, [
        {"partition": 0, "value": b"first-paid", "headers": [("TAGS", b"paid"), ("TAGS", b"new")]},
        {"partition": 0, "value": b"last-paid", "headers": [("TAGS", b"new"), ("TAGS", b"paid")]},
    ])
    g = share_group(broker.bootstrap, **{FILTER_EXPR: "paid"})
    c = consumers(broker.bootstrap, g, [topic_name])
    got = collect(c, 1) + collect_for(c, 1.0)
    assert [m.value() for m in got] == [b"last-paid"]


def test_filter_and_key_ordering_together(broker, topic_name, conn):
    """A filtered record is settled at once, so it never holds back its key."""
    kutil.create_topic(broker.bootstrap, topic_name)
    kutil.produce_all(broker.bootstrap, topic_name, [
        {"partition": 0, "key": k, "value": v, "headers": [("TAGS", t)]}
        for k, v, t in [(b"a", b"a0", b"skip"), (b"b", b"b1", b"go"), (b"a", b"a2", b"go"),
                        (b"b", b"b3", b"go"), (b"a", b"a4", b"go")]])
    g = share_group(broker.bootstrap, **{ORDERING: "key", FILTER_EXPR: "go"})
    w = conn()
    m, _, tid = join(w, g, topic_name)
    epoch, acquired = open_session(w, g, m, tid, 2)
    assert acquired == [(1, 2, 1)], "b's first and a's first matching record"


# ---------------------------------------------------------------------------
# 4. configs
# ---------------------------------------------------------------------------

def test_ordering_and_filter_configs_are_described(broker):
    g = gid()
    cfg = describe_group_configs(broker.bootstrap, g)
    assert (cfg[ORDERING].value, cfg[FILTER_TYPE].value, cfg[FILTER_EXPR].value or "") == ("none", "tag", "")
    alter_group(broker.bootstrap, g, {ORDERING: "key", FILTER_TYPE: "sql92", FILTER_EXPR: "a IS NULL"})
    cfg = describe_group_configs(broker.bootstrap, g)
    assert (cfg[ORDERING].value, cfg[FILTER_TYPE].value, cfg[FILTER_EXPR].value) == ("key", "sql92", "a IS NULL")
    # back to tags: both keys in one request
    alter_group(broker.bootstrap, g, {FILTER_TYPE: "tag", FILTER_EXPR: "x || y"})
    assert describe_group_configs(broker.bootstrap, g)[FILTER_EXPR].value == "x || y"


@pytest.mark.parametrize("configs,named", [
    ({ORDERING: "random"}, ORDERING),
    ({FILTER_EXPR: "||"}, FILTER_EXPR),
    ({FILTER_TYPE: "sql92", FILTER_EXPR: "a >"}, FILTER_EXPR),
    ({FILTER_TYPE: "regex"}, FILTER_TYPE),
    # the group's tag expression does not parse as SQL92: switching the type alone is refused
    ({FILTER_TYPE: "sql92"}, FILTER_EXPR),
])
def test_invalid_ordering_and_filter_configs_are_refused(broker, configs, named):
    g = gid()
    base = {ORDERING: "key", FILTER_EXPR: "paid || refunded"}
    alter_group(broker.bootstrap, g, base)
    with pytest.raises(KafkaException) as e:
        alter_group(broker.bootstrap, g, configs)
    err = e.value.args[0]
    assert err.code() == KafkaError.INVALID_CONFIG, err
    assert named in err.str(), f"the message names {named}: {err.str()}"
    cfg = describe_group_configs(broker.bootstrap, g)
    assert (cfg[ORDERING].value, cfg[FILTER_TYPE].value, cfg[FILTER_EXPR].value) == \
        ("key", "tag", "paid || refunded"), "nothing applied"
