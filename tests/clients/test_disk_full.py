"""A full data disk: producers get KAFKA_STORAGE_ERROR (what Kafka answers for a failed log
write), the operator gets a log line, a metric and an unhealthy /health, nothing acknowledged is
lost, and everything works again once space is freed.

Runs the broker on a small tmpfs (needs root for mount; skipped otherwise).
"""

import os
import subprocess
import urllib.error
import urllib.request

import pytest
from confluent_kafka import KafkaError

import kutil
from conftest import Broker, _register, wait_until

TMPFS_MB = 48


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m", "tmpfs", str(mnt)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def http_get(b, path):
    try:
        with urllib.request.urlopen(f"http://{b.host}:{b.http_port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def fill(path):
    """Writes a filler file until the file system is full (not a byte left for an append)."""
    chunk = b"\0" * (1 << 20)
    with open(os.path.join(path, "filler"), "wb", buffering=0) as f:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    f.write(chunk[:size])
            except OSError:
                pass


def produce_batch(b, topic, start, n):
    """n 1 KiB records, no retries: returns (acknowledged offsets by value, error codes)."""
    p = kutil.producer(b.bootstrap, retries=0, **{"linger.ms": 0, "message.timeout.ms": 10000})
    acked, errors = {}, []

    def cb(err, msg):
        if err:
            errors.append(err.code())
        else:
            acked[msg.value()] = msg.offset()

    for i in range(start, start + n):
        p.produce(topic, value=(b"%08d" % i) + b"x" * 1016, partition=0, on_delivery=cb)
        p.poll(0)
    assert p.flush(30) == 0
    return acked, errors


def test_disk_full_is_reported_and_nothing_acknowledged_is_lost(small_disk, request):
    b = Broker(data_dir=str(small_disk / "data"))
    _register(request, b)
    request.addfinalizer(b.cleanup)
    b.start()
    topic = "full-disk"
    kutil.create_topic(b.bootstrap, topic)
    assert http_get(b, "/health")[0] == 200

    acked, errors = produce_batch(b, topic, 0, 200)
    assert not errors and len(acked) == 200
    fill(str(small_disk))
    more, errors = produce_batch(b, topic, 200, 3000)
    acked.update(more)
    assert b.alive(), f"broker exited with {b.proc.returncode} on a full disk\n" + b.log_tail()
    assert KafkaError.KAFKA_STORAGE_ERROR in errors, f"errors seen: {set(errors)}"

    status, body = http_get(b, "/health")
    assert status == 503 and "No space left on device" in body, (status, body)
    _, metrics = http_get(b, "/metrics")
    assert any(line.startswith("fjord_storage_errors_total ") and float(line.split()[1]) > 0
               for line in metrics.splitlines()), "fjord_storage_errors_total missing"
    assert "fjord_storage_healthy 0" in metrics
    assert "storage write failed" in b.log_text()
    assert b.alive()

    os.remove(small_disk / "filler")
    again, errors = produce_batch(b, topic, 10000, 50)
    assert not errors and len(again) == 50
    acked.update(again)
    assert http_get(b, "/health")[0] == 200

    # Every acknowledged record is there, at the offset it was acknowledged with, and the
    # failed writes left no hole or garbage in the log (offsets are dense).
    got = kutil.consume(b.bootstrap, topic, len(acked), timeout=60)
    assert [m.offset() for m in got] == list(range(len(acked)))
    assert {m.value(): m.offset() for m in got} == acked
    b.restart()
    wait_until(lambda: kutil.watermarks(b.bootstrap, topic)[1] == len(acked), timeout=20,
               msg="log end after restart")
