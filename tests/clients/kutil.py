"""Shared helpers built on confluent-kafka (librdkafka)."""

import json
import subprocess
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

QUIET = {"log_level": 0}
JS_DIR = Path(__file__).resolve().parent / "js"


def node(script, *args, timeout=90):
    """Runs tests/clients/js/SCRIPT with kafkajs; (exit code, its last stdout line as JSON,
    stderr)."""
    import pytest

    if not (JS_DIR / "node_modules" / "kafkajs").is_dir():
        pytest.fail(f"kafkajs not installed: run `npm ci` in {JS_DIR} (scripts/test-all does this)")
    r = subprocess.run(["node", str(JS_DIR / script), *args], capture_output=True,
                       timeout=timeout, cwd=JS_DIR)
    lines = r.stdout.decode().strip().splitlines()
    assert lines, f"{script} printed nothing (exit {r.returncode})\nstderr: {r.stderr.decode()[-3000:]}"
    return r.returncode, json.loads(lines[-1]), r.stderr.decode()


def metric(text, name, **labels):
    """The value of one sample of a Prometheus text page, or None."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    prefix = f"{name}{{{want}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return None


def admin(bootstrap, **conf):
    return AdminClient({"bootstrap.servers": bootstrap, **QUIET, **conf})


def create_topic(bootstrap, name, partitions=1, config=None, timeout=15):
    a = admin(bootstrap)
    fut = a.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    fut[name].result(timeout=timeout)
    wait_topic_visible(bootstrap, name, partitions)
    return name


def wait_topic_visible(bootstrap, name, partitions=None, timeout=15):
    a = admin(bootstrap)
    deadline = time.monotonic() + timeout
    while True:
        md = a.list_topics(topic=name, timeout=5)
        t = md.topics.get(name)
        if t is not None and t.error is None and (
            partitions is None or len(t.partitions) == partitions
        ):
            return t
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {name} not visible in metadata: {t and t.error}")
        time.sleep(0.05)


def producer(bootstrap, **conf):
    base = {"bootstrap.servers": bootstrap, "linger.ms": 5, **QUIET}
    base.update(conf)
    return Producer(base)


def produce_all(bootstrap, topic, messages, conf=None, timeout=30):
    """messages: iterable of dicts with keys value/key/partition/headers/timestamp.

    Returns the list of delivered Message objects (in delivery order).
    Raises AssertionError on any delivery error.
    """
    p = producer(bootstrap, **(conf or {}))
    delivered, errors = [], []

    def cb(err, msg):
        (errors if err else delivered).append((err, msg) if err else msg)

    for m in messages:
        kw = {k: v for k, v in m.items() if k in ("value", "key", "partition", "headers", "timestamp")}
        p.produce(topic, on_delivery=cb, **kw)
        p.poll(0)
    remaining = p.flush(timeout)
    assert remaining == 0, f"{remaining} messages not delivered within {timeout}s"
    assert not errors, f"delivery errors: {[(str(e), ) for e, _ in errors][:5]}"
    return delivered


def consumer(bootstrap, **conf):
    base = {
        "bootstrap.servers": bootstrap,
        # confluent-kafka refuses to build a Consumer without group.id; these helpers
        # use explicit assignment, so a throwaway group that never commits.
        "group.id": f"nogroup-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        **QUIET,
    }
    base.update(conf)
    return Consumer(base)


def consume(bootstrap, topic, count, partition=0, offset=0, timeout=20, conf=None):
    """Assign (topic, partition, offset) and return `count` messages."""
    c = consumer(bootstrap, **(conf or {}))
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"got {len(out)}/{count} messages from {topic}[{partition}]@{offset}"
                )
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(m.error())
            out.append(m)
        return out
    finally:
        c.close()


def watermarks(bootstrap, topic, partition=0, timeout=10):
    c = consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout, cached=False)
    finally:
        c.close()


from conftest import wait_until  # noqa: E402,F401  (re-exported for test modules)
