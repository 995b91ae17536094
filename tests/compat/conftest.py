"""Differential tests: every scenario runs against Apache Kafka 4.4.0 (scripts/kafka-ref) and
against Fjord (FJORD_BIN, default target/release/fjord), and what a client can observe is compared.

Session fixture `pair`: ONE Kafka and ONE Fjord (started in parallel), shared by all tests; tests
use unique topic/group names (the same name on both sides, so answers compare directly).
On a failure the log tails of both brokers are attached to the report.
Observed answers are written to tests/compat/out/results.json (used by gen_doc.py).
"""

import importlib.util
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from kafka_ref import KafkaRef  # noqa: E402

# tests/clients/conftest.py's Broker (the real fjord binary), loaded under another module name
_spec = importlib.util.spec_from_file_location("clients_conftest", REPO / "tests/clients/conftest.py")
clients_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(clients_conftest)
FjordBroker = clients_conftest.Broker

import compat  # noqa: E402


class Pair:
    def __init__(self, kafka, fjord):
        self.kafka_ref = kafka
        self.fjord_broker = fjord
        self.kafka = compat.Side("kafka", kafka.bootstrap)
        self.fjord = compat.Side("fjord", fjord.bootstrap)
        if hasattr(kafka, "stop") and hasattr(fjord, "restart"):
            # graceful restarts on the same data and port (test_zz_last.py)
            self.kafka.restart = lambda: (kafka.stop(), kafka.start())

            def fjord_restart():
                try:
                    fjord.restart()
                except AssertionError:  # a failed stop: start it again for the cases after
                    if not fjord.alive():
                        fjord.start()
                    raise
            self.fjord.restart = fjord_restart

    def sides(self):
        return (self.kafka, self.fjord)


_PAIR = []


class _Running:
    """An already running broker (COMPAT_KAFKA / COMPAT_FJORD=HOST:PORT, for development)."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap

    def log_tail(self, n=60):
        return "(external broker)"


def fjord_flags():
    """--transaction-abort-interval-ms 200 if this fjord has the flag (it came with
    transactions; an older binary would refuse to start with it)"""
    try:
        out = subprocess.run([clients_conftest.fjord_bin(), "serve", "--help"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             stdin=subprocess.DEVNULL, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return ["--transaction-abort-interval-ms", "200"] if \
        "--transaction-abort-interval-ms" in out else []


@pytest.fixture(scope="session")
def pair(tmp_path_factory):
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("COMPAT_KAFKA") and os.environ.get("COMPAT_FJORD"):
        p = Pair(_Running(os.environ["COMPAT_KAFKA"]), _Running(os.environ["COMPAT_FJORD"]))
        _PAIR.append(p)
        for side in p.sides():
            side.warm_up()
        yield p
        _PAIR.clear()
        return
    # a short check interval for timed-out transactions (test_transactions.py: txn/timeout-abort)
    kafka = KafkaRef(tmp_root=str(root),
                     settings=["transaction.abort.timed.out.transaction.cleanup.interval.ms=500"])
    err = []

    def start_kafka():
        try:
            kafka.start()
        except Exception as e:  # noqa: BLE001
            err.append(e)

    t = threading.Thread(target=start_kafka)
    t.start()
    fjord = FjordBroker(extra_flags=fjord_flags(), tmp_root=str(root))
    try:
        fjord.start()
    finally:
        t.join()
    if err:
        fjord.cleanup()
        raise err[0]
    p = Pair(kafka, fjord)
    _PAIR.append(p)
    for side in p.sides():
        side.warm_up()
    yield p
    _PAIR.clear()
    fjord.cleanup()
    kafka.cleanup()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call") and _PAIR:
        p = _PAIR[0]
        rep.sections.append(("fjord log", p.fjord_broker.log_tail(60)))
        rep.sections.append(("kafka log", p.kafka_ref.log_tail(60)))


def pytest_sessionfinish(session, exitstatus):
    if not compat.RESULTS:
        return
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    path = out / "results.json"
    old = {}
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
    old.update(compat.RESULTS)
    path.write_text(json.dumps(old, indent=1, sort_keys=True, default=repr))
