"""The operator HTTP surface of `fjord serve`: /health and Prometheus /metrics."""
import urllib.request

import kutil
from kutil import metric


def get(broker, path):
    with urllib.request.urlopen(f"http://{broker.host}:{broker.http_port}{path}", timeout=10) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


def test_health_and_metrics_follow_traffic(broker, topic_name):
    status, _, body = get(broker, "/health")
    assert (status, body.strip()) == (200, "ok")

    kutil.create_topic(broker.bootstrap, topic_name, partitions=2)
    kutil.produce_all(broker.bootstrap, topic_name, [{"value": b"x" * 100, "partition": 1} for _ in range(10)])
    got = kutil.consume(broker.bootstrap, topic_name, 10, partition=1)
    assert len(got) == 10

    status, content_type, text = get(broker, "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert metric(text, "fjord_partition_log_end_offset", topic=topic_name, partition=1) == 10
    assert metric(text, "fjord_partition_log_end_offset", topic=topic_name, partition=0) == 0
    assert metric(text, "fjord_partition_size_bytes", topic=topic_name, partition=1) > 1000
    assert metric(text, "fjord_topic_records_in_total", topic=topic_name) == 10
    assert metric(text, "fjord_topic_bytes_out_total", topic=topic_name) > 1000
    assert metric(text, "fjord_partition_records_in_total", topic=topic_name, partition=1) == 10
    assert metric(text, "fjord_partition_bytes_out_total", topic=topic_name, partition=1) > 1000
    assert metric(text, "fjord_requests_total", api="Produce") >= 1
    assert metric(text, "fjord_request_duration_seconds_count", api="Fetch") >= 1
    assert metric(text, "fjord_connections_active") >= 0
    # The async flusher fsyncs within flush.ms (1 s) of the writes above.
    kutil.wait_until(lambda: metric(get(broker, "/metrics")[2], "fjord_flush_duration_seconds_count"),
                     timeout=15, msg="a timed flush round")


def test_group_lag_is_exported(broker, topic_name):
    kutil.create_topic(broker.bootstrap, topic_name)
    kutil.produce_all(broker.bootstrap, topic_name, [{"value": b"%d" % i} for i in range(10)])
    group = f"lag-{topic_name}"
    c = kutil.consumer(broker.bootstrap, **{"group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[kutil.TopicPartition(topic_name, 0, 4)], asynchronous=False)
    finally:
        c.close()
    kutil.wait_until(
        lambda: metric(get(broker, "/metrics")[2], "fjord_group_lag", group=group, topic=topic_name, partition=0) == 6,
        timeout=15, msg="group lag metric")
