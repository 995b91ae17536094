"""Malformed and abusive traffic on raw sockets: the broker must answer with an
error or close the connection (never hang), keep serving other clients, stay
alive, and not leak memory.
"""

import random
import resource
import socket
import struct
import time

import pytest

import kutil
import wire
from conftest import Broker, _register, unique_topic, wait_until

RSS_SLACK_KB = 64 * 1024


@pytest.fixture(scope="module")
def _rb(tmp_path_factory):
    b = Broker(tmp_root=str(tmp_path_factory.mktemp("robust")))
    b.start()
    # warm up the normal path so the baseline includes it
    t = kutil.create_topic(b.bootstrap, "robust-warmup")
    kutil.produce_all(b.bootstrap, t, [{"value": b"w" * 100} for _ in range(100)])
    kutil.consume(b.bootstrap, t, 100)
    b.baseline_rss_kb = b.rss_kb()
    yield b
    rc = b.stop()
    b.cleanup()
    assert rc == 0, f"robustness broker exited with {rc} on SIGTERM"


@pytest.fixture
def rb(_rb, request):
    assert _rb.alive(), "broker died in an earlier robustness test\n" + _rb.log_tail()
    _register(request, _rb)
    yield _rb
    # after every abuse: still alive and a real client still works
    assert _rb.alive(), "broker died\n" + _rb.log_tail()
    check_normal_client(_rb)


def check_normal_client(b):
    topic = unique_topic("robust-check")
    kutil.create_topic(b.bootstrap, topic)
    kutil.produce_all(b.bootstrap, topic, [{"value": b"ok"}])
    assert [m.value() for m in kutil.consume(b.bootstrap, topic, 1)] == [b"ok"]


def test_api_versions_v0_and_v3(rb):
    with wire.connect(rb.bootstrap) as s:
        s.sendall(wire.api_versions_request(0, correlation_id=7))
        cid, body = wire.read_response(s)
        assert cid == 7
        err, keys = wire.parse_api_versions_v0(body)
        assert err == 0
        for k in (0, 1, 2, 3, 18, 19, 20, 32):  # Produce Fetch ListOffsets Metadata ApiVersions CreateTopics DeleteTopics DescribeConfigs
            assert k in keys, f"api key {k} missing from ApiVersions: {sorted(keys)}"
        assert keys[18][0] == 0 and keys[18][1] >= 3
        s.sendall(wire.api_versions_request(3, correlation_id=8))
        cid, body = wire.read_response(s)
        assert cid == 8
        err3, keys3 = wire.parse_api_versions_v3(body)
        assert err3 == 0 and keys3 == keys


def test_api_versions_unsupported_version_kip511(rb):
    """ApiVersions v99 -> v0 response with UNSUPPORTED_VERSION (35) + supported range."""
    with wire.connect(rb.bootstrap) as s:
        s.sendall(wire.frame(wire.header_v2(18, 99, 4242) + b"\x00\x00\x00"))
        cid, body = wire.read_response(s)
        assert cid == 4242
        err, keys = wire.parse_api_versions_v0(body)
        assert err == 35
        assert 18 in keys and keys[18][0] == 0
        # the connection is still usable afterwards
        s.sendall(wire.api_versions_request(0, correlation_id=4243))
        cid, body = wire.read_response(s)
        assert cid == 4243 and wire.parse_api_versions_v0(body)[0] == 0


def test_pipelined_requests_answered_in_order(rb):
    with wire.connect(rb.bootstrap) as s:
        s.sendall(b"".join(wire.api_versions_request(i % 4, correlation_id=1000 + i) for i in range(50)))
        cids = [wire.read_response(s)[0] for _ in range(50)]
        assert cids == [1000 + i for i in range(50)]


def test_metadata_huge_version(rb):
    with wire.connect(rb.bootstrap) as s:
        s.sendall(wire.frame(wire.header_v2(3, 999, 5) + b"\x01\x00\x00"))
        what = wire.answered_or_closed(s)
        if what == "data":
            # an error response is acceptable; the connection must not hang
            pass


def test_metadata_v1_raw(rb):
    t = unique_topic("raw-md")
    kutil.create_topic(rb.bootstrap, t, partitions=2)
    with wire.connect(rb.bootstrap) as s:
        s.sendall(wire.metadata_request_v1([t], correlation_id=9))
        cid, body = wire.read_response(s)
        assert cid == 9
        assert t.encode() in body


@pytest.mark.parametrize("api_key", [999, 32767, -1, 1000])
def test_unknown_api_key(rb, api_key):
    with wire.connect(rb.bootstrap) as s:
        s.sendall(wire.frame(wire.header_v1(api_key, 0, 11) + b"\x00" * 16))
        wire.answered_or_closed(s)


@pytest.mark.parametrize("size", [0x7FFFFFFF, 0x40000000, -1, -2147483648, 0, 1, 3])
def test_absurd_length_prefix(rb, size):
    rss_before = rb.rss_kb()
    with wire.connect(rb.bootstrap) as s:
        if size in (0x7FFFFFFF, 0x40000000, -1, -2147483648):
            s.sendall(struct.pack(">i", size) + b"\x00\x12\x00\x00")
            # must not wait for (or allocate) gigabytes: close promptly
            wire.wait_closed(s, timeout=5)
        else:
            # 0/1/3-byte frames cannot hold a request header: error or close
            s.sendall(struct.pack(">i", size) + b"\x00" * size)
            wire.answered_or_closed(s)
    assert rb.rss_kb() < rss_before + RSS_SLACK_KB


def test_truncated_frames_then_close(rb):
    full = wire.metadata_request_v1(None, correlation_id=3)
    for cut in [1, 3, 4, 5, 8, 11, len(full) - 1]:
        with wire.connect(rb.bootstrap) as s:
            s.sendall(full[:cut])
    # a frame claiming 50 MB with only a few bytes sent, then close
    for _ in range(20):
        with wire.connect(rb.bootstrap) as s:
            s.sendall(struct.pack(">i", 50_000_000) + b"\x00\x03\x00\x01")
    # half-close after a truncated frame: broker sees EOF and must close
    with wire.connect(rb.bootstrap) as s:
        wire.send_then_eof(s, full[:-3])
        wire.wait_closed(s, timeout=5)


def test_random_framed_garbage(rb):
    rng = random.Random(20240601)
    for i in range(200):
        payload = rng.randbytes(rng.randint(1, 512))
        with wire.connect(rb.bootstrap) as s:
            wire.send_then_eof(s, wire.frame(payload))
            # error response(s) or close, never a hang
            wire.wait_closed(s, timeout=5)


def test_random_bodies_for_every_supported_api(rb):
    """A valid header for every API and version the broker advertises, then a random body:
    each request gets a response or a closed connection, never a hang or a crash."""
    with wire.connect(rb.bootstrap) as s:
        s.sendall(wire.api_versions_request(version=0))
        _, advertised = wire.parse_api_versions_v0(wire.read_response(s)[1])
    rng = random.Random(4242)
    sent = 0
    for key, (lo, hi) in sorted(advertised.items()):
        for version in range(lo, hi + 1):
            for i in range(6):
                header = wire.header_v1(key, version, i) if rng.random() < 0.5 else wire.header_v2(key, version, i)
                body = rng.randbytes(rng.randint(0, 96))
                with wire.connect(rb.bootstrap) as c:
                    wire.send_then_eof(c, wire.frame(header + body))
                    wire.wait_closed(c, timeout=5)
                sent += 1
    assert sent > 500
    assert rb.alive()
    topic = unique_topic("after-fuzz")
    kutil.create_topic(rb.bootstrap, topic)
    kutil.produce_all(rb.bootstrap, topic, [{"value": b"still-serving"}])
    assert [m.value() for m in kutil.consume(rb.bootstrap, topic, 1)] == [b"still-serving"]


def test_random_unframed_garbage(rb):
    rng = random.Random(777)
    for i in range(100):
        with wire.connect(rb.bootstrap) as s:
            wire.send_then_eof(s, rng.randbytes(rng.randint(1, 8192)))
            wire.wait_closed(s, timeout=5)


def test_garbage_after_valid_request(rb):
    with wire.connect(rb.bootstrap) as s:
        s.sendall(wire.api_versions_request(0, correlation_id=1) + b"\xff" * 64)
        cid, _ = wire.read_response(s)
        assert cid == 1
        wire.send_then_eof(s, b"")
        wire.wait_closed(s, timeout=5)


def _raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def test_many_connections_opened_and_dropped(rb):
    _raise_nofile(4096)
    rss_before = rb.rss_kb()
    total = 0
    for batch in range(10):
        socks = []
        for _ in range(250):
            socks.append(wire.connect(rb.bootstrap))
        for j, s in enumerate(socks):
            if j % 3 == 0:
                s.sendall(wire.api_versions_request(0, correlation_id=j))  # never read
            elif j % 3 == 1:
                # abortive close (RST)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for s in socks:
            s.close()
        total += len(socks)
    assert total >= 2500
    # all connections are released: the broker's fd count returns near baseline
    assert rb.alive()
    check_normal_client(rb)
    wait_until(lambda: rb.rss_kb() < rss_before + RSS_SLACK_KB, timeout=20,
               msg=f"RSS back under {rss_before} + 64 MiB")
    wait_until(lambda: _open_fds(rb.pid) < 500, timeout=20, msg="broker fds released")


def _open_fds(pid):
    import os
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_slow_client_does_not_block_others(rb):
    # one connection sends half a frame and stalls; others must be served meanwhile
    with wire.connect(rb.bootstrap) as stalled:
        stalled.sendall(wire.metadata_request_v1(None)[:6])
        start = time.monotonic()
        check_normal_client(rb)
        assert time.monotonic() - start < 10


def test_clients_leaving_in_the_middle_of_large_fetches(rb):
    # Fetch responses are sent from the segment files (sendfile): a client that reads a few
    # bytes of a 6 MB response and vanishes (some with a reset) must cost the broker nothing
    # but that connection; a full read afterwards returns the whole log.
    topic = unique_topic("robust-zc")
    kutil.create_topic(rb.bootstrap, topic)
    kutil.produce_all(rb.bootstrap, topic, [{"value": bytes([i % 251]) * 4096}
                                            for i in range(1500)])
    for i in range(30):
        s = wire.connect(rb.bootstrap)
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.sendall(wire.fetch_request_v4(topic, correlation_id=i))
        s.recv(100)
        s.close()
    with wire.connect(rb.bootstrap, timeout=20) as s:
        s.sendall(wire.fetch_request_v4(topic, correlation_id=99))
        cid, body = wire.read_response(s, timeout=20)
        assert cid == 99
        assert len(body) > 1500 * 4096, len(body)


def test_zz_rss_back_near_baseline(rb):
    """Runs last in this module: after all the abuse, memory is back near where it began."""
    wait_until(lambda: rb.rss_kb() < rb.baseline_rss_kb + RSS_SLACK_KB, timeout=20,
               msg=f"RSS {rb.rss_kb()} KiB back under baseline {rb.baseline_rss_kb} + 64 MiB")
