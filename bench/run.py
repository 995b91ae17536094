#!/usr/bin/env python3
"""Fjord broker benchmarks: machine limits, Fjord vs Tansu (in-memory) with the same clients
(rdkafka_performance and fjord bench), latency at 50% load, logs larger than RAM.

One run does everything and prints a markdown report (also written to bench/out/results.md,
raw samples to bench/out/results.json). Tools come from bench/setup.sh.

    bench/setup.sh            # once
    python3 bench/run.py      # full run (~30 min on 2 cores, plus the build)
    python3 bench/run.py --quick   # smaller counts, 1 repetition (smoke test)
    python3 bench/run.py --only bigcold   # log larger than RAM (1.15 x MemTotal): never by default
    python3 bench/run.py --no-build --only kafka   # Fjord vs Apache Kafka 4.4.0 vs Tansu: never by
                                  # default; kafka-tput (~10 min per repetition on the busy 2 cores
                                  # of 2026-12-01) and kafka-lat (~4 min for 3) run one half each;
                                  # --quick: smoke test of both, ~4 min.

Kafka: `scripts/kafka-ref start` (single-node KRaft, Maven Central jars, its defaults: heap
-Xmx1G -Xms1G G1, no flush = page cache like Fjord async); "kafka-sync" creates its topics with
flush.messages=1 (fsync before the ack) beside Fjord sync. Its clients, kafka-producer-perf-test
and kafka-consumer-perf-test, are the ProducerPerformance / ConsumerPerformance classes run by
`scripts/kafka-ref run` with -Xmx512M. In the kafka sections every fresh broker (all kinds) is first
warmed by --kafka-warm-mb of 1 KiB records produced and consumed on another topic; broker CPU
and the client's CPU (children rusage) are recorded per phase.

Method
- Every broker run starts a fresh broker (fresh Fjord/Kafka data dir; Tansu memory://), creates the
  topic with CreateTopics, produces a fixed count with rdkafka_performance -P (or fjord bench
  produce in the fjbench/e2e sections), then consumes the same count from the beginning with
  rdkafka_performance -C (or fjord bench consume): a catch-up read.
- Fjord async, Tansu and Fjord sync are interleaved inside every repetition so machine-load
  noise hits all of them; each cell is the median of --reps repetitions.
- Broker CPU = utime+stime of the broker process (/proc/PID/stat, all threads) across the
  phase; peak RSS = VmHWM at the end of the run.
- The client is librdkafka 2.12.1 with librdkafka's defaults (linger.ms=5 set explicitly, batch.size=1000000, no
  compression, idempotence off) unless a row says otherwise.
"""
import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
RDK = OUT / "rdkafka_performance"
TANSU = OUT / "tansu"
FJORD = Path(os.environ.get("FJORD_BIN", ROOT / "target" / "release" / "fjord"))
DATA = OUT / "data"
HZ = os.sysconf("SC_CLK_TCK")
FJORD_PORT = 19092
TANSU_PORT = 19093
KAFKA_PORT = 19094
KAFKA_REF = ROOT / "scripts" / "kafka-ref"  # Apache Kafka 4.4.0 from Maven Central jars
LOG = OUT / "run.log"


def log(*a):
    line = " ".join(str(x) for x in a)
    print(line, file=sys.stderr, flush=True)
    with open(LOG, "a") as f:
        f.write(time.strftime("%H:%M:%S ") + line + "\n")


def sh(cmd, timeout=600, check=True, **kw):
    r = subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, text=True,
                       timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{cmd} failed rc={r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r


def load_state():
    la = open("/proc/loadavg").read().split()[0]
    n = int(sh("pgrep -c rustc || true", check=False).stdout.strip() or 0)
    return float(la), n


def wait_quiet(max_wait):
    """Wait (bounded) until no rustc is running; returns (loadavg, rustc count) at start."""
    t0 = time.time()
    while True:
        la, n = load_state()
        if n == 0 or time.time() - t0 >= max_wait:
            return la, n
        time.sleep(5)


# ---------------------------------------------------------------- machine limits

def dd_write(path, mb):
    r = sh(f"dd if=/dev/zero of={path} bs=1M count={mb} oflag=direct conv=fdatasync 2>&1")
    return dd_rate(r.stdout)


def dd_read(path):
    r = sh(f"dd if={path} of=/dev/null bs=1M iflag=direct 2>&1")
    return dd_rate(r.stdout)


def dd_rate(text):
    b, s = dd_bytes_secs(text)
    return b / s / 1e6


def dd_bytes_secs(text):
    # "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 2.1 s, 511 MB/s"
    m = re.search(r"(\d+) bytes .* copied, ([\d.]+) s", text)
    return int(m.group(1)), float(m.group(2))


def dd_dsync_latency(path, n):
    r = sh(f"dd if=/dev/zero of={path} bs=4k count={n} oflag=dsync 2>&1")
    m = re.search(r"copied, ([\d.]+) s", r.stdout)
    return float(m.group(1)) / n * 1e6  # us per 4 KiB O_DSYNC write


def fdatasync_latency(path, n):
    """Single writer: append 4 KiB then fdatasync, n times; returns sorted per-op us."""
    lat = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    buf = b"x" * 4096
    try:
        for _ in range(n):
            t = time.perf_counter()
            os.write(fd, buf)
            os.fdatasync(fd)
            lat.append((time.perf_counter() - t) * 1e6)
    finally:
        os.close(fd)
    lat.sort()
    return lat


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


def iperf3_loopback(secs):
    srv = subprocess.Popen(["iperf3", "-s", "-1", "-p", "15201"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        r = sh(["iperf3", "-c", "127.0.0.1", "-p", "15201", "-t", str(secs), "-J"], timeout=60)
        j = json.loads(r.stdout)
        return j["end"]["sum_received"]["bits_per_second"] / 8 / 1e6
    finally:
        srv.wait(timeout=10) if srv.poll() is None else None


# ---------------------------------------------------------------- page cache and disk

def meminfo_bytes(key):
    for line in open("/proc/meminfo"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def drop_caches():
    """Empties the whole page cache (and dentries/inodes). Root only; False when refused."""
    os.sync()  # drop_caches only drops clean pages
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def fadvise_evict(d):
    """fsync + posix_fadvise(DONTNEED) of every file under d: works unprivileged, but only
    advises, so it is the fallback when drop_caches is refused."""
    for p in d.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def evict(d):
    """Makes the files under d cold; returns how ("drop_caches" or "fadvise")."""
    if os.geteuid() == 0 and drop_caches():
        return "drop_caches"
    fadvise_evict(d)
    return "fadvise"


def dir_bytes(d):
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file())


def block_dev(path):
    """/sys/dev/block/M:m of the device holding path (None on overlay/tmpfs: no disk stats)."""
    st = os.stat(path).st_dev
    d = Path(f"/sys/dev/block/{os.major(st)}:{os.minor(st)}")
    return d if (d / "stat").exists() else None


def read_ahead_kb(dev):
    # A partition has no queue/ of its own; its disk's is one level up.
    for q in (dev / "queue", dev.resolve().parent / "queue"):
        if (q / "read_ahead_kb").exists():
            return int((q / "read_ahead_kb").read_text())
    return None


class Sampler(threading.Thread):
    """Once a second while a phase runs: the disk's iostat -x view from /sys/dev/block/*/stat
    (read MB/s, average read request size, read await, average queue depth, utilisation), the
    machine's CPU split from /proc/stat and the broker's CPU. That separates "the disk is busy
    with a deep queue" from "the disk idles while the broker or the client computes" from "the
    disk idles while everyone waits on a synchronous read"."""

    def __init__(self, dev, pid=None):
        super().__init__(daemon=True)
        self.dev, self.pid = dev, pid
        self.samples = []
        self.halt = threading.Event()

    def snap(self):
        disk = [int(x) for x in (self.dev / "stat").read_text().split()] if self.dev else None
        cpu = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        broker = 0
        if self.pid:
            try:
                f = open(f"/proc/{self.pid}/stat").read().rsplit(")", 1)[1].split()
                broker = int(f[11]) + int(f[12])
            except OSError:
                pass
        return time.time(), disk, cpu, broker

    def run(self):
        self.first = prev = self.snap()
        while not self.halt.wait(1.0):
            cur = self.snap()
            self.samples.append(interval(prev, cur))
            prev = cur

    def stop(self):
        """Per-second rows, and a summary: whole-phase averages (iostat's first report) plus
        the spread of the per-second read rate, which can be bimodal."""
        self.halt.set()
        self.join()
        whole = interval(self.first, self.snap())
        rates = sorted(s["r_mb_s"] for s in self.samples if "r_mb_s" in s)
        for q in (10, 50, 90):
            whole[f"r_mb_s_p{q}"] = pct(rates, q)
        return self.samples, {k: round(v, 3) for k, v in whole.items()}


def interval(a, b):
    """One iostat -x style row from two snapshots (stat fields: Documentation/block/stat.rst)."""
    dt = b[0] - a[0]
    row = {"t": round(b[0], 1), "load": float(open("/proc/loadavg").read().split()[0])}
    if a[1] and b[1]:
        d = [y - x for x, y in zip(a[1], b[1])]
        reads, sectors, rticks, ioticks, inqueue = d[0], d[2], d[3], d[9], d[10]
        row.update(r_mb_s=sectors * 512 / dt / 1e6, r_s=reads / dt,
                   rareq_kib=sectors * 512 / reads / 1024 if reads else 0.0,
                   r_await_ms=rticks / reads if reads else 0.0,
                   aqu_sz=inqueue / (dt * 1000), util=ioticks / (dt * 1000),
                   w_mb_s=d[6] * 512 / dt / 1e6)
    c = [y - x for x, y in zip(a[2], b[2])]
    tot = sum(c[:8]) or 1  # user nice system idle iowait irq softirq steal
    row.update(cpu_user=c[0] / tot, cpu_sys=(c[2] + c[5] + c[6]) / tot, cpu_idle=c[3] / tot,
               cpu_iowait=c[4] / tot, broker_cores=(b[3] - a[3]) / HZ / dt)
    return row


VMSTAT_KEYS = ("pgfault", "pgpgin", "pgsteal_kswapd", "pgsteal_direct", "allocstall_movable",
               "allocstall_normal", "compact_stall", "workingset_refault_file")


def vmstat():
    """Kernel memory counters that say whether a phase paid for page faults, reclaim or
    compaction (deltas are recorded, not absolute values)."""
    v = dict(line.split() for line in open("/proc/vmstat"))
    return {k: int(v.get(k, 0)) for k in VMSTAT_KEYS}


def delta(a, b):
    return {k: b[k] - a[k] for k in a}


def dd_files(files, direct, dev):
    """Sequential read of files (whole files, dd bs=1M, one after another): the disk's own rate
    on the bytes the broker reads. Buffered dd takes the same page-cache and readahead path as
    the broker's pread, so it is measured in the same cache state; iflag=direct bypasses the
    page cache and is the raw device."""
    smp = Sampler(dev)
    smp.start()
    total_b = total_s = 0.0
    for f in files:
        r = sh(f"dd if={f} of=/dev/null bs=1M {'iflag=direct' if direct else ''} 2>&1")
        b, s = dd_bytes_secs(r.stdout)
        total_b += b
        total_s += s
    return {"bytes": int(total_b), "s": total_s, "mb_s": total_b / total_s / 1e6,
            "disk": smp.stop()[1]}


# ---------------------------------------------------------------- brokers

def port_taken(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def wait_port(port, proc, timeout=20):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited rc={proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} not up")


class Broker:
    """fjord-async | fjord-sync | tansu | kafka | kafka-sync. Apache Kafka 4.4.0 (single-node
    KRaft, its defaults: -Xmx1G -Xms1G G1, no log flush = page cache only, like Fjord async) is
    started with scripts/kafka-ref; kafka-sync creates its topics with flush.messages=1 (an
    fsync after every appended batch, before the acknowledgement), beside Fjord sync."""

    def __init__(self, kind, datadir=None, keep_data=False):
        self.kind = kind
        self.datadir = datadir or DATA / kind
        self.proc = None
        if kind.startswith("fjord") or kind.startswith("kafka"):
            if not keep_data:
                shutil.rmtree(self.datadir, ignore_errors=True)
            self.datadir.mkdir(parents=True, exist_ok=True)
        # The fixed port of the kind, or a free one when it is taken (someone else's broker
        # must never be the one measured).
        self.port = {"fjord": FJORD_PORT, "kafka": KAFKA_PORT}.get(kind.split("-")[0],
                                                                   TANSU_PORT)
        if port_taken(self.port):
            with socket.socket() as s_:
                s_.bind(("127.0.0.1", 0))
                self.port = s_.getsockname()[1]
        if kind.startswith("fjord"):
            cmd = [str(FJORD), "serve", "--data-dir", str(self.datadir), "--listen",
                   f"127.0.0.1:{self.port}", "--log-flush", kind.split("-")[1]]
        elif kind.startswith("kafka"):
            cmd = [sys.executable, str(KAFKA_REF), "start", str(self.datadir), "--port",
                   str(self.port)]
        else:
            cmd = [str(TANSU), "broker", "--listener-url", f"tcp://127.0.0.1:{self.port}",
                   "--advertised-listener-url", f"tcp://127.0.0.1:{self.port}",
                   "--storage-engine", "memory://tansu/", "--silent"]
        self.cmd = cmd
        self.addr = f"127.0.0.1:{self.port}"
        if kind.startswith("kafka"):
            t0 = time.time()
            r = sh(cmd, timeout=240, check=False, stdin=subprocess.DEVNULL)
            if r.returncode != 0:
                raise RuntimeError(f"kafka-ref start failed: {r.stderr[-3000:]}")
            self.pid = int((self.datadir / "pid").read_text())
            self.startup_s = time.time() - t0
            return
        self.err = open(OUT / f"{kind}.stderr.log", "a")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.err,
                                     env=dict(os.environ, RUST_LOG="warn"))
        self.pid = self.proc.pid
        wait_port(self.port, self.proc)

    def cpu(self):
        st = self.stat()
        return st["utime_s"] + st["stime_s"]

    def stat(self):
        """utime, stime and minor page faults of all threads (/proc/PID/stat fields 14, 15, 10)."""
        f = open(f"/proc/{self.pid}/stat").read().rsplit(")", 1)[1].split()
        return {"utime_s": int(f[11]) / HZ, "stime_s": int(f[12]) / HZ, "minflt": int(f[7])}

    def hwm_mb(self):
        for line in open(f"/proc/{self.pid}/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def create_topic(self, name, partitions):
        if self.kind.startswith("kafka"):
            cfg = {"flush.messages": "1"} if self.kind == "kafka-sync" else {}
            kafka_create_topic(self.port, name, partitions, cfg)
            return
        r = sh([str(TANSU), "topic", "create", "--broker", f"tcp://{self.addr}",
                "--partitions", str(partitions), name], check=False, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"create topic on {self.kind}: {r.stdout}{r.stderr}")
        time.sleep(0.2)

    def stop(self, timeout=30):
        if self.kind.startswith("kafka"):
            sh([sys.executable, str(KAFKA_REF), "stop", str(self.datadir), "--timeout",
                str(timeout)], check=False, timeout=timeout + 30)
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


# ---------------------------------------------------------------- Kafka wire (topic creation)

def _kstr(x):
    b = x.encode()
    return struct.pack(">h", len(b)) + b


def kafka_request(port, api_key, version, body, timeout=30):
    """One request/response on a fresh connection (non-flexible versions only)."""
    msg = struct.pack(">hhi", api_key, version, 1) + _kstr("bench") + body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.settimeout(timeout)
        c.sendall(struct.pack(">i", len(msg)) + msg)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            d = c.recv(1 << 16)
            if not d:
                raise ConnectionError("closed")
            buf += d
    return buf[8:]  # after size and correlation id


class _Rd:
    def __init__(self, b):
        self.b, self.i = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.i)
        self.i += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        v = self.b[self.i:self.i + n].decode()
        self.i += n
        return v


def kafka_create_topic(port, name, partitions, configs, timeout=60):
    """CreateTopics v2 with topic configs, then Metadata v1 until every partition has a leader
    (KRaft elects leaders asynchronously after CreateTopics returns)."""
    body = struct.pack(">i", 1) + _kstr(name) + struct.pack(">ihi", partitions, 1, 0)
    body += struct.pack(">i", len(configs))
    for k, v in configs.items():
        body += _kstr(k) + _kstr(v)
    body += struct.pack(">i?", 30000, False)
    r = _Rd(kafka_request(port, 19, 2, body))
    r.take(">i")
    for _ in range(r.take(">i")):
        tname, err, msg = r.string(), r.take(">h"), r.string()
        if err:
            raise RuntimeError(f"CreateTopics {tname}: error {err} {msg}")
    t0 = time.time()
    while time.time() - t0 < timeout:
        r = _Rd(kafka_request(port, 3, 1, struct.pack(">i", 1) + _kstr(name)))
        for _ in range(r.take(">i")):
            r.take(">i"), r.string(), r.take(">i"), r.string()
        r.take(">i")
        leaders = []
        for _ in range(r.take(">i")):
            terr, _n, _int = r.take(">h"), r.string(), r.take(">?")
            for _ in range(r.take(">i")):
                perr, _p, leader = r.take(">hii")
                r.take(f">{r.take('>i')}i")
                r.take(f">{r.take('>i')}i")
                leaders.append(leader if perr == 0 else -1)
        if len(leaders) == partitions and all(x >= 0 for x in leaders):
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"topic {name}: no leader for every partition after {timeout}s")
    # The leader is in the metadata image before the broker hosts the partition: until then
    # Produce gets NOT_LEADER_OR_FOLLOWER (rdkafka retries, fjord bench counts an error).
    # ListOffsets v1 (latest) answers from the hosted partition, so it is the readiness test.
    body = struct.pack(">ii", -1, 1) + _kstr(name) + struct.pack(">i", partitions)
    for p in range(partitions):
        body += struct.pack(">iq", p, -1)
    while time.time() - t0 < timeout:
        r = _Rd(kafka_request(port, 2, 1, body))
        errs = []
        for _ in range(r.take(">i")):
            r.string()
            for _ in range(r.take(">i")):
                _p, err, _ts, _off = r.take(">ihqq")
                errs.append(err)
        if len(errs) == partitions and not any(errs):
            return
        time.sleep(0.1)
    raise RuntimeError(f"topic {name}: partitions not hosted after {timeout}s")


# ---------------------------------------------------------------- client

PROD_RE = re.compile(r"% (\d+) messages produced \((\d+) bytes\), (\d+) delivered .*?(\d+) failed\) "
                     r"in (\d+)ms: (\d+) msgs/s and ([\d.]+) MB/s")
CONS_RE = re.compile(r"% (\d+) messages \((\d+) bytes\) consumed in (\d+)ms: (\d+) msgs/s \(([\d.]+) MB/s\)")


def produce(addr, topic, size, count, acks, partition=None, extra=(), timeout=300, lat_file=None,
            rate=None):
    cmd = [str(RDK), "-P", "-t", topic, "-b", addr, "-s", str(size), "-c", str(count),
           "-a", str(acks), "-q"]
    if partition is not None:
        cmd += ["-p", str(partition)]
    if lat_file:
        cmd += ["-l", "-A", str(lat_file)]
    if rate:
        cmd += ["-r", str(rate)]
    for x in ("linger.ms=5", "message.timeout.ms=60000") + tuple(extra):
        cmd += ["-X", x]  # later -X wins; rdkafka_performance's own default linger.ms is 1000
    return cmd


def parse_produce(out):
    ms = PROD_RE.findall(out)
    if not ms:
        raise RuntimeError("no produce summary:\n" + out[-3000:])
    n, b, d, failed, t, rate, mbs = ms[-1]
    # rdkafka_performance subtracts rd_kafka_outq_len() from "produced" at the end, and that
    # length also counts queued requests/events: "produced" can end below "delivered" with
    # every message delivered (seen once: 7999999 / 8000000). Fewer deliveries is a failure.
    if int(d) < int(n) or int(failed):
        raise RuntimeError(f"produce incomplete: delivered {d}/{n}, failed {failed}")
    return {"msgs": int(d), "bytes": int(b), "ms": int(t), "msgs_s": int(d) / (int(t) / 1000),
            "mb_s": int(b) / (int(t) / 1000) / 1e6}


def run_produce(addr, topic, size, count, acks, **kw):
    timeout = kw.pop("timeout", 300)
    cmd = produce(addr, topic, size, count, acks, **kw)
    r = sh(cmd, timeout=timeout, check=False)
    return parse_produce(r.stdout + r.stderr)


def run_consume(addr, topic, partitions, count, timeout=300):
    cmd = [str(RDK), "-C", "-t", topic, "-b", addr, "-o", "beginning", "-c", str(count), "-q"]
    for p in range(partitions):
        cmd += ["-p", str(p)]
    r = sh(cmd, timeout=timeout, check=False)
    ms = CONS_RE.findall(r.stdout + r.stderr)
    if not ms:
        raise RuntimeError("no consume summary:\n" + (r.stdout + r.stderr)[-3000:])
    n, b, t, rate, mbs = ms[-1]
    if int(n) < count:
        raise RuntimeError(f"consumed {n}/{count}")
    t = max(int(t), 1)
    return {"msgs": int(n), "bytes": int(b), "ms": t, "msgs_s": int(n) / (t / 1000),
            "mb_s": int(b) / (t / 1000) / 1e6}


# ---------------------------------------------------------------- experiments

def one_run(kind, size, parts, acks, count):
    b = Broker(kind)
    try:
        b.create_topic("bench", parts)
        c0 = b.cpu()
        p = run_produce(b.addr, "bench", size, count, acks)
        c1 = b.cpu()
        c = run_consume(b.addr, "bench", parts, count)
        c2 = b.cpu()
        p["cpu_s"] = c1 - c0
        c["cpu_s"] = c2 - c1
        p["cpu_s_per_mb"] = p["cpu_s"] / (p["bytes"] / 1e6)
        c["cpu_s_per_mb"] = c["cpu_s"] / (c["bytes"] / 1e6)
        return {"produce": p, "consume": c, "rss_mb": b.hwm_mb()}
    finally:
        b.stop()


def latency_run(kind, size, rate, count, acks, extra):
    b = Broker(kind)
    lat_file = OUT / f"lat-{kind}.txt"
    try:
        b.create_topic("lat", 1)
        # warm-up: connection + metadata
        run_produce(b.addr, "lat", size, 1000, acks, extra=extra)
        p = run_produce(b.addr, "lat", size, count, acks, extra=extra, lat_file=lat_file,
                        rate=rate)
        lat = sorted(int(x) for x in open(lat_file).read().split())
        return {"achieved_msgs_s": p["msgs_s"], "n": len(lat), "p50_us": pct(lat, 50),
                "p99_us": pct(lat, 99), "p999_us": pct(lat, 99.9), "max_us": lat[-1]}
    finally:
        b.stop()


def many_producers(kind, nprod, size, count_each, acks):
    b = Broker(kind)
    try:
        b.create_topic("many", nprod)
        c0 = b.cpu()
        t0 = time.time()
        procs = [subprocess.Popen(produce(b.addr, "many", size, count_each, acks, partition=i),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for i in range(nprod)]
        outs = [p.communicate(timeout=600)[0] for p in procs]
        wall = time.time() - t0
        c1 = b.cpu()
        res = [parse_produce(o) for o in outs]
        total = sum(r["bytes"] for r in res)
        span = max(r["ms"] for r in res) / 1000
        return {"total_bytes": total, "mb_s": total / span / 1e6, "wall_s": wall,
                "mb_s_wall": total / wall / 1e6, "cpu_s": c1 - c0,
                "cpu_s_per_mb": (c1 - c0) / (total / 1e6), "rss_mb": b.hwm_mb()}
    finally:
        b.stop()


def fjord_bench(args, timeout=600):
    """Runs `fjord bench ... --json` and returns its JSON summary."""
    r = sh([str(FJORD), "bench", *args, "--json"], timeout=timeout, check=False)
    try:
        return json.loads(r.stdout[r.stdout.index("{"):])
    except ValueError:
        raise RuntimeError("no fjord bench summary:\n" + (r.stdout + r.stderr)[-3000:])


def fjbench_run(kind, size, parts, acks, count, concurrency):
    """The matrix cell with `fjord bench` as the client: a lighter client than
    rdkafka_performance (it re-sends pre-encoded batches), so more of the 2 cores go to the
    broker and the ratio shows more of the brokers' own difference."""
    b = Broker(kind)
    try:
        b.create_topic("fjb", parts)
        c0 = b.cpu()
        p = fjord_bench(["produce", "-b", b.addr, "--topic", "fjb", "--count", str(count),
                         "--record-size", str(size), "--concurrency", str(concurrency),
                         "--acks", "all" if acks == -1 else str(acks)])
        c1 = b.cpu()
        c = fjord_bench(["consume", "-b", b.addr, "--topic", "fjb", "--count", str(count)])
        c2 = b.cpu()
        if p["errors"] or c["records"] < count:
            raise RuntimeError(f"produce errors {p['errors']}, consumed {c['records']}/{count}")
        out = {}
        for ph, r, cpu in (("produce", p, c1 - c0), ("consume", c, c2 - c1)):
            out[ph] = {"mb_s": r["mb_per_s"], "msgs_s": r["records_per_s"],
                       "p99_ms": r["latency_ms"]["p99"], "cpu_s": cpu,
                       "cpu_s_per_mb": cpu / (r["bytes"] / 1e6)}
        out["rss_mb"] = b.hwm_mb()
        return out
    finally:
        b.stop()


def e2e_run(kind, size, count, rate, warm=0):
    """fjord bench at `rate` (or flat out when 0) with end-to-end latency: 1 partition, acks=1,
    one connection with 5 requests in flight, plus a consumer long-polling the partition.
    warm: records produced flat out to another topic first, not measured."""
    b = Broker(kind)
    try:
        if warm:
            b.create_topic("warm", 1)
            fjord_bench(["produce", "-b", b.addr, "--topic", "warm", "--count", str(warm),
                         "--record-size", str(size), "--concurrency", "1", "--acks", "1"])
        b.create_topic("e2e", 1)
        args = ["produce", "-b", b.addr, "--topic", "e2e", "--count", str(count),
                "--record-size", str(size), "--concurrency", "1", "--acks", "1"]
        if rate:
            args += ["--rate", str(rate), "--e2e"]
        r = fjord_bench(args)
        if r["errors"]:
            raise RuntimeError(f"{r['errors']} produce errors")
        out = {"msgs_s": r["records_per_s"], "produce_ms": r["latency_ms"]}
        if rate:
            out["e2e_ms"] = r["e2e_latency_ms"]
            out["e2e_records"] = r["e2e_records"]
        return out
    finally:
        b.stop()


# ---------------------------------------------------------------- Fjord vs Apache Kafka

KPERF_JVM = "-Xmx512M"  # the heap kafka-producer-perf-test.sh / kafka-consumer-perf-test.sh set
KPROD_RE = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), "
                      r"([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, "
                      r"(\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def kperf_produce(addr, topic, size, count, acks, timeout=600):
    """kafka-producer-perf-test (org.apache.kafka.tools.ProducerPerformance), Kafka 4.4.0's
    producer with its defaults (batch.size 16384, linger.ms 5, no compression) but acks."""
    cmd = [sys.executable, str(KAFKA_REF), "run", "org.apache.kafka.tools.ProducerPerformance",
           "--bootstrap-server", addr, "--topic", topic, "--num-records", str(count),
           "--record-size", str(size), "--throughput", "-1",
           "--command-property", f"acks={'all' if acks == -1 else acks}"]
    r = sh(cmd, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
           env=dict(os.environ, JAVA_TOOL_OPTIONS=KPERF_JVM))
    ms = KPROD_RE.findall(r.stdout)
    if not ms or int(ms[-1][0]) < count:
        raise RuntimeError("no/short ProducerPerformance summary:\n" + (r.stdout + r.stderr)[-3000:])
    n, rate, _mb, avg, mx, p50, p95, p99, p999 = ms[-1]
    rate = float(rate)
    return {"msgs": int(n), "bytes": int(n) * size, "ms": int(n) / rate * 1000, "msgs_s": rate,
            "mb_s": rate * size / 1e6, "lat_avg_ms": float(avg), "lat_p99_ms": float(p99),
            "lat_p999_ms": float(p999), "lat_max_ms": float(mx)}


def kperf_consume(addr, topic, size, count, timeout=600):
    """kafka-consumer-perf-test (org.apache.kafka.tools.ConsumerPerformance): a group consumer
    from the earliest offset; the rate is over fetch.time.ms (after the group join)."""
    cmd = [sys.executable, str(KAFKA_REF), "run", "org.apache.kafka.tools.ConsumerPerformance",
           "--bootstrap-server", addr, "--topic", topic, "--num-records", str(count),
           "--timeout", "60000"]
    r = sh(cmd, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
           env=dict(os.environ, JAVA_TOOL_OPTIONS=KPERF_JVM))
    lines = r.stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("start.time") and i + 1 < len(lines):
            row = dict(zip([x.strip() for x in line.split(",")],
                           [x.strip() for x in lines[i + 1].split(",")]))
            n = int(row["data.consumed.in.nMsg"])
            if n < count:
                raise RuntimeError(f"ConsumerPerformance consumed {n}/{count}")
            fetch_ms = max(float(row["fetch.time.ms"]), 1.0)
            return {"msgs": n, "bytes": n * size, "ms": fetch_ms, "msgs_s": n / fetch_ms * 1000,
                    "mb_s": n * size / fetch_ms / 1000, "rebalance_ms": float(row["rebalance.time.ms"])}
    raise RuntimeError("no ConsumerPerformance summary:\n" + (r.stdout + r.stderr)[-3000:])


def kcell_run(kind, client, size, parts, acks, count, warm=0):
    """One broker, one cell: create the topic, produce count records, consume them from the
    beginning, with client "rdk" (rdkafka_performance), "kperf" (Kafka's perf tools) or
    "fjbench" (fjord bench, 4 connections). Per phase: client-measured rate, broker CPU and
    client CPU (children rusage) over the client's wall time, so a row shows which process
    was busy."""
    b = Broker(kind)
    try:
        out = {"startup_s": getattr(b, "startup_s", None)}
        if warm:
            # Same warm-up for every broker (a fresh JVM interprets until its JIT has compiled
            # the hot paths: Kafka produced 121, 190, 266, 304 MB/s in four consecutive 512 MB
            # runs): rdkafka_performance produces and consumes `warm` 1 KiB records on another
            # topic with the same partition count and acks, not measured.
            b.create_topic("warm", parts)
            run_produce(b.addr, "warm", 1024, warm, acks)
            run_consume(b.addr, "warm", parts, warm)
        b.create_topic("kb", parts)
        for ph in ("produce", "consume"):
            c0, u0, t0 = b.cpu(), children_cpu(), time.time()
            if client == "rdk":
                r = (run_produce(b.addr, "kb", size, count, acks) if ph == "produce"
                     else run_consume(b.addr, "kb", parts, count))
            elif client == "kperf":
                r = (kperf_produce(b.addr, "kb", size, count, acks) if ph == "produce"
                     else kperf_consume(b.addr, "kb", size, count))
            else:
                a = (["produce", "--count", str(count), "--record-size", str(size),
                      "--concurrency", "4", "--acks", "all" if acks == -1 else str(acks)]
                     if ph == "produce" else ["consume", "--count", str(count)])
                j = fjord_bench([a[0], "-b", b.addr, "--topic", "kb", *a[1:]])
                if j.get("errors") or j["records"] < count:
                    raise RuntimeError(f"fjord bench {ph}: errors {j.get('errors')}, "
                                       f"records {j['records']}/{count}")
                r = {"msgs": j["records"], "bytes": j["bytes"], "msgs_s": j["records_per_s"],
                     "mb_s": j["mb_per_s"], "p99_ms": j["latency_ms"]["p99"]}
            wall = time.time() - t0
            r["cpu_s"], r["client_cpu_s"], r["wall_s"] = b.cpu() - c0, children_cpu() - u0, wall
            r["cpu_s_per_mb"] = r["cpu_s"] / (r["bytes"] / 1e6)
            r["broker_cores"], r["client_cores"] = r["cpu_s"] / wall, r["client_cpu_s"] / wall
            out[ph] = r
        out["rss_mb"] = b.hwm_mb()
        return out
    finally:
        b.stop()


KAFKA_ASYNC = ["fjord-async", "kafka", "tansu"]
KAFKA_SYNC = ["fjord-sync", "kafka-sync"]


def kafka_section(args, scale, reps, R, do_tput=True, do_lat=True):
    """Fjord vs Apache Kafka 4.4.0 (and Tansu): the same cells, the same clients, brokers
    interleaved inside every repetition."""
    n_warm = int(args.kafka_warm_mb * 1e6 * scale / 1024)
    cells = []
    for size, count in ((100, 4_000_000), (1024, 1_000_000)):
        for parts in (1, 8):
            cells.append({"client": "rdk", "size": size, "parts": parts, "acks": 1,
                          "count": int(count * scale), "brokers": KAFKA_ASYNC})
    cells.append({"client": "rdk", "size": 1024, "parts": 1, "acks": -1,
                  "count": int(300_000 * scale), "brokers": KAFKA_SYNC})
    cells.append({"client": "kperf", "size": 1024, "parts": 1, "acks": 1,
                  "count": int(1_000_000 * scale), "brokers": ["fjord-async", "kafka"]})
    cells.append({"client": "fjbench", "size": 1024, "parts": 8, "acks": 1,
                  "count": int(1_000_000 * scale), "brokers": KAFKA_ASYNC})
    for c in cells:
        c["runs"] = {k: [] for k in c["brokers"]}
        c["warm"] = n_warm
    K = R.get("kafka") or {}
    R["kafka"] = K
    K["warm_records"] = n_warm
    if do_tput:
        K["cells"], K["loads"] = cells, []
    for rep in range(reps if do_tput else 0):
        la, n = wait_quiet(args.quiet_wait)
        K["loads"].append({"rep": rep, "load": la, "rustc": n, "at": time.strftime("%H:%M:%S")})
        log(f"kafka rep {rep + 1}/{reps} load={la} rustc={n}")
        for c in cells:
            for k in c["brokers"]:
                try:
                    r = kcell_run(k, c["client"], c["size"], c["parts"], c["acks"], c["count"],
                                  warm=c["warm"])
                    r["load"], r["rustc"] = load_state()
                except Exception as e:
                    r = {"error": str(e)[:1500]}
                c["runs"][k].append(r)
                log(f"  kafka {c['client']} {k} s={c['size']} p={c['parts']} a={c['acks']}:",
                    json.dumps({a: (round(r[a]["mb_s"], 1) if a in r else None)
                                for a in ("produce", "consume")}), r.get("error", "")[:300])
        save(R)
    if not do_lat:
        return
    # Latency at 50% load, fjord bench --e2e: max rate first (all repetitions), then half.
    E = K["e2e"] = {k: {"max": [], "runs": []} for k in KAFKA_ASYNC}
    K["e2e_loads"] = []
    n_max = int(1_000_000 * scale)
    for rep in range(reps):
        wait_quiet(args.quiet_wait)
        for k in KAFKA_ASYNC:
            try:
                E[k]["max"].append(e2e_run(k, 1024, n_max, 0, warm=n_warm)["msgs_s"])
            except Exception as e:
                log("kafka e2e max failed", k, str(e)[:300])
            log("kafka e2e max", k, E[k]["max"][-1:])
    for rep in range(reps):
        la, n = wait_quiet(args.quiet_wait)
        K["e2e_loads"].append({"rep": rep, "load": la, "rustc": n, "at": time.strftime("%H:%M:%S")})
        for k in KAFKA_ASYNC:
            rate = max(1000, int(med(E[k]["max"]) / 2)) if E[k]["max"] else 1000
            E[k]["rate"] = rate
            try:
                r = e2e_run(k, 1024, max(20_000, int(rate * 8 * scale)), rate, warm=n_warm)
                r["load"], r["rustc"] = load_state()
            except Exception as e:
                r = {"error": str(e)[:1500]}
            E[k]["runs"].append(r)
            log("kafka e2e", k, json.dumps(r)[:400])
    save(R)


def cold_consume(size, count):
    """Produce with Fjord async, stop it, evict the data dir from the page cache (drop_caches as
    root, else fsync + posix_fadvise DONTNEED), restart and consume: the disk-read path of a log
    not in RAM, at a size that fits in RAM."""
    d = DATA / "cold"
    b = Broker("fjord-async", datadir=d)
    try:
        b.create_topic("cold", 1)
        run_produce(b.addr, "cold", size, count, 1)
    finally:
        b.stop()
    method = evict(d)
    b = Broker("fjord-async", datadir=d, keep_data=True)
    try:
        c0 = b.cpu()
        c = run_consume(b.addr, "cold", 1, count, timeout=600)
        c["cpu_s"] = b.cpu() - c0
        c["evicted_mb"] = dir_bytes(d) / 1e6
        c["evict"] = method
        return c
    finally:
        b.stop()


# ---------------------------------------------------------------- log larger than RAM

BIG_SIZE = 1024  # record value bytes


def check_room(d, need):
    """Exits with a message unless d's file system has room for need bytes of log, plus 10%
    (batch and index overhead) and 5 GB left for the other users of the disk."""
    free = shutil.disk_usage(d).free
    want = int(need * 1.1) + 5 * 10**9
    if free < want:
        sys.exit(f"bigcold: a {need / 1e9:.1f} GB log needs {want / 1e9:.1f} GB free on {d} "
                 f"(log + 10% + 5 GB margin) but only {free / 1e9:.1f} GB are free; "
                 f"free some space or pass a smaller --bigcold-gb")


def log_files(d):
    return sorted(d.rglob("*.log"))


def first_bytes(files, n):
    """The leading files that together hold at least n bytes (all of them if fewer)."""
    out, total = [], 0
    for f in files:
        if total >= n:
            break
        out.append(f)
        total += f.stat().st_size
    return out


def fill_log(d, topic, count):
    """Fresh Fjord async, one partition, count records of BIG_SIZE bytes with
    rdkafka_performance acks=1: the same client and batch layout as the other sections, and the
    faster producer in a 2 GB trial (962 MB/s vs 712 for `fjord bench produce`); past a few GB
    both are held to the disk's writeback rate anyway."""
    b = Broker("fjord-async", datadir=d)
    try:
        b.create_topic(topic, 1)
        c0 = b.cpu()
        p = run_produce(b.addr, topic, BIG_SIZE, count, 1, extra=["message.timeout.ms=600000"],
                        timeout=max(1200, count * BIG_SIZE / 20e6))
        p["cpu_s"] = b.cpu() - c0
        p["rss_mb"] = b.hwm_mb()
        p["load"], p["rustc"] = load_state()
        # Write back the dirty pages before SIGTERM so the broker's final flush is short: a
        # shutdown killed at the timeout would leave no clean marker, and the recovery scan at
        # the next start would read (and cache) the whole log.
        t = time.time()
        os.sync()
        p["sync_s"] = time.time() - t
        return p
    finally:
        b.stop(timeout=600)


def empty_cache(d, settle_s):
    """Empties the page cache, then waits settle_s. On a VM with free page reporting
    (virtio-balloon) the freed memory goes back to the host within seconds, and refilling it
    then costs the guest kernel much more CPU (the first touch of each page faults on the host):
    buffered dd of the same files read ~1000 MB/s right after drop_caches and ~400 MB/s 20 s
    later on the machine of the first run. Waiting the same time before every buffered reader
    puts dd and Fjord in the same state."""
    method = evict(d)
    time.sleep(settle_s)
    return method


def consume_log(d, topic, count, dev):
    """Restarts Fjord on the log and consumes it all from offset 0, sampling the disk."""
    cached0 = meminfo_bytes("Cached")
    t0 = time.time()
    b = Broker("fjord-async", datadir=d, keep_data=True)
    try:
        # Startup must not warm the cache (e.g. by scanning the log): recorded to be sure.
        start = {"startup_s": time.time() - t0, "cached_before_mb": cached0 / 1e6,
                 "cached_after_mb": meminfo_bytes("Cached") / 1e6}
        st0, vm0 = b.stat(), vmstat()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        smp = Sampler(dev, b.pid)
        smp.start()
        t1 = time.time()
        try:
            c = run_consume(b.addr, topic, 1, count, timeout=max(1200, count * BIG_SIZE / 20e6))
        finally:
            c_samples, c_disk = smp.stop()
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        c.update(start)
        c["wall_s"] = time.time() - t1
        c["broker"] = delta(st0, b.stat())
        c["cpu_s"] = c["broker"]["utime_s"] + c["broker"]["stime_s"]
        c["client_cpu_s"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        c["vmstat"] = delta(vm0, vmstat())
        c["rss_mb"] = b.hwm_mb()
        c["load"], c["rustc"] = load_state()
        c["disk"], c["samples"] = c_disk, c_samples
        return c
    finally:
        b.stop(timeout=600)


def big_cold_consume(total_bytes, dd_bytes, settle_s):
    """Consume of a log larger than RAM: fill one partition with total_bytes of 1 KiB records
    and stop Fjord. Then, in two page-cache states, read the log from offset 0 with a restarted
    Fjord and the first dd_bytes of its segment files (all of them if 0) with dd:
      cold: drop_caches (+ settle_s) before each reader; free memory is refilled;
      full: straight after, no drop: RAM holds the log's tail, so every page read comes from
            reclaim, as on a broker whose page cache is full of recent data.
    O_DIRECT dd, which bypasses the page cache, is the raw device rate. The data dir is
    deleted afterwards, whatever happens."""
    d = DATA / "bigcold"
    count = total_bytes // BIG_SIZE
    dev = block_dev(DATA)
    r = {"mem_total": meminfo_bytes("MemTotal"), "target_bytes": total_bytes, "count": count,
         "device": dev.resolve().name if dev else None, "settle_s": settle_s,
         "read_ahead_kb": read_ahead_kb(dev) if dev else None}

    def step(key, fn):
        r[key] = fn()
        r[key]["load"] = r[key].get("load", load_state()[0])
        log(f"bigcold {key}", json.dumps({k: v for k, v in r[key].items() if k != "samples"}))

    try:
        log(f"bigcold: producing {count:,} x {BIG_SIZE} B ({total_bytes / 1e9:.1f} GB)")
        step("produce", lambda: fill_log(d, "bigcold", count))
        r["log_bytes"] = dir_bytes(d)
        files = first_bytes(log_files(d), dd_bytes or r["log_bytes"])
        r["dd_files"] = len(files)
        r["evict"] = empty_cache(d, settle_s)
        step("dd_buffered", lambda: dd_files(files, False, dev))
        step("dd_direct", lambda: dd_files(files, True, dev))
        empty_cache(d, settle_s)
        step("consume", lambda: consume_log(d, "bigcold", count, dev))
        step("consume_full", lambda: consume_log(d, "bigcold", count, dev))
        step("dd_buffered_full", lambda: dd_files(files, False, dev))
        for k in ("consume", "consume_full"):
            r[k]["log_mb_s"] = r["log_bytes"] / (r[k]["ms"] / 1000) / 1e6
        return r
    finally:
        shutil.rmtree(d, ignore_errors=True)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--quiet-wait", type=int, default=60,
                    help="max seconds to wait for running rustc before each repetition")
    ap.add_argument("--only", default="",
                    help="comma list: limits,matrix,fjbench,e2e,latency,many,cold,bigcold,kafka "
                         "(bigcold is never run by default: it writes ~1.15 x RAM to disk; "
                         "kafka = Fjord vs Apache Kafka 4.4.0 and Tansu = kafka-tput + kafka-lat, "
                         "not by default)")
    ap.add_argument("--kafka-warm-mb", type=float, default=1000,
                    help="kafka sections: MB of 1 KiB records produced and consumed on another "
                         "topic of each fresh broker before the measured run (every broker; "
                         "scaled by --quick; 0 = none)")
    ap.add_argument("--bigcold-gb", type=float, default=None,
                    help="bigcold log size in GB (10^9); default 1.15 x MemTotal")
    ap.add_argument("--bigcold-dd-gb", type=float, default=0,
                    help="GB of the bigcold segments dd reads for the reference rate (0 = all)")
    ap.add_argument("--bigcold-settle", type=float, default=30,
                    help="seconds to wait after drop_caches before each buffered bigcold reader")
    args = ap.parse_args()
    only = (set(args.only.split(",")) if args.only
            else {"limits", "matrix", "fjbench", "e2e", "latency", "many", "cold"})
    scale = 0.1 if args.quick else 1.0
    reps = 1 if args.quick else args.reps
    OUT.mkdir(parents=True, exist_ok=True)
    DATA.mkdir(parents=True, exist_ok=True)
    for t in (RDK, TANSU):
        if not t.exists():
            sys.exit(f"{t} missing: run bench/setup.sh first")
    if not args.no_build:
        log("building release fjord")
        sh("cargo build --release -p fjord", cwd=ROOT, timeout=3600)
    R = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "reps": reps, "scale": scale}
    if args.only and (OUT / "results.json").exists():
        # Partial re-run: keep the other sections of the previous run, replace these.
        R = json.loads((OUT / "results.json").read_text())
        R.setdefault("reruns", []).append({"at": R["started"], "only": args.only})
        R["started"] = time.strftime("%Y-%m-%d %H:%M:%S")
    R["machine"] = machine()
    brokers = ["fjord-async", "tansu", "fjord-sync"]

    if "limits" in only:
        la, n = wait_quiet(args.quiet_wait)
        lim = {"load": la, "rustc": n, "dd_write_mb_s": [], "dd_read_mb_s": [],
               "dsync4k_us": [], "iperf3_mb_s": []}
        f = DATA / "dd.tmp"
        mb = int(1024 * max(scale, 0.25))
        for i in range(reps):
            lim["dd_write_mb_s"].append(dd_write(f, mb))
            lim["dd_read_mb_s"].append(dd_read(f))
            lim["dsync4k_us"].append(dd_dsync_latency(DATA / "dsync.tmp", 1000))
            lim["iperf3_mb_s"].append(iperf3_loopback(5))
        fl = fdatasync_latency(DATA / "fsync.tmp", 2000)
        lim["fdatasync4k_p50_us"], lim["fdatasync4k_p99_us"] = pct(fl, 50), pct(fl, 99)
        for p in ("dd.tmp", "dsync.tmp", "fsync.tmp"):
            (DATA / p).unlink(missing_ok=True)
        R["limits"] = lim
        log("limits", json.dumps(lim))

    if "matrix" in only:
        workloads = []
        for size, count in ((100, 8_000_000), (1024, 2_000_000)):
            for parts in (1, 8):
                for acks in (1, -1):
                    workloads.append({"size": size, "parts": parts, "acks": acks,
                                      "count": int(count * scale)})
        R["matrix"] = []
        for w in workloads:
            w["runs"] = {k: [] for k in brokers}
            R["matrix"].append(w)
        for rep in range(reps):
            la, n = wait_quiet(args.quiet_wait)
            log(f"matrix rep {rep + 1}/{reps} load={la} rustc={n}")
            for w in R["matrix"]:
                for k in brokers:
                    try:
                        r = one_run(k, w["size"], w["parts"], w["acks"], w["count"])
                        r["load"], r["rustc"] = load_state()
                    except Exception as e:  # keep going; record the failure
                        r = {"error": str(e)[:500]}
                    w["runs"][k].append(r)
                    log(f"  {k} s={w['size']} p={w['parts']} a={w['acks']}:",
                        json.dumps({a: (r[a]["mb_s"] if a in r else None) for a in ("produce", "consume")}),
                        r.get("error", ""))
            save(R)

    if "latency" in only:
        # 1 KiB, 1 partition, acks=1, linger.ms=0. First the unthrottled rate with the same client
        # settings (max), then -l at 50% of that rate, each broker at 50% of its own max, and a
        # light-load point. rdkafka_performance's -r limiter sleeps whole microseconds per
        # message (busy-polling), so offered rates are coarse; the achieved rate is reported.
        extra = ["linger.ms=0"]
        lat = {k: {"max": [], "runs": [], "light": []} for k in ("fjord-async", "tansu", "fjord-sync")}
        for rep in range(reps):
            wait_quiet(args.quiet_wait)
            for k in lat:
                b = Broker(k)
                try:
                    b.create_topic("lmax", 1)
                    n = int((2_000_000 if k != "fjord-sync" else 200_000) * scale)
                    lat[k]["max"].append(run_produce(b.addr, "lmax", 1024, n, 1,
                                                     extra=extra)["msgs_s"])
                except Exception as e:
                    log("latency max failed", k, e)
                finally:
                    b.stop()
                log("latency max", k, lat[k]["max"][-1:] or "failed")
        for k in lat:
            lat[k]["rate"] = max(1, int(med(lat[k]["max"]) / 2))
        light = 10_000
        for rep in range(reps):
            wait_quiet(args.quiet_wait)
            for k in lat:
                r = lat[k]["rate"]
                n = max(2000, int(r * 6 * scale))  # ~6 s
                for key, rate, cnt in (("runs", r, n), ("light", light, int(light * 5 * scale))):
                    try:
                        lat[k][key].append(latency_run(k, 1024, rate, cnt, 1, extra))
                    except Exception as e:
                        lat[k][key].append({"error": str(e)[:500]})
                    log("latency", key, k, json.dumps(lat[k][key][-1]))
        R["latency"] = lat
        save(R)

    if "many" in only:
        many = {k: [] for k in ("fjord-sync", "fjord-async", "tansu")}
        ce = int(150_000 * scale)
        for rep in range(reps):
            wait_quiet(args.quiet_wait)
            for k in many:
                try:
                    many[k].append(many_producers(k, 16, 1024, ce, -1))
                except Exception as e:
                    many[k].append({"error": str(e)[:500]})
                log("many", k, json.dumps(many[k][-1]))
        R["many"] = many
        save(R)

    if "e2e" in only:
        # 1 KiB, 1 partition, acks=1 with fjord bench: each broker's max rate, then 50% of it
        # with end-to-end latency (Produce sent → batch fetched by a long-polling consumer).
        e2e = {k: {"max": [], "runs": []} for k in brokers}
        n_max, n_half = int(2_000_000 * scale), int(3_000_000 * scale)
        for rep in range(reps):
            wait_quiet(args.quiet_wait)
            for k in brokers:
                try:
                    e2e[k]["max"].append(e2e_run(k, 1024, n_max, 0)["msgs_s"])
                except Exception as e:
                    log("e2e max failed", k, e)
        for rep in range(reps):
            wait_quiet(args.quiet_wait)
            for k in brokers:
                rate = max(1000, int(med(e2e[k]["max"]) / 2))
                e2e[k]["rate"] = rate
                try:
                    r = e2e_run(k, 1024, n_half, rate)
                    r["load"], r["rustc"] = load_state()
                except Exception as e:
                    r = {"error": str(e)[:500]}
                e2e[k]["runs"].append(r)
                log("e2e", k, json.dumps(r))
        R["e2e"] = e2e
        save(R)

    if "fjbench" in only:
        # The same matrix with `fjord bench` as the client (4 connections, 5 requests in
        # flight each), plus the 16-producer sync case.
        cells = [(size, parts, acks, int(count * scale), 4)
                 for size, count in ((100, 8_000_000), (1024, 2_000_000))
                 for parts in (1, 8) for acks in (1, -1)]
        cells.append((1024, 8, -1, int(2_000_000 * scale), 16))
        fj = [{"size": s_, "parts": p_, "acks": a_, "count": n_, "concurrency": c_,
               "runs": {k: [] for k in brokers}} for s_, p_, a_, n_, c_ in cells]
        for rep in range(reps):
            la, n = wait_quiet(args.quiet_wait)
            log(f"fjbench rep {rep + 1}/{reps} load={la} rustc={n}")
            for w in fj:
                for k in brokers:
                    try:
                        r = fjbench_run(k, w["size"], w["parts"], w["acks"], w["count"],
                                        w["concurrency"])
                        r["load"], r["rustc"] = load_state()
                    except Exception as e:
                        r = {"error": str(e)[:500]}
                    w["runs"][k].append(r)
                    log(f"  fjbench {k} s={w['size']} p={w['parts']} a={w['acks']} "
                        f"c={w['concurrency']}:",
                        json.dumps({a: (r[a]["mb_s"] if a in r else None)
                                    for a in ("produce", "consume")}), r.get("error", ""))
        R["fjbench"] = fj
        save(R)

    if only & {"kafka", "kafka-tput", "kafka-lat"}:
        kafka_section(args, scale, reps, R, do_tput=bool(only & {"kafka", "kafka-tput"}),
                      do_lat=bool(only & {"kafka", "kafka-lat"}))

    if "cold" in only:
        cold = []
        for rep in range(reps):
            wait_quiet(args.quiet_wait)
            try:
                cold.append(cold_consume(1024, int(1_000_000 * scale)))
            except Exception as e:
                cold.append({"error": str(e)[:500]})
            log("cold", json.dumps(cold[-1]))
        R["cold"] = cold
        save(R)

    if "bigcold" in only:
        total = int(args.bigcold_gb * 1e9 if args.bigcold_gb
                    else 1.15 * meminfo_bytes("MemTotal"))
        shutil.rmtree(DATA / "bigcold", ignore_errors=True)  # a previous run's, if interrupted
        check_room(DATA, total)
        la, n = wait_quiet(args.quiet_wait)
        try:
            big = big_cold_consume(total, int(args.bigcold_dd_gb * 1e9), args.bigcold_settle)
        except Exception as e:
            big = {"error": str(e)[:2000]}
            log("bigcold failed", e)
        big["load_start"], big["rustc_start"] = la, n
        R["bigcold"] = big
        save(R)

    R["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save(R)
    md = report(R)
    (OUT / "results.md").write_text(md)
    print(md)


def save(R):
    (OUT / "results.json").write_text(json.dumps(R, indent=1))


def machine():
    def out(c):
        return sh(c, check=False).stdout.strip()
    return {"nproc": out("nproc"), "mem": out("free -g | awk '/Mem/{print $2\" GiB\"}'"),
            "cpu": out("lscpu | sed -n 's/^Model name: *//p'"),
            "kernel": out("uname -r"), "df": out(f"df -h {OUT} | tail -1"),
            "lsblk": out("lsblk -d -o NAME,SIZE,ROTA,TYPE 2>/dev/null | head -5"),
            "fjord_commit": out(f"git -C {ROOT} rev-parse --short HEAD"),
            "fjord_bin": f"{FJORD} sha256 {out(f'sha256sum {FJORD}')[:16]} "
                         f"built {out(f'stat -c %y {FJORD}')[:19]}"}


# ---------------------------------------------------------------- report

def report(R):
    L = []
    m = R["machine"]
    L.append(f"Run {R['started']} → {R.get('finished', '?')}, commit {m['fjord_commit']}, "
             f"{R['reps']} repetitions (median shown), nproc {m['nproc']}, {m['mem']}, "
             f"{m['cpu']}, kernel {m['kernel']}")
    L.append("")
    lim = R.get("limits")
    ddw = None
    if lim:
        ddw = med(lim["dd_write_mb_s"])
        L.append("### Machine limits")
        L.append("")
        L.append("| limit | median |")
        L.append("| --- | --- |")
        L.append(f"| dd sequential write, 1 MiB O_DIRECT + fdatasync | {ddw:.0f} MB/s |")
        L.append(f"| dd sequential read, 1 MiB O_DIRECT | {med(lim['dd_read_mb_s']):.0f} MB/s |")
        L.append(f"| dd 4 KiB O_DSYNC writes, per op | {med(lim['dsync4k_us']):.0f} µs |")
        L.append(f"| write 4 KiB + fdatasync, single writer (2000 ops) p50 / p99 | "
                 f"{lim['fdatasync4k_p50_us']:.0f} / {lim['fdatasync4k_p99_us']:.0f} µs |")
        L.append(f"| iperf3 loopback TCP, 1 stream | {med(lim['iperf3_mb_s']):.0f} MB/s |")
        L.append(f"| load average / rustc processes at start | {lim['load']} / {lim['rustc']} |")
        L.append("")
    if "matrix" in R:
        L.append("### Throughput matrix (rdkafka_performance, same client for all)")
        L.append("")
        L.append("Produce then catch-up consume of the same messages; MB/s of record values; "
                 "CPU = broker CPU-seconds per MB; RSS = broker peak RSS for the run.")
        L.append("")
        L.append("| size | parts | acks | count | phase | Fjord async MB/s | Tansu mem MB/s | Fjord sync MB/s "
                 "| **Fjord async / Tansu** | Fjord async / dd | Fjord sync / dd | CPU s/MB F-async / Tansu | "
                 "RSS MB F-async / Tansu |")
        L.append("| --- " * 13 + "|")
        for w in R["matrix"]:
            for ph in ("produce", "consume"):
                v = {}
                cpu = {}
                for k, runs in w["runs"].items():
                    v[k] = med([r[ph]["mb_s"] for r in runs if ph in r])
                    cpu[k] = med([r[ph]["cpu_s_per_mb"] for r in runs if ph in r])
                rss = {k: med([r["rss_mb"] for r in runs if "rss_mb" in r])
                       for k, runs in w["runs"].items()}
                errs = sum(1 for runs in w["runs"].values() for r in runs if "error" in r)
                ratio = v["fjord-async"] / v["tansu"] if v["tansu"] else float("nan")
                dda = f"{v['fjord-async'] / ddw:.2f}" if ddw and ph == "produce" else "–"
                dds = f"{v['fjord-sync'] / ddw:.2f}" if ddw and ph == "produce" else "–"
                L.append(f"| {w['size']} B | {w['parts']} | {w['acks']} | {w['count']} | {ph} | "
                         f"{v['fjord-async']:.1f} | {v['tansu']:.1f} | {v['fjord-sync']:.1f} | "
                         f"**{ratio:.2f}×** | {dda} | {dds} | "
                         f"{cpu['fjord-async']:.4f} / {cpu['tansu']:.4f} | "
                         f"{rss['fjord-async']:.0f} / {rss['tansu']:.0f} |"
                         + (f" ({errs} failed runs)" if errs else ""))
        L.append("")
        L.append("Records/s (median) for the same cells:")
        L.append("")
        L.append("| size | parts | acks | phase | Fjord async rec/s | Tansu rec/s | Fjord sync rec/s |")
        L.append("| --- " * 7 + "|")
        for w in R["matrix"]:
            for ph in ("produce", "consume"):
                v = {k: med([r[ph]["msgs_s"] for r in runs if ph in r]) for k, runs in w["runs"].items()}
                L.append(f"| {w['size']} B | {w['parts']} | {w['acks']} | {ph} | {v['fjord-async']:,.0f} | "
                         f"{v['tansu']:,.0f} | {v['fjord-sync']:,.0f} |")
        L.append("")
    if "latency" in R:
        L.append("### Produce latency (1 KiB, 1 partition, acks=1, linger.ms=0)")
        L.append("")
        L.append("Latency = produce() call → delivery report, per message, from rdkafka_performance -l -A. "
                 "Each broker at 50% of its own max rate measured with the same client settings, and at a light "
                 "10k rec/s. The client's rate limiter busy-polls one core.")
        L.append("")
        L.append("| broker | load | max rec/s | offered rec/s | achieved rec/s | p50 ms | p99 ms | p99.9 ms | max ms |")
        L.append("| --- " * 9 + "|")
        for k, d in R["latency"].items():
            for key, label, rate in (("runs", "50% of max", d["rate"]), ("light", "10k rec/s", 10_000)):
                runs = [r for r in d.get(key, []) if "p50_us" in r]
                if not runs:
                    continue
                g = lambda f: med([r[f] for r in runs]) / 1000
                L.append(f"| {k} | {label} | {med(d['max']):,.0f} | {rate:,} | "
                         f"{med([r['achieved_msgs_s'] for r in runs]):,.0f} | {g('p50_us'):.2f} | "
                         f"{g('p99_us'):.2f} | {g('p999_us'):.2f} | {g('max_us'):.1f} |")
        L.append("")
    if "many" in R:
        L.append("### 16 concurrent producers, 1 KiB, acks=all (16 processes, one partition each)")
        L.append("")
        L.append("| broker | MB/s | % of dd write | broker CPU s/MB | RSS MB |")
        L.append("| --- | --- | --- | --- | --- |")
        for k, runs in R["many"].items():
            ok = [r for r in runs if "mb_s" in r]
            v = med([r["mb_s"] for r in ok])
            pc = f"{100 * v / ddw:.0f}%" if ddw else "–"
            L.append(f"| {k} | {v:.1f} | {pc} | {med([r['cpu_s_per_mb'] for r in ok]):.4f} | "
                     f"{med([r['rss_mb'] for r in ok]):.0f} |")
        L.append("")
    if "e2e" in R:
        L.append("### Latency at 50% of each broker's max rate (`fjord bench --e2e`)")
        L.append("")
        L.append("1 KiB, 1 partition, acks=1, one connection, 5 requests in flight, 64 records per "
                 "request. Produce = request sent → ack; end-to-end = request sent → batch received "
                 "by a consumer long-polling the partition in the same process. ms.")
        L.append("")
        L.append("| broker | max rec/s | offered rec/s | achieved rec/s | produce p50 / p99 / p99.9 | "
                 "end-to-end p50 / p99 / p99.9 / max |")
        L.append("| --- " * 6 + "|")
        for k, d in R["e2e"].items():
            runs = [r for r in d["runs"] if "e2e_ms" in r]
            if not runs:
                continue
            g = lambda key, q: med([r[key][q] for r in runs])
            L.append(f"| {k} | {med(d['max']):,.0f} | {d.get('rate', 0):,} | "
                     f"{med([r['msgs_s'] for r in runs]):,.0f} | "
                     f"{g('produce_ms', 'p50'):.2f} / {g('produce_ms', 'p99'):.2f} / "
                     f"{g('produce_ms', 'p999'):.2f} | {g('e2e_ms', 'p50'):.2f} / "
                     f"{g('e2e_ms', 'p99'):.2f} / {g('e2e_ms', 'p999'):.2f} / {g('e2e_ms', 'max'):.1f} |")
        L.append("")
    if "fjbench" in R:
        L.append("### Throughput matrix with `fjord bench` as the client")
        L.append("")
        L.append("Same cells; MB/s of record values; conc = client connections; p99 = produce "
                 "request latency (ms); CPU = broker CPU-seconds per MB.")
        L.append("")
        L.append("| size | parts | acks | conc | phase | Fjord async MB/s | Tansu mem MB/s | "
                 "Fjord sync MB/s | **Fjord async / Tansu** | Fjord sync / dd | p99 F-async / Tansu / "
                 "F-sync | CPU s/MB F-async / Tansu |")
        L.append("| --- " * 12 + "|")
        for w in R["fjbench"]:
            for ph in ("produce", "consume"):
                def m(k, key):
                    return med([r[ph][key] for r in w["runs"][k] if ph in r])
                v = {k: m(k, "mb_s") for k in w["runs"]}
                ratio = v["fjord-async"] / v["tansu"] if v["tansu"] else float("nan")
                sync_dd = f"{v['fjord-sync'] / ddw:.2f}" if ddw and ph == "produce" else "–"
                p99 = (" / ".join(f"{m(k, 'p99_ms'):.1f}" for k in ("fjord-async", "tansu", "fjord-sync"))
                       if ph == "produce" else "–")
                errs = sum(1 for runs in w["runs"].values() for r in runs if "error" in r)
                L.append(f"| {w['size']} B | {w['parts']} | {'all' if w['acks'] == -1 else w['acks']} "
                         f"| {w['concurrency']} | {ph} | {v['fjord-async']:.1f} | {v['tansu']:.1f} | "
                         f"{v['fjord-sync']:.1f} | **{ratio:.2f}×** | {sync_dd} | {p99} | "
                         f"{m('fjord-async', 'cpu_s_per_mb'):.4f} / {m('tansu', 'cpu_s_per_mb'):.4f}"
                         f"{f' ({errs} failed runs)' if errs else ''} |")
        L.append("")
    if "cold" in R:
        ok = [r for r in R["cold"] if "mb_s" in r]
        if ok:
            v = med([r["mb_s"] for r in ok])
            ddr = med(R["limits"]["dd_read_mb_s"]) if lim else float("nan")
            L.append(f"### Cold consume (log evicted from page cache by "
                     f"{ok[0].get('evict', 'fadvise')}, Fjord async)")
            L.append("")
            L.append(f"{ok[0]['msgs']:,} × 1 KiB ({ok[0]['evicted_mb']:.0f} MB on disk), 1 partition: "
                     f"{v:.1f} MB/s = {v / ddr:.2f} × dd O_DIRECT read ({ddr:.0f} MB/s); "
                     f"broker CPU {med([r['cpu_s'] for r in ok]):.2f} s.")
            L.append("")
    if "kafka" in R:
        L += report_kafka(R["kafka"])
    if "bigcold" in R:
        L += report_bigcold(R["bigcold"])
    return "\n".join(L)


KLABEL = {"fjord-async": "Fjord async", "kafka": "Kafka", "tansu": "Tansu mem",
          "fjord-sync": "Fjord sync", "kafka-sync": "Kafka flush.messages=1"}
CLIENT = {"rdk": "rdkafka_performance", "kperf": "kafka-*-perf-test", "fjbench": "fjord bench -C 4"}


def report_kafka(K):
    L = ["### Fjord vs Apache Kafka 4.4.0 (and Tansu)", ""]
    loads = ", ".join(f"{x['load']:.1f}" + (f" ({x['rustc']} rustc)" if x["rustc"] else "")
                      for x in K.get("loads", []))
    L.append(f"Each run: a fresh broker, warmed by {K.get('warm_records', 0):,} × 1 KiB produced "
             f"and consumed on another topic, then the cell. "
             f"Load average at the start of each repetition: {loads}. MB/s of record values "
             f"(10^6); CPU = broker CPU-s per MB; cores = CPU-s / wall s of the phase, broker / "
             f"client; RSS = broker VmHWM (Kafka: the JVM). Median of the repetitions.")
    L.append("")
    L.append("| client | size | parts | acks | count | phase | broker | MB/s | rec/s | ratio Fjord / Kafka | "
             "CPU s/MB | cores broker / client | RSS MB | runs |")
    L.append("| --- " * 14 + "|")
    for c in K.get("cells", []):
        for ph in ("produce", "consume"):
            v = {}
            for k in c["brokers"]:
                ok = [r for r in c["runs"][k] if ph in r]
                v[k] = ok
            ref = next((k for k in c["brokers"] if k.startswith("kafka")), None)
            fj = next((k for k in c["brokers"] if k.startswith("fjord")), None)
            for k in c["brokers"]:
                ok = v[k]
                errs = sum(1 for r in c["runs"][k] if "error" in r)
                if not ok:
                    L.append(f"| {CLIENT[c['client']]} | {c['size']} B | {c['parts']} | "
                             f"{'all' if c['acks'] == -1 else c['acks']} | {c['count']:,} | {ph} | "
                             f"{KLABEL[k]} | failed ({errs}) | | | | | | |")
                    continue
                g = lambda key: med([r[ph][key] for r in ok])
                ratio = ""
                if k == fj and ref and v[ref]:
                    ratio = f"**{g('mb_s') / med([r[ph]['mb_s'] for r in v[ref]]):.2f}×**"
                samples = "/".join(f"{r[ph]['mb_s']:.0f}" for r in ok)
                L.append(f"| {CLIENT[c['client']]} | {c['size']} B | {c['parts']} | "
                         f"{'all' if c['acks'] == -1 else c['acks']} | {c['count']:,} | {ph} | "
                         f"{KLABEL[k]} | {g('mb_s'):.1f} | {g('msgs_s'):,.0f} | {ratio} | "
                         f"{g('cpu_s_per_mb'):.4f} | {g('broker_cores'):.2f} / "
                         f"{g('client_cores'):.2f} | "
                         f"{med([r['rss_mb'] for r in ok]):.0f} | {samples}"
                         + (f" ({errs} failed)" if errs else "") + " |")
    L.append("")
    E = K.get("e2e", {})
    if E:
        L.append("Latency at 50% of each broker's own max rate (`fjord bench produce --rate R "
                 "--e2e`, 1 KiB, 1 partition, acks=1, 1 connection), ms:")
        L.append("")
        L.append("| broker | max rec/s (runs) | offered rec/s | achieved rec/s | produce p50 / p99 / p99.9 | "
                 "end-to-end p50 / p99 / p99.9 / max | runs |")
        L.append("| --- " * 7 + "|")
        for k, d in E.items():
            runs = [r for r in d["runs"] if "e2e_ms" in r]
            errs = len(d["runs"]) - len(runs)
            mx = "/".join(f"{x:,.0f}" for x in d["max"])
            if not runs:
                L.append(f"| {KLABEL[k]} | {mx} | {d.get('rate', 0):,} | failed ({errs}) | | | |")
                continue
            g = lambda key, q: med([r[key][q] for r in runs])
            L.append(f"| {KLABEL[k]} | {med(d['max']):,.0f} ({mx}) | {d.get('rate', 0):,} | "
                     f"{med([r['msgs_s'] for r in runs]):,.0f} | "
                     f"{g('produce_ms', 'p50'):.2f} / {g('produce_ms', 'p99'):.2f} / "
                     f"{g('produce_ms', 'p999'):.2f} | {g('e2e_ms', 'p50'):.2f} / "
                     f"{g('e2e_ms', 'p99'):.2f} / {g('e2e_ms', 'p999'):.2f} / "
                     f"{g('e2e_ms', 'max'):.1f} | "
                     + "/".join(f"{r['produce_ms']['p99']:.2f}" for r in runs)
                     + (f" ({errs} failed)" if errs else "") + " |")
        L.append("")
    return L


def report_bigcold(b):
    L = ["### Consume of a log larger than RAM (Fjord async, 1 partition, 1 KiB)", ""]
    if "dd_buffered_full" not in b:
        return L + [f"Failed: {b.get('error', '?')}", ""]
    mem, p, ddd = b["mem_total"], b["produce"], b["dd_direct"]
    L.append(f"Log {b['log_bytes'] / 1e9:.1f} GB on disk = {b['log_bytes'] / mem:.2f} × MemTotal "
             f"({mem / 2**30:.1f} GiB), {p['msgs']:,} records, produced at {p['mb_s']:.0f} MB/s "
             f"(rdkafka_performance acks=1; broker {p['cpu_s']:.0f} CPU-s, "
             f"RSS {p['rss_mb']:.0f} MB, load {p['load']}). Device {b['device']}, "
             f"read_ahead_kb {b['read_ahead_kb']}. "
             f"\"cold\": page cache emptied by {b['evict']} and {b['settle_s']:.0f} s of settling "
             f"before each reader; \"full\": read again straight after, RAM full of the log.")
    L.append("")
    L.append("| cache | reader | MB/s | ÷ dd buffered, same cache | ÷ dd O_DIRECT | "
             "disk: rareq KiB / aqu-sz / r_await ms / util | broker CPU s user + sys "
             "| broker minor faults | RSS MB | load |")
    L.append("| --- " * 10 + "|")
    for state, c, dd in (("cold", b["consume"], b["dd_buffered"]),
                         ("full", b["consume_full"], b["dd_buffered_full"])):
        br = c["broker"]
        L.append(f"| {state} | **Fjord consume from offset 0** | **{c['mb_s']:.0f}** | "
                 f"**{c['mb_s'] / dd['mb_s']:.2f}×** | {c['mb_s'] / ddd['mb_s']:.2f}× | "
                 f"{disk_cols(c['disk'])} | {br['utime_s']:.1f} + {br['stime_s']:.1f} | "
                 f"{br['minflt']:,} | {c['rss_mb']:.0f} | {c['load']} |")
        L.append(f"| {state} | dd bs=1M buffered | {dd['mb_s']:.0f} | | | {disk_cols(dd['disk'])} "
                 f"| | | | {dd['load']} |")
    L.append(f"| – | dd bs=1M iflag=direct | {ddd['mb_s']:.0f} | | | {disk_cols(ddd['disk'])} "
             f"| | | | {ddd['load']} |")
    L.append("")
    for state in ("consume", "consume_full"):
        c = b[state]
        L.append(f"- {state}: {c['msgs']:,} records in {c['ms'] / 1000:.0f} s "
                 f"(log bytes {c['log_mb_s']:.0f} MB/s); disk read per second p10 / p50 / p90 "
                 f"{c['disk']['r_mb_s_p10']:.0f} / {c['disk']['r_mb_s_p50']:.0f} / "
                 f"{c['disk']['r_mb_s_p90']:.0f} MB/s; client {c['client_cpu_s']:.0f} CPU-s; "
                 f"machine iowait {c['disk']['cpu_iowait']:.2f}, "
                 f"idle {c['disk']['cpu_idle']:.2f}; "
                 f"restart {c['startup_s']:.1f} s, page cache {c['cached_before_mb']:.0f} → "
                 f"{c['cached_after_mb']:.0f} MB.")
    L.append(f"- dd read {b['dd_files']} segment file(s), {ddd['bytes'] / 1e9:.1f} GB. "
             f"Disk columns are whole-phase averages (iostat -x fields from "
             f"/sys/dev/block/*/stat).")
    L.append("")
    return L


def disk_cols(d):
    return f"{d['rareq_kib']:.0f} / {d['aqu_sz']:.2f} / {d['r_await_ms']:.2f} / {d['util']:.2f}"

if __name__ == "__main__":
    main()
