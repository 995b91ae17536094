"""Apache Kafka 4.4.0 as a reference broker for tests and benchmarks, built on scripts/kafka-ref.

    from kafka_ref import KafkaRef
    k = KafkaRef()            # a fresh temporary directory (or KafkaRef(dir=..., port=...))
    k.start()                 # ~10 s: format + start, returns once Metadata answers
    k.bootstrap               # "127.0.0.1:PORT"
    k.log_tail()              # last lines of DIR/logs/server.log
    k.stop(); k.cleanup()

Or as a context manager: `with KafkaRef() as k: ...`. Set KAFKA_REF_KEEP=1 to keep the directory.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "kafka-ref"


def classpath() -> str:
    """Resolves (once, cached) and returns Apache Kafka's classpath."""
    p = subprocess.run([str(SCRIPT), "classpath"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise RuntimeError(f"scripts/kafka-ref classpath failed:\n{p.stderr}")
    return p.stdout.strip()


class KafkaRef:
    def __init__(self, dir=None, port=None, settings=(), tmp_root=None):
        self._own_dir = dir is None
        self.dir = Path(dir) if dir else Path(tempfile.mkdtemp(prefix="kafka-ref-", dir=tmp_root))
        self.port = port
        self.settings = list(settings)  # "key=value" server.properties overrides
        self.bootstrap = None

    @property
    def host(self):
        return self.bootstrap.rsplit(":", 1)[0]

    def start(self, timeout=None):
        argv = [str(SCRIPT), "start", str(self.dir)]
        if self.port:
            argv += ["--port", str(self.port)]
        for kv in self.settings:
            argv += ["--set", kv]
        env = dict(os.environ)
        if timeout:
            env["KAFKA_REF_START_TIMEOUT"] = str(timeout)
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           stdin=subprocess.DEVNULL, env=env)
        if p.returncode != 0:
            raise RuntimeError(f"scripts/kafka-ref start failed (rc {p.returncode}):\n{p.stderr}")
        self.bootstrap = p.stdout.strip().splitlines()[-1]
        self.port = int(self.bootstrap.rsplit(":", 1)[1])
        return self

    def alive(self) -> bool:
        return subprocess.run([str(SCRIPT), "status", str(self.dir)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0

    def stop(self, timeout=30):
        subprocess.run([str(SCRIPT), "stop", str(self.dir), "--timeout", str(timeout)],
                       stdin=subprocess.DEVNULL, check=True)

    def pid(self):
        try:
            return int((self.dir / "pid").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def log_tail(self, n=150) -> str:
        path = self.dir / "logs" / "server.log"
        try:
            lines = path.read_text(errors="replace").splitlines()[-n:]
        except FileNotFoundError:
            return f"(no {path})"
        return f"--- kafka log tail ({path}) ---\n" + "\n".join(lines)

    def cleanup(self):
        try:
            self.stop()
        finally:
            if self._own_dir and os.environ.get("KAFKA_REF_KEEP") != "1":
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
