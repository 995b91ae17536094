"""Raw Kafka requests for differential tests, encoded by kafka-python 3.0's schema-driven
protocol classes (generated from Apache Kafka's own JSON message definitions).

    call(bootstrap, "CreateTopics", 7, topics=[{"name": "t", ...}], timeout_ms=5000)
        -> the decoded response body as nested dicts/lists

Nested structs may be given as plain dicts. Every field of the request version must be given
or has its schema default.
"""

import socket
import struct
import time

import kafka.protocol.admin as _admin
import kafka.protocol.consumer as _consumer
import kafka.protocol.metadata as _metadata
import kafka.protocol.producer as _producer

_MODULES = (_admin, _consumer, _metadata, _producer)


def classes(name):
    for m in _MODULES:
        req = getattr(m, name + "Request", None)
        if req is not None:
            return req, getattr(m, name + "Response")
    raise KeyError(name)


def max_version(name):
    return classes(name)[0].max_version


def _build(cls, value):
    """dict -> DataContainer of cls (recursively)."""
    if not isinstance(value, dict):
        return value
    fields = cls._struct.fields if hasattr(cls, "_struct") else cls.fields
    kw = {}
    for k, v in value.items():
        f = fields[k]
        if f.is_struct_array():
            kw[k] = None if v is None else [_build(f.data_class, x) for x in v]
        elif f.is_struct():
            kw[k] = None if v is None else _build(f.data_class, v)
        else:
            kw[k] = v
    return cls(**kw)


def recv_exact(s, n, deadline):
    buf = bytearray()
    while len(buf) < n:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)}/{n} bytes")
        buf += chunk
    return bytes(buf)


class Conn:
    """One connection; requests are answered in order."""

    def __init__(self, bootstrap, timeout=15.0):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.timeout = timeout
        self.cid = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send_raw(self, frame: bytes):
        self.sock.sendall(frame)

    def read_frame(self):
        deadline = time.monotonic() + self.timeout
        (n,) = struct.unpack(">i", recv_exact(self.sock, 4, deadline))
        return recv_exact(self.sock, n, deadline)

    def send(self, name, version, **fields):
        """Sends a request; returns a function that reads and decodes its response."""
        req_cls, resp_cls = classes(name)
        self.cid += 1
        cid = self.cid
        req = req_cls(version=version, **{k: _wrap(req_cls, k, v) for k, v in fields.items()})
        req.with_header(correlation_id=cid, client_id="fjord-compat")
        self.sock.sendall(req.encode(header=True, framed=True))

        def receive():
            data = self.read_frame()
            resp = resp_cls.decode(data, version=version, header=True)
            assert resp.header.correlation_id == cid, (resp.header.correlation_id, cid)
            return resp.to_dict(json=False)
        return receive

    def call(self, name, version, **fields):
        receive = self.send(name, version, **fields)
        if name == "Produce" and fields.get("acks") == 0:
            return None
        return receive()


def _wrap(req_cls, key, v):
    f = req_cls._struct.fields[key]
    if f.is_struct_array():
        return None if v is None else [_build(f.data_class, x) for x in v]
    if f.is_struct():
        return None if v is None else _build(f.data_class, v)
    return v


def call(bootstrap, name, version, **fields):
    with Conn(bootstrap) as c:
        return c.call(name, version, **fields)


def api_versions(bootstrap, version=3):
    kw = {"client_software_name": "fjord-compat", "client_software_version": "1"} if version >= 3 else {}
    r = call(bootstrap, "ApiVersions", version, **kw)
    return r


def header_v1(api_key, api_version, correlation_id, client_id=b"fjord-compat"):
    return struct.pack(">hhih", api_key, api_version, correlation_id, len(client_id)) + client_id


def raw_call(bootstrap, payload: bytes, timeout=10.0):
    """Sends one framed payload; returns the response frame (bytes after the length) or
    None if the broker closed the connection instead of answering."""
    with Conn(bootstrap, timeout=timeout) as c:
        c.send_raw(struct.pack(">i", len(payload)) + payload)
        try:
            return c.read_frame()
        except (ConnectionError, OSError):
            return None
