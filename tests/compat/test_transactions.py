"""Transactions at the wire level (KIP-98, KIP-360, KIP-664, KIP-890): Kafka 4.4.0 vs Fjord.

A `Tx` is one transactional producer driven by raw requests on one connection:
FindCoordinator(key_type=1) -> InitProducerId -> AddPartitionsToTxn -> Produce (transactional
v2 batches) -> AddOffsetsToTxn/TxnOffsetCommit -> EndTxn. Requests a real client retries
(COORDINATOR_LOAD_IN_PROGRESS 14, COORDINATOR_NOT_AVAILABLE 15, CONCURRENT_TRANSACTIONS 51)
are retried here too, so what is compared is the answer a client acts on.

Kafka 4.4.0 finalizes transaction.version=2 on a fresh cluster; Fjord implements the TV1
protocol (AddPartitionsToTxn from the client, EndTxn <= v4) and does not advertise
transaction.version >= 2, so TV2-only behaviour (EndTxn v5's epoch bump, Produce v12's
implicit partition add) is a deliberate `diff`.
"""

import re
import struct
import time

import pytest

import kw
from compat import Case, D, check, params

E = "error_code"
LATEST = -1
RETRY = (14, 15, 16, 51)  # load in progress, not available, not coordinator (yet),
#                          concurrent transactions: a client retries these
TV2 = ("deliberate: Kafka 4.4.0 finalizes transaction.version=2 (KIP-890 part 2); Fjord "
       "implements TV1 and does not advertise transaction.version >= 2")


# what the raw client observes when a broker closes the connection on a request version it
# does not advertise (Kafka does the same for any unadvertised version)
CLOSED = "EXC ConnectionError: connection closed after 0/4 bytes"


def now_ms():
    return int(time.time() * 1000)


def retrying(fn, codes=RETRY, timeout=20.0, err=lambda r: r[E]):
    deadline = time.monotonic() + timeout
    while True:
        r = fn()
        if err(r) not in codes or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


def wait_for(fn, ok, timeout=20.0):
    """Polls fn() until ok(value) (or the timeout); returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if ok(v) or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def txn_coordinator(s, txid, version=4, timeout=30.0):
    def once():
        if version >= 4:
            r = s.call("FindCoordinator", version, key_type=1, coordinator_keys=[txid])
            return r["coordinators"][0]
        return s.call("FindCoordinator", version, key=txid, key_type=1)
    return retrying(once, timeout=timeout)


class Tx:
    """One transactional producer (its own connection)."""

    def __init__(self, s, tag="tx", timeout_ms=60000, txid=None):
        self.s = s
        self.id = txid or ("txid-" + s.topic(tag))
        self.timeout_ms = timeout_ms
        self.pid, self.epoch = -1, -1
        self.seq = {}
        c = txn_coordinator(s, self.id)
        assert c[E] == 0, f"{s.name}: no transaction coordinator for {self.id}: {c}"
        self.conn = s.conn()

    def call(self, api, version, **fields):
        return self.conn.call(api, version, **fields)

    # -- InitProducerId --------------------------------------------------
    def init_raw(self, version=4, pid=None, epoch=None, timeout_ms=None, txid=None):
        args = dict(transactional_id=self.id if txid is None else txid,
                    transaction_timeout_ms=self.timeout_ms if timeout_ms is None else timeout_ms)
        if version >= 3:
            args.update(producer_id=-1 if pid is None else pid,
                        producer_epoch=-1 if epoch is None else epoch)
        return retrying(lambda: self.call("InitProducerId", version, **args))

    def init(self, **kw_):
        r = self.init_raw(**kw_)
        assert r[E] == 0, f"{self.s.name}: InitProducerId failed: {r}"
        self.pid, self.epoch = r["producer_id"], r["producer_epoch"]
        self.seq = {}
        return r

    # -- AddPartitionsToTxn ----------------------------------------------
    def add_raw(self, parts, version=3, pid=None, epoch=None, txid=None, verify_only=False):
        """parts: {topic: [partitions]} -> {(topic, partition): error} (or the top error)"""
        pid = self.pid if pid is None else pid
        epoch = self.epoch if epoch is None else epoch
        txid = self.id if txid is None else txid
        topics = [{"name": t, "partitions": list(ps)} for t, ps in parts.items()]
        if version <= 3:
            def once():
                return self.call("AddPartitionsToTxn", version, v3_and_below_transactional_id=txid,
                                 v3_and_below_producer_id=pid, v3_and_below_producer_epoch=epoch,
                                 v3_and_below_topics=topics)

            def err(r):
                codes = {p["partition_error_code"] for t in r["results_by_topic_v3_and_below"]
                         for p in t["results_by_partition"]}
                return codes.pop() if len(codes) == 1 else None
            r = retrying(once, err=err)
            return {(t["name"], p["partition_index"]): p["partition_error_code"]
                    for t in r["results_by_topic_v3_and_below"] for p in t["results_by_partition"]}
        r = self.call("AddPartitionsToTxn", version, transactions=[
            {"transactional_id": txid, "producer_id": pid, "producer_epoch": epoch,
             "verify_only": verify_only, "topics": topics}])
        out = {"top": r[E]}
        for res in r["results_by_transaction"] or []:
            for t in res["topic_results"]:
                for p in t["results_by_partition"]:
                    out[(t["name"], p["partition_index"])] = p["partition_error_code"]
        return out

    def add(self, parts, **kw_):
        r = self.add_raw(parts, **kw_)
        assert set(r.values()) == {0}, f"{self.s.name}: AddPartitionsToTxn failed: {r}"
        return r

    # -- Produce ---------------------------------------------------------
    def batch(self, records, partition_key, seq=None, epoch=None, pid=None, ts=None,
              transactional=True):
        from kafka.record.default_records import DefaultRecordBatchBuilder
        base_seq = self.seq.get(partition_key, 0) if seq is None else seq
        b = DefaultRecordBatchBuilder(magic=2, compression_type=0,
                                      is_transactional=transactional,
                                      producer_id=self.pid if pid is None else pid,
                                      producer_epoch=self.epoch if epoch is None else epoch,
                                      base_sequence=base_seq, batch_size=1 << 30)
        t0 = ts or now_ms()
        for i, (k, v) in enumerate(records):
            b.append(i, timestamp=t0, key=k, value=v, headers=[])
        return bytes(b.build()), base_seq

    def produce_raw(self, topic, partition, records=((b"k", b"v"),), version=9, **kw_):
        data, base_seq = self.batch(records, (topic, partition), **kw_)
        args = dict(transactional_id=self.id, acks=-1, timeout_ms=10000,
                    topic_data=[{"name": topic, "partition_data": [
                        {"index": partition, "records": data}]}])
        if version >= 13:
            raise ValueError("Produce v13 names topics by id")
        r = self.call("Produce", version, **args)
        p = r["responses"][0]["partition_responses"][0]
        if p[E] == 0:
            self.seq[(topic, partition)] = base_seq + len(records)
        return p

    def produce(self, topic, partition, records=((b"k", b"v"),), **kw_):
        p = self.produce_raw(topic, partition, records, **kw_)
        assert p[E] == 0, f"{self.s.name}: transactional produce failed: {p}"
        return p["base_offset"]

    # -- EndTxn, offsets -------------------------------------------------
    def end_raw(self, commit=True, version=3, pid=None, epoch=None, txid=None):
        args = dict(transactional_id=self.id if txid is None else txid,
                    producer_id=self.pid if pid is None else pid,
                    producer_epoch=self.epoch if epoch is None else epoch, committed=commit)
        return retrying(lambda: self.call("EndTxn", version, **args))

    def end(self, commit=True, **kw_):
        r = self.end_raw(commit, **kw_)
        assert r[E] == 0, f"{self.s.name}: EndTxn failed: {r}"
        return r

    def add_offsets(self, group, version=3, pid=None, epoch=None, txid=None):
        r = retrying(lambda: self.call(
            "AddOffsetsToTxn", version, transactional_id=self.id if txid is None else txid,
            producer_id=self.pid if pid is None else pid,
            producer_epoch=self.epoch if epoch is None else epoch, group_id=group))
        return r[E]

    def txn_commit(self, group, topic, partition, offset, version=3, pid=None, epoch=None,
                   generation=-1, member=""):
        args = dict(transactional_id=self.id, group_id=group,
                    producer_id=self.pid if pid is None else pid,
                    producer_epoch=self.epoch if epoch is None else epoch,
                    topics=[{"name": topic, "partitions": [
                        {"partition_index": partition, "committed_offset": offset,
                         "committed_leader_epoch": -1, "committed_metadata": "m"}]}])
        if version >= 3:
            args.update(generation_id=generation, member_id=member, group_instance_id=None)
        r = retrying(lambda: self.call("TxnOffsetCommit", version, **args),
                     err=lambda r: r["topics"][0]["partitions"][0][E])
        return r["topics"][0]["partitions"][0][E]

    def close(self):
        self.conn.close()


# ----------------------------------------------------------------- helpers on a Side
def describe_txn(s, txid):
    r = s.call("DescribeTransactions", 0, transactional_ids=[txid])
    return r["transaction_states"][0]


def describe_txn_view(st, pid=None):
    return (st[E], st["transaction_state"], st["transaction_timeout_ms"],
            st["transaction_start_time_ms"] > 0 if st["transaction_state"] != "Empty"
            else st["transaction_start_time_ms"],
            None if pid is None else st["producer_id"] == pid, st["producer_epoch"],
            sorted((t["topic"], sorted(t["partitions"])) for t in st["topics"]))


def wait_state(s, txid, states, timeout=20.0):
    return wait_for(lambda: describe_txn(s, txid),
                    lambda st: st["transaction_state"] in states, timeout)


def fetch(s, topic, partition=0, offset=0, isolation=1, version=12):
    if version >= 7:
        return s.fetch(topic, partition, offset, isolation=isolation, version=version)
    r = s.call("Fetch", version, replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20,
               isolation_level=isolation, topics=[{"topic": topic, "partitions": [
                   {"partition": partition, "fetch_offset": offset, "log_start_offset": -1,
                    "partition_max_bytes": 1 << 20}]}])
    return r["responses"][0]["partitions"][0]


def aborted(p):
    a = p.get("aborted_transactions")
    return None if a is None else [(x["producer_id"], x["first_offset"]) for x in a]


def varint(buf, pos):
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
    return (result >> 1) ^ -(result & 1), pos


def batches(raw):
    """v2 record batches in a Fetch answer -> dicts (records decoded: uncompressed only)."""
    out = []
    pos = 0
    raw = bytes(raw or b"")
    while pos + 61 <= len(raw):
        base, length = struct.unpack_from(">qi", raw, pos)
        end = pos + 12 + length
        if end > len(raw):
            break
        (_ple, magic, _crc, attrs, lod, _bts, _mts, pid, epoch, bseq,
         count) = struct.unpack_from(">ibIhiqqqhii", raw, pos + 12)
        recs = []
        if magic == 2 and attrs & 0x07 == 0:
            rp = pos + 61
            for _ in range(count):
                _ln, rp = varint(raw, rp)
                rp += 1  # attributes
                _tsd, rp = varint(raw, rp)
                od, rp = varint(raw, rp)
                kl, rp = varint(raw, rp)
                key = None if kl < 0 else raw[rp:rp + kl]
                rp += max(kl, 0)
                vl, rp = varint(raw, rp)
                val = None if vl < 0 else raw[rp:rp + vl]
                rp += max(vl, 0)
                nh, rp = varint(raw, rp)
                for _h in range(nh):
                    hk, rp = varint(raw, rp)
                    rp += hk
                    hv, rp = varint(raw, rp)
                    rp += max(hv, 0)
                recs.append((base + od, key, val))
        out.append({"base": base, "last": base + lod, "magic": magic,
                    "transactional": bool(attrs & 0x10), "control": bool(attrs & 0x20),
                    "pid": pid, "epoch": epoch, "base_seq": bseq, "count": count,
                    "records": recs})
        pos = end
    return out


def data_offsets(p):
    """offsets of the data records (not control records) in a fetched partition"""
    return [o for b in batches(p.get("records")) if not b["control"] for o, _k, _v in b["records"]]


def visible(p):
    """the data offsets a read_committed client keeps: it drops a producer's transactional
    batches from each aborted_transactions first_offset up to that producer's ABORT marker"""
    pending = sorted((x["first_offset"], x["producer_id"])
                     for x in p.get("aborted_transactions") or [])
    active, out = set(), []
    for b in batches(p.get("records")):
        while pending and pending[0][0] <= b["base"]:
            active.add(pending.pop(0)[1])
        if b["control"]:
            if b["records"] and struct.unpack(">hh", b["records"][0][1][:4])[1] == 0:
                active.discard(b["pid"])
            continue
        if not (b["transactional"] and b["pid"] in active):
            out += [o for o, _k, _v in b["records"]]
    return out


def lso(s, topic, partition=0):
    p = fetch(s, topic, partition)
    return p["high_watermark"], p["last_stable_offset"]


def offset_fetch(s, group, topic, require_stable, version=8):
    s.coordinator(group)
    r = s.call("OffsetFetch", version, groups=[{"group_id": group, "topics": [
        {"name": topic, "partition_indexes": [0]}]}], require_stable=require_stable)
    g = r["groups"][0]
    p = g["topics"][0]["partitions"][0]
    return g[E], p[E], p["committed_offset"]


def offset_fetch_v7(s, group, topic, require_stable):
    s.coordinator(group)
    r = s.call("OffsetFetch", 7, group_id=group, topics=[
        {"name": topic, "partition_indexes": [0]}], require_stable=require_stable)
    p = r["topics"][0]["partitions"][0]
    return r[E], p[E], p["committed_offset"]


# ----------------------------------------------------------------- ApiVersions
_ranges = {}


def api_range(key):
    def fn(s):
        if s.bs not in _ranges:
            r = kw.api_versions(s.bs)
            _ranges[s.bs] = ({a["api_key"]: (a["min_version"], a["max_version"])
                              for a in r["api_keys"]},
                             {f["name"]: (f["min_version_level"], f["max_version_level"])
                              for f in r["finalized_features"] or []})
        return _ranges[s.bs][0].get(key)
    return fn


def finalized_tv(s):
    api_range(0)(s)
    return _ranges[s.bs][1].get("transaction.version")


# ----------------------------------------------------------------- scenarios
def find_coord(version):
    def fn(s):
        c = txn_coordinator(s, "txid-" + s.topic(), version)
        return c[E], c["node_id"] >= 0, c["host"], c["port"] == int(s.bs.rsplit(":", 1)[1])
    return fn


def init_fresh(version=4):
    def fn(s):
        tx = Tx(s)
        r = tx.init_raw(version=version)
        return r[E], r["producer_id"] >= 0, r["producer_epoch"]
    return fn


def init_again(s):
    tx = Tx(s)
    a = tx.init()
    b = tx.init_raw()
    c = tx.init_raw(version=2)
    return (b[E], b["producer_id"] == a["producer_id"], b["producer_epoch"],
            c[E], c["producer_id"] == a["producer_id"], c["producer_epoch"])


def init_timeout(ms):
    def fn(s):
        tx = Tx(s)
        r = tx.init_raw(timeout_ms=ms)
        return r[E], r["producer_id"], r["producer_epoch"]
    return fn


def init_kip360(version, dpid=0, depoch=0, fresh=False):
    """InitProducerId v3+ naming the current (or a wrong) producer id / epoch"""
    def fn(s):
        tx = Tx(s)
        if fresh:  # the transactional id was never initialized
            r = tx.init_raw(version=version, pid=12345678, epoch=0)
            return r[E], r["producer_id"] not in (-1, 12345678), r["producer_epoch"]
        tx.init()
        tx.init()  # epoch 1
        r = tx.init_raw(version=version, pid=tx.pid + dpid, epoch=tx.epoch + depoch)
        return r[E], r["producer_id"] == tx.pid if r[E] == 0 else r["producer_id"], \
            r["producer_epoch"]
    return fn


def init_during_txn(s):
    """InitProducerId while a transaction is open: the open one is aborted, epoch moves on"""
    t = s.topic_t()
    tx = Tx(s)
    tx.init()
    e0 = tx.epoch
    tx.add({t: [0]})
    tx.produce(t, 0, [(b"a", b"1"), (b"b", b"2")])
    r = tx.init_raw()
    st = wait_state(s, tx.id, ("CompleteAbort", "Empty"))
    p = wait_for(lambda: fetch(s, t), lambda p: p["last_stable_offset"] == 3)
    return (r[E], r["producer_epoch"] - e0, st["transaction_state"], p["high_watermark"],
            p["last_stable_offset"], [(pid == tx.pid, off) for pid, off in aborted(p) or []],
            data_offsets(p))


def add_ok(version):
    def fn(s):
        t = s.topic_t(partitions=2)
        tx = Tx(s)
        tx.init()
        return sorted((k[1], v) for k, v in tx.add_raw({t: [0, 1]}, version=version).items())
    return fn


def add_unknown_topic(s):
    t = s.topic_t()
    tx = Tx(s)
    tx.init()
    r = tx.add_raw({t: [0], s.topic("missing"): [0]})
    return sorted((k[0] == t, k[1], v) for k, v in r.items())


def add_unknown_partition(s):
    t = s.topic_t()
    tx = Tx(s)
    tx.init()
    r = tx.add_raw({t: [0, 7]})
    return sorted((k[1], v) for k, v in r.items())


def add_wrong_epoch(version, depoch=-1):
    def fn(s):
        t = s.topic_t()
        tx = Tx(s)
        tx.init()
        tx.init()
        r = tx.add_raw({t: [0]}, version=version, epoch=tx.epoch + depoch)
        return sorted(v for k, v in r.items() if k != "top"), r.get("top")
    return fn


def add_wrong_pid(s):
    t = s.topic_t()
    tx = Tx(s)
    tx.init()
    r = tx.add_raw({t: [0]}, pid=tx.pid + 1000)
    return list(r.values())


def add_unknown_txid(s):
    t = s.topic_t()
    tx = Tx(s)
    tx.init()
    r = tx.add_raw({t: [0]}, txid=tx.id + "-never")
    return list(r.values())


def add_twice(s):
    t = s.topic_t()
    tx = Tx(s)
    tx.init()
    a = tx.add_raw({t: [0]})
    tx.produce(t, 0)
    b = tx.add_raw({t: [0]})
    return list(a.values()), list(b.values())


def add_v4(verify_only, version=4):
    def fn(s):
        t = s.topic_t()
        tx = Tx(s)
        tx.init()
        if verify_only:
            tx.add({t: [0]})
        r = tx.add_raw({t: [0]}, version=version, verify_only=verify_only)
        st = describe_txn(s, tx.id)
        return r.pop("top"), sorted((k[1], v) for k, v in r.items()), \
            (st["transaction_state"], [(x["topic"] == t, x["partitions"]) for x in st["topics"]])
    return fn


def produce_not_added(version):
    def fn(s):
        t = s.topic_t()
        tx = Tx(s)
        tx.init()
        p = tx.produce_raw(t, 0, version=version)
        st = describe_txn(s, tx.id)
        return p[E], p["base_offset"], s.list_offsets(t, 0, LATEST)[1], st["transaction_state"]
    return fn


def produce_added(version):
    def fn(s):
        t = s.topic_t()
        tx = Tx(s)
        tx.init()
        tx.add({t: [0]})
        p1 = tx.produce_raw(t, 0, [(b"a", b"1"), (b"b", b"2")], version=version)
        p2 = tx.produce_raw(t, 0, [(b"c", b"3")], version=version)
        return (p1[E], p1["base_offset"], p2[E], p2["base_offset"])
    return fn


def produce_after_commit(version):
    """the partition was in the previous transaction; the new one did not add it"""
    def fn(s):
        t = s.topic_t()
        tx = Tx(s)
        tx.init()
        tx.add({t: [0]})
        tx.produce(t, 0)
        tx.end(True)
        wait_state(s, tx.id, ("CompleteCommit",))
        p = tx.produce_raw(t, 0, version=version)
        return p[E], describe_txn(s, tx.id)["transaction_state"]
    return fn


def produce_wrong_epoch(s):
    t = s.topic_t()
    tx = Tx(s)
    tx.init()
    tx.init()
    tx.add({t: [0]})
    old = tx.produce_raw(t, 0, epoch=tx.epoch - 1)
    return old[E]


def produce_non_txn_batch_in_txn(s):
    """an idempotent (not transactional) batch from the transactional producer id"""
    t = s.topic_t()
    tx = Tx(s)
    tx.init()
    tx.add({t: [0]})
    p = tx.produce_raw(t, 0, transactional=False)
    return p[E]


def end_scenario(steps, version=3):
    """steps: 'c' commit, 'a' abort, 'p' add+produce, 'i' InitProducerId, 'w' wait complete"""
    def fn(s):
        t = s.topic_t()
        tx = Tx(s)
        tx.init()
        out = []
        for st in steps:
            if st == "p":
                tx.add({t: [0]})
                tx.produce(t, 0)
            elif st == "i":
                tx.init()
            elif st == "w":
                wait_state(s, tx.id, ("CompleteCommit", "CompleteAbort", "Empty"))
            else:
                out.append(tx.end_raw(st == "c", version=version)[E])
        return out
    return fn


def end_wrong_epoch(version, depoch=-1):
    def fn(s):
        t = s.topic_t()
        tx = Tx(s)
        tx.init()
        tx.init()
        tx.add({t: [0]})
        tx.produce(t, 0)
        r = tx.end_raw(True, version=version, epoch=tx.epoch + depoch)
        return r[E], describe_txn(s, tx.id)["transaction_state"]
    return fn


def end_unknown(s):
    tx = Tx(s)
    tx.init()
    return tx.end_raw(True, txid=tx.id + "-never")[E], tx.end_raw(True, pid=tx.pid + 1000)[E]


def end_v5(s):
    t = s.topic_t()
    tx = Tx(s)
    tx.init()
    tx.add({t: [0]})
    tx.produce(t, 0)
    r = tx.end_raw(True, version=5)
    return r[E], r.get("producer_id") == tx.pid, r.get("producer_epoch", -1) - tx.epoch


def txn_lifecycle_states(s):
    t = s.topic_t()
    tx = Tx(s, timeout_ms=45000)
    tx.init()
    a = describe_txn_view(describe_txn(s, tx.id), tx.pid)
    tx.add({t: [0]})
    b = describe_txn_view(describe_txn(s, tx.id), tx.pid)
    tx.produce(t, 0)
    tx.end(True)
    c = describe_txn_view(wait_state(s, tx.id, ("CompleteCommit",)), tx.pid)
    tx.add({t: [0]})
    tx.produce(t, 0)
    tx.end(False)
    d = describe_txn_view(wait_state(s, tx.id, ("CompleteAbort",)), tx.pid)
    return a, b, c, d


def describe_unknown(s):
    st = describe_txn(s, "txid-" + s.topic("nobody"))
    return st[E], st["transaction_state"], st["producer_id"], st["topics"]


def fetch_open_txn(isolation):
    def fn(s):
        t = s.topic_t()
        s.fill(t, 2)
        tx = Tx(s)
        tx.init()
        tx.add({t: [0]})
        tx.produce(t, 0, [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])
        p = fetch(s, t, isolation=isolation)
        lo = s.list_offsets(t, 0, LATEST, isolation=isolation)
        return (p[E], p["high_watermark"], p["last_stable_offset"], aborted(p),
                data_offsets(p), lo[:2])
    return fn


def fetch_after(commit, isolation=1):
    def fn(s):
        t = s.topic_t()
        s.fill(t, 1)
        tx = Tx(s)
        tx.init()
        tx.add({t: [0]})
        tx.produce(t, 0, [(b"a", b"1"), (b"b", b"2")])
        tx.end(commit)
        p = wait_for(lambda: fetch(s, t, isolation=isolation),
                     lambda p: p["last_stable_offset"] == 4)
        bs = batches(p.get("records"))
        ab = aborted(p)
        return (p[E], p["high_watermark"], p["last_stable_offset"],
                None if ab is None else [(pid == tx.pid, off) for pid, off in ab],
                [(b["base"], b["last"], b["transactional"], b["control"],
                  b["pid"] == tx.pid if b["pid"] >= 0 else b["pid"], b["epoch"], b["base_seq"],
                  b["count"]) for b in bs],
                s.list_offsets(t, 0, LATEST, isolation=1)[:2])
    return fn


def control_record(commit):
    def fn(s):
        t = s.topic_t()
        tx = Tx(s)
        tx.init()
        tx.add({t: [0]})
        tx.produce(t, 0)
        tx.end(commit)
        p = wait_for(lambda: fetch(s, t, isolation=0), lambda p: p["high_watermark"] == 2)
        ctl = [b for b in batches(p.get("records")) if b["control"]]
        out = []
        for b in ctl:
            for off, key, val in b["records"]:
                kv, ktype = struct.unpack(">hh", key[:4])
                vv, cepoch = struct.unpack(">hi", val[:6])
                out.append((off, b["count"], len(key), kv, ktype, len(val), vv, cepoch))
        return out
    return fn


def two_producers_lso(s):
    """LSO = first offset of the earliest open transaction on the partition"""
    t = s.topic_t()
    a, b = Tx(s, "a"), Tx(s, "b")
    a.init()
    b.init()
    a.add({t: [0]})
    b.add({t: [0]})
    a.produce(t, 0)           # offset 0
    b.produce(t, 0)           # offset 1
    r1 = lso(s, t)
    b.end(True)               # marker at 2; a still open from 0
    r2 = wait_for(lambda: lso(s, t), lambda v: v[0] == 3)
    a.end(False)              # marker at 3
    r3 = wait_for(lambda: lso(s, t), lambda v: v[1] == 4)
    p = fetch(s, t)
    return r1, r2, r3, [(pid == a.pid, off) for pid, off in aborted(p) or []], data_offsets(p)


def aborted_fetch_from_middle(s):
    """aborted_transactions lists only aborts that overlap the fetched range"""
    t = s.topic_t()
    tx = Tx(s)
    tx.init()
    tx.add({t: [0]})
    tx.produce(t, 0, [(b"a", b"1"), (b"b", b"2")])  # 0, 1
    tx.end(False)                                  # marker 2
    wait_state(s, tx.id, ("CompleteAbort",))
    s.fill(t, 2)                                   # 3, 4
    p0 = wait_for(lambda: fetch(s, t, offset=0), lambda p: p["high_watermark"] == 5)
    p3 = fetch(s, t, offset=3)
    return (aborted(p0) and [off for _pid, off in aborted(p0)], data_offsets(p0),
            aborted(p3), data_offsets(p3))


def offsets_txn(commit, version=3):
    def fn(s):
        t = s.topic_t()
        s.fill(t, 5)
        g = s.group()
        tx = Tx(s)
        tx.init()
        out = [tx.add_offsets(g, version=version)]
        out.append(tx.txn_commit(g, t, 0, 3, version=version))
        out.append(offset_fetch(s, g, t, True))
        out.append(offset_fetch(s, g, t, False))
        out.append(offset_fetch_v7(s, g, t, True))
        st = describe_txn(s, tx.id)
        out.append((st["transaction_state"], [x["topic"] for x in st["topics"]]))
        tx.end(commit)
        want = 3 if commit else -1
        out.append(wait_for(lambda: offset_fetch(s, g, t, True),
                            lambda v: v[1] == 0 and v[2] == want))
        return out
    return fn


def txn_commit_without_add_offsets(s):
    t = s.topic_t()
    g = s.group()
    tx = Tx(s)
    tx.init()
    return tx.txn_commit(g, t, 0, 1)


def add_offsets_errors(s):
    g = s.group()
    tx = Tx(s)
    tx.init()
    tx.init()
    return (tx.add_offsets(g, txid=tx.id + "-never"), tx.add_offsets(g, pid=tx.pid + 1000),
            tx.add_offsets(g, epoch=tx.epoch - 1), tx.add_offsets(g, version=0, epoch=tx.epoch - 1))


def txn_commit_wrong_epoch(s):
    t = s.topic_t()
    g = s.group()
    tx = Tx(s)
    tx.init()
    tx.init()
    tx.add_offsets(g)
    return (tx.txn_commit(g, t, 0, 1, epoch=tx.epoch - 1),
            tx.txn_commit(g, t, 0, 1, version=0, epoch=tx.epoch - 1))


def list_txns(versions):
    return lambda s: list_txns_v(s, versions)


def list_txns_v(s, versions):
    t = s.topic_t()
    a, b = Tx(s, "a"), Tx(s, "b")
    a.init()
    b.init()
    a.add({t: [0]})
    added_at = now_ms()
    a.produce(t, 0)
    mine = {a.pid: "a", b.pid: "b"}
    # duration_filter=0 keeps transactions open for strictly more than 0 ms (Kafka's rule, and
    # Fjord's): let the clock move past the start so the case does not depend on speed.
    while now_ms() <= added_at + 1:
        time.sleep(0.001)

    def lt(version, **f):
        r = s.call("ListTransactions", version, **f)
        return r[E], r["unknown_state_filters"], sorted(
            (mine[x["producer_id"]], x["transactional_id"] == (a.id if mine[x["producer_id"]] == "a"
                                                               else b.id), x["transaction_state"])
            for x in r["transaction_states"] if x["producer_id"] in mine)
    pids = [a.pid, b.pid]
    out = []
    if 0 in versions:
        out += [lt(0, state_filters=[], producer_id_filters=pids),
                lt(0, state_filters=["Ongoing"], producer_id_filters=pids),
                lt(0, state_filters=["Empty", "Bogus"], producer_id_filters=pids)]
    if 1 in versions:
        out += [lt(1, state_filters=[], producer_id_filters=pids, duration_filter=3600000),
                lt(1, state_filters=[], producer_id_filters=pids, duration_filter=0),
                lt(1, state_filters=[], producer_id_filters=pids, duration_filter=-1),
                lt(1, state_filters=["Ongoing"], producer_id_filters=pids, duration_filter=0)]
    if 2 in versions:
        out += [lt(2, state_filters=[], producer_id_filters=[], duration_filter=-1,
                   transactional_id_pattern=re.escape(a.id)),
                lt(2, state_filters=[], producer_id_filters=[], duration_filter=-1,
                   transactional_id_pattern="^txid-" + re.escape(s.topic("X")).replace(
                       "X", "[ab]") + "$"),
                lt(2, state_filters=[], producer_id_filters=pids, duration_filter=-1,
                   transactional_id_pattern="")]
    return out


def list_txns_bad_pattern(s):
    r = s.call("ListTransactions", 2, state_filters=[], producer_id_filters=[],
               duration_filter=-1, transactional_id_pattern="[")
    return r[E], r["transaction_states"]


def describe_producers(s):
    t = s.topic_t()
    s.fill(t, 1)
    tx = Tx(s)
    tx.init()
    tx.add({t: [0]})
    ts = now_ms() - 5000
    tx.produce(t, 0, [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")], ts=ts)

    def dp():
        r = s.call("DescribeProducers", 0, topics=[{"name": t, "partition_indexes": [0, 3]}])
        out = []
        for p in r["topics"][0]["partitions"]:
            out.append((p["partition_index"], p[E],
                        [(x["producer_id"] == tx.pid, x["producer_epoch"], x["last_sequence"],
                          "=ts" if x["last_timestamp"] == ts else x["last_timestamp"] > ts,
                          x["coordinator_epoch"], x["current_txn_start_offset"])
                         for x in p["active_producers"]]))
        return sorted(out)
    a = dp()
    tx.end(True)
    b = wait_for(dp, lambda v: v[0][2] and v[0][2][0][5] == -1)
    return a, b


def describe_producers_unknown(s):
    r = s.call("DescribeProducers", 0, topics=[{"name": s.topic("missing"),
                                                "partition_indexes": [0]}])
    p = r["topics"][0]["partitions"][0]
    return p[E], p["active_producers"]


def timeout_abort(s):
    """transaction.timeout.ms=2000: the coordinator aborts the open txn and fences the epoch"""
    t = s.topic_t()
    tx = Tx(s, timeout_ms=2000)
    tx.init()
    tx.add({t: [0]})
    tx.produce(t, 0)
    st = wait_state(s, tx.id, ("CompleteAbort",), timeout=30)
    p = wait_for(lambda: fetch(s, t), lambda p: p["last_stable_offset"] == 2, timeout=10)
    return (st["transaction_state"], st["producer_epoch"] - tx.epoch,
            tx.end_raw(True)[E], tx.add_raw({t: [0]}).get((t, 0)),
            p["high_watermark"], p["last_stable_offset"], data_offsets(p),
            tx.init_raw()["producer_epoch"] - tx.epoch)


def fenced_by_new_producer(version):
    """a second InitProducerId for the same id fences the first producer"""
    def fn(s):
        t = s.topic_t()
        old = Tx(s)
        old.init()
        old.add({t: [0]})
        old.produce(t, 0)
        new = Tx(s, txid=old.id)
        new.init()
        return (new.epoch - old.epoch, old.produce_raw(t, 0, version=9)[E],
                old.end_raw(True, version=version)[E],
                old.add_raw({t: [0]}, version=min(version, 3))[(t, 0)])
    return fn


def add_verify_only_not_added(s):
    """AddPartitionsToTxn v4 verify_only for a partition that is not in the transaction"""
    t = s.topic_t(partitions=2)
    tx = Tx(s)
    tx.init()
    tx.add({t: [0]})
    r = tx.add_raw({t: [0, 1]}, version=4, verify_only=True)
    return r.pop("top"), sorted((k[1], v) for k, v in r.items()), \
        describe_txn_view(describe_txn(s, tx.id))[1::5]


def add_internal_topic(s):
    tx = Tx(s)
    tx.init()
    r = tx.add_raw({"__consumer_offsets": [0]})
    return list(r.values())


def produce_txid_variants(txid):
    """a transactional batch to an added partition, the request naming another / no id"""
    def fn(s):
        t = s.topic_t()
        tx = Tx(s)
        tx.init()
        tx.add({t: [0]})
        data, _ = tx.batch([(b"k", b"v")], (t, 0))
        r = tx.call("Produce", 9, transactional_id=None if txid is None else tx.id + txid,
                    acks=-1, timeout_ms=10000,
                    topic_data=[{"name": t, "partition_data": [{"index": 0, "records": data}]}])
        p = r["responses"][0]["partition_responses"][0]
        return p[E], s.list_offsets(t, 0, LATEST)[1]
    return fn


def produce_acks(acks):
    def fn(s):
        t = s.topic_t()
        tx = Tx(s)
        tx.init()
        tx.add({t: [0]})
        data, _ = tx.batch([(b"k", b"v")], (t, 0))
        r = tx.call("Produce", 9, transactional_id=tx.id, acks=acks, timeout_ms=10000,
                    topic_data=[{"name": t, "partition_data": [{"index": 0, "records": data}]}])
        p = r["responses"][0]["partition_responses"][0]
        return p[E], p["base_offset"]
    return fn


def produce_mixed(s):
    """one Produce request: an added partition and one that is not"""
    t = s.topic_t(partitions=2)
    tx = Tx(s)
    tx.init()
    tx.add({t: [0]})
    d0, _ = tx.batch([(b"k", b"v")], (t, 0))
    d1, _ = tx.batch([(b"k", b"v")], (t, 1))
    r = tx.call("Produce", 9, transactional_id=tx.id, acks=-1, timeout_ms=10000,
                topic_data=[{"name": t, "partition_data": [{"index": 0, "records": d0},
                                                           {"index": 1, "records": d1}]}])
    return sorted((p["index"], p[E]) for p in r["responses"][0]["partition_responses"])


def produce_compressed_txn(s):
    """a gzip transactional batch: committed, read back through read_committed"""
    from kafka.record.default_records import DefaultRecordBatchBuilder
    t = s.topic_t()
    tx = Tx(s)
    tx.init()
    tx.add({t: [0]})
    b = DefaultRecordBatchBuilder(magic=2, compression_type=1, is_transactional=True,
                                  producer_id=tx.pid, producer_epoch=tx.epoch, base_sequence=0,
                                  batch_size=1 << 30)
    for i in range(3):
        b.append(i, timestamp=now_ms(), key=b"k", value=b"v%d" % i, headers=[])
    r = tx.call("Produce", 9, transactional_id=tx.id, acks=-1, timeout_ms=10000,
                topic_data=[{"name": t, "partition_data": [{"index": 0,
                                                            "records": bytes(b.build())}]}])
    err = r["responses"][0]["partition_responses"][0][E]
    lso_open = lso(s, t)
    tx.end(True)
    p = wait_for(lambda: fetch(s, t), lambda p: p["last_stable_offset"] == 4)
    return err, lso_open, p["high_watermark"], p["last_stable_offset"], \
        [(b["base"], b["last"], b["transactional"], b["control"]) for b in batches(p["records"])]


def txn_commit_member(s):
    """TxnOffsetCommit v3 with a live group member's generation (KIP-447 fencing)"""
    t = s.topic_t()
    g = s.group()
    with s.conn() as c:
        member, gen = s.join_full(c, g)
        tx = Tx(s)
        tx.init()
        assert tx.add_offsets(g) == 0
        return (tx.txn_commit(g, t, 0, 1, generation=gen + 1, member=member),
                tx.txn_commit(g, t, 0, 1, generation=gen, member="ghost"),
                tx.txn_commit(g, t, 0, 1, generation=-1, member=""),
                tx.txn_commit(g, t, 0, 1, generation=gen, member=member))


def offsets_timeout_abort(s):
    """a transaction with only pending offsets times out: the offsets are discarded"""
    t = s.topic_t()
    g = s.group()
    tx = Tx(s, timeout_ms=2000)
    tx.init()
    tx.add_offsets(g)
    tx.txn_commit(g, t, 0, 7)
    pending = offset_fetch(s, g, t, True)
    st = wait_state(s, tx.id, ("CompleteAbort",), timeout=30)
    after = wait_for(lambda: offset_fetch(s, g, t, True), lambda v: v[1] == 0)
    return pending, st["transaction_state"], after


def init_idempotent_timeout(s):
    """InitProducerId without transactional id ignores transaction_timeout_ms"""
    r = retrying(lambda: s.call("InitProducerId", 4, transactional_id=None,
                                transaction_timeout_ms=900001, producer_id=-1, producer_epoch=-1))
    return r[E], r["producer_epoch"]


def find_coordinator_batched(s):
    keys = ["txid-" + s.topic(str(i)) for i in range(3)]
    r = retrying(lambda: s.call("FindCoordinator", 4, key_type=1, coordinator_keys=keys),
                 err=lambda r: max(c[E] for c in r["coordinators"]))
    return sorted((c["key"] in keys, c[E], c["node_id"] >= 0) for c in r["coordinators"])


def describe_many(s):
    tx = Tx(s)
    tx.init()
    r = s.call("DescribeTransactions", 0, transactional_ids=[tx.id, tx.id + "-never"])
    return [(st["transactional_id"] == tx.id, st[E], st["transaction_state"])
            for st in r["transaction_states"]]


def fetch_old_versions(version):
    """aborted_transactions in older Fetch versions (v4 is the first with them)"""
    def fn(s):
        t = s.topic_t()
        tx = Tx(s)
        tx.init()
        tx.add({t: [0]})
        tx.produce(t, 0)
        tx.end(False)
        p = wait_for(lambda: fetch(s, t, version=version), lambda p: p["last_stable_offset"] == 2)
        return (p[E], p["high_watermark"], p["last_stable_offset"],
                [(pid == tx.pid, off) for pid, off in aborted(p) or []])
    return fn


def list_offsets_versions(version):
    def fn(s):
        t = s.topic_t()
        s.fill(t, 1)
        tx = Tx(s)
        tx.init()
        tx.add({t: [0]})
        tx.produce(t, 0)
        iso = s.list_offsets(t, 0, LATEST, version=version, isolation=1)[:2]
        unc = s.list_offsets(t, 0, LATEST, version=version, isolation=0)[:2]
        return iso, unc
    return fn


def aborted_limited_fetch(s):
    """two aborted transactions; a Fetch limited (max_bytes) to the first batch lists only
    the aborts that overlap what it returns"""
    t = s.topic_t()
    a, b = Tx(s, "a"), Tx(s, "b")
    a.init()
    b.init()
    a.add({t: [0]})
    a.produce(t, 0, [(b"a", b"1"), (b"b", b"2")])  # 0, 1
    a.end(False)                                   # marker 2
    wait_state(s, a.id, ("CompleteAbort",))
    s.fill(t, 1)                                   # 3
    b.add({t: [0]})
    b.produce(t, 0, [(b"c", b"3")])                # 4
    b.end(False)                                   # marker 5
    wait_state(s, b.id, ("CompleteAbort",))
    full = wait_for(lambda: fetch(s, t), lambda p: p["last_stable_offset"] == 6)
    small = s.fetch(t, 0, 0, isolation=1, max_bytes=1)
    mine = {a.pid: "a", b.pid: "b"}
    return ([(mine.get(pid), off) for pid, off in aborted(full) or []],
            [(bt["base"], bt["last"]) for bt in batches(small.get("records"))],
            [(mine.get(pid), off) for pid, off in aborted(small) or []])


def describe_producers_idempotent(s):
    t = s.topic_t()
    pid, epoch = retrying(lambda: s.call("InitProducerId", 4, transactional_id=None,
                                         transaction_timeout_ms=-1, producer_id=-1,
                                         producer_epoch=-1)).get("producer_id"), 0
    data = s.batch([(b"k", b"v"), (b"k", b"v")], producer_id=pid, producer_epoch=epoch,
                   base_sequence=0)
    assert s.produce_raw(t, 0, data)[E] == 0
    r = s.call("DescribeProducers", 0, topics=[{"name": t, "partition_indexes": [0]}])
    p = r["topics"][0]["partitions"][0]
    return p[E], [(x["producer_id"] == pid, x["producer_epoch"], x["last_sequence"],
                   x["coordinator_epoch"], x["current_txn_start_offset"])
                  for x in p["active_producers"]]


def restart_with_transactions(s):
    """(run from test_zz_last.py: restarts the broker). The aborted transactions are compared
    by what a read_committed client keeps (`visible`): after a restart Kafka 4.4.0 answers the
    aborted transaction at 3 with first_offset 2 (the offset of the marker before it), which
    filters the same records."""
    if not hasattr(s, "restart"):
        pytest.skip("brokers given by COMPAT_KAFKA/COMPAT_FJORD cannot be restarted")
    t = s.topic_t()
    g = s.group()
    c, a = Tx(s, "c"), Tx(s, "a")
    c.init()
    c.add({t: [0]})
    c.produce(t, 0, [(b"c", b"1"), (b"c", b"2")])   # 0, 1
    c.end(True)                                       # marker 2
    a.init()
    a.add({t: [0]})
    a.produce(t, 0, [(b"a", b"1")])                   # 3
    a.end(False)                                      # marker 4
    wait_state(s, c.id, ("CompleteCommit",))
    wait_state(s, a.id, ("CompleteAbort",))
    o = Tx(s, "o", timeout_ms=300000)
    o.init()
    o.add({t: [0]})
    o.produce(t, 0, [(b"o", b"1")])                   # 5
    assert o.add_offsets(g) == 0
    assert o.txn_commit(g, t, 0, 3) == 0
    before = lso(s, t)
    for tx in (c, a, o):
        tx.close()
    s.restart()
    s.warm_up()
    st = wait_for(lambda: retrying(lambda: describe_txn(s, o.id)),
                  lambda st: st[E] == 0, timeout=30)
    p = wait_for(lambda: fetch(s, t), lambda p: p[E] == 0)
    mine = {c.pid: "c", a.pid: "a", o.pid: "o"}
    after = (st["transaction_state"], st["producer_epoch"] - o.epoch,
             sorted(x["topic"] for x in st["topics"]),
             p["high_watermark"], p["last_stable_offset"],
             sorted(mine.get(pid) for pid, _off in aborted(p) or []), visible(p),
             retrying(lambda: offset_fetch(s, g, t, True), err=lambda v: v[1]))
    n = Tx(s, txid=o.id)
    r = n.init_raw()
    p2 = wait_for(lambda: fetch(s, t), lambda p: p["last_stable_offset"] == 7)
    resumed = (r[E], r["producer_id"] == o.pid, r["producer_epoch"] - o.epoch,
               p2["high_watermark"], p2["last_stable_offset"],
               sorted(mine.get(pid) for pid, _off in aborted(p2) or []), visible(p2),
               wait_for(lambda: offset_fetch(s, g, t, True), lambda v: v[1] == 0))
    c2 = Tx(s, txid=c.id)
    rc = c2.init_raw()
    return before, after, resumed, (rc[E], rc["producer_id"] == c.pid,
                                    rc["producer_epoch"] - c.epoch)


def marker_on_unwritten_partition(commit):
    """two partitions added, records only in p0: EndTxn writes a marker to both"""
    def fn(s):
        t = s.topic_t(partitions=2)
        tx = Tx(s)
        tx.init()
        tx.add({t: [0, 1]})
        tx.produce(t, 0)
        tx.end(commit)
        wait_state(s, tx.id, ("CompleteCommit", "CompleteAbort"))
        out = []
        for part in (0, 1):
            p = wait_for(lambda: fetch(s, t, part), lambda p: p["last_stable_offset"] >= 1)
            out.append((p["high_watermark"], p["last_stable_offset"],
                        [(pid == tx.pid, off) for pid, off in aborted(p) or []],
                        [(b["base"], b["control"]) for b in batches(p["records"])]))
        return out
    return fn


def plain_commit_while_pending(s):
    """a plain OffsetCommit (simple group) while a transactional one is pending, then the
    transaction commits: which offset remains"""
    t = s.topic_t()
    g = s.group()
    tx = Tx(s)
    tx.init()
    tx.add_offsets(g)
    tx.txn_commit(g, t, 0, 5)
    plain = s.commit(g, t, 0, 2)
    mid = (offset_fetch(s, g, t, False), offset_fetch(s, g, t, True))
    tx.end(True)
    wait_state(s, tx.id, ("CompleteCommit",))
    final = wait_for(lambda: offset_fetch(s, g, t, True), lambda v: v[1] == 0)
    return plain, mid, final


def reinit_timeout(s):
    tx = Tx(s, timeout_ms=10000)
    tx.init()
    a = describe_txn(s, tx.id)["transaction_timeout_ms"]
    tx.init(timeout_ms=20000)
    b = describe_txn(s, tx.id)
    return a, b["transaction_timeout_ms"], b["producer_epoch"]


def fetch_between_lso_and_hw(s):
    t = s.topic_t()
    s.fill(t, 2)
    tx = Tx(s)
    tx.init()
    tx.add({t: [0]})
    tx.produce(t, 0, [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])  # 2..4, HW 5
    out = []
    for off in (1, 2, 3, 5, 6):
        p = fetch(s, t, offset=off)
        out.append((off, p[E], p["high_watermark"], p["last_stable_offset"], data_offsets(p),
                    aborted(p)))
    return out


def txn_sequence(first_seq, second_seq):
    def fn(s):
        t = s.topic_t()
        tx = Tx(s)
        tx.init()
        tx.add({t: [0]})
        a = tx.produce_raw(t, 0, seq=first_seq)
        b = tx.produce_raw(t, 0, seq=second_seq) if second_seq is not None else None
        return a[E], None if b is None else b[E], s.list_offsets(t, 0, LATEST)[1]
    return fn


def seq_after_bump(s):
    """after a commit and InitProducerId (epoch+1), the next txn must start again at 0"""
    t = s.topic_t()
    tx = Tx(s)
    tx.init()
    tx.add({t: [0]})
    tx.produce(t, 0, [(b"a", b"1"), (b"b", b"2")])  # seq 0, 1
    tx.end(True)
    tx.init()                                         # epoch + 1, sequences reset
    tx.add({t: [0]})
    cont = tx.produce_raw(t, 0, seq=2)                # continuing the old numbering
    zero = tx.produce_raw(t, 0, seq=0)
    return cont[E], zero[E]


def delete_records_into_open_txn(s):
    """DeleteRecords into the middle of an open transaction, then commit"""
    t = s.topic_t()
    s.fill(t, 2)
    tx = Tx(s)
    tx.init()
    tx.add({t: [0]})
    tx.produce(t, 0, [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])  # 2..4
    d = s.delete_records(t, 0, 3)
    p = fetch(s, t, offset=3)
    mid = (d, p[E], p["high_watermark"], p["last_stable_offset"], p["log_start_offset"],
           data_offsets(p), s.list_offsets(t, 0, -2, isolation=1)[:2],
           s.list_offsets(t, 0, LATEST, isolation=1)[:2])
    tx.end(True)
    p2 = wait_for(lambda: fetch(s, t, offset=3), lambda p: p["last_stable_offset"] == 6)
    return mid, (p2["high_watermark"], p2["last_stable_offset"], data_offsets(p2))


def delete_records_beyond_lso(s):
    """DeleteRecords up to the HW while a transaction is open (beyond the LSO)"""
    t = s.topic_t()
    tx = Tx(s)
    tx.init()
    tx.add({t: [0]})
    tx.produce(t, 0, [(b"a", b"1"), (b"b", b"2")])  # 0, 1
    d = s.delete_records(t, 0, -1)
    p = fetch(s, t, offset=max(d[1], 0))
    return d, p[E], p["high_watermark"], p["last_stable_offset"], p["log_start_offset"]


# ----------------------------------------------------------------- through client libraries
def ck_read(s, topic, committed, n_partitions=1, timeout=30):
    """confluent-kafka consumer (assign from the start) until a non-transactional 'end'
    record on every partition -> sorted values before them"""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": s.bs, "group.id": s.group("reader"), "log_level": 0,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "isolation.level": "read_committed" if committed else "read_uncommitted"})
    c.assign([TopicPartition(topic, p, 0) for p in range(n_partitions)])
    out, ended = [], set()
    deadline = time.monotonic() + timeout
    try:
        while len(ended) < n_partitions and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None or m.error():
                continue
            if m.value() == b"end":
                ended.add(m.partition())
            elif m.partition() not in ended:
                out.append((m.partition(), m.offset(), m.value().decode()))
    finally:
        c.close()
    return sorted(out) if len(ended) == n_partitions else ("timeout", sorted(out))


def end_records(s, topic, n_partitions=1):
    for p in range(n_partitions):
        err, _ = s.produce(topic, [(None, b"end")], partition=p)
        assert err == 0, err


def ck_producer(s, txid, **extra):
    from confluent_kafka import Producer
    conf = {"bootstrap.servers": s.bs, "transactional.id": txid, "log_level": 0,
            "transaction.timeout.ms": 60000}
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(30)
    return p


def ck_commit_abort(s):
    """confluent-kafka: commit 3, abort 2, commit 1; read back both ways"""
    t = s.topic_t()
    p = ck_producer(s, "txid-" + s.topic())
    for vals, commit in ((["c1-0", "c1-1", "c1-2"], True), (["a2-0", "a2-1"], False),
                         (["c3-0"], True)):
        p.begin_transaction()
        for v in vals:
            p.produce(t, value=v.encode(), partition=0)
        p.flush(20)  # the aborted records reach the log (librdkafka purges unsent ones)
        if commit:
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)
    end_records(s, t)
    return ck_read(s, t, True), len(ck_read(s, t, False)), s.list_offsets(t, 0, LATEST,
                                                                          isolation=1)[:2]


def ck_send_offsets(s):
    """confluent-kafka consume-transform-produce: send_offsets_to_transaction, commit; the
    group's committed offset; an aborted second round leaves it"""
    from confluent_kafka import Consumer, TopicPartition
    src = s.topic_t("src")
    dst = s.topic_t("dst")
    s.fill(src, 4)
    g = s.group()
    c = Consumer({"bootstrap.servers": s.bs, "group.id": g, "log_level": 0,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "isolation.level": "read_committed",
                  "partition.assignment.strategy": "range"})
    c.subscribe([src])
    p = ck_producer(s, "txid-" + s.topic())
    try:
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 4 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append(m)
        p.begin_transaction()
        for m in got[:3]:
            p.produce(dst, value=b"out-" + m.value(), partition=0)
        p.send_offsets_to_transaction([TopicPartition(src, 0, got[2].offset() + 1)],
                                      c.consumer_group_metadata(), 30)
        p.commit_transaction(30)
        first = c.committed([TopicPartition(src, 0)], timeout=20)[0].offset
        p.begin_transaction()
        p.produce(dst, value=b"out-" + got[3].value(), partition=0)
        p.flush(20)
        p.send_offsets_to_transaction([TopicPartition(src, 0, got[3].offset() + 1)],
                                      c.consumer_group_metadata(), 30)
        p.abort_transaction(30)
        second = c.committed([TopicPartition(src, 0)], timeout=20)[0].offset
    finally:
        c.close()
    end_records(s, dst)
    return len(got), first, second, [v for _p, _o, v in ck_read(s, dst, True)]


def ck_fenced(s):
    """confluent-kafka: a second producer with the same transactional.id fences the first"""
    from confluent_kafka import KafkaException
    t = s.topic_t()
    txid = "txid-" + s.topic()
    old = ck_producer(s, txid)
    old.begin_transaction()
    old.produce(t, value=b"old", partition=0)
    old.flush(20)
    new = ck_producer(s, txid)
    new.begin_transaction()
    new.produce(t, value=b"new", partition=0)
    new.commit_transaction(30)
    try:
        old.commit_transaction(30)
        outcome = "committed"
    except KafkaException as e:
        err = e.args[0]
        outcome = (err.name(), err.fatal())
    end_records(s, t)
    return outcome, [v for _p, _o, v in ck_read(s, t, True)]


def kp_commit_abort(s):
    """kafka-python 3.0: transactional KafkaProducer commit / abort; read_committed consumer"""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    t = s.topic_t()
    p = KafkaProducer(bootstrap_servers=s.bs, transactional_id="txid-" + s.topic(),
                      transaction_timeout_ms=60000)
    try:
        p.init_transactions()
        for vals, commit in ((["k1-0", "k1-1"], True), (["ka-0"], False), (["k3-0"], True)):
            p.begin_transaction()
            for v in vals:
                p.send(t, value=v.encode(), partition=0)
            p.flush(timeout=20)
            if commit:
                p.commit_transaction()
            else:
                p.abort_transaction()
    finally:
        p.close(timeout=10)
    end_records(s, t)
    c = KafkaConsumer(bootstrap_servers=s.bs, isolation_level="read_committed",
                      enable_auto_commit=False, consumer_timeout_ms=20000)
    tp = TopicPartition(t, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    out = []
    try:
        for m in c:
            if m.value == b"end":
                break
            out.append((m.offset, m.value.decode()))
    finally:
        c.close()
    return out


CASES = [
    # ApiVersions
    *[Case(f"txn/apiversions/{name}", f"ApiVersions: supported versions of {name} ({key})",
           api_range(key), expect=rng) if frng is None else
      Case(f"txn/apiversions/{name}", f"ApiVersions: supported versions of {name} ({key})",
           api_range(key), diff=D(rng, frng, why))
      for key, name, rng, frng, why in [
          (22, "InitProducerId", (0, 5), None, None),
          (24, "AddPartitionsToTxn", (0, 5), (0, 4), TV2 + ": v5 is TV2's"),
          (25, "AddOffsetsToTxn", (0, 4), None, None),
          (26, "EndTxn", (0, 5), (0, 4), TV2 + ": EndTxn v5 (the epoch bump per transaction)"),
          (28, "TxnOffsetCommit", (0, 6), (0, 4), TV2 + "; v6 (topic ids) is not implemented; "
           "clients negotiate the highest common version"),
          (61, "DescribeProducers", (0, 0), None, None),
          (65, "DescribeTransactions", (0, 0), None, None),
          (66, "ListTransactions", (0, 2), (0, 1), "gap: v2 (the transactional id pattern "
           "filter) is not implemented; a listTransactions without a pattern works with v1")]],
    Case("txn/apiversions/transaction.version", "ApiVersions: finalized transaction.version "
         "(min, max level)", finalized_tv, diff=D((2, 2), None, TV2 + " (no finalized "
                                                     "transaction.version at all: TV1 clients)")),
    # FindCoordinator / InitProducerId
    Case("txn/find-coordinator/v4", "FindCoordinator v4 key_type=1 (after retrying 15)",
         find_coord(4), expect=(0, True, "127.0.0.1", True)),
    Case("txn/find-coordinator/v3", "FindCoordinator v3 key_type=1", find_coord(3),
         expect=(0, True, "127.0.0.1", True)),
    Case("txn/init/fresh", "InitProducerId v4 with a new transactional id: epoch 0",
         init_fresh(4), expect=(0, True, 0)),
    Case("txn/init/fresh-v0", "InitProducerId v0 with a new transactional id", init_fresh(0),
         expect=(0, True, 0)),
    Case("txn/init/again", "InitProducerId twice (v4, then v2): same id, epoch 1, then 2",
         init_again),
    Case("txn/init/timeout-too-large", "InitProducerId transaction_timeout_ms=900001",
         init_timeout(900001)),
    Case("txn/init/timeout-max", "InitProducerId transaction_timeout_ms=900000", lambda s: (
        init_timeout(900000)(s)[0])),
    Case("txn/init/timeout-zero", "InitProducerId transaction_timeout_ms=0", init_timeout(0)),
    Case("txn/init/timeout-negative", "InitProducerId transaction_timeout_ms=-1",
         init_timeout(-1)),
    Case("txn/init/kip360-match", "InitProducerId v4 naming the current id+epoch: bump",
         init_kip360(4)),
    Case("txn/init/kip360-match-v3", "InitProducerId v3 naming the current id+epoch: bump",
         init_kip360(3)),
    Case("txn/init/kip360-old-epoch", "InitProducerId v4 naming the current id, epoch-1",
         init_kip360(4, depoch=-1), expect=(90, -1, -1)),
    Case("txn/init/kip360-old-epoch-v3", "InitProducerId v3 naming the current id, epoch-1",
         init_kip360(3, depoch=-1), expect=(47, -1, -1)),
    Case("txn/init/kip360-future-epoch", "InitProducerId v4 naming the current id, epoch+1",
         init_kip360(4, depoch=1)),
    Case("txn/init/kip360-wrong-pid", "InitProducerId v4 naming another producer id",
         init_kip360(4, dpid=1000)),
    Case("txn/init/kip360-unknown-txid", "InitProducerId v4 with a producer id for a never "
         "initialized transactional id", init_kip360(4, fresh=True)),
    Case("txn/init/during-txn", "InitProducerId while a txn is open: aborts it (epoch delta, "
         "state, HW, LSO, aborted list, read_committed data)", init_during_txn),
    # AddPartitionsToTxn
    Case("txn/add/v3", "AddPartitionsToTxn v3: two partitions", add_ok(3)),
    Case("txn/add/v0", "AddPartitionsToTxn v0: two partitions", add_ok(0)),
    Case("txn/add/v4-client", "AddPartitionsToTxn v4 (broker-to-broker form) from a client",
         add_v4(False)),
    Case("txn/add/v4-verify-only", "AddPartitionsToTxn v4 verify_only=true from a client",
         add_v4(True)),
    Case("txn/add/v5-client", "AddPartitionsToTxn v5 from a client", add_v4(False, 5),
         diff=D((0, [(0, 0)], ("Ongoing", [(True, [0])])), CLOSED,
                TV2 + ": AddPartitionsToTxn v5 is not advertised")),
    Case("txn/add/unknown-topic", "AddPartitionsToTxn: a known and an unknown topic",
         add_unknown_topic),
    Case("txn/add/unknown-partition", "AddPartitionsToTxn: partition 7 of a 1-partition topic",
         add_unknown_partition),
    *[Case(f"txn/add/old-epoch-v{v}", f"AddPartitionsToTxn v{v} with epoch-1 (fenced)",
           add_wrong_epoch(v)) for v in (0, 2, 3)],
    Case("txn/add/future-epoch", "AddPartitionsToTxn v3 with epoch+1", add_wrong_epoch(3, 1)),
    Case("txn/add/wrong-pid", "AddPartitionsToTxn v3 with another producer id", add_wrong_pid),
    Case("txn/add/unknown-txid", "AddPartitionsToTxn v3 for an unknown transactional id",
         add_unknown_txid),
    Case("txn/add/twice", "AddPartitionsToTxn: the same partition twice", add_twice),
    # Produce
    *[Case(f"txn/produce/not-added-v{v}", f"Produce v{v}: transactional batch to a partition "
           "not in the txn (error, offset, LEO, txn state)", produce_not_added(v))
      for v in (3, 8, 9, 10, 11)],
    Case("txn/produce/not-added-v12", "Produce v12: transactional batch to a partition not "
         "in the txn", produce_not_added(12),
         diff=D((0, 0, 1, "Ongoing"), (120, -1, 0, "Empty"),
                TV2 + ": Kafka's Produce v12 adds the partition to the transaction itself "
                "(KIP-890 part 2, whatever the finalized level); Fjord answers v12 like v11. "
                "Clients add partitions with AddPartitionsToTxn unless transaction.version>=2 "
                "is finalized")),
    *[Case(f"txn/produce/added-v{v}", f"Produce v{v}: transactional batches to an added "
           "partition", produce_added(v), expect=(0, 0, 0, 2)) for v in (3, 9, 11)],
    Case("txn/produce/after-commit-v9", "Produce v9 after a commit without adding the "
         "partition again", produce_after_commit(9)),
    Case("txn/produce/old-epoch", "Produce a transactional batch with epoch-1",
         produce_wrong_epoch),
    Case("txn/produce/non-transactional-batch", "Produce an idempotent (non-transactional) "
         "batch from a transactional producer inside its txn", produce_non_txn_batch_in_txn),
    # EndTxn
    Case("txn/end/commit", "EndTxn commit after add+produce", end_scenario("pc"), expect=[0]),
    Case("txn/end/abort", "EndTxn abort after add+produce", end_scenario("pa"), expect=[0]),
    Case("txn/end/commit-v0", "EndTxn v0 commit", end_scenario("pc", version=0), expect=[0]),
    Case("txn/end/empty-commit", "EndTxn commit with no partitions added (Empty)",
         end_scenario("c")),
    Case("txn/end/empty-abort", "EndTxn abort with no partitions added (Empty)",
         end_scenario("a")),
    Case("txn/end/commit-retry", "EndTxn commit twice (a retry)", end_scenario("pcc")),
    Case("txn/end/commit-retry-after-complete", "EndTxn commit, wait CompleteCommit, commit",
         end_scenario("pcwc")),
    Case("txn/end/abort-after-commit", "EndTxn commit, then abort", end_scenario("pcwa")),
    Case("txn/end/commit-after-abort", "EndTxn abort, then commit", end_scenario("pawc")),
    Case("txn/end/abort-retry", "EndTxn abort, wait, abort", end_scenario("pawa")),
    Case("txn/end/after-init", "InitProducerId after a commit, then EndTxn commit",
         end_scenario("pcwic")),
    Case("txn/end/two-txns", "two transactions in a row", end_scenario("pcwpa")),
    *[Case(f"txn/end/old-epoch-v{v}", f"EndTxn v{v} commit with epoch-1",
           end_wrong_epoch(v)) for v in (0, 2, 3, 4)],
    Case("txn/end/future-epoch", "EndTxn v3 commit with epoch+1", end_wrong_epoch(3, 1)),
    Case("txn/end/unknown", "EndTxn for an unknown transactional id; with another producer id",
         end_unknown),
    Case("txn/end/v5", "EndTxn v5 commit (TV2: answers the bumped epoch)", end_v5,
         diff=D((0, True, 1), CLOSED, TV2 + ": EndTxn v5 is not advertised (the connection is "
                "closed, as Kafka does for any version it does not advertise)")),
    Case("txn/fenced", "a second producer's InitProducerId fences the first (epoch delta, "
         "produce, EndTxn v3, AddPartitions)", fenced_by_new_producer(3)),
    Case("txn/fenced-v1", "the same with EndTxn v1 / AddPartitionsToTxn v1",
         fenced_by_new_producer(1)),
    # Offsets in transactions
    Case("txn/offsets/commit", "AddOffsetsToTxn + TxnOffsetCommit v3, OffsetFetch "
         "require_stable (v8, v8 unstable off, v7) while pending, then after EndTxn commit",
         offsets_txn(True)),
    Case("txn/offsets/abort", "the same, EndTxn abort", offsets_txn(False)),
    Case("txn/offsets/v0", "AddOffsetsToTxn v0 + TxnOffsetCommit v0, commit", offsets_txn(True, 0)),
    Case("txn/offsets/without-add-offsets", "TxnOffsetCommit without AddOffsetsToTxn",
         txn_commit_without_add_offsets),
    Case("txn/offsets/add-errors", "AddOffsetsToTxn: unknown id; other pid; epoch-1 (v3, v0)",
         add_offsets_errors),
    Case("txn/offsets/commit-old-epoch", "TxnOffsetCommit with epoch-1 (v3, v0)",
         txn_commit_wrong_epoch),
    # Fetch / ListOffsets
    Case("txn/fetch/open-read-committed", "Fetch+ListOffsets read_committed while a txn is "
         "open (2 plain + 3 txn records)", fetch_open_txn(1)),
    Case("txn/fetch/open-read-uncommitted", "Fetch+ListOffsets read_uncommitted while a txn "
         "is open", fetch_open_txn(0)),
    Case("txn/fetch/after-commit", "Fetch read_committed after commit: HW, LSO, aborted, "
         "batches, ListOffsets", fetch_after(True)),
    Case("txn/fetch/after-abort", "Fetch read_committed after abort", fetch_after(False)),
    Case("txn/fetch/after-abort-uncommitted", "Fetch read_uncommitted after abort",
         fetch_after(False, 0)),
    Case("txn/fetch/control-commit", "COMMIT marker: control record key/value bytes",
         control_record(True)),
    Case("txn/fetch/control-abort", "ABORT marker: control record key/value bytes",
         control_record(False)),
    Case("txn/fetch/two-producers", "LSO with two producers' transactions on one partition",
         two_producers_lso),
    Case("txn/fetch/aborted-range", "aborted_transactions when fetching before / after the "
         "aborted txn", aborted_fetch_from_middle),
    # Describe / List
    Case("txn/describe/lifecycle", "DescribeTransactions: Empty, Ongoing, CompleteCommit, "
         "CompleteAbort", txn_lifecycle_states),
    Case("txn/describe/unknown", "DescribeTransactions for an unknown id", describe_unknown),
    Case("txn/list/v0", "ListTransactions v0: filters by producer id and state (one Ongoing, "
         "one Empty)", list_txns([0])),
    Case("txn/list/v1", "ListTransactions v1: duration filters 1 h, 0, -1; Ongoing + 0",
         list_txns([1])),
    Case("txn/list/v2", "ListTransactions v2: transactional id patterns", list_txns([2]),
         diff=D([(0, [], [("a", True, "Ongoing")]),
                 (0, [], [("a", True, "Ongoing"), ("b", True, "Empty")]),
                 (0, [], [("a", True, "Ongoing"), ("b", True, "Empty")])], CLOSED,
                "gap: ListTransactions v2 (transactional id pattern) is not advertised")),
    Case("txn/list/bad-pattern", "ListTransactions v2 with an invalid regex",
         list_txns_bad_pattern,
         diff=D((128, []), CLOSED, "gap: ListTransactions v2 is not advertised")),
    Case("txn/describe-producers", "DescribeProducers: open txn, after commit; unknown "
         "partition", describe_producers),
    Case("txn/describe-producers/unknown-topic", "DescribeProducers for an unknown topic",
         describe_producers_unknown),
    Case("txn/timeout-abort", "transaction.timeout.ms=2000: aborted by the coordinator, "
         "producer fenced", timeout_abort),
    Case("txn/add/v4-verify-only-not-added", "AddPartitionsToTxn v4 verify_only for an added "
         "and a not added partition", add_verify_only_not_added),
    Case("txn/add/internal-topic", "AddPartitionsToTxn: __consumer_offsets", add_internal_topic,
         expect=[29]),
    Case("txn/produce/other-txid", "Produce (added partition) whose request names another "
         "transactional id", produce_txid_variants("-other")),
    Case("txn/produce/null-txid", "Produce (added partition) of a transactional batch with "
         "transactional_id null", produce_txid_variants(None), expect=(53, 0)),
    Case("txn/produce/acks-1", "transactional Produce with acks=1", produce_acks(1)),
    Case("txn/produce/mixed", "one Produce: an added partition and one not added",
         produce_mixed),
    Case("txn/produce/gzip", "a gzip transactional batch, committed", produce_compressed_txn),
    Case("txn/offsets/member-generation", "TxnOffsetCommit v3 with a live member: wrong "
         "generation, unknown member, -1/'' , right", txn_commit_member),
    Case("txn/offsets/timeout-abort", "pending transactional offsets when the transaction "
         "times out", offsets_timeout_abort),
    Case("txn/init/idempotent-timeout", "InitProducerId (no transactional id) with "
         "transaction_timeout_ms=900001", init_idempotent_timeout),
    Case("txn/find-coordinator/batched", "FindCoordinator v4 key_type=1 for three ids",
         find_coordinator_batched),
    Case("txn/describe/many", "DescribeTransactions for a known and an unknown id",
         describe_many),
    *[Case(f"txn/fetch/aborted-v{v}", f"Fetch v{v} read_committed after an abort",
           fetch_old_versions(v)) for v in (4, 5, 7, 11)],
    *[Case(f"txn/list-offsets/v{v}", f"ListOffsets v{v} latest read_committed / uncommitted "
           "with an open txn", list_offsets_versions(v)) for v in (2, 5, 9)],
    Case("txn/client/confluent-commit-abort", "confluent-kafka transactional producer: commit, "
         "abort, commit; read_committed / read_uncommitted / LSO", ck_commit_abort),
    Case("txn/client/confluent-send-offsets", "confluent-kafka send_offsets_to_transaction: "
         "committed, then an aborted round", ck_send_offsets),
    Case("txn/client/confluent-fenced", "confluent-kafka: a second producer with the same "
         "transactional.id fences the first", ck_fenced),
    Case("txn/client/kafka-python", "kafka-python transactional KafkaProducer commit / abort, "
         "read_committed KafkaConsumer", kp_commit_abort),
    Case("txn/fetch/aborted-limited", "aborted_transactions of a Fetch limited to its first "
         "batch (max_bytes=1) vs the whole log", aborted_limited_fetch),
    Case("txn/describe-producers/idempotent", "DescribeProducers for an idempotent "
         "(non-transactional) producer", describe_producers_idempotent),
    Case("txn/end/marker-unwritten-partition", "commit: two partitions added, records in p0 "
         "only: markers on both", marker_on_unwritten_partition(True)),
    Case("txn/end/marker-unwritten-partition-abort", "the same, abort",
         marker_on_unwritten_partition(False)),
    Case("txn/offsets/plain-commit-while-pending", "a plain OffsetCommit while a "
         "transactional one is pending; after the commit", plain_commit_while_pending),
    Case("txn/init/reinit-timeout", "InitProducerId again with another timeout: "
         "DescribeTransactions shows it", reinit_timeout),
    Case("txn/fetch/between-lso-and-hw", "Fetch read_committed from offsets below, at, "
         "between LSO and HW, at HW, beyond", fetch_between_lso_and_hw),
    Case("txn/produce/seq-gap", "transactional Produce seq 0 then seq 5", txn_sequence(0, 5)),
    Case("txn/produce/seq-first-not-0", "transactional Produce whose first seq is 3",
         txn_sequence(3, None)),
    Case("txn/produce/seq-duplicate", "the same transactional batch (seq 0) twice",
         txn_sequence(0, 0)),
    Case("txn/produce/seq-after-bump", "after commit + InitProducerId: seq 2 (old numbering) "
         "then seq 0", seq_after_bump),
    Case("txn/delete-records/into-open-txn", "DeleteRecords to offset 3 inside an open "
         "transaction (2..4), then commit", delete_records_into_open_txn),
    Case("txn/delete-records/to-hw-open-txn", "DeleteRecords to the HW (-1) while a "
         "transaction is open", delete_records_beyond_lso),
]


@pytest.mark.parametrize("case", params(CASES, "transactions"))
def test_transactions(pair, case):
    check(pair, case)
