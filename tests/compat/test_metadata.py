"""ApiVersions, Metadata, DescribeCluster, malformed/unsupported requests: Kafka vs Fjord."""

import re
import struct
import time

import pytest

import kw
from compat import Case, D, check, params

E = "error_code"
ZERO_UUID = "00000000-0000-0000-0000-000000000000"

# Every API Fjord advertises: (key, name, Kafka 4.4.0 range, Fjord range if it differs)
LAG = ("Fjord implements fewer versions of this API than Kafka 4.4.0; clients negotiate the "
       "highest common version (not an error)")
APIS = [
    (0, "Produce", (0, 13), (3, 13), "harmless: Kafka 4.4.0 still advertises Produce v0-v2 "
     "but closes the connection on them (KIP-896, see produce/v2); Fjord advertises only what "
     "it accepts"),
    (1, "Fetch", (4, 18), (4, 17), LAG),
    (2, "ListOffsets", (1, 11), (1, 10), LAG),
    (3, "Metadata", (0, 13), None, None),
    (8, "OffsetCommit", (2, 10), (2, 9), LAG),
    (9, "OffsetFetch", (1, 10), (1, 9), LAG),
    (10, "FindCoordinator", (0, 6), None, None),
    (11, "JoinGroup", (0, 9), None, None),
    (12, "Heartbeat", (0, 4), None, None),
    (13, "LeaveGroup", (0, 5), None, None),
    (14, "SyncGroup", (0, 5), None, None),
    (15, "DescribeGroups", (0, 6), None, None),
    (16, "ListGroups", (0, 5), None, None),
    (18, "ApiVersions", (0, 5), (0, 4), LAG),
    (19, "CreateTopics", (2, 7), None, None),
    (20, "DeleteTopics", (1, 6), None, None),
    (21, "DeleteRecords", (0, 2), None, None),
    (22, "InitProducerId", (0, 5), None, None),
    # transactions: test_transactions.py (txn/apiversions/*) says why the ranges differ
    (24, "AddPartitionsToTxn", (0, 5), (0, 4), "deliberate: v5 belongs to transaction.version 2 "
     "(KIP-890), which Fjord does not implement or advertise"),
    (25, "AddOffsetsToTxn", (0, 4), None, None),
    (26, "EndTxn", (0, 5), (0, 4), "deliberate: v5 belongs to transaction.version 2"),
    (27, "WriteTxnMarkers", (1, 2), (1, 1), LAG),
    (28, "TxnOffsetCommit", (0, 6), (0, 4), "deliberate: v5 belongs to transaction.version 2; "
     "v6 (topic ids) is not implemented"),
    (32, "DescribeConfigs", (1, 4), None, None),
    (33, "AlterConfigs", (0, 2), None, None),
    (35, "DescribeLogDirs", (1, 5), (1, 4), LAG),
    (37, "CreatePartitions", (0, 3), None, None),
    (42, "DeleteGroups", (0, 3), (0, 2), LAG),
    (44, "IncrementalAlterConfigs", (0, 1), None, None),
    (47, "OffsetDelete", (0, 0), None, None),
    (60, "DescribeCluster", (0, 2), (0, 1), LAG),
    (61, "DescribeProducers", (0, 0), None, None),
    (65, "DescribeTransactions", (0, 0), None, None),
    (66, "ListTransactions", (0, 2), (0, 1), LAG),
    # share groups (KIP-932); v2 of ShareFetch/ShareAcknowledge (RENEW acknowledgements,
    # record_limit acquisition) is not implemented
    (76, "ShareGroupHeartbeat", (1, 1), None, None),
    (77, "ShareGroupDescribe", (1, 1), None, None),
    (78, "ShareFetch", (1, 2), (1, 1), LAG),
    (79, "ShareAcknowledge", (1, 2), (1, 1), LAG),
    (90, "DescribeShareGroupOffsets", (0, 1), (0, 0), "v1 adds the lag per partition, which "
     "Fjord does not serve; clients negotiate v0"),
    (91, "AlterShareGroupOffsets", (0, 0), None, None),
    (92, "DeleteShareGroupOffsets", (0, 0), None, None),
]

# APIs Kafka 4.4.0 advertises on a broker listener that Fjord does not (yet)
KAFKA_ONLY = [17, 23, 29, 30, 31, 34, 36, 38, 39, 40, 41, 43, 45, 46, 48, 49, 50, 51, 55, 57,
              64, 68, 69, 74, 75, 80, 81, 83, 84, 85, 86, 87, 88, 89, 93, 94]

_cache = {}


def ranges(s):
    if s.bs not in _cache:
        _cache[s.bs] = {a["api_key"]: (a["min_version"], a["max_version"])
                        for a in kw.api_versions(s.bs)["api_keys"]}
    return _cache[s.bs]


def api_range(key):
    return lambda s: ranges(s).get(key)


def api_cases():
    out = []
    for key, name, krange, frange, why in APIS:
        what = f"ApiVersions: supported versions of {name} ({key})"
        if frange is None:
            out.append(Case(f"apiversions/{name}", what, api_range(key), expect=krange))
        else:
            out.append(Case(f"apiversions/{name}", what, api_range(key),
                            diff=D(krange, frange, why)))
    return out


def unsupported_api_versions(s):
    """ApiVersions v99 (KIP-511): error 35 and, v0-encoded, at least ApiVersions' own range"""
    body = kw.raw_call(s.bs, kw.header_v1(18, 99, 5) + b"\x00")
    if body is None:
        return "closed"
    cid, err, n = struct.unpack(">ihi", body[:10])
    keys = {}
    for i in range(n):
        k, lo, hi = struct.unpack(">hhh", body[10 + 6 * i:16 + 6 * i])
        keys[k] = (lo, hi)
    return cid, err, 18 in keys, keys.get(18, (None,))[0], len(keys)


def api_versions_v(version):
    def fn(s):
        r = kw.api_versions(s.bs, version)
        return r[E], r.get("throttle_time_ms", 0), len(r["api_keys"]) > 0
    return fn


def raw(payload):
    return lambda s: kw.raw_call(s.bs, payload, timeout=5)


def cluster_id_shape(s):
    cid = s.metadata([])["cluster_id"]
    return bool(cid) and len(cid), bool(re.fullmatch(r"[A-Za-z0-9_-]{22}", cid or ""))


def md_brokers(s):
    md = s.metadata([])
    return [(b["node_id"], b["host"], b["port"] == int(s.bs.rsplit(":", 1)[1]), b["rack"])
            for b in md["brokers"]], md["controller_id"]


def md_partitions(s):
    n = s.topic_t(partitions=3)
    t = s.metadata([n])["topics"][0]
    return (t[E], t["is_internal"], t["topic_id"] not in (None, ZERO_UUID),
            [(p["partition_index"], p[E], p["leader_id"], p["leader_epoch"], p["replica_nodes"],
              p["isr_nodes"], p["offline_replicas"]) for p in t["partitions"]])


def ensure_offsets_topic(s):
    n = s.topic_t("co")
    assert s.commit(s.group(), n, 0, 1) == 0


def md_consumer_offsets(s):
    ensure_offsets_topic(s)
    t = s.metadata(["__consumer_offsets"])["topics"][0]
    return t[E], t["is_internal"], len(t["partitions"])


def md_all_topics_lists(s):
    ensure_offsets_topic(s)
    n = s.topic_t()
    names = {t["name"]: t["is_internal"] for t in s.metadata(None)["topics"]}
    return names.get(n), names.get("__consumer_offsets")


def md_topic_id_stable(s):
    n = s.topic_t()
    a = s.metadata([n])["topics"][0]["topic_id"]
    b = s.create_raw(n)  # exists
    return a == s.metadata([n])["topics"][0]["topic_id"], b[E]


def md_auto_create(s):
    n = s.topic("auto")
    first = s.metadata([n], allow_auto=True)["topics"][0][E]
    t = s.wait_topic(n)
    # Kafka's first answer races its controller: 3 UNKNOWN_TOPIC_OR_PARTITION or 5
    # LEADER_NOT_AVAILABLE, both "retry" to a client.
    return ("retry" if first in (3, 5) else first), len(t["partitions"])


def md_by_id(s):
    n = s.topic_t()
    tid = s.metadata([n])["topics"][0]["topic_id"]
    r = s.call("Metadata", 12, topics=[{"name": None, "topic_id": tid}],
               allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    t = r["topics"][0]
    return t[E], t["name"] == n


def md_unknown_id(s):
    r = s.call("Metadata", 12, topics=[{"name": None, "topic_id":
                                        "11111111-2222-3333-4444-555555555555"}],
               allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    return r["topics"][0][E]


def md_authorized_ops(s):
    n = s.topic_t()
    r = s.call("Metadata", 12, topics=[{"name": n, "topic_id": None}],
               allow_auto_topic_creation=False, include_topic_authorized_operations=True)
    return r["topics"][0]["authorized_operations"]


def md_not_requested_ops(s):
    n = s.topic_t()
    return s.metadata([n])["topics"][0]["authorized_operations"]


def md_old_version(version):
    def fn(s):
        n = s.topic_t()
        md = s.metadata([n], version=version)
        t = md["topics"][0]
        return t[E], len(t["partitions"]), md.get("controller_id"), bool(md.get("cluster_id", 1))
    return fn


def describe_cluster(endpoint_type=1, ops=False):
    def fn(s):
        r = s.call("DescribeCluster", 1, include_cluster_authorized_operations=ops,
                   endpoint_type=endpoint_type)
        md = s.metadata([])
        out = (r[E], r["endpoint_type"], r["controller_id"], r["cluster_id"] == md["cluster_id"],
               [(b["broker_id"], b["host"], b["rack"]) for b in r["brokers"]])
        return (out + (r["authorized_operations"],)) if ops else out
    return fn


def metadata_v(version):
    return kw.header_v1(3, version, 9) + (b"\x00" if version >= 9 else b"")


CASES = api_cases() + [
    Case("apiversions/kafka-only-apis", "ApiVersions: APIs Kafka 4.4.0 has and Fjord does not",
         lambda s: sorted(set(ranges(s)) - {a[0] for a in APIS}) if s.name == "kafka" else
         sorted(k for k in KAFKA_ONLY if k in ranges(s)),
         diff=D(KAFKA_ONLY, [], "known gaps: OffsetForLeaderEpoch (23), "
                "ACLs (29-31), SASL (17, 36), quotas, reassignment, KIP-848 consumer groups "
                "(68, 69), share group state (80-84), streams groups (88, 89), ...; clients "
                "only use what ApiVersions lists")),
    Case("apiversions/v0", "ApiVersions v0: error 0, keys listed", api_versions_v(0),
         expect=(0, 0, True)),
    Case("apiversions/v3", "ApiVersions v3 (KIP-511 client name): error 0", api_versions_v(3),
         expect=(0, 0, True)),
    Case("apiversions/unsupported-version", "ApiVersions v99: UNSUPPORTED_VERSION (35), v0 body",
         unsupported_api_versions,
         diff=D((5, 35, True, 0, 1), (5, 35, True, 0, 41),
                "harmless: both answer 35 with ApiVersions' own range (all a client reads "
                "before retrying); Kafka lists only ApiVersions, Fjord lists every API")),
    Case("wire/unknown-api-key", "Request with unknown api key 999: connection closed",
         raw(kw.header_v1(999, 0, 5)), expect=None),
    Case("wire/metadata-v99", "Metadata v99: connection closed", raw(metadata_v(99)),
         expect=None),
    Case("metadata/cluster-id", "Metadata: cluster id present (22-char base64 UUID)",
         cluster_id_shape, expect=(22, True)),
    Case("metadata/brokers", "Metadata: the broker list and controller id", md_brokers,
         expect=([(1, "127.0.0.1", True, None)], 1)),
    Case("metadata/partitions", "Metadata: 3 partitions, leader, epoch, replicas, isr, topic id",
         md_partitions),
    Case("metadata/consumer-offsets", "Metadata: __consumer_offsets is_internal, 50 partitions",
         md_consumer_offsets, expect=(0, True, 50)),
    Case("metadata/all-topics", "Metadata (all topics): lists user and internal topics",
         md_all_topics_lists, expect=(False, True)),
    Case("metadata/topic-id-stable", "Metadata: topic id unchanged after a refused re-create",
         md_topic_id_stable, expect=(True, 36)),
    Case("metadata/unknown-topic", "Metadata: unknown topic (no auto-create)",
         lambda s: s.metadata([s.topic()])["topics"][0][E], expect=3),
    Case("metadata/invalid-name", "Metadata: invalid topic name",
         lambda s: s.metadata(["bad/name"])["topics"][0][E], expect=17),
    Case("metadata/invalid-name-auto", "Metadata: invalid topic name with auto-create",
         lambda s: s.metadata(["bad/name"], allow_auto=True)["topics"][0][E], expect=17),
    Case("metadata/auto-create", "Metadata with allow_auto_topic_creation: first answer, then",
         md_auto_create,
         diff=D(("retry", 1), (0, 1), "harmless: Fjord creates the topic before answering; "
                "Kafka (KRaft) answers UNKNOWN_TOPIC_OR_PARTITION or LEADER_NOT_AVAILABLE while "
                "the controller creates it and clients retry; both then have the topic with 1 "
                "partition")),
    Case("metadata/empty-list", "Metadata with an empty topic list: no topics",
         lambda s: s.metadata([])["topics"], expect=[]),
    Case("metadata/by-topic-id", "Metadata v12 by topic id", md_by_id),
    Case("metadata/unknown-topic-id", "Metadata v12: unknown topic id", md_unknown_id,
         expect=100),
    Case("metadata/v1", "Metadata v1 (old clients)", md_old_version(1)),
    Case("metadata/v4", "Metadata v4", md_old_version(4)),
    Case("metadata/authorized-ops-not-requested", "Metadata v12: authorized ops not requested",
         md_not_requested_ops, expect=None),
    Case("metadata/authorized-ops", "Metadata v12: include_topic_authorized_operations",
         md_authorized_ops, expect={3, 4, 5, 6, 7, 8, 10, 11}),
    Case("cluster/describe", "DescribeCluster: error, endpoint type, controller, brokers",
         describe_cluster(), expect=(0, 1, 1, True, [(1, "127.0.0.1", None)])),
    Case("cluster/describe-controllers", "DescribeCluster endpoint_type=2 (controllers) sent "
         "to a broker", lambda s: describe_cluster(2)(s)[0], expect=114),
    Case("cluster/authorized-ops", "DescribeCluster: include_cluster_authorized_operations",
         lambda s: describe_cluster(ops=True)(s)[-1], expect={5, 7, 8, 9, 10, 11, 12}),
]


@pytest.mark.parametrize("case", params(CASES, "metadata"))
def test_metadata(pair, case):
    check(pair, case)
