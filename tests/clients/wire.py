"""Minimal raw Kafka wire-protocol helpers for robustness tests."""

import socket
import struct
import time


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def header_v1(api_key, api_version, correlation_id, client_id=b"fjord-wire"):
    return struct.pack(">hhih", api_key, api_version, correlation_id, len(client_id)) + client_id


def header_v2(api_key, api_version, correlation_id, client_id=b"fjord-wire"):
    # v2 = v1 + empty tagged fields
    return header_v1(api_key, api_version, correlation_id, client_id) + b"\x00"


def api_versions_request(version=0, correlation_id=1):
    if version >= 3:
        # header v2, body: compact_string software name, compact_string version, tagged fields
        body = b"\x0bfjord-wire" + b"\x021" + b"\x00"
        return frame(header_v2(18, version, correlation_id) + body)
    return frame(header_v1(18, version, correlation_id))


def metadata_request_v1(topics=None, correlation_id=1, version=1):
    # Metadata v1..v3 body: array of topic names (null = all topics)
    if topics is None:
        body = struct.pack(">i", -1)
    else:
        body = struct.pack(">i", len(topics)) + b"".join(
            struct.pack(">h", len(t)) + t.encode() for t in topics
        )
    return frame(header_v1(3, version, correlation_id) + body)


def fetch_request_v4(topic, partition=0, offset=0, max_bytes=64 << 20, correlation_id=1):
    # Fetch v4: replica_id, max_wait_ms, min_bytes, max_bytes, isolation_level,
    # [topic, [partition, fetch_offset, partition_max_bytes]]
    t = topic.encode()
    body = struct.pack(">iiiib", -1, 0, 1, max_bytes, 0)
    body += struct.pack(">ih", 1, len(t)) + t
    body += struct.pack(">iiqi", 1, partition, offset, max_bytes)
    return frame(header_v1(1, 4, correlation_id) + body)


def connect(bootstrap, timeout=5.0):
    host, port = bootstrap.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.settimeout(timeout)
    return s


def recv_exact(s, n, deadline):
    buf = b""
    while len(buf) < n:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)}/{n} bytes")
        buf += chunk
    return buf


def read_response(s, timeout=5.0):
    """Return (correlation_id, body) of one response frame."""
    deadline = time.monotonic() + timeout
    (size,) = struct.unpack(">i", recv_exact(s, 4, deadline))
    assert 4 <= size < 64 * 1024 * 1024, f"absurd response size {size}"
    data = recv_exact(s, size, deadline)
    (cid,) = struct.unpack(">i", data[:4])
    return cid, data[4:]


def parse_api_versions_v0(body):
    """ApiVersions response v0..v2 body -> (error_code, {api_key: (min, max)})."""
    (err,) = struct.unpack(">h", body[:2])
    (n,) = struct.unpack(">i", body[2:6])
    keys = {}
    off = 6
    for _ in range(max(n, 0)):
        k, lo, hi = struct.unpack(">hhh", body[off:off + 6])
        keys[k] = (lo, hi)
        off += 6
    return err, keys


def read_uvarint(b, off):
    shift = result = 0
    while True:
        byte = b[off]
        off += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, off
        shift += 7


def parse_api_versions_v3(body):
    """ApiVersions response v3 body (flexible; response header stays v0)."""
    (err,) = struct.unpack(">h", body[:2])
    n, off = read_uvarint(body, 2)
    keys = {}
    for _ in range(max(n - 1, 0)):
        k, lo, hi = struct.unpack(">hhh", body[off:off + 6])
        off += 6
        tags, off = read_uvarint(body, off)
        assert tags == 0
        keys[k] = (lo, hi)
    return err, keys


def answered_or_closed(s, timeout=5.0):
    """Wait until the peer sends something or closes. Returns 'data', 'closed'.

    Raises AssertionError if neither happens within timeout (the broker hangs).
    """
    s.settimeout(timeout)
    try:
        data = s.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    except socket.timeout:
        raise AssertionError(f"broker neither answered nor closed within {timeout}s")
    return "data" if data else "closed"


def wait_closed(s, timeout=5.0):
    """Drain until EOF/reset; AssertionError if still open after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"connection still open after {timeout}s")
        s.settimeout(remaining)
        try:
            data = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return
        except socket.timeout:
            continue
        if not data:
            return


def send_then_eof(s, data):
    """Send data then half-close. The broker may already have closed the
    connection (that is an acceptable reaction to garbage): tolerate it."""
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError, OSError):
        pass
