"""What the broker does to produced batches for the topic's sake: per-record errors (KIP-467)
and a topic-level `compression.type` (batches recompressed on append)."""

import glob
import os
import struct

import pytest
from confluent_kafka import KafkaError

import kutil

CODEC_BITS = {"uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def stored_codecs(broker, topic, partition=0):
    """The codec bits of every batch in the partition's segment files, read from disk."""
    codecs = []
    for path in sorted(glob.glob(os.path.join(broker.data_dir, f"{topic}-{partition}", "*.log"))):
        data = open(path, "rb").read()
        pos = 0
        while pos + 61 <= len(data):
            length = struct.unpack_from(">i", data, pos + 8)[0]
            if length <= 0:
                break
            attributes = struct.unpack_from(">h", data, pos + 21)[0]
            codecs.append(attributes & 0x07)
            pos += 12 + length
    return codecs


def test_keyless_records_in_a_compacted_batch_fail_alone(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name, config={"cleanup.policy": "compact"})
    p = kutil.producer(broker.bootstrap, retries=0, **{"linger.ms": 200})
    results = {}

    def cb(err, msg):
        results[msg.value()] = err.code() if err else None

    # A first record on its own, so the producer has its metadata and connection and the next
    # five go out as one batch after linger.ms.
    p.produce(topic_name, key=b"warm", value=b"warm", partition=0, on_delivery=cb)
    assert p.flush(20) == 0 and results[b"warm"] is None
    for i, key in enumerate([b"k0", None, b"k2", None, b"k4"]):
        p.produce(topic_name, key=key, value=b"v%d" % i, partition=0, on_delivery=cb)
    assert p.flush(20) == 0
    # The bad records get INVALID_RECORD; the good ones of the same batch are failed by the
    # client as collateral (librdkafka's _INVALID_DIFFERENT_RECORD), not with the same error.
    assert results[b"v1"] == KafkaError.INVALID_RECORD
    assert results[b"v3"] == KafkaError.INVALID_RECORD
    for good in (b"v0", b"v2", b"v4"):
        assert results[good] == KafkaError._INVALID_DIFFERENT_RECORD, results
    assert kutil.watermarks(broker.bootstrap, topic_name) == (0, 1), "nothing of the batch stored"
    kutil.produce_all(broker.bootstrap, topic_name, [{"key": b"k", "value": b"v", "partition": 0}])
    assert kutil.watermarks(broker.bootstrap, topic_name) == (0, 2)


@pytest.mark.parametrize("target", list(CODEC_BITS))
def test_topic_compression_type_recompresses(broker, topic_name, target):
    kutil.create_topic(broker.bootstrap, topic_name, config={"compression.type": target})
    sent = [{"key": b"k%d" % i, "value": (b"%d" % i) * 50, "headers": [("h", b"%d" % i)],
             "partition": 0} for i in range(300)]
    # Sent in two codecs, neither of them (necessarily) the topic's.
    kutil.produce_all(broker.bootstrap, topic_name, sent[:150], conf={"compression.type": "gzip"})
    kutil.produce_all(broker.bootstrap, topic_name, sent[150:], conf={"compression.type": "none"})
    codecs = stored_codecs(broker, topic_name)
    assert codecs and set(codecs) == {CODEC_BITS[target]}, codecs
    got = kutil.consume(broker.bootstrap, topic_name, 300)
    assert [(m.key(), m.value(), m.headers()) for m in got] == [
        (m["key"], m["value"], m["headers"]) for m in sent]
    assert [m.offset() for m in got] == list(range(300))


def test_compression_type_producer_keeps_what_was_sent(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    kutil.produce_all(broker.bootstrap, topic_name, [{"value": b"x" * 500, "partition": 0}] * 20,
                      conf={"compression.type": "snappy"})
    assert set(stored_codecs(broker, topic_name)) == {CODEC_BITS["snappy"]}


def test_invalid_compression_type_refused(broker, topic_name):
    from confluent_kafka.admin import NewTopic
    a = kutil.admin(broker.bootstrap)
    fut = a.create_topics([NewTopic(topic_name, 1, config={"compression.type": "brotli"})])[topic_name]
    with pytest.raises(Exception) as e:
        fut.result(15)
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG
