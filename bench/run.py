#!/usr/bin/env python3
"""Fjord broker benchmarks: machine limits, Fjord vs Tansu (in-memory) with the same client.

One run does everything and prints a markdown report (also written to bench/out/results.md,
raw samples to bench/out/results.json). Tools come from bench/setup.sh.

    bench/setup.sh            # once
    python3 bench/run.py      # full run (~20 min on 2 cores, plus the build)
    python3 bench/run.py --quick   # smaller counts, 1 repetition (smoke test)

Method
- Every broker run starts a fresh broker (fresh Fjord data dir; Tansu memory://), creates the
  topic with CreateTopics, produces a fixed count with rdkafka_performance -P, then consumes the
  same count from the beginning with rdkafka_performance -C (catch-up read).
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
import shutil
import signal
import socket
import statistics
import subprocess
import sys
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
    # "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 2.1 s, 511 MB/s"
    m = re.search(r"(\d+) bytes .* copied, ([\d.]+) s", text)
    b, s = int(m.group(1)), float(m.group(2))
    return b / s / 1e6


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


# ---------------------------------------------------------------- brokers

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
    def __init__(self, kind, datadir=None, keep_data=False):
        self.kind = kind  # fjord-async | fjord-sync | tansu
        self.datadir = datadir or DATA / kind
        if kind.startswith("fjord"):
            if not keep_data:
                shutil.rmtree(self.datadir, ignore_errors=True)
            self.datadir.mkdir(parents=True, exist_ok=True)
            self.port = FJORD_PORT
            cmd = [str(FJORD), "serve", "--data-dir", str(self.datadir), "--listen",
                   f"127.0.0.1:{self.port}", "--log-flush", kind.split("-")[1]]
        else:
            self.port = TANSU_PORT
            cmd = [str(TANSU), "broker", "--listener-url", f"tcp://127.0.0.1:{self.port}",
                   "--advertised-listener-url", f"tcp://127.0.0.1:{self.port}",
                   "--storage-engine", "memory://tansu/", "--silent"]
        self.cmd = cmd
        self.err = open(OUT / f"{kind}.stderr.log", "a")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.err,
                                     env=dict(os.environ, RUST_LOG="warn"))
        wait_port(self.port, self.proc)
        self.addr = f"127.0.0.1:{self.port}"

    def cpu(self):
        f = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / HZ  # utime, stime (fields 14, 15)

    def hwm_mb(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def create_topic(self, name, partitions):
        r = sh([str(TANSU), "topic", "create", "--broker", f"tcp://{self.addr}",
                "--partitions", str(partitions), name], check=False, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"create topic on {self.kind}: {r.stdout}{r.stderr}")
        time.sleep(0.2)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


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
    if int(d) != int(n) or int(failed):
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


def e2e_run(kind, size, count, rate):
    """fjord bench at `rate` (or flat out when 0) with end-to-end latency: 1 partition, acks=1,
    one connection with 5 requests in flight, plus a consumer long-polling the partition."""
    b = Broker(kind)
    try:
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


def cold_consume(size, count):
    """Produce with Fjord async, restart it, evict the data dir from the page cache
    (posix_fadvise DONTNEED after fsync) and consume: the disk-read path of a log not in RAM."""
    d = DATA / "cold"
    b = Broker("fjord-async", datadir=d)
    try:
        b.create_topic("cold", 1)
        run_produce(b.addr, "cold", size, count, 1)
    finally:
        b.stop()
    evicted = 0
    for p in d.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                evicted += p.stat().st_size
            finally:
                os.close(fd)
    b = Broker("fjord-async", datadir=d, keep_data=True)
    try:
        c0 = b.cpu()
        c = run_consume(b.addr, "cold", 1, count, timeout=600)
        c["cpu_s"] = b.cpu() - c0
        c["evicted_mb"] = evicted / 1e6
        return c
    finally:
        b.stop()


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
                    help="comma list: limits,matrix,fjbench,e2e,latency,many,cold")
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
            "fjord_commit": out(f"git -C {ROOT} rev-parse --short HEAD")}


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
            L.append("### Cold consume (log evicted from page cache, Fjord async)")
            L.append("")
            L.append(f"{ok[0]['msgs']:,} × 1 KiB ({ok[0]['evicted_mb']:.0f} MB on disk), 1 partition: "
                     f"{v:.1f} MB/s = {v / ddr:.2f} × dd O_DIRECT read ({ddr:.0f} MB/s); "
                     f"broker CPU {med([r['cpu_s'] for r in ok]):.2f} s.")
            L.append("")
    return "\n".join(L)


if __name__ == "__main__":
    main()
