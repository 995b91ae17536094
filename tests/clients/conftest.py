"""Fixtures that run the REAL `fjord` binary for third-party client tests.

Environment:
  FJORD_BIN   path to the fjord binary (default: <repo>/target/release/fjord)

Fixtures:
  broker        session-wide broker with default flags (shared; use unique topics)
  make_broker   factory: make_broker(*extra_flags) -> started Broker, stopped at teardown
  topic_name    a unique topic name for the current test

A Broker offers: .bootstrap, .host, .port, .data_dir, .pid, .start(), .stop(),
.restart(), .kill9(), .rss_kb(), .alive(), .log_text().
On a test failure the tail of every broker log used by the test is attached to
the pytest report ("fjord log" section).
"""

import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = float(os.environ.get("FJORD_START_TIMEOUT", "30"))
STOP_TIMEOUT = float(os.environ.get("FJORD_STOP_TIMEOUT", "30"))


def fjord_bin() -> str:
    b = os.environ.get("FJORD_BIN")
    path = Path(b) if b else REPO_ROOT / "target" / "release" / "fjord"
    if not path.is_absolute():
        path = (REPO_ROOT / path) if not path.exists() else path.resolve()
    return str(path)


def fjord(broker_or_addr, *args, stdin=None, timeout=60, check=None):
    """Runs `fjord ARGS` against a broker; returns the CompletedProcess."""
    addr = getattr(broker_or_addr, "bootstrap", broker_or_addr)
    env = dict(os.environ, FJORD_BOOTSTRAP=addr)
    p = subprocess.run(
        [fjord_bin(), *args],
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        timeout=timeout,
    )
    p.out = p.stdout.decode(errors="replace")
    p.err = p.stderr.decode(errors="replace")
    if check is not None:
        assert p.returncode == check, f"rc={p.returncode}\nstdout={p.out}\nstderr={p.err}"
    return p


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, timeout=10.0, interval=0.05, msg="condition"):
    """Poll cond() until it returns a truthy value; return it, or raise."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - keep polling, report last error
            last_exc = e
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {msg}"
                + (f" (last error: {last_exc!r})" if last_exc else "")
            )
        time.sleep(interval)


def unique_topic(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Broker:
    def __init__(self, extra_flags=(), data_dir=None, port=None, tmp_root=None):
        self.extra_flags = [str(f) for f in extra_flags]
        self._tmp = tempfile.TemporaryDirectory(prefix="fjord-test-", dir=tmp_root)
        self.data_dir = data_dir or os.path.join(self._tmp.name, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.log_path = os.path.join(self._tmp.name, "fjord.log")
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.http_port = free_port()
        self.proc = None
        self._log_fh = None
        self.starts = 0

    # -- properties -----------------------------------------------------
    @property
    def bootstrap(self):
        return f"{self.host}:{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def argv(self):
        return [
            fjord_bin(),
            "serve",
            "--data-dir",
            self.data_dir,
            "--listen",
            self.bootstrap,
            "--http-listen",
            f"{self.host}:{self.http_port}",
            *self.extra_flags,
        ]

    # -- lifecycle ------------------------------------------------------
    def start(self, timeout=START_TIMEOUT):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        binary = fjord_bin()
        if not os.access(binary, os.X_OK):
            pytest.fail(f"fjord binary not found/executable at {binary} (set FJORD_BIN)")
        self._log_fh = open(self.log_path, "ab")
        self.starts += 1
        self._log_fh.write(
            f"\n===== start #{self.starts}: {' '.join(self.argv())} =====\n".encode()
        )
        self._log_fh.flush()
        # FJORD_* variables would change the broker's defaults (clap env): drop them
        env = {k: v for k, v in os.environ.items() if not k.startswith("FJORD_")}
        env.setdefault("RUST_BACKTRACE", "1")
        self.proc = subprocess.Popen(
            self.argv(),
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        # 1) TCP connect
        while True:
            self._check_alive("while starting")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"fjord did not accept TCP on {self.bootstrap} within {timeout}s\n"
                    + self.log_tail()
                )
            time.sleep(0.02)
        # 2) a successful metadata call by a real client (kafka-python wire
        #    encoding via our own minimal client would not prove much)
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(
            {"bootstrap.servers": self.bootstrap, "log_level": 0}
        )
        last = None
        while True:
            self._check_alive("while waiting for metadata")
            try:
                md = admin.list_topics(timeout=1.0)
                if md.brokers:
                    return
            except Exception as e:  # noqa: BLE001
                last = e
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"fjord metadata not ready within {timeout}s (last: {last!r})\n"
                    + self.log_tail()
                )
            time.sleep(0.05)

    def _check_alive(self, when):
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"fjord exited with code {self.proc.returncode} {when}\n" + self.log_tail()
            )

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Send sig and wait for exit. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"fjord did not exit within {timeout}s after {sig!r}\n" + self.log_tail()
                )
        rc = self.proc.returncode
        if self._log_fh:
            self._log_fh.close()
            self._log_fh = None
        return rc

    def restart(self, timeout=START_TIMEOUT):
        """Graceful restart: SIGTERM, require exit code 0, start on same dir/port."""
        rc = self.stop(signal.SIGTERM)
        assert rc == 0, f"fjord exited with {rc} on SIGTERM, expected 0\n" + self.log_tail()
        return self.start(timeout)

    def kill9(self):
        rc = self.stop(signal.SIGKILL)
        assert rc == -signal.SIGKILL, rc
        return rc

    def close(self):
        try:
            if self.alive():
                self.stop(signal.SIGTERM)
        except AssertionError:
            pass
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if self._log_fh:
                self._log_fh.close()
                self._log_fh = None

    def cleanup(self):
        self.close()
        self._tmp.cleanup()

    # -- introspection --------------------------------------------------
    def rss_kb(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(re.findall(r"\d+", line)[0])
        raise AssertionError("VmRSS not found")

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=200):
        lines = self.log_text().splitlines()[-n:]
        return f"--- fjord log tail ({self.log_path}) ---\n" + "\n".join(lines)


# ---------------------------------------------------------------------------
# pytest plumbing
# ---------------------------------------------------------------------------

_BROKERS_KEY = pytest.StashKey[list]()


def _register(request, b):
    item = request.node
    if isinstance(item, pytest.Item):
        item.stash.setdefault(_BROKERS_KEY, []).append(b)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call"):
        for b in item.stash.get(_BROKERS_KEY, []):
            rep.sections.append((f"fjord log {b.bootstrap}", b.log_tail(150)))


@pytest.fixture(scope="session")
def _session_broker(tmp_path_factory):
    b = Broker(tmp_root=str(tmp_path_factory.getbasetemp()))
    b.start()
    yield b
    rc = b.stop()
    b.cleanup()
    assert rc == 0, f"shared fjord exited with {rc} on SIGTERM"


@pytest.fixture
def broker(_session_broker, request):
    """Shared broker (default flags). Restarted if a previous test killed it."""
    if not _session_broker.alive():
        _session_broker.start()
    _register(request, _session_broker)
    return _session_broker


@pytest.fixture
def make_broker(request, tmp_path):
    """Factory for dedicated brokers with extra flags; stopped at teardown."""
    made = []

    def make(*extra_flags, start=True):
        b = Broker(extra_flags, tmp_root=str(tmp_path))
        made.append(b)
        _register(request, b)
        if start:
            b.start()
        return b

    yield make
    for b in made:
        b.cleanup()


@pytest.fixture
def topic_name(request):
    base = re.sub(r"[^A-Za-z0-9]", "-", request.node.name)[:40].strip("-")
    return f"{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def new_topic():
    """Call new_topic() for additional unique names within a test."""
    return unique_topic
