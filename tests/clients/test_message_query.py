"""Message query (R4): `GET /v1/topics/{topic}/messages` and `fjord message get` find records
by Kafka key or KEYS value, by message id (UNIQ_KEY), by partition:offset and by time, across
partitions and compressed batches, written by confluent-kafka."""
import json
import time
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest
from confluent_kafka import Producer

import kutil
from conftest import fjord_bin

# Record timestamps: an hour back, one second apart (Kafka refuses times far ahead of now).
BASE_MS = (int(time.time()) - 3600) * 1000
PLAIN_MS = BASE_MS + 400_000


def produce(bootstrap, topic, messages, compression="none"):
    p = Producer({"bootstrap.servers": bootstrap, "compression.type": compression, "linger.ms": 50})
    errors = []
    for m in messages:
        p.produce(topic, on_delivery=lambda e, _m: e and errors.append(e), **m)
    assert p.flush(30) == 0
    assert not errors, errors


def http_get(broker, topic, **params):
    q = urllib.parse.urlencode(params)
    url = f"http://{broker.host}:{broker.http_port}/v1/topics/{urllib.parse.quote(topic)}/messages?{q}"
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def cli(broker, *args):
    r = subprocess.run([fjord_bin(), "message", "get", "--http", f"{broker.host}:{broker.http_port}", *args],
                       capture_output=True, timeout=60)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


@pytest.fixture
def orders(broker, topic_name):
    """Three partitions; gzip and uncompressed batches; keys, KEYS and UNIQ_KEY headers."""
    kutil.create_topic(broker.bootstrap, topic_name, partitions=3)
    produce(broker.bootstrap, topic_name, [
        {"key": b"order-%d" % (i % 10), "value": b"v%d" % i, "partition": i % 3,
         "headers": [("UNIQ_KEY", b"ID-%04d" % i), ("KEYS", b"cust-%d  shop-%d" % (i % 7, i % 2))],
         "timestamp": BASE_MS + i * 1000}
        for i in range(300)], compression="gzip")
    produce(broker.bootstrap, topic_name, [
        {"key": None, "value": b"plain", "partition": 1, "headers": [("KEYS", b"order-3")],
         "timestamp": PLAIN_MS}])
    return topic_name


def test_by_key_matches_kafka_key_and_keys_values_in_every_partition(broker, orders):
    status, body = http_get(broker, orders, key="order-3", limit=1000)
    assert status == 200, body
    values = sorted(m["value"] for m in body["messages"])
    assert values == sorted([f"v{i}" for i in range(300) if i % 10 == 3] + ["plain"])
    assert {m["partition"] for m in body["messages"]} == {0, 1, 2}
    assert body["truncated"] is False
    # a KEYS value, not a substring of one
    status, body = http_get(broker, orders, key="cust-4", limit=1000)
    assert sorted(m["value"] for m in body["messages"]) == sorted(f"v{i}" for i in range(300) if i % 7 == 4)
    status, body = http_get(broker, orders, key="cust", limit=1000)
    assert status == 200 and body["messages"] == []


def test_by_id_gives_the_record_with_its_place_and_headers(broker, orders):
    status, body = http_get(broker, orders, id="ID-0124")
    assert status == 200, body
    (m,) = body["messages"]
    assert (m["partition"], m["key"], m["value"], m["timestamp"]) == (124 % 3, "order-4", "v124", BASE_MS + 124_000)
    assert ["UNIQ_KEY", "ID-0124"] in m["headers"] and ["KEYS", "cust-5  shop-0"] in m["headers"]
    # the offset it reports is where the record is
    status, again = http_get(broker, orders, partition=m["partition"], offset=m["offset"])
    assert again["messages"] == [m]


def test_by_offset_and_by_time(broker, orders):
    status, body = http_get(broker, orders, partition=2, offset=5)
    assert status == 200 and [(m["partition"], m["offset"], m["value"]) for m in body["messages"]] == [(2, 5, "v17")]
    status, body = http_get(broker, orders, partition=2, offset=10_000)
    assert status == 200 and body["messages"] == []
    status, body = http_get(broker, orders, time=BASE_MS + 150_500)
    got = sorted((m["partition"], m["value"]) for m in body["messages"])
    assert got == [(0, "v153"), (1, "v151"), (2, "v152")]
    status, body = http_get(broker, orders, time=PLAIN_MS + 1)
    assert status == 200 and body["messages"] == []


def test_limit_cuts_and_says_so(broker, orders):
    status, body = http_get(broker, orders, key="shop-1", limit=5)
    assert status == 200 and len(body["messages"]) == 5 and body["truncated"] is True


@pytest.mark.parametrize("params,code", [
    ({}, 400), ({"key": "a", "id": "b"}, 400), ({"key": ""}, 400), ({"partition": "0"}, 400),
    ({"partition": "x", "offset": "1"}, 400), ({"partition": "7", "offset": "0"}, 404)])
def test_bad_queries_are_refused(broker, orders, params, code):
    status, body = http_get(broker, orders, **params)
    assert status == code, body


def test_unknown_topic_is_404(broker):
    status, body = http_get(broker, "no-such-topic-here", key="k")
    assert status == 404 and "error" in body


def test_cli_text_and_json(broker, orders):
    rc, out, err = cli(broker, orders, "--id", "ID-0007")
    assert rc == 0, err
    assert f"partition 1 offset 2 timestamp {BASE_MS + 7000}" in out
    assert "  key: order-7" in out and "  header UNIQ_KEY: ID-0007" in out and "  value: v7" in out
    rc, out, err = cli(broker, orders, "--key", "order-3", "--limit", "3", "--format", "json")
    assert rc == 0, err
    parsed = json.loads(out)
    assert len(parsed["messages"]) == 3 and parsed["truncated"] is True
    rc, out, err = cli(broker, orders, "--offset", "0:0")
    assert rc == 0 and "  value: v0" in out, (out, err)
    rc, out, err = cli(broker, orders, "--time", str(BASE_MS + 299_000))
    # partition 2's last record, and the later record of partition 1; partition 0 has none
    assert rc == 0 and out.count("partition ") == 2 and "v299" in out and "value: plain" in out, (out, err)
    rc, out, err = cli(broker, orders, "--id", "nope")
    assert rc == 1 and "no record matches" in err
    rc, out, err = cli(broker, orders, "--offset", "zero")
    assert rc == 1 and "PARTITION:OFFSET" in err
    rc, out, err = cli(broker, orders, "--key", "a", "--id", "b")
    assert rc == 2
