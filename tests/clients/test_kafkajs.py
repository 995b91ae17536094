"""kafkajs 2.2.4 (Node) producer and admin, via scripts in tests/clients/js.

kafkajs consumers need consumer groups (not implemented by fjord yet), so data
produced by kafkajs is read back with confluent-kafka.
"""

import json
import subprocess
from pathlib import Path

import pytest

import kutil
from kutil import node

JS_DIR = Path(__file__).resolve().parent / "js"


def test_kafkajs_produce(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    rc, out, err = node("produce.js", broker.bootstrap, topic_name)
    assert rc == 0, (out, err)
    res = {r["batch"]: r["records"] for r in out["results"]}
    assert [(r["partition"], r["errorCode"], r["baseOffset"]) for r in res["acks-all"]] == [(0, 0, "0")]
    assert [(r["errorCode"], r["baseOffset"]) for r in res["acks-1"]] == [(0, "3")]
    assert [(r["errorCode"], r["baseOffset"]) for r in res["gzip"]] == [(0, "4")]
    assert [(r["errorCode"], r["baseOffset"]) for r in res["sendBatch"]] == [(0, "104")]

    got = kutil.consume(broker.bootstrap, topic_name, 106)
    assert [m.offset() for m in got] == list(range(106))
    assert (got[0].key(), got[0].value()) == (b"k0", b"acks-all-0")
    assert got[0].headers() == [("h", b"v0"), ("multi", b"a"), ("multi", b"b")]
    assert (got[1].key(), got[1].value()) == (None, b"acks-all-1")
    assert (got[2].key(), got[2].value()) == (b"k2", None)
    assert (got[3].key(), got[3].value(), got[3].timestamp()[1]) == (b"k3", b"acks-1", 1_600_000_000_000)
    assert [(m.key(), m.value()) for m in got[4:104]] == [
        (b"gz%d" % i, b"gzip-%d-" % i + b"y" * i) for i in range(100)
    ]
    assert [m.value() for m in got[104:]] == [b"batch-a", b"batch-b"]


def test_kafkajs_produce_unknown_topic_without_autocreate(make_broker, topic_name):
    b = make_broker("--auto-create-topics", "false")
    rc, out, err = node("produce.js", b.bootstrap, topic_name)
    assert rc != 0, out
    assert "error" in out
    assert "UNKNOWN_TOPIC_OR_PARTITION" in out.get("type", "") or "does not host this topic-partition" in out["error"], out


def test_kafkajs_admin(broker, topic_name):
    rc, out, err = node("admin.js", broker.bootstrap, topic_name)
    assert rc == 0, (out, err)

    def ok(name):
        assert out[name]["ok"], (name, out[name])
        return out[name].get("value")  # JSON drops undefined

    def failed_with(name, kafka_type):
        assert not out[name]["ok"], (name, out[name])
        assert kafka_type in out[name]["error"]["types"], (name, out[name]["error"])

    assert ok("createTopics") is True
    assert ok("createTopicsAgain") is False  # kafkajs maps TOPIC_ALREADY_EXISTS to false
    failed_with("createTopicsRF2", "INVALID_REPLICATION_FACTOR")
    assert topic_name in ok("listTopics")
    assert topic_name + "-rf2" not in ok("listTopics")

    (t,) = ok("fetchTopicMetadata")["topics"]
    assert t["name"] == topic_name
    assert sorted(p["partitionId"] for p in t["partitions"]) == [0, 1, 2]
    assert all(p["leader"] == 1 and p["replicas"] == [1] and p["isr"] == [1] for p in t["partitions"])

    def configs(name):
        (resource,) = ok(name)["resources"]
        assert resource["errorCode"] == 0, resource
        return {c["configName"]: c["configValue"] for c in resource["configEntries"]}

    assert configs("describeConfigs") == {"retention.ms": "3600000", "cleanup.policy": "delete"}
    ok("alterConfigs")
    assert configs("describeConfigsAfter")["retention.ms"] == "7200000"
    failed_with("alterConfigsInvalid", "INVALID_CONFIG")

    (prod,) = ok("produce")
    assert (prod["partition"], prod["errorCode"], prod["baseOffset"]) == (1, 0, "0")
    offs = {o["partition"]: (o["low"], o["high"], o["offset"]) for o in ok("fetchTopicOffsets")}
    assert offs == {0: ("0", "0", "0"), 1: ("0", "5", "5"), 2: ("0", "0", "0")}
    # first offset whose timestamp >= 1700000002500 is m3 (offset 3); empty partitions -> end (0)
    by_ts = {o["partition"]: o["offset"] for o in ok("fetchTopicOffsetsByTimestamp")}
    assert by_ts[1] == "3", by_ts

    ok("createPartitions")
    (t,) = ok("fetchTopicMetadataAfter")["topics"]
    assert len(t["partitions"]) == 5

    cluster = ok("describeCluster")
    assert [(b["nodeId"], b["host"], b["port"]) for b in cluster["brokers"]] == [(1, "127.0.0.1", broker.port)]
    assert cluster["controller"] == 1

    ok("deleteTopics")
    assert topic_name not in ok("listTopicsAfter")
