"""kcat (Debian 12: kcat 1.7.1 on librdkafka 2.0.2) against the real broker."""

import json
import shutil
import subprocess

import pytest

import kutil

pytestmark = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed (scripts/test-all installs it)")


def kcat(bootstrap, *args, input=None, timeout=30, check=True):
    cmd = ["kcat", "-b", bootstrap, "-X", "log_level=3", *args]
    r = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {r.returncode}\nstdout: {r.stdout[-2000:]!r}\nstderr: {r.stderr[-2000:]!r}"
        )
    return r


def consume_json(bootstrap, topic, *extra):
    r = kcat(bootstrap, "-C", "-t", topic, "-e", "-J", *extra)
    return [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]


def test_quickstart_roundtrip(broker, topic_name):
    """README quick start: produce lines with -P, read them back with -C -e."""
    lines = [f"hello {i}" for i in range(10)]
    kcat(broker.bootstrap, "-P", "-t", topic_name, input=("\n".join(lines) + "\n").encode())
    r = kcat(broker.bootstrap, "-C", "-t", topic_name, "-e", "-q")
    assert r.stdout.decode().splitlines() == lines


def test_quickstart_topic_named_demo(make_broker):
    b = make_broker()
    kcat(b.bootstrap, "-P", "-t", "demo", input=b"one\ntwo\nthree\n")
    r = kcat(b.bootstrap, "-C", "-t", "demo", "-e", "-q")
    assert r.stdout.decode().splitlines() == ["one", "two", "three"]


def test_metadata_list(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name, partitions=3)
    r = kcat(broker.bootstrap, "-L", "-J")
    md = json.loads(r.stdout)
    assert [b["id"] for b in md["brokers"]] == [1]
    assert md["brokers"][0]["name"] == broker.bootstrap
    topics = {t["topic"]: t for t in md["topics"]}
    assert topic_name in topics
    parts = sorted(topics[topic_name]["partitions"], key=lambda p: p["partition"])
    assert [p["partition"] for p in parts] == [0, 1, 2]
    for p in parts:
        assert p["leader"] == 1
        assert [x["id"] for x in p["replicas"]] == [1]
        assert [x["id"] for x in p["isrs"]] == [1]
    # plain text output also works
    r = kcat(broker.bootstrap, "-L", "-t", topic_name)
    assert f'topic "{topic_name}" with 3 partitions' in r.stdout.decode()


def test_keys_and_json_offsets(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    kcat(broker.bootstrap, "-P", "-t", topic_name, "-K:", input=b"k1:v1\nk2:v2\nk3:v3\n")
    msgs = consume_json(broker.bootstrap, topic_name)
    assert [(m["offset"], m["key"], m["payload"]) for m in msgs] == [
        (0, "k1", "v1"),
        (1, "k2", "v2"),
        (2, "k3", "v3"),
    ]
    assert all(m["partition"] == 0 and m["topic"] == topic_name for m in msgs)
    # key/value formatting
    r = kcat(broker.bootstrap, "-C", "-t", topic_name, "-e", "-q", "-f", "%k=%s@%o\\n")
    assert r.stdout.decode().splitlines() == ["k1=v1@0", "k2=v2@1", "k3=v3@2"]


def test_headers(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    kcat(
        broker.bootstrap, "-P", "-t", topic_name, "-H", "trace=abc", "-H", "n=1", "-H", "trace=dup",
        input=b"payload\n",
    )
    (m,) = consume_json(broker.bootstrap, topic_name)
    # kcat -J flattens headers as [k1, v1, k2, v2, ...]; order and duplicates preserved
    assert m["headers"] == ["trace", "abc", "n", "1", "trace", "dup"]
    assert m["payload"] == "payload"


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression(broker, topic_name, codec):
    kutil.create_topic(broker.bootstrap, topic_name)
    lines = [f"{codec}-line-{i}-" + "x" * (i % 50) for i in range(500)]
    kcat(
        broker.bootstrap, "-P", "-t", topic_name, "-X", f"compression.codec={codec}",
        "-X", "linger.ms=50",
        input=("\n".join(lines) + "\n").encode(),
    )
    msgs = consume_json(broker.bootstrap, topic_name)
    assert [m["payload"] for m in msgs] == lines
    assert [m["offset"] for m in msgs] == list(range(500))


def test_offsets(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    kcat(broker.bootstrap, "-P", "-t", topic_name, input=b"".join(b"m%d\n" % i for i in range(20)))
    r = kcat(broker.bootstrap, "-C", "-t", topic_name, "-o", "beginning", "-e", "-q")
    assert r.stdout.decode().splitlines() == [f"m{i}" for i in range(20)]
    msgs = consume_json(broker.bootstrap, topic_name, "-o", "15")
    assert [(m["offset"], m["payload"]) for m in msgs] == [(i, f"m{i}") for i in range(15, 20)]
    # negative: relative to end
    msgs = consume_json(broker.bootstrap, topic_name, "-o", "-3")
    assert [m["offset"] for m in msgs] == [17, 18, 19]
    # -c limits count
    r = kcat(broker.bootstrap, "-C", "-t", topic_name, "-o", "5", "-c", "2", "-q")
    assert r.stdout.decode().splitlines() == ["m5", "m6"]


def test_null_key_and_timestamps(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    kcat(broker.bootstrap, "-P", "-t", topic_name, input=b"a\n")
    (m,) = consume_json(broker.bootstrap, topic_name)
    assert m["key"] is None
    assert m["tstype"] == "create"
    assert m["ts"] > 1_600_000_000_000
