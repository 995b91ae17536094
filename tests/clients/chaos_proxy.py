"""A TCP proxy that cuts Kafka connections in the middle of frames, on a seeded schedule.

    proxy = ChaosProxy(upstream=("127.0.0.1", broker_port), seed=7,
                       request_every=(10, 30), response_every=(10, 30))
    ...  # start the broker with --advertise 127.0.0.1:{proxy.port}
    proxy.close()

Every accepted client connection gets its own upstream connection. Both directions are parsed
into Kafka frames (4-byte big-endian size + payload) and forwarded frame by frame. Each direction
has its own seeded schedule: after a number of eligible frames drawn from `request_every` /
`response_every` (inclusive range), the next eligible frame is cut: only a random proper prefix
of it (1 .. size-1 bytes, so possibly inside the size field) is forwarded, then both sockets are
closed (a FIN, or an RST for a seeded share of cuts). New connections are then accepted normally.
A cut request means the broker saw a truncated frame; a cut response means the broker handled
the request but the client never got the whole answer.

`hold_responses()` withholds all responses (the client's requests stay in flight, handled by
the broker but unanswered) until `drop_held()` cuts those connections; the test kills the broker
in between.

`cut_api_keys` restricts which frames are eligible (None = every frame). Responses are matched
to their request's api key by correlation id. While the upstream is down (broker killed), new
client connections are closed at once (`refused`).

The schedule is deterministic in frame counts; which request it hits still depends on client
timing. Statistics: `cuts[("request"|"response", api_key)]`, `connections`, `refused`, `frames`.
"""

import random
import select
import socket
import struct
import threading
from collections import Counter

REQUEST, RESPONSE = "request", "response"
MAX_FRAME = 256 * 1024 * 1024
PRODUCE = 0


class _Pair:
    """One client connection and its upstream connection."""

    def __init__(self, client, upstream):
        self.client = client
        self.upstream = upstream
        self.api_by_correlation = {}
        self.held = []  # api keys of responses withheld from the client (hold_responses)
        self.lock = threading.Lock()
        self.closed = False

    def close(self, rst=False):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.client, self.upstream):
            # shutdown() first: it wakes the other pump blocked in recv() on this socket (a bare
            # close() would not, and that blocked call would keep the connection open). With
            # rst, SHUT_RD sends nothing and the close with zero linger then sends an RST.
            try:
                if rst:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.shutdown(socket.SHUT_RD)
                else:
                    s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass


class ChaosProxy:
    def __init__(self, upstream=None, seed=0, request_every=None, response_every=None,
                 cut_api_keys=None, rst_share=0.25, enabled=True, host="127.0.0.1"):
        self.upstream = upstream
        self.host = host
        self.cut_api_keys = None if cut_api_keys is None else set(cut_api_keys)
        self.rst_share = rst_share
        self._every = {REQUEST: request_every, RESPONSE: response_every}
        self._rng = {REQUEST: random.Random(f"{seed}-req"), RESPONSE: random.Random(f"{seed}-resp")}
        self._eligible = Counter()
        self._next_cut = {d: self._draw(d, 0) for d in (REQUEST, RESPONSE)}
        self._lock = threading.Lock()
        self.enabled = enabled
        self.cuts = Counter()
        self.frames = Counter()
        self.connections = 0
        self.refused = 0
        self.holding = False
        self.dropped = Counter()  # api key -> withheld responses never delivered
        self._pairs = set()
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="chaos-accept", daemon=True)
        self._thread.start()

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    # -- statistics -------------------------------------------------------
    def cut_count(self, direction, api_key=None):
        with self._lock:
            return sum(n for (d, k), n in self.cuts.items()
                       if d == direction and (api_key is None or k == api_key))

    def stats(self):
        with self._lock:
            return {"cuts": dict(self.cuts), "frames": dict(self.frames),
                    "connections": self.connections, "refused": self.refused,
                    "dropped_held": dict(self.dropped)}

    def calm(self):
        """Stop cutting (connections are still proxied)."""
        with self._lock:
            self.enabled = False

    def hold_responses(self):
        """Withhold every response from now on (requests still reach the broker): the client's
        requests stay in flight with an unknown outcome. Used to kill the broker at a moment
        when it has certainly handled requests whose answers the client never gets."""
        with self._lock:
            self.holding = True

    def held(self, api_key=None):
        with self._lock:
            return sum(1 for p in self._pairs for k in p.held if api_key is None or k == api_key)

    def drop_held(self):
        """Stop withholding: cut every connection that has withheld responses (they are never
        delivered, counted in `dropped`)."""
        with self._lock:
            self.holding = False
            pairs = [p for p in self._pairs if p.held]
        for p in pairs:
            p.close()

    def unleash(self):
        """(Re)start cutting; only frames seen while cutting count towards the schedule."""
        with self._lock:
            self.enabled = True

    # -- schedule ---------------------------------------------------------
    def _draw(self, direction, now):
        every = self._every[direction]
        if not every:
            return None
        lo, hi = every
        return now + self._rng[direction].randint(lo, hi)

    def _decide(self, direction, api_key, size):
        """None = forward the frame; else (prefix length, rst)."""
        with self._lock:
            self.frames[(direction, api_key)] += 1
            if not self.enabled:
                return None
            if self.cut_api_keys is not None and api_key not in self.cut_api_keys:
                return None
            self._eligible[direction] += 1
            nxt = self._next_cut[direction]
            if nxt is None or self._eligible[direction] < nxt:
                return None
            rng = self._rng[direction]
            self._next_cut[direction] = self._draw(direction, self._eligible[direction])
            prefix = rng.randint(1, size - 1)
            rst = rng.random() < self.rst_share
            self.cuts[(direction, api_key)] += 1
            return prefix, rst

    # -- plumbing ---------------------------------------------------------
    def _accept_loop(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self._listener], [], [], 0.05)
            if not r:
                continue
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                up = socket.create_connection(self.upstream, timeout=2)
                up.settimeout(None)
                up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                with self._lock:
                    self.refused += 1
                client.close()
                continue
            pair = _Pair(client, up)
            with self._lock:
                self.connections += 1
                self._pairs.add(pair)
            for src, dst, d in ((client, up, REQUEST), (up, client, RESPONSE)):
                threading.Thread(target=self._pump, args=(pair, src, dst, d),
                                 name=f"chaos-{d}", daemon=True).start()

    def _pump(self, pair, src, dst, direction):
        buf = bytearray()
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    return
                buf += data
                while len(buf) >= 4:
                    (size,) = struct.unpack_from(">i", buf, 0)
                    if size < 0 or size > MAX_FRAME:
                        # not a Kafka frame: pass the bytes through untouched
                        dst.sendall(bytes(buf))
                        buf.clear()
                        break
                    total = 4 + size
                    if len(buf) < total:
                        break
                    frame = bytes(buf[:total])
                    del buf[:total]
                    api_key = self._api_key(pair, direction, frame)
                    if direction == RESPONSE and self.holding:
                        with self._lock:
                            pair.held.append(api_key)
                        continue
                    cut = self._decide(direction, api_key, total)
                    if cut is None:
                        dst.sendall(frame)
                        continue
                    prefix, rst = cut
                    dst.sendall(frame[:prefix])
                    pair.close(rst=rst)
                    return
        except OSError:
            return
        finally:
            pair.close()
            with self._lock:
                self._pairs.discard(pair)
                self.dropped.update(pair.held)
                pair.held.clear()

    @staticmethod
    def _api_key(pair, direction, frame):
        if direction == REQUEST:
            if len(frame) < 12:
                return None
            api_key, _version, correlation = struct.unpack_from(">hhi", frame, 4)
            pair.api_by_correlation[correlation] = api_key
            return api_key
        if len(frame) < 8:
            return None
        (correlation,) = struct.unpack_from(">i", frame, 4)
        return pair.api_by_correlation.pop(correlation, None)

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        with self._lock:
            pairs = list(self._pairs)
        for p in pairs:
            p.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
