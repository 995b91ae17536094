"""The differential-test framework: a table of Cases, each one scenario run against both brokers.

A Case is one line of a table:

    Case("create/empty-name", "CreateTopics: empty topic name", lambda s: s.create(""), expect=17)

fn(side) returns what a client can observe (error codes, offsets, field values; never names or
times that legitimately differ). The outcome kinds:

    same      (default)  kafka == fjord (and == expect, if given)
    diff=D(kafka, fjord, why)
              a DELIBERATE difference: kafka must answer exactly `kafka`, fjord exactly `fjord`
              (so the test still fails if either behaviour changes)
    bug="..." a Fjord bug: asserts kafka == fjord, marked xfail(strict=True, reason="FJORD BUG: ...")
    gap="..." a known missing feature in Fjord, same mechanism ("FJORD GAP: ...")
"""

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import pytest

import kw

SESSION = uuid.uuid4().hex[:6]
RESULTS = {}
CASES = {}  # id -> Case (every table registers here; gen_doc.py reads it)

NO_EXPECT = object()


@dataclass
class D:
    kafka: Any
    fjord: Any
    why: str


@dataclass
class Case:
    id: str
    what: str
    fn: Callable
    expect: Any = NO_EXPECT
    diff: Optional[D] = None
    bug: Optional[str] = None
    gap: Optional[str] = None
    module: str = ""

    def kind(self):
        if self.bug:
            return "bug"
        if self.gap:
            return "gap"
        if self.diff:
            return "diff"
        return "same"


def params(cases, module=""):
    out = []
    for c in cases:
        assert c.id not in CASES, f"duplicate case id {c.id}"
        c.module = module
        CASES[c.id] = c
        marks = []
        if c.bug:
            marks.append(pytest.mark.xfail(strict=True, reason="FJORD BUG: " + c.bug))
        if c.gap:
            marks.append(pytest.mark.xfail(strict=True, reason="FJORD GAP: " + c.gap))
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


def check(pair, case: Case):
    k_side, f_side = pair.kafka, pair.fjord
    k_side.case = f_side.case = case.id
    k = _observe(case, k_side)
    f = _observe(case, f_side)
    RESULTS[case.id] = {"what": case.what, "kind": case.kind(), "kafka": k, "fjord": f,
                        "why": case.bug or case.gap or (case.diff.why if case.diff else "")}
    if case.diff:
        assert k == case.diff.kafka, f"Kafka's answer changed: {k!r} (table says {case.diff.kafka!r})"
        assert f == case.diff.fjord, (f"Fjord's answer changed: {f!r} (table says "
                                      f"{case.diff.fjord!r}; Kafka: {k!r})")
        return
    if case.expect is not NO_EXPECT:
        assert k == case.expect, f"Kafka answered {k!r}, table expects {case.expect!r}"
    assert f == k, f"Fjord answered {f!r}, Kafka {k!r}"


def _observe(case, side):
    try:
        return case.fn(side)
    except AssertionError:
        raise
    except Exception as e:  # noqa: BLE001 - an exception is an observable too
        return f"EXC {type(e).__name__}: {e}"[:300]


# --------------------------------------------------------------------------- the per-broker side

class Side:
    """One broker as a test scenario sees it; helpers return plain comparable values."""

    def __init__(self, name, bootstrap):
        self.name = name
        self.bs = bootstrap
        self.case = "x"
        self._admin = None

    # names: the same on both brokers for one case, unique across cases and sessions
    def topic(self, tag="t"):
        base = re.sub(r"[^A-Za-z0-9]+", "-", self.case).strip("-")[:60]
        return f"{base}-{tag}-{SESSION}"

    def group(self, tag="g"):
        return "grp-" + self.topic(tag)

    def call(self, api, version, **fields):
        return kw.call(self.bs, api, version, **fields)

    def conn(self):
        return kw.Conn(self.bs)

    # -- topics ------------------------------------------------------------
    def create_raw(self, name, partitions=1, rf=1, configs=None, validate_only=False,
                   assignments=None, version=7, timeout_ms=15000):
        topic = {"name": name, "num_partitions": partitions, "replication_factor": rf,
                 "assignments": [{"partition_index": i, "broker_ids": b}
                                 for i, b in enumerate(assignments or [])],
                 "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()]}
        r = self.call("CreateTopics", version, topics=[topic], timeout_ms=timeout_ms,
                      validate_only=validate_only)
        return r["topics"][0]

    def create(self, name, partitions=1, rf=1, configs=None, validate_only=False,
               assignments=None):
        """-> the topic's error code (waits until the topic is usable when created)."""
        t = self.create_raw(name, partitions, rf, configs, validate_only, assignments)
        if t["error_code"] == 0 and not validate_only:
            self.wait_topic(name)
        return t["error_code"]

    def topic_t(self, tag="t", partitions=1, configs=None):
        """Creates a fresh topic for this case and returns its name."""
        name = self.topic(tag)
        err = self.create(name, partitions=partitions, configs=configs)
        assert err == 0, f"{self.name}: creating {name} failed with {err}"
        return name

    def metadata(self, topics, allow_auto=False, version=12):
        ts = None if topics is None else [{"name": t, "topic_id": None} if version >= 10 else
                                          {"name": t} for t in topics]
        kwargs = {"topics": ts, "allow_auto_topic_creation": allow_auto}
        if version >= 8:
            kwargs["include_topic_authorized_operations"] = False
        if 8 <= version <= 10:
            kwargs["include_cluster_authorized_operations"] = False
        return self.call("Metadata", version, **kwargs)

    def wait_topic(self, name, timeout=15.0):
        deadline = time.monotonic() + timeout
        while True:
            md = self.metadata([name])
            t = md["topics"][0]
            if t["error_code"] == 0 and t["partitions"] and all(
                    p["error_code"] == 0 and p["leader_id"] >= 0 for p in t["partitions"]):
                # Kafka's Metadata can name the leader before its replica manager hosts the
                # partition (Fetch then answers 6 NOT_LEADER_OR_FOLLOWER): wait for ListOffsets
                if all(self.list_offsets(name, p["partition_index"], -1)[0] == 0
                       for p in t["partitions"]):
                    return t
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: topic {name} not ready: {t}")
            time.sleep(0.05)

    def delete_topics(self, names, version=6):
        r = self.call("DeleteTopics", version, topic_names=names if version < 6 else [],
                      topics=[{"name": n, "topic_id": None} for n in names] if version >= 6 else [],
                      timeout_ms=15000)
        return [t["error_code"] for t in r["responses"]]

    # -- records -----------------------------------------------------------
    @staticmethod
    def batch(records, compression=0, base_ts=None, producer_id=-1, producer_epoch=-1,
              base_sequence=-1):
        """records: list of (key, value) or (key, value, timestamp_ms) -> v2 batch bytes."""
        from kafka.record.default_records import DefaultRecordBatchBuilder
        b = DefaultRecordBatchBuilder(magic=2, compression_type=compression,
                                      is_transactional=False, producer_id=producer_id,
                                      producer_epoch=producer_epoch,
                                      base_sequence=base_sequence, batch_size=1 << 30)
        now = base_ts or int(time.time() * 1000)
        for i, r in enumerate(records):
            key, value = r[0], r[1]
            ts = r[2] if len(r) > 2 else now
            b.append(i, timestamp=ts, key=key, value=value, headers=[])
        return bytes(b.build())

    def produce_raw(self, topic, partition, records_bytes, acks=-1, version=9, timeout_ms=10000):
        r = self.call("Produce", version, transactional_id=None, acks=acks,
                      timeout_ms=timeout_ms,
                      topic_data=[{"name": topic, "partition_data": [
                          {"index": partition, "records": records_bytes}]}])
        if r is None:
            return None
        return r["responses"][0]["partition_responses"][0]

    def produce(self, topic, records, partition=0, acks=-1, compression=0, **kw_):
        """-> (error_code, base_offset) of a v2 batch of `records`."""
        p = self.produce_raw(topic, partition, self.batch(records, compression), acks=acks, **kw_)
        return p["error_code"], p["base_offset"]

    def fill(self, topic, n, partition=0, ts=None):
        recs = [(b"k%d" % i, b"v%d" % i) + ((ts[i],) if ts else ()) for i in range(n)]
        err, base = self.produce(topic, recs, partition)
        assert err == 0, f"{self.name}: produce to {topic} failed with {err}"
        return base

    def list_offsets(self, topic, partition, timestamp, version=7, isolation=0):
        kwargs = dict(replica_id=-1, isolation_level=isolation,
                      topics=[{"name": topic, "partitions": [
                          {"partition_index": partition, "current_leader_epoch": -1,
                           "timestamp": timestamp}]}])
        if version >= 10:
            kwargs["timeout_ms"] = 5000
        r = self.call("ListOffsets", version, **kwargs)
        p = r["topics"][0]["partitions"][0]
        return p["error_code"], p["offset"], p["timestamp"]

    def fetch(self, topic, partition, offset, version=12, max_wait_ms=0, max_bytes=1 << 20,
              isolation=0):
        r = self.call("Fetch", version, replica_id=-1, max_wait_ms=max_wait_ms, min_bytes=1,
                      max_bytes=max_bytes, isolation_level=isolation, session_id=0,
                      session_epoch=-1,
                      topics=[{"topic": topic, "partitions": [
                          {"partition": partition, "current_leader_epoch": -1,
                           "fetch_offset": offset, "last_fetched_epoch": -1,
                           "log_start_offset": -1, "partition_max_bytes": max_bytes}]}],
                      forgotten_topics_data=[], rack_id="")
        if r["error_code"]:
            return {"top_error": r["error_code"]}
        return r["responses"][0]["partitions"][0]

    def fetch_records(self, topic, partition, offset):
        """-> (error_code, [(offset, key, value)])"""
        from kafka.record.memory_records import MemoryRecords
        p = self.fetch(topic, partition, offset)
        out = []
        if p.get("records"):
            mr = MemoryRecords(bytes(p["records"]))
            while mr.has_next():
                batch = mr.next_batch()
                for rec in batch:
                    if rec.offset >= offset:
                        out.append((rec.offset, rec.key, rec.value))
        return p["error_code"], out

    def delete_records(self, topic, partition, offset):
        r = self.call("DeleteRecords", 2, topics=[{"name": topic, "partitions": [
            {"partition_index": partition, "offset": offset}]}], timeout_ms=10000)
        p = r["topics"][0]["partitions"][0]
        return p["error_code"], p["low_watermark"]

    # -- configs -----------------------------------------------------------
    def describe_configs(self, rtype, name, keys=None, synonyms=False, docs=False, version=4):
        r = self.call("DescribeConfigs", version, resources=[
            {"resource_type": rtype, "resource_name": name, "configuration_keys": keys}],
            include_synonyms=synonyms, include_documentation=docs)
        return r["results"][0]

    def topic_configs(self, topic, keys=None):
        res = self.describe_configs(2, topic, keys)
        assert res["error_code"] == 0, res
        return {c["name"]: c for c in res["configs"]}

    def alter_configs(self, topic, configs, validate_only=False):
        r = self.call("AlterConfigs", 2, resources=[
            {"resource_type": 2, "resource_name": topic,
             "configs": [{"name": k, "value": v} for k, v in configs.items()]}],
            validate_only=validate_only)
        return r["responses"][0]["error_code"]

    def incremental_alter(self, rtype, name, ops, validate_only=False):
        """ops: [(name, op, value)] op 0=SET 1=DELETE 2=APPEND 3=SUBTRACT"""
        r = self.call("IncrementalAlterConfigs", 1, resources=[
            {"resource_type": rtype, "resource_name": name,
             "configs": [{"name": k, "config_operation": op, "value": v} for k, op, v in ops]}],
            validate_only=validate_only)
        return r["responses"][0]["error_code"]

    # -- groups ------------------------------------------------------------
    def join(self, conn, group, member_id="", protocol_type="consumer", session_timeout=30000,
             rebalance_timeout=30000, instance_id=None, protocols=(("range", b"\x00\x01"),),
             version=7):
        return conn.call("JoinGroup", version, group_id=group, session_timeout_ms=session_timeout,
                         rebalance_timeout_ms=rebalance_timeout, member_id=member_id,
                         group_instance_id=instance_id, protocol_type=protocol_type,
                         protocols=[{"name": n, "metadata": m} for n, m in protocols],
                         reason=None)

    def join_full(self, conn, group, **kw_):
        """JoinGroup twice (KIP-394 member id) + SyncGroup as the leader -> (member, generation)."""
        r = self.join(conn, group, **kw_)
        if r["error_code"] == 79:
            r = self.join(conn, group, member_id=r["member_id"], **kw_)
        assert r["error_code"] == 0, r
        m, gen = r["member_id"], r["generation_id"]
        s = conn.call("SyncGroup", 5, group_id=group, generation_id=gen, member_id=m,
                      group_instance_id=kw_.get("instance_id"), protocol_type="consumer",
                      protocol_name=r["protocol_name"],
                      assignments=[{"member_id": m, "assignment": b""}])
        assert s["error_code"] == 0, s
        return m, gen

    def coordinator(self, group, timeout=20.0):
        """FindCoordinator until the group's coordinator is available -> its node id."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.call("FindCoordinator", 4, key_type=0, coordinator_keys=[group])
            c = r["coordinators"][0]
            if c["error_code"] == 0:
                return c["node_id"]
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no coordinator for {group}: {c}")
            time.sleep(0.1)

    def warm_up(self, timeout=60.0):
        """Until the group coordinator answers for every offsets partition and InitProducerId
        works (Kafka creates and loads __consumer_offsets lazily: 14/15/16 meanwhile)."""
        deadline = time.monotonic() + timeout
        groups = [f"warm-up-{i}" for i in range(64)]
        self.coordinator(groups[0], timeout)
        while True:
            r = self.call("DescribeGroups", 5, groups=groups, include_authorized_operations=False)
            bad = [g for g in r["groups"] if g["error_code"] in (14, 15, 16)]
            p = self.call("InitProducerId", 4, transactional_id=None, transaction_timeout_ms=-1,
                          producer_id=-1, producer_epoch=-1)
            if not bad and p["error_code"] == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: coordinators not ready: {bad[:2]} {p}")
            time.sleep(0.1)

    def describe_group(self, group, version=5):
        self.coordinator(group)
        r = self.call("DescribeGroups", version, groups=[group],
                      include_authorized_operations=False)
        return r["groups"][0]

    def commit(self, group, topic, partition, offset, generation=-1, member="", version=8,
               conn=None):
        args = dict(group_id=group, generation_id_or_member_epoch=generation, member_id=member,
                    group_instance_id=None, topics=[{"name": topic, "partitions": [
                        {"partition_index": partition, "committed_offset": offset,
                         "committed_leader_epoch": -1, "committed_metadata": ""}]}])
        self.coordinator(group)
        deadline = time.monotonic() + 20
        while True:  # the coordinator may still be loading (14) or moving (15, 16)
            r = (conn.call if conn else self.call)("OffsetCommit", version, **args)
            err = r["topics"][0]["partitions"][0]["error_code"]
            if err not in (14, 15, 16) or time.monotonic() > deadline:
                return err
            time.sleep(0.1)

    def offset_fetch(self, group, topic=None, partitions=(0,), version=8):
        topics = None if topic is None else [{"name": topic, "partition_indexes": list(partitions)}]
        self.coordinator(group)
        r = self.call("OffsetFetch", version, groups=[{"group_id": group, "topics": topics}],
                      require_stable=False)
        return r["groups"][0]
