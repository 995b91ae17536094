"""Kafka transactions with real clients: confluent-kafka 2.16.1 (librdkafka) and kafkajs 2.2.4.

Covers commit and abort (each COMMIT/ABORT marker takes one offset per partition), plain
records interleaved with transactional ones and two transactional producers on one partition
(read with one batch per fetch and from inside aborted transactions), large zstd transactions,
the last stable offset (read_committed consumers stop at the first open transaction; the
ListOffsets matrix under an open transaction), fencing by a second producer with the same
transactional.id, INVALID_TRANSACTION_TIMEOUT, the coordinator's timeout abort,
TxnOffsetCommit and require_stable offset fetches, transaction state across kill -9 and SIGTERM
restarts (aborted ranges across a segment roll, an open transaction committed after the
restart), consume-transform-produce with send_offsets_to_transaction across kill -9 of the
application and of the broker, and kafkajs transactions (commit, abort, sendOffsets, fencing)
checked from Python. confluent-kafka 2.16.1's AdminClient has no list/describe transactions,
so DescribeTransactions/ListTransactions are not covered here.

Kafka writes the markers after it has answered EndTxn, so tests that pin offsets wait for
them (`settle`) before the next write or read.

Written to Apache Kafka 4.4.0's behaviour. To run the module against a real Kafka instead of
fjord (this is how it was validated):

    DIR=/tmp/kref; scripts/kafka-ref start $DIR \\
        --set transaction.abort.timed.out.transaction.cleanup.interval.ms=500
    FJORD_TEST_KAFKA_DIR=$DIR python3 -m pytest -v tests/clients/test_transactions.py

FJORD_TEST_KAFKA_DIR (a scripts/kafka-ref directory) also lets the broker restart tests kill and
restart that Kafka (they take minutes there: a JVM restart each); FJORD_TEST_KAFKA=HOST:PORT
alone points the tests at any Kafka and skips the broker restart tests.

The module also holds the consume-transform-produce application (run as a subprocess:
`python3 test_transactions.py app ...`, so that it can be kill -9'd).
"""

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]


# ---------------------------------------------------------------------------
# the consume-transform-produce application (subprocess)
# ---------------------------------------------------------------------------

def app_main(argv):
    """app BOOTSTRAP IN OUT GROUP TXN_ID INSTANCE_ID BATCH HANG_AFTER

    Reads IN as member INSTANCE_ID (static membership) of GROUP with read_committed, writes
    b"T:" + value to the same partition of OUT inside a transaction that also carries the
    consumer's positions (send_offsets_to_transaction), committing every BATCH records. With
    HANG_AFTER > 0 it flushes the open transaction after that many records, prints
    {"event": "hang"} and waits for a line on stdin before going on; with HANG_AFTER < 0 it does
    the same inside the first commit after -HANG_AFTER records, between
    send_offsets_to_transaction and commit_transaction (the offsets are pending). Exits 0 (printing
    {"event": "done"}) once every assigned partition is at its end and nothing is open; exits
    3 on a fatal error. Every event is one JSON line on stdout.
    """
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

    import faulthandler
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID` prints where the app is stuck

    bootstrap, in_topic, out_topic, group, tid, instance, batch, hang_after = argv
    batch, hang_after = int(batch), int(hang_after)

    def say(**ev):
        sys.stdout.write(json.dumps(ev) + "\n")
        sys.stdout.flush()

    # metadata.recovery.strategy=none: librdkafka 2.16's default ("rebootstrap", KIP-899)
    # decommissions its broker handles once every broker was unreachable; a
    # send_offsets_to_transaction() after the broker came back then waits forever on the
    # decommissioned group-coordinator handle, past its own timeout (seen against Kafka 4.4.0
    # and fjord alike). Without re-bootstrap the producer reconnects to the same handle.
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "log_level": 6,
                  "transaction.timeout.ms": 180000, "metadata.recovery.strategy": "none",
                  **json.loads(os.environ.get("TXN_APP_PRODUCER_CONF", "{}"))})
    try:
        p.init_transactions(60)
    except KafkaException as e:
        say(event="fatal", where="init", error=str(e.args[0]))
        return 3
    say(event="init")
    fatal = []

    def on_error(err):
        if err.fatal():
            fatal.append(err)

    cconf = {
        "bootstrap.servers": bootstrap, "group.id": group, "group.instance.id": instance,
        "isolation.level": "read_committed", "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "enable.partition.eof": True,
        # long enough for a (slow, JVM) broker restart: the member keeps its assignment
        "session.timeout.ms": 120000, "log_level": 6, "error_cb": on_error,
        **json.loads(os.environ.get("TXN_APP_CONSUMER_CONF", "{}")),
    }
    if instance == "-":   # dynamic membership
        del cconf["group.instance.id"]
    c = Consumer(cconf)
    eof = set()
    in_txn, in_batch, processed, commits = False, 0, 0, 0

    def on_assign(consumer, partitions):
        eof.clear()
        say(event="assigned", partitions=[tp.partition for tp in partitions])

    def on_revoke(consumer, partitions):
        """The positions are lost: abort the open transaction (its records would repeat)."""
        nonlocal in_txn, in_batch
        eof.clear()
        if in_txn:
            p.abort_transaction(60)
            in_txn, in_batch = False, 0
            say(event="aborted", why="revoked")

    c.subscribe([in_topic], on_assign=on_assign, on_revoke=on_revoke)

    def rewind():
        assigned = c.assignment()
        for tp in c.committed(assigned, timeout=30):
            c.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else -2))
        eof.clear()

    def commit():
        """Returns True when committed; after an abortable error aborts and rewinds."""
        nonlocal in_txn, in_batch, commits
        for _attempt in range(20):
            try:
                positions = c.position(c.assignment())
                p.send_offsets_to_transaction(positions, c.consumer_group_metadata(), 30)
                if hang_after < 0 and processed >= -hang_after:
                    p.flush(30)
                    say(event="hang", processed=processed, commits=commits, where="commit")
                    sys.stdin.readline()
                    say(event="resume")
                p.commit_transaction(60)
                in_txn, in_batch = False, 0
                commits += 1
                say(event="committed", processed=processed, commits=commits,
                    offsets={f"{tp.partition}": tp.offset for tp in positions})
                return True
            except KafkaException as e:
                err = e.args[0]
                say(event="commit-error", error=str(err), code=err.code(), fatal=err.fatal(),
                    retriable=err.retriable(), abortable=err.txn_requires_abort())
                if err.fatal():
                    raise SystemExit(3)
                if err.txn_requires_abort():
                    p.abort_transaction(60)
                    in_txn, in_batch = False, 0
                    rewind()
                    say(event="aborted")
                    return False
                time.sleep(0.2)  # retriable: commit_transaction may be called again
        raise SystemExit(3)

    try:
        while True:
            m = c.poll(0.2)
            if fatal:
                say(event="fatal", error=str(fatal[0]))
                return 3
            if m is None:
                assigned = {(tp.topic, tp.partition) for tp in c.assignment()}
                if assigned and assigned <= eof and not in_txn:
                    say(event="done", processed=processed, commits=commits)
                    c.close()
                    return 0
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add((m.topic(), m.partition()))
                    if in_txn:
                        commit()
                    continue
                if m.error().fatal():
                    say(event="fatal", error=str(m.error()))
                    return 3
                continue  # transient consumer errors (broker down) are retried by librdkafka
            eof.discard((m.topic(), m.partition()))
            if not in_txn:
                p.begin_transaction()
                in_txn = True
            while True:
                try:
                    p.produce(out_topic, key=m.key(), value=b"T:" + m.value(), partition=m.partition())
                    break
                except BufferError:
                    p.poll(0.1)
            in_batch += 1
            processed += 1
            if hang_after > 0 and processed == hang_after:
                p.flush(30)
                say(event="hang", processed=processed, commits=commits)
                sys.stdin.readline()
                say(event="resume")
            if in_batch >= batch:
                commit()
    except KafkaException as e:
        say(event="fatal", error=str(e.args[0]))
        return 3


if __name__ == "__main__" and sys.argv[1:2] == ["app"]:
    sys.exit(app_main(sys.argv[2:]))


# ---------------------------------------------------------------------------
# the tests
# ---------------------------------------------------------------------------

import pytest  # noqa: E402
from confluent_kafka import (  # noqa: E402
    ConsumerGroupTopicPartitions, IsolationLevel, KafkaError, KafkaException, Producer,
    TopicPartition,
)
from confluent_kafka.admin import OffsetSpec  # noqa: E402

import kutil  # noqa: E402
from kutil import node  # noqa: E402
from conftest import Broker, _register, fjord_bin, wait_until  # noqa: E402

KAFKA_DIR = os.environ.get("FJORD_TEST_KAFKA_DIR")
KAFKA = os.environ.get("FJORD_TEST_KAFKA")
JS_DIR = HERE / "js"


class ExternalKafka:
    """A Kafka already running (FJORD_TEST_KAFKA or a scripts/kafka-ref directory)."""

    def __init__(self, bootstrap=None, ref_dir=None):
        self.ref_dir = Path(ref_dir).resolve() if ref_dir else None
        if bootstrap is None:
            bootstrap = (self.ref_dir / "bootstrap").read_text().strip()
        self.bootstrap = bootstrap
        self.host, port = bootstrap.rsplit(":", 1)
        self.port = int(port)
        self.can_kill = self.ref_dir is not None
        self.is_kafka = True
        self.starts = 1

    def _pid(self):
        return int((self.ref_dir / "pid").read_text().strip())

    def alive(self):
        if not self.can_kill:
            return True
        try:
            stat = Path(f"/proc/{self._pid()}/stat").read_text()
        except (FileNotFoundError, ValueError):
            return False
        return stat.rsplit(")", 1)[1].split()[0] != "Z"

    def kill9(self):
        os.kill(self._pid(), signal.SIGKILL)
        wait_until(lambda: not self.alive(), timeout=30, msg="kafka to die")

    def start(self):
        r = subprocess.run([str(REPO_ROOT / "scripts" / "kafka-ref"), "start", str(self.ref_dir)],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr[-3000:]
        self.starts += 1
        return self

    def restart(self):
        """Graceful: SIGTERM (kafka-ref stop), then start on the same directory."""
        r = subprocess.run([str(REPO_ROOT / "scripts" / "kafka-ref"), "stop", str(self.ref_dir)],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr[-3000:]
        return self.start()

    def log_tail(self, n=150):
        if not self.ref_dir:
            return "(external kafka: no log)"
        path = self.ref_dir / "logs" / "server.log"
        lines = path.read_text(errors="replace").splitlines()[-n:]
        return f"--- kafka log tail ({path}) ---\n" + "\n".join(lines)


def fjord_txn_flags():
    """--transaction-abort-interval-ms 200 when this fjord knows the flag."""
    try:
        out = subprocess.run([fjord_bin(), "serve", "--help"], capture_output=True, text=True,
                             timeout=30).stdout
    except OSError:
        return []
    return ["--transaction-abort-interval-ms", "200"] if "--transaction-abort-interval-ms" in out else []


@pytest.fixture(scope="module")
def _txn_broker(tmp_path_factory):
    if KAFKA_DIR or KAFKA:
        yield ExternalKafka(KAFKA if not KAFKA_DIR else None, KAFKA_DIR)
        return
    b = Broker(fjord_txn_flags(), tmp_root=str(tmp_path_factory.mktemp("txn")))
    b.can_kill = True
    b.is_kafka = False
    b.start()
    yield b
    rc = b.stop()
    b.cleanup()
    assert rc == 0, f"fjord exited with {rc} on SIGTERM"


@pytest.fixture
def tb(_txn_broker, request):
    """The module's broker (fjord with the transaction flags, or the external Kafka)."""
    if not _txn_broker.alive():
        _txn_broker.start()
    _register(request, _txn_broker)
    return _txn_broker


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def txn_producer(b, tid, **conf):
    p = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": tid, "log_level": 0,
                  "linger.ms": 5, **conf})
    p.init_transactions(60)
    return p


def produce_checked(p, topic, values, partition=0, delivered=None):
    """Produces values and flushes (the records are in the log when this returns)."""
    errors = []

    def cb(err, msg):
        if err:
            errors.append(err)
        elif delivered is not None:
            delivered.append((msg.topic(), msg.partition(), msg.offset(), msg.value()))

    for v in values:
        p.produce(topic, value=v, partition=partition, on_delivery=cb)
    assert p.flush(30) == 0, "not delivered within 30 s"
    assert not errors, errors


def plain(b, topic, value, partition=0):
    (m,) = kutil.produce_all(b.bootstrap, topic, [{"value": value, "partition": partition}],
                             conf={"enable.idempotence": False})
    return m.offset()


def read_all(b, tps, isolation="read_committed", timeout=30, consumer=None, start=0, conf=None):
    """Assigns every (topic, partition) from offset `start` and reads until each reports EOF.

    Returns ({(topic, partition): [(offset, value), ...]}, {(topic, partition): position}).
    """
    c = consumer or kutil.consumer(b.bootstrap, **{"isolation.level": isolation,
                                                   "enable.partition.eof": True, **(conf or {})})
    try:
        if consumer is None:
            c.assign([TopicPartition(t, p, start) for t, p in tps])
        got = {tp: [] for tp in tps}
        pending = set(tps)
        deadline = time.monotonic() + timeout
        while pending:
            assert time.monotonic() < deadline, f"no EOF on {pending} within {timeout}s: {got}"
            m = c.poll(0.2)
            if m is None:
                continue
            tp = (m.topic(), m.partition())
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard(tp)
                    continue
                raise KafkaException(m.error())
            got[tp].append((m.offset(), m.value()))
            pending.add(tp)
        pos = {(x.topic, x.partition): x.offset
               for x in c.position([TopicPartition(t, p) for t, p in tps])}
        return got, pos
    finally:
        if consumer is None:
            c.close()


_ADMINS = {}


def cached_admin(b):
    """One AdminClient per broker start: after a restart Kafka's leader epochs moved on and a
    cached client's ListOffsets would keep failing with FENCED_LEADER_EPOCH."""
    key = (b.bootstrap, b.starts)
    if key not in _ADMINS:
        _ADMINS.clear()
        _ADMINS[key] = kutil.admin(b.bootstrap)
    return _ADMINS[key]


def list_latest(b, tp, isolation):
    a = cached_admin(b)
    fut = a.list_offsets({TopicPartition(*tp): OffsetSpec.latest()}, isolation_level=isolation,
                         request_timeout=15)
    return list(fut.values())[0].result().offset


def lso(b, tp):
    return list_latest(b, tp, IsolationLevel.READ_COMMITTED)


def hwm(b, tp):
    return list_latest(b, tp, IsolationLevel.READ_UNCOMMITTED)


def settle(b, tps, end=None, timeout=20):
    """Waits until no transaction is open on tps and every marker is written: LSO == HW
    (== end when given). Kafka writes COMMIT/ABORT markers after it has answered EndTxn."""
    def done():
        for tp in tps:
            h, l = hwm(b, tp), lso(b, tp)
            if h != l or (end is not None and h != end):
                return False
        return True
    wait_until(done, timeout=timeout, interval=0.05,
               msg=f"LSO == HW{f' == {end}' if end is not None else ''} on {tps}")


def fenced(err):
    """librdkafka reports PRODUCER_FENCED / INVALID_PRODUCER_EPOCH from Kafka as fatal _FENCED."""
    return err.code() == KafkaError._FENCED and err.fatal()


# -- 1. commit ---------------------------------------------------------------

def test_commit_two_topics_two_partitions(tb, new_topic):
    ta, tb_ = new_topic("txa"), new_topic("txb")
    for t in (ta, tb_):
        kutil.create_topic(tb.bootstrap, t, partitions=2)
    tps = [(t, p) for t in (ta, tb_) for p in (0, 1)]
    p = txn_producer(tb, uid("tid-commit"))
    delivered = []
    per_txn = 5  # records per partition per transaction
    for txn in range(2):
        p.begin_transaction()
        for i in range(per_txn):
            for t, part in tps:
                produce_checked(p, t, [f"{t}/{part}/{txn}/{i}".encode()], part, delivered)
        p.commit_transaction(30)
        settle(tb, tps, (txn + 1) * (per_txn + 1))   # data + one COMMIT marker per txn

    got, pos = read_all(tb, tps)
    for t, part in tps:
        want = [f"{t}/{part}/{txn}/{i}".encode() for txn in range(2) for i in range(per_txn)]
        # data offsets leave one gap per committed transaction for its COMMIT marker
        want_offsets = list(range(0, per_txn)) + list(range(per_txn + 1, 2 * per_txn + 1))
        assert [v for _, v in got[(t, part)]] == want, (t, part)
        assert [o for o, _ in got[(t, part)]] == want_offsets, (t, part)
        assert sorted(o for dt, dp, o, _ in delivered if (dt, dp) == (t, part)) == want_offsets
        # high watermark = data + one control record per transaction; nothing open: LSO = HW
        assert hwm(tb, (t, part)) == 2 * per_txn + 2
        assert lso(tb, (t, part)) == 2 * per_txn + 2
        assert pos[(t, part)] == 2 * per_txn + 2  # the position passes the last marker
    # read_uncommitted sees the same records (nothing aborted), control records never surface
    unc, _ = read_all(tb, tps, "read_uncommitted")
    assert unc == got
    total = sum(len(v) for v in got.values())
    assert total == 4 * 2 * per_txn and len({v for l in got.values() for _, v in l}) == total


def test_transaction_over_many_partitions(tb, topic_name):
    parts = 24
    kutil.create_topic(tb.bootstrap, topic_name, partitions=parts)
    tps = [(topic_name, i) for i in range(parts)]
    p = txn_producer(tb, uid("tid-wide"))
    for outcome in ("commit", "abort", "commit"):
        p.begin_transaction()
        for i in range(parts):
            p.produce(topic_name, value=b"%s-%d" % (outcome.encode(), i), partition=i)
        assert p.flush(30) == 0
        (p.commit_transaction if outcome == "commit" else p.abort_transaction)(30)
    settle(tb, tps, 6)                 # per partition: 3 records, 3 markers
    got, pos = read_all(tb, tps)
    for i in range(parts):
        assert got[(topic_name, i)] == [(0, b"commit-%d" % i), (4, b"commit-%d" % i)], i
        assert pos[(topic_name, i)] == 6


# -- 2. abort ----------------------------------------------------------------

def test_abort_invisible_to_read_committed(tb, topic_name):
    kutil.create_topic(tb.bootstrap, topic_name)
    tp = (topic_name, 0)
    p = txn_producer(tb, uid("tid-abort"))
    p.begin_transaction()
    produce_checked(p, topic_name, [b"a%d" % i for i in range(10)])
    p.abort_transaction(30)
    settle(tb, [tp], 11)

    got, pos = read_all(tb, [tp])
    assert got[tp] == []
    assert pos[tp] == 11  # past the 10 aborted records and the ABORT marker
    assert hwm(tb, tp) == 11 and lso(tb, tp) == 11
    unc, _ = read_all(tb, [tp], "read_uncommitted")
    assert unc[tp] == [(i, b"a%d" % i) for i in range(10)]

    # the same producer goes on after an abort
    p.begin_transaction()
    produce_checked(p, topic_name, [b"after"])
    p.commit_transaction(30)
    settle(tb, [tp], 13)
    got, _ = read_all(tb, [tp])
    assert got[tp] == [(11, b"after")]


def write_interleaved(b, topic):
    """Committed, aborted and plain records, plain ones also inside open transactions.

    Returns the (offset, value) list a read_committed consumer must see.
    """
    p = txn_producer(b, uid("tid-mix"))
    p.begin_transaction()
    produce_checked(p, topic, [b"c1-%d" % i for i in range(3)])   # 0-2
    p.commit_transaction(30)                                       # 3 COMMIT
    settle(b, [(topic, 0)], 4)
    assert plain(b, topic, b"p1") == 4
    p.begin_transaction()
    produce_checked(p, topic, [b"a2-%d" % i for i in range(3)])   # 5-7
    assert plain(b, topic, b"p2") == 8                            # while txn 2 is open
    p.abort_transaction(30)                                        # 9 ABORT
    settle(b, [(topic, 0)], 10)
    assert plain(b, topic, b"p3") == 10
    p.begin_transaction()
    produce_checked(p, topic, [b"c3-%d" % i for i in range(3)])   # 11-13
    assert plain(b, topic, b"p4") == 14
    p.commit_transaction(30)                                       # 15 COMMIT
    settle(b, [(topic, 0)], 16)
    assert plain(b, topic, b"p5") == 16
    return p, [
        (0, b"c1-0"), (1, b"c1-1"), (2, b"c1-2"), (4, b"p1"), (8, b"p2"), (10, b"p3"),
        (11, b"c3-0"), (12, b"c3-1"), (13, b"c3-2"), (14, b"p4"), (16, b"p5"),
    ]


def test_interleaved_commit_abort_plain(tb, topic_name):
    kutil.create_topic(tb.bootstrap, topic_name)
    tp = (topic_name, 0)
    _, want = write_interleaved(tb, topic_name)
    got, pos = read_all(tb, [tp])
    assert got[tp] == want
    assert pos[tp] == 17
    unc, _ = read_all(tb, [tp], "read_uncommitted")
    assert [o for o, _ in unc[tp]] == [0, 1, 2, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 16]
    # one batch per fetch, and starting inside the aborted transaction, on its marker,
    # inside a committed one: the aborted-transaction list of each Fetch still applies
    tiny = {"max.partition.fetch.bytes": 1}
    for start in (0, 3, 5, 6, 9, 12):
        got, pos = read_all(tb, [tp], start=start, conf=tiny)
        assert got[tp] == [(o, v) for o, v in want if o >= start], start
        assert pos[tp] == 17, start


def test_delete_records_into_an_aborted_transaction(tb, topic_name):
    """The log start moves inside an aborted transaction (DeleteRecords): its remaining records
    stay filtered for read_committed consumers."""
    kutil.create_topic(tb.bootstrap, topic_name)
    tp = (topic_name, 0)
    _, want = write_interleaved(tb, topic_name)
    a = kutil.admin(tb.bootstrap)
    fut = a.delete_records([TopicPartition(topic_name, 0, 6)], request_timeout=15)
    (res,) = fut.values()
    assert res.result().low_watermark == 6
    got, pos = read_all(tb, [tp], start=6)
    assert got[tp] == [(o, v) for o, v in want if o >= 6]
    assert pos[tp] == 17
    unc, _ = read_all(tb, [tp], "read_uncommitted", start=6)
    assert [o for o, _ in unc[tp]][:3] == [6, 7, 8]


def test_large_compressed_transactions(tb, topic_name):
    """Many batches per partition (zstd) in commit, abort, commit."""
    kutil.create_topic(tb.bootstrap, topic_name, partitions=2)
    tps = [(topic_name, 0), (topic_name, 1)]
    p = txn_producer(tb, uid("tid-big"), **{"compression.type": "zstd", "batch.size": 16384})
    n = 1500
    pad = b"x" * 100
    for txn, outcome in enumerate(("commit", "abort", "commit")):
        p.begin_transaction()
        for i in range(n):
            p.produce(topic_name, value=b"%d-%05d-" % (txn, i) + pad, partition=i % 2)
            if i % 500 == 0:
                p.poll(0)
        assert p.flush(30) == 0   # abort_transaction() would purge what is still queued
        (p.commit_transaction if outcome == "commit" else p.abort_transaction)(60)
    settle(tb, tps, 3 * n // 2 + 3)
    got, pos = read_all(tb, tps, timeout=60)
    for part in (0, 1):
        want = [b"%d-%05d-" % (txn, i) + pad for txn in (0, 2) for i in range(part, n, 2)]
        assert [v for _, v in got[(topic_name, part)]] == want, part
        assert pos[(topic_name, part)] == 3 * n // 2 + 3, (got[(topic_name, part)][-1][0], pos, hwm(tb, (topic_name, part)))
        assert hwm(tb, (topic_name, part)) == 3 * n // 2 + 3
    unc, _ = read_all(tb, tps, "read_uncommitted", timeout=60)
    assert [len(unc[tp]) for tp in tps] == [3 * n // 2] * 2


def admin_offsets(b, group, topic, require_stable):
    """(offset, error code or None) of partition 0 from AdminClient list_consumer_group_offsets."""
    a = kutil.admin(b.bootstrap)
    f = a.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])],
        require_stable=require_stable, request_timeout=10)
    (x,) = f[group].result().topic_partitions
    return x.offset, (x.error.code() if x.error else None)


def test_txn_offset_commit_is_unstable_until_committed(tb, topic_name):
    """TxnOffsetCommit: pending offsets are invisible; require_stable fetches wait."""
    kutil.create_topic(tb.bootstrap, topic_name)
    group = uid("txn-offsets")
    p = txn_producer(tb, uid("tid-offsets"))
    rc = kutil.consumer(tb.bootstrap, **{"group.id": group, "isolation.level": "read_committed"})
    ru = kutil.consumer(tb.bootstrap, **{"group.id": group, "isolation.level": "read_uncommitted"})
    tp = [TopicPartition(topic_name, 0)]
    try:
        md = rc.consumer_group_metadata()
        p.begin_transaction()
        produce_checked(p, topic_name, [b"x"])
        p.send_offsets_to_transaction([TopicPartition(topic_name, 0, 5)], md, 30)
        # OffsetFetch require_stable (read_committed): UNSTABLE_OFFSET_COMMIT, retried by
        # librdkafka until its timeout; without require_stable: no committed offset yet
        with pytest.raises(KafkaException) as ei:
            rc.committed(tp, timeout=2)
        assert ei.value.args[0].code() == KafkaError._TIMED_OUT, ei.value.args[0]
        assert ru.committed(tp, timeout=10)[0].offset == -1001
        assert admin_offsets(tb, group, topic_name, True) == (-1001, KafkaError.UNSTABLE_OFFSET_COMMIT)
        assert admin_offsets(tb, group, topic_name, False) == (-1001, None)
        p.abort_transaction(30)
        assert rc.committed(tp, timeout=10)[0].offset == -1001
        p.begin_transaction()
        produce_checked(p, topic_name, [b"y"])
        p.send_offsets_to_transaction([TopicPartition(topic_name, 0, 7)], md, 30)
        p.commit_transaction(30)
        # stable once the COMMIT marker is in __consumer_offsets (Kafka writes it after EndTxn)
        wait_until(lambda: admin_offsets(tb, group, topic_name, True) == (7, None), timeout=20,
                   msg="the committed offset 7 to be stable")
        assert rc.committed(tp, timeout=10)[0].offset == 7
        assert ru.committed(tp, timeout=10)[0].offset == 7
        # a transaction with offsets only (no records): its marker goes to __consumer_offsets
        p.begin_transaction()
        p.send_offsets_to_transaction([TopicPartition(topic_name, 0, 9)], md, 30)
        p.commit_transaction(30)
        wait_until(lambda: admin_offsets(tb, group, topic_name, True) == (9, None), timeout=20,
                   msg="the offsets-only transaction's offset 9 to be stable")
        assert hwm(tb, (topic_name, 0)) == 4   # x (aborted), ABORT, y, COMMIT: nothing more
    finally:
        rc.close()
        ru.close()


SEG_TXNS, SEG_PER_TXN = 6, 1100


def write_segments(b, topic, n_txns=SEG_TXNS, per_txn=SEG_PER_TXN):
    """Alternating aborted/committed transactions of ~230 KB in 16 KB batches on a topic with
    1 MiB segments (Kafka's minimum): the log rolls at about offset 4770, inside the aborted
    transaction 4404-5503. Returns the committed values."""
    kutil.create_topic(b.bootstrap, topic, config={"segment.bytes": str(1 << 20)})
    p = txn_producer(b, uid("tid-seg"), **{"compression.type": "none", "batch.size": 16384})
    pad = b"s" * 200
    want = []
    for txn in range(n_txns):
        p.begin_transaction()
        values = [b"%d-%05d-" % (txn, i) + pad for i in range(per_txn)]
        for v in values:
            p.produce(topic, value=v, partition=0)
        assert p.flush(30) == 0
        if txn % 2 == 1:
            p.commit_transaction(60)
            want += values
        else:
            p.abort_transaction(60)
    settle(b, [(topic, 0)], n_txns * (per_txn + 1))
    return want


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
def test_transaction_state_survives_broker_restart(tb, topic_name, new_topic, how):
    """After a crash or a clean restart: aborted data stays filtered (also across segments),
    an open transaction still holds the LSO and its producer can still commit it."""
    if not tb.can_kill:
        pytest.skip("FJORD_TEST_KAFKA without FJORD_TEST_KAFKA_DIR: cannot restart the broker")
    kutil.create_topic(tb.bootstrap, topic_name)
    tp = (topic_name, 0)
    seg_topic = new_topic("txn-segments")
    seg_want = write_segments(tb, seg_topic)
    p, want = write_interleaved(tb, topic_name)
    p.begin_transaction()
    produce_checked(p, topic_name, [b"o-0", b"o-1"])                   # 17-18, open
    assert plain(tb, topic_name, b"p6") == 19
    assert lso(tb, tp) == 17
    if how == "kill9":
        tb.kill9()
        tb.start()
    else:
        tb.restart()
    wait_until(lambda: hwm(tb, tp) == 20, timeout=30, msg="ListOffsets after the restart")
    assert lso(tb, tp) == 17, "the open transaction must still hold the LSO"
    got, pos = read_all(tb, [tp])
    assert got[tp] == want and pos[tp] == 17
    got, pos = read_all(tb, [(seg_topic, 0)], timeout=60)
    assert [v for _, v in got[(seg_topic, 0)]] == seg_want
    assert pos[(seg_topic, 0)] == SEG_TXNS * (SEG_PER_TXN + 1)
    # from inside the aborted transaction 4404-5503, past the segment roll (~4770)
    got, _ = read_all(tb, [(seg_topic, 0)], start=4900, timeout=60)
    assert [v for _, v in got[(seg_topic, 0)]] == seg_want[-SEG_PER_TXN:]
    # the producer goes on in the same transaction: its sequence numbers survived the restart
    produce_checked(p, topic_name, [b"o-2"])                           # 20
    p.commit_transaction(60)                                            # 21 COMMIT
    settle(tb, [tp], 22)
    got, pos = read_all(tb, [tp])
    assert got[tp] == want + [(17, b"o-0"), (18, b"o-1"), (19, b"p6"), (20, b"o-2")]
    assert pos[tp] == 22 and lso(tb, tp) == 22


def test_two_producers_interleaved_on_one_partition(tb, topic_name):
    """Aborting one producer's transaction drops only that producer's batches."""
    kutil.create_topic(tb.bootstrap, topic_name)
    tp = (topic_name, 0)
    pa, pb = txn_producer(tb, uid("tid-a")), txn_producer(tb, uid("tid-b"))
    pa.begin_transaction()
    pb.begin_transaction()
    produce_checked(pa, topic_name, [b"A0"])                            # 0
    produce_checked(pb, topic_name, [b"B0"])                            # 1
    assert plain(tb, topic_name, b"P0") == 2
    produce_checked(pa, topic_name, [b"A1"])                            # 3
    produce_checked(pb, topic_name, [b"B1"])                            # 4
    pa.abort_transaction(30)                                             # 5 ABORT (A)
    wait_until(lambda: hwm(tb, tp) == 6, timeout=20, msg="A's ABORT marker")
    assert lso(tb, tp) == 1                                              # B is still open
    produce_checked(pb, topic_name, [b"B2"])                            # 6
    pb.commit_transaction(30)                                            # 7 COMMIT (B)
    settle(tb, [tp], 8)
    # the other way round: A commits, B aborts; A's records are stable once B's txn ends
    pa.begin_transaction()
    pb.begin_transaction()
    produce_checked(pb, topic_name, [b"B3"])                            # 8
    produce_checked(pa, topic_name, [b"A2"])                            # 9
    pa.commit_transaction(30)                                            # 10 COMMIT (A)
    wait_until(lambda: hwm(tb, tp) == 11, timeout=20, msg="A's COMMIT marker")
    assert lso(tb, tp) == 8
    pb.abort_transaction(30)                                             # 11 ABORT (B)
    settle(tb, [tp], 12)
    want = [(1, b"B0"), (2, b"P0"), (4, b"B1"), (6, b"B2"), (9, b"A2")]
    for conf in ({}, {"max.partition.fetch.bytes": 1}):
        got, pos = read_all(tb, [tp], conf=conf)
        assert got[tp] == want, conf
        assert pos[tp] == 12
    unc, _ = read_all(tb, [tp], "read_uncommitted")
    assert [v for _, v in unc[tp]] == [b"A0", b"B0", b"P0", b"A1", b"B1", b"B2", b"B3", b"A2"]


def test_transaction_timeout_above_broker_maximum(tb):
    p = Producer({"bootstrap.servers": tb.bootstrap, "transactional.id": uid("tid-max"),
                  "transaction.timeout.ms": 900001, "log_level": 0})
    with pytest.raises(KafkaException) as ei:
        p.init_transactions(20)
    err = ei.value.args[0]
    assert err.code() == KafkaError.INVALID_TRANSACTION_TIMEOUT and err.fatal(), err


# -- 3. last stable offset ---------------------------------------------------

def test_open_transaction_holds_read_committed_at_lso(tb, topic_name):
    kutil.create_topic(tb.bootstrap, topic_name)
    tp = (topic_name, 0)
    assert plain(tb, topic_name, b"P0") == 0
    p = txn_producer(tb, uid("tid-lso"))
    p.begin_transaction()
    produce_checked(p, topic_name, [b"T1"])                            # 1, open
    assert plain(tb, topic_name, b"P1") == 2                           # after the txn began

    c = kutil.consumer(tb.bootstrap, **{"isolation.level": "read_committed",
                                         "enable.partition.eof": True})
    try:
        c.assign([TopicPartition(topic_name, 0, 0)])
        got, pos = read_all(tb, [tp], consumer=c)
        assert got[tp] == [(0, b"P0")]        # P1 is stable but behind the open transaction
        assert pos[tp] == 1                   # EOF at the LSO
        assert c.get_watermark_offsets(TopicPartition(*tp), timeout=10, cached=False) == (0, 1)
        assert lso(tb, tp) == 1 and hwm(tb, tp) == 3
        unc = kutil.consumer(tb.bootstrap, **{"isolation.level": "read_uncommitted"})
        try:
            assert unc.get_watermark_offsets(TopicPartition(*tp), timeout=10, cached=False) == (0, 3)
        finally:
            unc.close()

        # a second open transaction later in the log does not move the LSO; committing it
        # (while the first stays open) does not either
        p2 = txn_producer(tb, uid("tid-lso2"))
        p2.begin_transaction()
        produce_checked(p2, topic_name, [b"U3"])                       # 3
        p2.commit_transaction(30)                                       # 4 COMMIT
        wait_until(lambda: hwm(tb, tp) == 5, timeout=20, msg="the COMMIT marker at 4")
        assert lso(tb, tp) == 1

        p.commit_transaction(30)                                        # 5 COMMIT
        settle(tb, [tp], 6)
        got, pos = read_all(tb, [tp], consumer=c)   # the same consumer moves on
        assert got[tp] == [(1, b"T1"), (2, b"P1"), (3, b"U3")]
        assert pos[tp] == 6
    finally:
        c.close()


def test_list_offsets_under_an_open_transaction(tb, topic_name):
    """ListOffsets read_committed only answers offsets below the LSO (Kafka 4.4.0: latest is the
    LSO; max-timestamp and by-timestamp lookups landing at or after it answer -1); a consumer
    assigned at OFFSET_END starts at the LSO (read_committed) or the HW (read_uncommitted)."""
    kutil.create_topic(tb.bootstrap, topic_name)
    tp = TopicPartition(topic_name, 0)
    ts = 1_700_000_000_000
    plain_p = kutil.producer(tb.bootstrap, **{"enable.idempotence": False})
    plain_p.produce(topic_name, b"P0", partition=0, timestamp=ts)
    assert plain_p.flush(15) == 0
    p = txn_producer(tb, uid("tid-lo"))
    p.begin_transaction()
    p.produce(topic_name, b"T1", partition=0, timestamp=ts + 1000)     # 1, open
    assert p.flush(15) == 0
    for i in (2, 3):
        plain_p.produce(topic_name, b"P%d" % i, partition=0, timestamp=ts + i * 1000)
        assert plain_p.flush(15) == 0

    a = kutil.admin(tb.bootstrap)

    def lo(spec, iso):
        r = list(a.list_offsets({tp: spec}, isolation_level=iso, request_timeout=15).values())[0]
        r = r.result()
        return r.offset, r.timestamp

    RC, RU = IsolationLevel.READ_COMMITTED, IsolationLevel.READ_UNCOMMITTED
    specs = {
        "earliest": OffsetSpec.earliest(), "latest": OffsetSpec.latest(),
        "max_timestamp": OffsetSpec.max_timestamp(), "ts0": OffsetSpec.for_timestamp(ts),
        "ts1": OffsetSpec.for_timestamp(ts + 1000), "ts2": OffsetSpec.for_timestamp(ts + 2000),
        "after_all": OffsetSpec.for_timestamp(ts + 10_000),
    }
    got = {(name, iso): lo(spec, iso) for name, spec in specs.items() for iso in (RC, RU)}
    assert got == {
        ("earliest", RC): (0, -1), ("earliest", RU): (0, -1),
        ("latest", RC): (1, -1), ("latest", RU): (4, -1),
        ("max_timestamp", RC): (-1, -1), ("max_timestamp", RU): (3, ts + 3000),
        ("ts0", RC): (0, ts), ("ts0", RU): (0, ts),
        ("ts1", RC): (-1, -1), ("ts1", RU): (1, ts + 1000),
        ("ts2", RC): (-1, -1), ("ts2", RU): (2, ts + 2000),
        ("after_all", RC): (-1, -1), ("after_all", RU): (-1, -1),
    }
    consumers = {}
    try:
        for iso in ("read_committed", "read_uncommitted"):
            c = kutil.consumer(tb.bootstrap, **{"isolation.level": iso, "enable.partition.eof": True})
            consumers[iso] = c
            assert [x.offset for x in c.offsets_for_times(
                [TopicPartition(topic_name, 0, ts + 1000)], timeout=10)] == [
                    -1 if iso == "read_committed" else 1]
            c.assign([TopicPartition(topic_name, 0, -1)])   # OFFSET_END
            got_end, _ = read_all(tb, [(topic_name, 0)], consumer=c)   # EOF at the start offset
            assert got_end[(topic_name, 0)] == []
        p.commit_transaction(30)                                          # 4 COMMIT
        settle(tb, [(topic_name, 0)], 5)
        rc, _ = read_all(tb, [(topic_name, 0)], consumer=consumers["read_committed"])
        assert rc[(topic_name, 0)] == [(1, b"T1"), (2, b"P2"), (3, b"P3")]
        ru, pos = read_all(tb, [(topic_name, 0)], consumer=consumers["read_uncommitted"])
        assert ru[(topic_name, 0)] == [] and pos[(topic_name, 0)] == 5
    finally:
        for c in consumers.values():
            c.close()



def test_compaction_of_transactional_records(tb, topic_name):
    """cleanup.policy=compact: committed transactional records shadow and are shadowed by plain
    ones like any record; aborted records are removed (Kafka 4.4.0 after a cleaner pass)."""
    kutil.create_topic(tb.bootstrap, topic_name, config={
        "cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "100"})
    tp = (topic_name, 0)
    plain_p = kutil.producer(tb.bootstrap, **{"enable.idempotence": False})

    def put(key, value):
        plain_p.produce(topic_name, key=key, value=value, partition=0)
        assert plain_p.flush(15) == 0

    p = txn_producer(tb, uid("tid-compact"))

    def txn(key, value, commit=True):
        p.begin_transaction()
        p.produce(topic_name, key=key, value=value, partition=0)
        assert p.flush(15) == 0
        (p.commit_transaction if commit else p.abort_transaction)(30)
        settle(tb, [tp])

    put(b"K1", b"a1")
    txn(b"K1", b"a2")                 # a committed transactional record replaces a1
    txn(b"K2", b"b1")
    put(b"K2", b"b2")                 # and is replaced by a newer plain one
    put(b"K3", b"c1")
    txn(b"K3", b"c2", commit=False)   # aborted: removed, c1 stays
    put(b"K4", b"d1")
    put(b"K4", b"d2")                 # plain-only control: d1 goes

    def values(iso):
        got, _ = read_all(tb, [tp], iso)
        return [v for _, v in got[tp] if not v.startswith(b"roll")]

    assert values("read_committed") == [b"a1", b"a2", b"b1", b"b2", b"c1", b"d1", b"d2"]

    def cleaned():
        put(b"R", b"roll-%f" % time.time())   # segment.ms=100: the next write rolls the segment
        return b"d1" not in values("read_uncommitted")

    wait_until(cleaned, timeout=90, interval=1.0, msg="a cleaner pass (d1 compacted away)")
    assert values("read_uncommitted") == [b"a2", b"b2", b"c1", b"d2"]
    assert values("read_committed") == [b"a2", b"b2", b"c1", b"d2"]


def test_compaction_stops_at_the_lso(tb, topic_name):
    """Found by this test and fixed in fb9f9c2: fjord's cleaner compacted past the LSO."""
    kutil.create_topic(tb.bootstrap, topic_name, config={
        "cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "100"})
    tp = (topic_name, 0)
    plain_p = kutil.producer(tb.bootstrap, **{"enable.idempotence": False})

    def put(key, value):
        plain_p.produce(topic_name, key=key, value=value, partition=0)
        assert plain_p.flush(15) == 0

    def values(iso, timeout=30):
        got, _ = read_all(tb, [tp], iso, timeout=timeout)
        return [v for _, v in got[tp] if not v.startswith(b"roll")]

    put(b"D", b"d1")
    put(b"D", b"d2")      # below the LSO: d1 is compacted away
    put(b"K", b"v1")      # 2
    # close this segment before the transaction starts (segment.ms=100: a write after 100 ms
    # rolls; nothing to poll for): fjord leaves a segment holding the LSO alone, Kafka cleans it
    # below the LSO, and the test only needs d1's segment to be cleanable on both
    time.sleep(0.15)
    put(b"R", b"roll-first")
    # the transaction must outlive a cleaner pass (Kafka's cleaner can take a minute here)
    p = txn_producer(tb, uid("tid-compact-lso"), **{"transaction.timeout.ms": 300000})
    p.begin_transaction()
    p.produce(topic_name, key=b"X", value=b"x", partition=0)   # 3, open: the LSO
    assert p.flush(15) == 0
    put(b"K", b"v3")      # 4, behind the open transaction: must not shadow v1 yet

    def cleaned():
        put(b"R", b"roll-%f" % time.time())
        return b"d1" not in values("read_uncommitted")

    wait_until(cleaned, timeout=90, interval=1.0, msg="a cleaner pass (d1 compacted away)")
    assert values("read_uncommitted") == [b"d2", b"v1", b"x", b"v3"]
    assert values("read_committed", timeout=10) == [b"d2", b"v1"]
    p.commit_transaction(30)
    settle(tb, [tp])
    assert values("read_committed")[-2:] == [b"x", b"v3"]


# -- 4. fencing --------------------------------------------------------------

def test_second_producer_fences_first(tb, topic_name):
    kutil.create_topic(tb.bootstrap, topic_name)
    tp = (topic_name, 0)
    tid = uid("tid-fence")
    p1 = txn_producer(tb, tid)
    p1.begin_transaction()
    produce_checked(p1, topic_name, [b"F1"])                           # 0, open
    p2 = txn_producer(tb, tid)          # bumps the epoch, aborts p1's open txn (1 ABORT)

    # p1's next produce fails (librdkafka raises the fatal error from flush), and so does
    # its commit
    try:
        p1.produce(topic_name, value=b"F2", partition=0)
        p1.flush(15)
        flush_err = None
    except KafkaException as e:
        flush_err = e.args[0]
    assert flush_err is not None and fenced(flush_err), flush_err
    with pytest.raises(KafkaException) as ei:
        p1.commit_transaction(15)
    err = ei.value.args[0]
    assert fenced(err), (err.code(), err.name(), err.str())

    p2.begin_transaction()
    produce_checked(p2, topic_name, [b"G1"])                           # 2
    p2.commit_transaction(30)                                           # 3 COMMIT
    settle(tb, [tp], 4)
    got, pos = read_all(tb, [tp])
    assert got[tp] == [(2, b"G1")]
    assert pos[tp] == 4
    unc, _ = read_all(tb, [tp], "read_uncommitted")
    assert unc[tp] == [(0, b"F1"), (2, b"G1")]   # F1 was written, then aborted by the fence


# -- 5. timeout abort --------------------------------------------------------

def test_transaction_timeout_aborts(tb, topic_name):
    kutil.create_topic(tb.bootstrap, topic_name)
    tp = (topic_name, 0)
    tid = uid("tid-timeout")
    p = txn_producer(tb, tid, **{"transaction.timeout.ms": 2000})
    p.begin_transaction()
    started = time.monotonic()
    produce_checked(p, topic_name, [b"X0", b"X1", b"X2"])              # 0-2, then nothing
    assert lso(tb, tp) == 0 or time.monotonic() - started > 1.5

    # the coordinator aborts it: ABORT marker at 3, the LSO catches up with the HW
    wait_until(lambda: lso(tb, tp) == 4 and hwm(tb, tp) == 4, timeout=25, interval=0.1,
               msg="the timed-out transaction to be aborted (LSO == HW == 4)")
    got, pos = read_all(tb, [tp])
    assert got[tp] == [] and pos[tp] == 4
    with pytest.raises(KafkaException) as ei:
        p.commit_transaction(15)
    err = ei.value.args[0]
    assert fenced(err), (err.code(), err.name(), err.str())
    # a new producer with the same transactional.id goes on
    p2 = txn_producer(tb, tid)
    p2.begin_transaction()
    produce_checked(p2, topic_name, [b"Y"])                            # 4
    p2.commit_transaction(30)                                           # 5 COMMIT
    settle(tb, [tp], 6)
    got, _ = read_all(tb, [tp])
    assert got[tp] == [(4, b"Y")]


# -- 6. consume-transform-produce --------------------------------------------

class App:
    """The transactional application of app_main() in a subprocess."""

    def __init__(self, b, args, hang_after=0, producer_conf=None, consumer_conf=None):
        self.events = []
        self.lines = queue.Queue()
        self.stderr = tempfile.TemporaryFile()
        env = dict(os.environ, TXN_APP_PRODUCER_CONF=json.dumps(producer_conf or {}),
                   TXN_APP_CONSUMER_CONF=json.dumps(consumer_conf or {}))
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "app", b.bootstrap, *args,
             str(hang_after)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, cwd=HERE, env=env)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_event(self, name, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                line = None
                left = 0
            if line is None:
                stuck = self.stack() if self.proc.poll() is None else ""
                raise AssertionError(
                    f"app: no {name!r} event ({'timeout' if left <= 0 else 'exited'}, rc "
                    f"{self.proc.poll()}); last events {self.events[-10:]}\n"
                    f"app stderr (ends with its Python stack when it was stuck):\n"
                    f"{stuck or self.stderr_tail()}")
            ev = json.loads(line)
            self.events.append(ev)
            if ev["event"] == name:
                return ev

    def stderr_tail(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-3000:]

    def stack(self):
        """The app's Python stack (faulthandler on SIGUSR1), for diagnosis."""
        if self.proc.poll() is not None:
            return ""
        before = len(self.stderr_tail())
        os.kill(self.proc.pid, signal.SIGUSR1)
        wait_until(lambda: "most recent call first" in self.stderr_tail()[before - 3000 if before > 3000 else 0:],
                   timeout=5, msg="the stack dump")
        return self.stderr_tail()[-1500:]

    def resume(self):
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def close(self):
        if self.proc.poll() is None:
            self.kill9()
        self.stderr.close()

    def finish(self, timeout=90):
        ev = self.wait_event("done", timeout)
        assert self.proc.wait(timeout=30) == 0, self.stderr_tail()
        return ev


@pytest.fixture
def apps():
    made = []

    def make(*a, **kw):
        made.append(App(*a, **kw))
        return made[-1]

    yield make
    for a in made:
        a.close()


def ctp_setup(b, new_topic, n=200, batch=20):
    src, out = new_topic("ctp-in"), new_topic("ctp-out")
    kutil.create_topic(b.bootstrap, src, partitions=2)
    kutil.create_topic(b.bootstrap, out, partitions=2)
    kutil.produce_all(b.bootstrap, src, [{"value": b"v%03d" % i, "partition": i % 2}
                                         for i in range(n)])
    group, tid = uid("ctp-group"), uid("ctp-tid")
    return src, out, [src, out, group, tid, "instance-1", str(batch)], group


def ctp_check(b, src, out, group, n=200):
    tps = [(out, 0), (out, 1)]
    settle(b, tps)
    got, _ = read_all(b, tps)
    values = [v for tp in tps for _, v in got[tp]]
    counts = Counter(values)
    assert sorted(counts) == sorted(b"T:v%03d" % i for i in range(n)), (
        f"missing {sorted(set(b'T:v%03d' % i for i in range(n)) - set(counts))[:10]}")
    dups = {v: c for v, c in counts.items() if c > 1}
    assert not dups, f"read_committed saw duplicates: {sorted(dups)[:10]}"
    for part in (0, 1):   # every output in its input's partition, in input order
        assert [v for _, v in got[(out, part)]] == [b"T:v%03d" % i for i in range(part, n, 2)]
    c = kutil.consumer(b.bootstrap, **{"group.id": group})
    try:
        committed = c.committed([TopicPartition(src, 0), TopicPartition(src, 1)], timeout=15)
    finally:
        c.close()
    assert [x.offset for x in committed] == [n // 2, n // 2]
    unc, _ = read_all(b, tps, "read_uncommitted")
    return sum(len(v) for v in unc.values())


def test_consume_transform_produce_app_kill9(tb, new_topic, apps):
    src, out, args, group = ctp_setup(tb, new_topic)
    app = apps(tb, args, hang_after=30)
    first = app.wait_event("committed")
    assert first["processed"] == 20
    app.wait_event("hang")      # records 21-30 are in the log, in an open transaction
    assert lso(tb, (out, 0)) < hwm(tb, (out, 0)) or lso(tb, (out, 1)) < hwm(tb, (out, 1))
    app.kill9()

    app2 = apps(tb, args)        # same transactional.id and group: aborts the open txn
    done = app2.finish()
    assert done["processed"] == 180, done
    total_uncommitted = ctp_check(tb, src, out, group)
    assert total_uncommitted == 210  # the 10 aborted records of the killed app


def test_consume_transform_produce_takeover_by_another_member(tb, new_topic, apps):
    """KIP-447 style: the app dies inside a commit (offsets sent, not committed); ANOTHER member
    with its own transactional.id takes its partitions over after a rebalance. Its offset fetch
    (require_stable) must not use the pending offsets: it waits (UNSTABLE_OFFSET_COMMIT) until
    the coordinator aborts the dead producer's transaction on its timeout, then resumes from the
    committed offsets. Every input exactly once."""
    src, out, args, group = ctp_setup(tb, new_topic)
    args1 = [*args]
    args1[4] = "-"                      # dynamic members, so the dead one leaves the group
    dyn = {"session.timeout.ms": 6000}  # Kafka's group.min.session.timeout.ms
    # the dead transaction outlives the rebalance, so the takeover meets the pending offsets
    app1 = apps(tb, args1, hang_after=-40, producer_conf={"transaction.timeout.ms": 10000},
                consumer_conf=dyn)
    ev = app1.wait_event("hang")        # 20 committed; 21-40 and their offsets pending
    assert ev["processed"] == 40 and ev["commits"] == 1, ev
    app1.kill9()
    args2 = [*args1]
    args2[3] = uid("ctp-tid-other")
    app2 = apps(tb, args2, consumer_conf=dyn)
    done = app2.finish(timeout=90)
    assert done["processed"] == 180, (done, app2.events)   # from the committed offsets (20)
    assert ctp_check(tb, src, out, group) == 220   # the dead member's 20 records were aborted


def test_consume_transform_produce_broker_kill9(tb, new_topic, apps):
    if not tb.can_kill:
        pytest.skip("FJORD_TEST_KAFKA without FJORD_TEST_KAFKA_DIR: cannot kill -9 the broker")
    src, out, args, group = ctp_setup(tb, new_topic)
    app = apps(tb, args, hang_after=30)
    app.wait_event("hang")      # one txn committed, records 21-30 in an open transaction
    tps = [(out, 0), (out, 1)]
    open_before = [tp for tp in tps if lso(tb, tp) < hwm(tb, tp)]
    assert open_before, "the open transaction must hold an output partition's LSO"
    tb.kill9()
    tb.start()
    # the open transaction survived the crash: its partitions' LSO is still held back
    for tp in open_before:
        wait_until(lambda: hwm(tb, tp) >= 0, timeout=30, msg=f"ListOffsets on {tp}")
        assert lso(tb, tp) < hwm(tb, tp), f"{tp}: LSO not recovered after kill -9"
    app.resume()                # the producer goes on with its transaction on the new broker
    done = app.finish(timeout=60)
    assert done["processed"] == 200, (done, app.events)
    ctp_check(tb, src, out, group)
    # the transaction that was open across the crash committed: nothing was aborted
    assert not [e for e in app.events if e["event"] in ("aborted", "fatal", "commit-error")], app.events


def test_consume_transform_produce_broker_kill9_loop(tb, new_topic, apps):
    """kill -9 the broker three times while the app commits every 10 records (the crash lands
    anywhere: between AddPartitions, produce, TxnOffsetCommit, EndTxn and the markers)."""
    if not tb.can_kill:
        pytest.skip("FJORD_TEST_KAFKA without FJORD_TEST_KAFKA_DIR: cannot kill -9 the broker")
    n = 1000
    src, out, args, group = ctp_setup(tb, new_topic, n=n, batch=10)
    app = apps(tb, args)
    restarts = 0
    for at in (10, 40, 70):   # commits (of 100) after which the broker dies
        while True:
            try:
                ev = app.wait_event("committed", timeout=90)
            except AssertionError:
                if app.proc.poll() == 3 and restarts < 3:   # fatal error: start another instance
                    restarts += 1
                    app = apps(tb, args)
                    continue
                raise
            if ev["commits"] >= at or sum(ev["offsets"].values()) >= n * at // 100:
                break
        tb.kill9()
        tb.start()
    while True:
        try:
            app.finish(timeout=120)
            break
        except AssertionError:
            if app.proc.poll() == 3 and restarts < 3:
                restarts += 1
                app = apps(tb, args)
                continue
            raise
    print(f"app instances restarted after fatal errors: {restarts}")
    ctp_check(tb, src, out, group, n=n)


# -- 7. admin ----------------------------------------------------------------

def test_admin_list_describe_transactions(tb):
    from confluent_kafka.admin import AdminClient
    if not hasattr(AdminClient, "list_transactions"):
        pytest.skip("confluent-kafka 2.16.1's AdminClient has no list_transactions/"
                    "describe_transactions")
    pytest.fail("this confluent-kafka has AdminClient.list_transactions: test it here")


# -- kafkajs -----------------------------------------------------------------

def test_kafkajs_transactions(tb, new_topic):
    topic, src, out = new_topic("js-txn"), new_topic("js-in"), new_topic("js-out")
    for t in (topic, src, out):
        kutil.create_topic(tb.bootstrap, t)
    kutil.produce_all(tb.bootstrap, src, [{"value": b"in-%d" % i} for i in range(10)])
    group = uid("js-group")
    rc, res, err = node("txn.js", tb.bootstrap, topic, src, out, group, uid("js-tid"))
    assert rc == 0, (res, err[-3000:])

    # commit: c0-c2 at 0-2, COMMIT 3; abort: a0-a2 at 4-6, ABORT 7; then a plain "end" at 8
    assert [int(r["baseOffset"]) for r in res["commit"]] == [0]
    assert [int(r["baseOffset"]) for r in res["abort"]] == [4]
    # then (6.) fenced-0 at 9 aborted (10) by the second producer's init, second-0 at 11, 12 COMMIT
    settle(tb, [(topic, 0)], 13)
    got, pos = read_all(tb, [(topic, 0)])
    assert got[(topic, 0)] == [(0, b"c0"), (1, b"c1"), (2, b"c2"), (8, b"end"), (11, b"second-0")]
    assert pos[(topic, 0)] == 13
    unc, _ = read_all(tb, [(topic, 0)], "read_uncommitted")
    assert [o for o, _ in unc[(topic, 0)]] == [0, 1, 2, 4, 5, 6, 8, 9, 11]
    # a kafkajs consumer with readUncommitted: false skips the aborted records too
    assert res["jsReadCommitted"] == ["c0", "c1", "c2", "end"]

    # sendOffsets: the transformed records and the group's offsets committed together
    settle(tb, [(out, 0)])
    got, _ = read_all(tb, [(out, 0)])
    assert [v for _, v in got[(out, 0)]] == [b"T:in-%d" % i for i in range(10)]
    c = kutil.consumer(tb.bootstrap, **{"group.id": group})
    try:
        (committed,) = c.committed([TopicPartition(src, 0)], timeout=15)
    finally:
        c.close()
    assert committed.offset == 10
    assert res["ctpBatches"] >= 1

    # the aborted transaction with sendOffsets: no output, no offsets for its group
    c = kutil.consumer(tb.bootstrap, **{"group.id": group + "-aborted"})
    try:
        (committed,) = c.committed([TopicPartition(src, 0)], timeout=15)
    finally:
        c.close()
    assert committed.offset == -1001
    # fencing: the first producer's commit fails; only the second one's record is committed
    assert not res["fenced"]["ok"], res["fenced"]
    assert res["fenced"]["type"] == "INVALID_PRODUCER_EPOCH", res["fenced"]  # EndTxn v1 (kafkajs)
    unc, _ = read_all(tb, [(out, 0)], "read_uncommitted")
    assert [v for _, v in unc[(out, 0)]][-1] == b"aborted-with-offsets"
