"""Idempotent producers end to end: exactly once and in order through a connection-cutting proxy.

Every client connects through `ChaosProxy` (chaos_proxy.py), which cuts connections in the middle
of Produce requests (the broker sees a truncated frame, nothing is appended) and in the middle of
Produce responses (the broker appended the batch but the client never learns it, so it retries
the same producer id/epoch/sequence and the broker must answer with the original offset instead
of appending again). The broker advertises the proxy's address, so reconnects after Metadata go
through the proxy too. One variant also kill -9s the broker while the producer keeps retrying.

Read-back is direct: the proxy is closed and the broker restarted gracefully WITHOUT
`--advertise` (same data dir and port), so an assigned consumer talks to the broker itself.
The oracle: every sequence number exactly once, in production order per partition, and at the
offset its delivery report announced.

Set IDEM_RDKAFKA_DEBUG=1 to also print the last librdkafka eos debug lines on failure.
"""

import asyncio
import logging
import os
import time
from collections import Counter, deque

import pytest
from confluent_kafka import Producer

import kutil
import wire
from chaos_proxy import PRODUCE, REQUEST, RESPONSE, ChaosProxy
from conftest import wait_until


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

@pytest.fixture
def proxied(make_broker):
    """proxied(*flags, seed=..., **proxy_kwargs) -> (broker, proxy).

    The proxy starts first (its port is the broker's advertised address) and does not cut
    anything until proxy.unleash(), so topic creation is not disturbed.
    """
    proxies = []

    def make(*flags, **proxy_kwargs):
        b = make_broker(*flags, start=False)
        proxy = ChaosProxy(upstream=(b.host, b.port), enabled=False,
                           cut_api_keys={PRODUCE}, **proxy_kwargs)
        proxies.append(proxy)
        b.extra_flags += ["--advertise", proxy.address]
        b.start()
        return b, proxy

    yield make
    for p in proxies:
        p.close()


def restart_direct(b, proxy):
    """Close the proxy; graceful restart (exit 0) advertising the broker's own address."""
    proxy.close()
    i = b.extra_flags.index("--advertise")
    del b.extra_flags[i:i + 2]
    b.restart()


def check_exactly_once(bootstrap, topic, partitions, n, delivered, context=""):
    """delivered: seq -> (partition, offset) from the producer's delivery reports."""
    assert sorted(delivered) == list(range(n)), f"delivery reports missing {context}"
    seen = []
    for part in range(partitions):
        lo, hi = kutil.watermarks(bootstrap, topic, part)
        assert lo == 0
        got = kutil.consume(bootstrap, topic, hi, partition=part, timeout=60) if hi else []
        assert [m.offset() for m in got] == list(range(hi))
        seqs = [int(m.value()) for m in got]
        dups = sorted(s for s, c in Counter(seqs).items() if c > 1)
        assert not dups, (
            f"partition {part}: {len(dups)} sequence numbers stored more than once, e.g. "
            f"{[(s, [o for o, v in enumerate(seqs) if v == s]) for s in dups[:5]]} {context}"
        )
        disorder = [(o, seqs[o - 1], seqs[o]) for o in range(1, len(seqs)) if seqs[o] < seqs[o - 1]]
        assert not disorder, f"partition {part}: out of order at (offset, prev, seq) {disorder[:5]} {context}"
        wrong = [(s, (part, o), delivered.get(s)) for o, s in enumerate(seqs) if delivered.get(s) != (part, o)]
        assert not wrong, (
            f"partition {part}: records not at the offset their delivery report gave "
            f"(seq, stored at, reported) {wrong[:5]} {context}"
        )
        seen.extend(seqs)
    missing = sorted(set(range(n)) - set(seen))
    assert not missing, f"{len(missing)} sequence numbers lost, e.g. {missing[:10]} {context}"
    assert len(seen) == n


class _Capture(logging.Handler):
    """Keeps librdkafka log lines (bounded) and counts the interesting ones."""

    PATTERNS = ("bump", "fatal", "UNKNOWN_PRODUCER", "OUT_OF_ORDER", "DUPLICATE", "epoch")

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = deque(maxlen=4000)
        self.interesting = deque(maxlen=200)

    def emit(self, record):
        line = record.getMessage()
        self.lines.append(line)
        if any(p.lower() in line.lower() for p in self.PATTERNS):
            self.interesting.append(line)


def rdkafka_logger():
    cap = _Capture()
    log = logging.getLogger(f"rdkafka-idem-{id(cap)}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(cap)
    return log, cap


def run_confluent(b, proxy, topic, n, partitions, kill_at=None):
    """Produce n records through the proxy; optionally kill -9 + restart the broker once
    `kill_at` records have been produced (see maybe_kill). Returns (delivered, errors, capture, killed)."""
    log, cap = rdkafka_logger()
    errors = []  # error_cb
    failed = []  # failed deliveries
    delivered = {}
    dup_reports = []

    def on_delivery(err, msg):
        if err is not None:
            failed.append((err, msg.value()))
            return
        s = int(msg.value())
        if s in delivered:
            dup_reports.append(s)
        delivered[s] = (msg.partition(), msg.offset())

    p = Producer({
        "bootstrap.servers": proxy.address,
        "enable.idempotence": True,
        "acks": "all",
        "retries": 2147483647,
        "max.in.flight.requests.per.connection": 5,
        "linger.ms": 2,
        "batch.num.messages": 50,
        "compression.type": "none",
        "message.timeout.ms": 300000,
        "request.timeout.ms": 30000,
        "queue.buffering.max.messages": 2 * n,
        "reconnect.backoff.ms": 10,
        "reconnect.backoff.max.ms": 50,
        "retry.backoff.ms": 10,
        "retry.backoff.max.ms": 100,
        # one broker: every cut means "all brokers down", and the default recovery strategy
        # (rebootstrap) then forgets the learned broker and rediscovers it -- correct, but it
        # doubles the run time without testing anything more of the broker
        "metadata.recovery.strategy": "none",
        "error_cb": errors.append,
        "logger": log,
        "debug": "eos",
        "log_level": 7,
    })
    killed = []

    def fatal():
        # a fatal error reaches error_cb with err.fatal(); every later produce() would fail
        return next((e for e in errors if e.fatal()), None)

    holding = []

    def maybe_kill(produced):
        """Two steps, never blocking the caller (which keeps producing and polling). Once
        `kill_at` records are produced, the producer is demonstrably up (a tenth of them
        delivered) and over a quarter of all records still await delivery — far more than fit
        in the 5 requests in flight, so produce requests are certain to follow — start
        withholding responses; once a produce response is withheld, kill -9 and restart. So the
        broker has certainly handled produce requests the producer never heard back on: after
        the restart it resends them with the same pid/epoch/sequence, and the state rebuilt
        from the log must recognise them."""
        if kill_at is None or killed:
            return
        if not holding:
            started = len(delivered) >= kill_at // 10
            if produced >= kill_at and started and len(p) > n // 4:
                proxy.hold_responses()
                holding.append(time.monotonic())
            return
        if proxy.held(PRODUCE) < 1:
            assert time.monotonic() - holding[0] < 30, "no produce response to withhold in 30 s"
            return
        outstanding = len(p)
        b.kill9()
        proxy.drop_held()
        wait_until(lambda: proxy.held() == 0, timeout=10, msg="withheld responses dropped")
        b.start()
        killed.append({"delivered": len(delivered), "outstanding": outstanding,
                       "unanswered_produce": proxy.dropped[PRODUCE]})

    proxy.unleash()
    for i in range(n):
        key = b"k%d" % (i % 101) if partitions > 1 else None
        while True:
            try:
                p.produce(topic, value=b"%d" % i, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        if i % 500 == 0:
            p.poll(0)
            maybe_kill(i)
    deadline = time.monotonic() + 150
    while len(p) > 0 and time.monotonic() < deadline and fatal() is None:
        p.poll(0.1)
        maybe_kill(n)
    remaining = len(p)
    proxy.calm()
    if kill_at is not None:
        assert killed, f"broker never killed: {len(delivered)} delivered"
        # the kill happened with records queued and produce requests handled but unanswered
        assert killed[0]["outstanding"] > 0 and killed[0]["unanswered_produce"] >= 1, killed
    ctx = diagnostics(proxy, errors, cap)
    assert fatal() is None, f"producer fatal error {fatal()} {ctx}"
    assert remaining == 0, f"{remaining} records not delivered {ctx}"
    assert not failed, f"{len(failed)} failed deliveries, e.g. {[(str(e), v) for e, v in failed[:5]]} {ctx}"
    assert not dup_reports, f"delivery reported twice for {dup_reports[:5]}"
    return delivered, errors, cap, killed


def diagnostics(proxy, errors, cap=None):
    out = [f"\nproxy: {proxy.stats()}",
           f"error_cb ({len(errors)}): {Counter(str(e.name()) for e in errors)}"]
    fatal = [str(e) for e in errors if e.fatal()]
    if fatal:
        out.append(f"FATAL: {fatal}")
    if cap is not None:
        out.append("librdkafka (eos, interesting):\n  " + "\n  ".join(list(cap.interesting)[-60:]))
        if os.environ.get("IDEM_RDKAFKA_DEBUG"):
            out.append("librdkafka (last lines):\n  " + "\n  ".join(list(cap.lines)[-300:]))
    return "\n".join(out)


def assert_cuts(proxy, at_least):
    req = proxy.cut_count(REQUEST, PRODUCE)
    resp = proxy.cut_count(RESPONSE, PRODUCE)
    assert req >= at_least and resp >= at_least, (
        f"proxy cut only {req} produce requests / {resp} produce responses mid-frame "
        f"(want >= {at_least} each): {proxy.stats()}"
    )


# ---------------------------------------------------------------------------
# the proxy itself
# ---------------------------------------------------------------------------

def test_proxy_cuts_mid_frame(make_broker):
    b = make_broker()
    # every response cut: the client gets a proper prefix of the frame, then EOF
    with ChaosProxy(upstream=(b.host, b.port), response_every=(1, 1), rst_share=0) as px:
        s = wire.connect(px.address)
        s.sendall(wire.api_versions_request(version=0))
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        s.close()
        assert 0 < len(got)
        assert len(got) < 4 or len(got) < 4 + int.from_bytes(got[:4], "big")
        assert px.cut_count(RESPONSE) == 1 and px.cut_count(REQUEST) == 0
    # every request cut: the broker sees a truncated frame; it stays healthy
    with ChaosProxy(upstream=(b.host, b.port), request_every=(1, 1)) as px:
        for _ in range(5):
            s = wire.connect(px.address)
            s.sendall(wire.api_versions_request(version=0))
            wire.wait_closed(s)
            s.close()
        assert px.cut_count(REQUEST) == 5
    # no schedule: a transparent proxy
    with ChaosProxy(upstream=(b.host, b.port)) as px:
        s = wire.connect(px.address)
        s.sendall(wire.api_versions_request(version=0, correlation_id=42))
        cid, _ = wire.read_response(s)
        assert cid == 42
        s.close()
    assert b.alive()


# ---------------------------------------------------------------------------
# librdkafka (confluent-kafka)
# ---------------------------------------------------------------------------

N = 100_000


@pytest.mark.parametrize("partitions", [1, 3])
def test_confluent_exactly_once_through_cuts(proxied, topic_name, partitions):
    b, proxy = proxied(seed=1000 + partitions, request_every=(25, 50), response_every=(25, 50))
    kutil.create_topic(b.bootstrap, topic_name, partitions=partitions)
    delivered, errors, cap, _ = run_confluent(b, proxy, topic_name, N, partitions)
    assert_cuts(proxy, 20)
    ctx = diagnostics(proxy, errors, cap)
    restart_direct(b, proxy)
    check_exactly_once(b.bootstrap, topic_name, partitions, N, delivered, ctx)


@pytest.mark.parametrize("flush", ["sync", "async"])
def test_confluent_exactly_once_across_kill9(proxied, topic_name, flush):
    b, proxy = proxied("--log-flush", flush, seed=2000 + len(flush),
                       request_every=(25, 50), response_every=(25, 50))
    kutil.create_topic(b.bootstrap, topic_name, partitions=1)
    delivered, errors, cap, killed = run_confluent(b, proxy, topic_name, N, 1, kill_at=N // 2)
    assert_cuts(proxy, 20)
    assert proxy.refused + proxy.connections > 0
    ctx = diagnostics(proxy, errors, cap) + f"\nkill: {killed}"
    print(ctx)  # shown with -rP: what librdkafka did across the restart
    restart_direct(b, proxy)
    check_exactly_once(b.bootstrap, topic_name, 1, N, delivered, ctx)


def test_control_chaos_duplicates_without_idempotence(proxied, topic_name):
    """Control for the tests above: the same cuts DO duplicate records when the producer is not
    idempotent (a cut response means the broker appended the batch and the client resends it).
    If this ever stops finding duplicates, the proxy no longer exercises the retry path."""
    b, proxy = proxied(seed=5000, request_every=(25, 50), response_every=(25, 50))
    kutil.create_topic(b.bootstrap, topic_name)
    n = 20_000
    p = Producer({
        "bootstrap.servers": proxy.address, "enable.idempotence": False, "acks": "all",
        "retries": 2147483647, "max.in.flight.requests.per.connection": 1, "linger.ms": 2,
        "batch.num.messages": 50, "message.timeout.ms": 120000, "reconnect.backoff.ms": 10,
        "reconnect.backoff.max.ms": 50, "retry.backoff.ms": 10, "retry.backoff.max.ms": 100,
        "metadata.recovery.strategy": "none", "queue.buffering.max.messages": 2 * n,
        "log_level": 0,
    })
    failed, delivered = [], {}

    def on_delivery(err, msg):
        if err is not None:
            failed.append(err)
        else:
            delivered[int(msg.value())] = (msg.partition(), msg.offset())

    proxy.unleash()
    for i in range(n):
        p.produce(topic_name, value=b"%d" % i, on_delivery=on_delivery)
        if i % 500 == 0:
            p.poll(0)
    assert p.flush(120) == 0
    proxy.calm()
    assert not failed, failed[:5]
    cut_responses = proxy.cut_count(RESPONSE, PRODUCE)
    assert cut_responses >= 5, proxy.stats()
    restart_direct(b, proxy)
    # every cut response is a batch the broker kept and the client sent again: the oracle of
    # the tests above must see the duplicates
    with pytest.raises(AssertionError, match="stored more than once"):
        check_exactly_once(b.bootstrap, topic_name, 1, n, delivered)


# ---------------------------------------------------------------------------
# kafka-python and aiokafka
# ---------------------------------------------------------------------------

SMALL = 5_000


def test_kafka_python_exactly_once_through_cuts(proxied, topic_name):
    from kafka import KafkaProducer

    b, proxy = proxied(seed=3000, request_every=(5, 15), response_every=(5, 15))
    kutil.create_topic(b.bootstrap, topic_name)
    p = KafkaProducer(
        bootstrap_servers=proxy.address, enable_idempotence=True, acks="all",
        retries=2147483647, max_in_flight_requests_per_connection=5, linger_ms=2,
        batch_size=256, request_timeout_ms=30000, delivery_timeout_ms=120000,
        retry_backoff_ms=10, reconnect_backoff_ms=10, reconnect_backoff_max_ms=200,
    )
    proxy.unleash()
    try:
        futs = [p.send(topic_name, value=b"%d" % i) for i in range(SMALL)]
        p.flush(timeout=120)
        delivered, failed = {}, []
        for i, f in enumerate(futs):
            try:
                md = f.get(timeout=1)
                delivered[i] = (md.partition, md.offset)
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                failed.append((i, repr(e)))
    finally:
        proxy.calm()
        p.close(timeout=10)
    ctx = f"\nproxy: {proxy.stats()}"
    print(ctx)
    assert not failed, f"{len(failed)} failed sends, e.g. {failed[:5]} {ctx}"
    assert_cuts(proxy, 10)
    restart_direct(b, proxy)
    check_exactly_once(b.bootstrap, topic_name, 1, SMALL, delivered, ctx)


def test_aiokafka_exactly_once_through_cuts(proxied, topic_name):
    from aiokafka import AIOKafkaProducer

    b, proxy = proxied(seed=4000, request_every=(5, 15), response_every=(5, 15))
    kutil.create_topic(b.bootstrap, topic_name)

    async def produce():
        p = AIOKafkaProducer(
            bootstrap_servers=proxy.address, enable_idempotence=True, acks="all",
            linger_ms=2, max_batch_size=256, request_timeout_ms=30000,
            retry_backoff_ms=10,
        )
        await p.start()
        proxy.unleash()
        delivered, failed = {}, []
        try:
            futs = [await p.send(topic_name, value=b"%d" % i) for i in range(SMALL)]
            results = await asyncio.gather(*futs, return_exceptions=True)
            for i, r in enumerate(results):
                if isinstance(r, BaseException):
                    failed.append((i, repr(r)))
                else:
                    delivered[i] = (r.partition, r.offset)
        finally:
            proxy.calm()
            await p.stop()
        return delivered, failed

    delivered, failed = asyncio.run(asyncio.wait_for(produce(), 150))
    ctx = f"\nproxy: {proxy.stats()}"
    print(ctx)
    assert not failed, f"{len(failed)} failed sends, e.g. {failed[:5]} {ctx}"
    assert_cuts(proxy, 10)
    restart_direct(b, proxy)
    check_exactly_once(b.bootstrap, topic_name, 1, SMALL, delivered, ctx)
