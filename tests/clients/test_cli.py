"""End-to-end tests of the `fjord` client commands (topic, produce, consume, bench) against
the real broker binary, using the `broker` fixture from conftest.py."""

import json
import os
import subprocess

import pytest

from conftest import fjord, fjord_bin, free_port, unique_topic




@pytest.fixture
def topic(broker):
    name = unique_topic("cli")
    fjord(broker, "topic", "create", name, "--partitions", "3", check=0)
    return name


def test_help_documents_exit_codes_and_examples():
    p = subprocess.run([fjord_bin(), "--help"], capture_output=True, text=True)
    assert p.returncode == 0
    assert "Exit codes" in p.stdout and "2  bad usage" in p.stdout
    for cmd in (["topic", "create"], ["topic", "list"], ["produce"], ["consume"],
                ["bench", "produce"], ["bench", "consume"], ["serve"]):
        h = subprocess.run([fjord_bin(), *cmd, "--help"], capture_output=True, text=True)
        assert h.returncode == 0, cmd
        assert "Example:" in h.stdout and "fjord " in h.stdout, cmd


def test_usage_error_exits_2(broker):
    assert fjord(broker, "topic", "frobnicate").returncode == 2
    assert fjord(broker, "produce", "t", "--acks", "7").returncode == 2


def test_topic_create_list_describe_alter_delete(broker):
    name = unique_topic("adm")
    p = fjord(broker, "topic", "create", name, "-p", "2", "--config", "retention.ms=3600000", check=0)
    assert "2 partition" in p.out
    listing = fjord(broker, "topic", "list", check=0).out.splitlines()
    assert listing[0].split() == ["NAME", "PARTITIONS", "RETENTION", "CLEANUP"]
    row = next(line.split() for line in listing if line.split()[0] == name)
    assert row[1:] == ["2", "1h", "delete"]

    fjord(broker, "produce", name, "--partition", "1", stdin="x" * 500 + "\n", check=0)
    d = fjord(broker, "topic", "describe", name, check=0).out
    assert "PARTITION" in d and "LOG END" in d
    # Size on disk comes from DescribeLogDirs.
    assert "Size on disk:" in d and "SIZE" in d, d
    sizes = {line.split()[0]: line.split()[-2:] for line in d.splitlines() if line[:1].isdigit()}
    assert sizes["0"] == ["0", "B"] and sizes["1"][1] == "B" and int(sizes["1"][0]) > 500, sizes
    retention = next(line.split() for line in d.splitlines() if line.startswith("retention.ms"))
    assert retention[1:] == ["3600000", "topic"]

    fjord(broker, "topic", "alter", name, "--config", "retention.ms=60000", check=0)
    d = fjord(broker, "topic", "describe", name, check=0).out
    assert any(line.split()[:2] == ["retention.ms", "60000"] for line in d.splitlines())
    fjord(broker, "topic", "alter", name, "--delete-config", "retention.ms", check=0)
    d = fjord(broker, "topic", "describe", name, check=0).out
    row = next(line.split() for line in d.splitlines() if line.startswith("retention.ms"))
    assert row[-1] != "topic"
    fjord(broker, "topic", "alter", name, "--partitions", "4", check=0)
    assert "Partitions:         4" in fjord(broker, "topic", "describe", name, check=0).out

    fjord(broker, "topic", "delete", name, check=0)
    assert name not in fjord(broker, "topic", "list", check=0).out


def test_create_existing_topic_fails_with_hint(broker, topic):
    p = fjord(broker, "topic", "create", topic, check=1)
    assert "already exists" in p.err and "TOPIC_ALREADY_EXISTS" in p.err
    assert len(p.err.strip().splitlines()) == 1


def test_unknown_topic_errors(broker):
    for args in (["consume", "no-such-topic"], ["topic", "describe", "no-such-topic"],
                 ["produce", "no-such-topic"]):
        p = fjord(broker, *args, stdin="x\n", check=1)
        assert "topic 'no-such-topic' does not exist" in p.err, p.err
        assert "fjord topic create no-such-topic" in p.err


def test_bad_config_value(broker):
    name = unique_topic("badcfg")
    p = fjord(broker, "topic", "create", name, "--config", "retention.ms=soon", check=1)
    assert "INVALID_CONFIG" in p.err and "retention.ms" in p.err
    assert "Traceback" not in p.err and "panicked" not in p.err


def test_broker_down():
    addr = f"127.0.0.1:{free_port()}"
    p = fjord(addr, "topic", "list", check=1)
    assert f"cannot connect to {addr}" in p.err
    assert "fjord serve" in p.err


def test_produce_consume_json_roundtrip_with_keys_and_headers(broker, topic):
    lines = "".join(f"key{i % 4}|value {i}\n" for i in range(200)) + "keyless\n"
    p = fjord(broker, "produce", topic, "--key-separator", "|", "--header", "app=test",
              "--header", "trace=abc", stdin=lines, check=0)
    assert "201 record(s) acknowledged, 0 failed" in p.err

    out = fjord(broker, "consume", topic, "--format", "json", check=0).out
    recs = [json.loads(line) for line in out.splitlines()]
    assert len(recs) == 201
    values = sorted(r["value"] for r in recs)
    assert values == sorted([f"value {i}" for i in range(200)] + ["keyless"])
    for r in recs:
        assert r["headers"] == [["app", "test"], ["trace", "abc"]]
        assert set(r) >= {"key", "value", "headers", "partition", "offset", "timestamp"}
    # Same key, same partition: the murmur2 partitioner is deterministic.
    by_key = {}
    for r in recs:
        if r["key"] is not None:
            by_key.setdefault(r["key"], set()).add(r["partition"])
    assert all(len(ps) == 1 for ps in by_key.values())
    assert [r for r in recs if r["value"] == "keyless"][0]["key"] is None
    # Offsets within a partition are dense and increasing.
    for part in {r["partition"] for r in recs}:
        offs = [r["offset"] for r in recs if r["partition"] == part]
        assert offs == list(range(len(offs)))


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_compressed_produce_consume(broker, topic, codec):
    lines = "".join(f"{codec}-{i}\n" for i in range(3000))
    fjord(broker, "produce", topic, "--compression", codec, "--partition", "1", stdin=lines, check=0)
    out = fjord(broker, "consume", topic, "--partition", "1", check=0).out
    assert out.splitlines() == [f"{codec}-{i}" for i in range(3000)]


def test_consume_offsets_count_and_partition(broker, topic):
    lines = "".join(f"m{i}\n" for i in range(50))
    fjord(broker, "produce", topic, "-p", "2", stdin=lines, check=0)
    assert fjord(broker, "consume", topic, "-p", "2", "--offset", "10", "--count", "3",
                 check=0).out.split() == ["m10", "m11", "m12"]
    assert fjord(broker, "consume", topic, "-p", "2", "--offset", "-2", check=0).out.split() == ["m48", "m49"]
    assert fjord(broker, "consume", topic, "--offset", "end", check=0).out == ""
    p = fjord(broker, "consume", topic, "-p", "9", check=1)
    assert "no partition 9" in p.err


def test_consume_reads_records_from_other_clients(broker, topic):
    """kcat (librdkafka) writes compressed batches its own way; fjord must decode them."""
    import shutil
    if not shutil.which("kcat"):
        pytest.skip("kcat not installed")
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", topic, "-p", "0", "-z", codec],
                       input=f"from-kcat-{codec}\n".encode(), check=True, timeout=30)
    out = fjord(broker, "consume", topic, "-p", "0", check=0).out.split()
    assert out == [f"from-kcat-{c}" for c in ("gzip", "snappy", "lz4", "zstd")]


def test_consume_follow_stops_at_count(broker, topic):
    fjord(broker, "produce", topic, "-p", "0", stdin="a\nb\n", check=0)
    p = fjord(broker, "consume", topic, "--follow", "--count", "2", timeout=30, check=0)
    assert p.out.split() == ["a", "b"]


def test_consume_into_closed_pipe_is_quiet(broker, topic):
    fjord(broker, "produce", topic, stdin="".join(f"{i}\n" for i in range(20000)), check=0)
    env = dict(os.environ, FJORD_BOOTSTRAP=broker.bootstrap)
    p = subprocess.run(f"'{fjord_bin()}' consume {topic} | head -1", shell=True,
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0
    assert len(p.stdout.splitlines()) == 1
    assert "panicked" not in p.stderr and "Broken pipe" not in p.stderr


def test_consume_group_on_an_empty_topic(broker, topic):
    # A broker without consumer groups gets a clear error; one with them (test_cli_groups.py
    # covers the rest) an empty, successful run: a new group starts at the end of the log.
    p = fjord(broker, "consume", topic, "--group", unique_topic("g"))
    if p.returncode == 1:
        assert "does not support consumer groups" in p.err
    else:
        assert p.returncode == 0 and p.out == "", p.err


def test_bench_produce_json(broker):
    name = unique_topic("bench")
    p = fjord(broker, "bench", "produce", "--topic", name, "--count", "20000", "--json",
              "--partitions", "2", timeout=120, check=0)
    r = json.loads(p.out)
    assert r["mode"] == "produce" and r["records"] == 20000 and r["errors"] == 0
    assert r["records_per_s"] > 0 and r["bytes"] == 20000 * 100
    lat = r["latency_ms"]
    assert 0 <= lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["p999"] <= lat["max"]

    c = fjord(broker, "bench", "consume", "--topic", name, "--json", timeout=120, check=0)
    rc = json.loads(c.out)
    assert rc["mode"] == "consume" and rc["records"] == 20000


def test_bench_produce_rate_paces_the_sends(broker):
    # 2 000 records of 100 B are 4 batches of at most 640 records; at 4 000 records/s the last
    # batch may not leave before 0.48 s, so the achieved rate cannot exceed the target by much.
    name = unique_topic("benchr")
    p = fjord(broker, "bench", "produce", "--topic", name, "--count", "2000", "--rate", "4000",
              "--concurrency", "1", "--json", timeout=120, check=0)
    r = json.loads(p.out)
    assert r["records"] == 2000 and r["errors"] == 0
    assert r["elapsed_s"] >= 0.45, r
    assert r["records_per_s"] <= 4000 * 1.5, r


def test_bench_produce_e2e_latency(broker):
    # --e2e: a consumer in the same process follows the topic; every acknowledged batch must
    # be seen by it, and a batch cannot arrive before its Produce request was sent.
    name = unique_topic("benche")
    p = fjord(broker, "bench", "produce", "--topic", name, "--count", "3000", "--rate", "6000",
              "--partitions", "3", "--concurrency", "2", "--e2e", "--json", timeout=120, check=0)
    r = json.loads(p.out)
    assert r["records"] == 3000 and r["errors"] == 0
    assert r["e2e_records"] == 3000, r
    e2e = r["e2e_latency_ms"]
    assert 0 < e2e["p50"] <= e2e["p99"] <= e2e["max"] < 30_000, r
    assert "e2e_latency_ms" not in json.loads(fjord(
        broker, "bench", "produce", "--topic", name, "--count", "10", "--json",
        timeout=60, check=0).out)


def test_bench_produce_human_report(broker):
    name = unique_topic("benchh")
    p = fjord(broker, "bench", "produce", "--topic", name, "--count", "5000", "--acks", "all",
              "--compression", "lz4", "--concurrency", "3", timeout=120, check=0)
    assert "records/s" in p.out and "p99.9" in p.out
