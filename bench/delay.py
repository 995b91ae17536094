#!/usr/bin/env python3
"""Delay-message benchmarks (R9) on one fresh Fjord broker, with `fjord bench produce` as the
client (it re-sends pre-encoded batches, so the broker is what is measured):

    python3 bench/delay.py [--pending 2000000] [--compare 1000000] [--rate 50000] [--secs 10]

  schedule   --pending records of 1 KiB with TIMER_DELAY_SEC=86400 (all stay pending): records/s,
             against --compare records without the header on another topic (immediate produce)
  memory     broker RSS per pending record: growth while scheduling (VmRSS before and after,
             request buffers included), and after a restart over a fresh broker (the index)
  restart    kill -9 with everything pending, start again: seconds until the broker answers,
             and the schedule load time it logs
  lateness   --rate records/s for --secs with TIMER_DELAY_MS=2000 (so deliveries run at that
             rate while --pending others wait): delivery lateness p50/p99 from the broker's
             fjord_delay_lateness_seconds histogram (bucket upper bounds)
  overhead   what looking for delay headers costs every produce: `fjord bench produce` of 100-byte
             records for 5 s, uncompressed and lz4, on a broker with --delay on and one with
             --delay off, alternated --reps times (median records/s)
The report goes to stdout and bench/out/delay.json.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
FJORD = Path(os.environ.get("FJORD_BIN", ROOT / "target" / "release" / "fjord"))
DATA = OUT / "data" / "delay"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fjord:
    def __init__(self, *flags):
        self.flags = list(flags)
        self.port, self.http = free_port(), free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.log = OUT / "delay.stderr.log"
        self.proc = None

    def start(self):
        cmd = [str(FJORD), "serve", "--data-dir", str(DATA), "--listen", self.addr,
               "--http-listen", f"127.0.0.1:{self.http}", "--log-format", "json", *self.flags]
        t0 = time.time()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.log, "w"),
                                     env=dict(os.environ, RUST_LOG="info"))
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.http}/health", timeout=1)
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.log.read_text()[-3000:])
                time.sleep(0.02)
        return time.time() - t0

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)

    def rss_mb(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def metrics(self):
        return urllib.request.urlopen(f"http://127.0.0.1:{self.http}/metrics").read().decode()

    def counter(self, name):
        m = re.search(rf"^{name} (\S+)$", self.metrics(), re.M)
        return float(m.group(1)) if m else 0.0

    def bench(self, topic, count=None, secs=None, rate=0, header=None, size=1024, codec="none"):
        args = [str(FJORD), "bench", "produce", "-b", self.addr, "--topic", topic,
                "--partitions", "1", "--record-size", str(size), "-z", codec, "--json", "-q"]
        args += ["--count", str(count)] if count else ["--duration", str(secs)]
        if rate:
            args += ["--rate", str(rate)]
        if header:
            args += ["--header", header]
        r = subprocess.run(args, capture_output=True, text=True, timeout=1800)
        out = json.loads(r.stdout[r.stdout.index("{"):])
        if out["errors"]:
            raise RuntimeError(f"bench errors: {out}")
        return out


def schedule_loaded(log):
    """The fields of the broker's 'loaded the delay schedule' line (JSON logs)."""
    for line in log.read_text().splitlines():
        try:
            fields = json.loads(line).get("fields", {})
        except ValueError:
            continue
        if fields.get("message") == "loaded the delay schedule":
            return fields
    return {}


def histogram_quantiles(text, name, qs):
    """Upper bounds of the buckets holding each quantile (Prometheus cumulative buckets)."""
    buckets = sorted((float("inf") if le == "+Inf" else float(le), float(v)) for le, v in
                     re.findall(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', text, re.M))
    total = buckets[-1][1] if buckets else 0
    out = {}
    for q in qs:
        out[q] = next((le for le, c in buckets if c >= q * total), float("nan"))
    return out, total


def overhead(reps):
    """Median records/s of 100-byte produce per (--delay, codec), kinds alternated."""
    import statistics
    runs = {}
    for _ in range(reps):
        for mode in ("on", "off"):
            for codec in ("none", "lz4"):
                shutil.rmtree(DATA, ignore_errors=True)
                f = Fjord("--delay", mode)
                f.start()
                r = f.bench("o", secs=5, size=100, codec=codec)
                f.stop()
                runs.setdefault(f"{codec}_delay_{mode}", []).append(r["records_per_s"])
    med = {k: statistics.median(v) for k, v in runs.items()}
    for codec in ("none", "lz4"):
        med[f"{codec}_on_vs_off"] = med[f"{codec}_delay_on"] / med[f"{codec}_delay_off"]
    return med


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pending", type=int, default=2_000_000)
    ap.add_argument("--compare", type=int, default=1_000_000,
                    help="records of the immediate-produce baseline")
    ap.add_argument("--rate", type=int, default=50_000)
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3, help="repetitions of the overhead runs")
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(DATA, ignore_errors=True)
    f = Fjord()
    f.start()
    report = {"pending": a.pending, "rss_mb_fresh": f.rss_mb()}
    immediate = f.bench("plain", count=a.compare)
    report["immediate_records_per_s"] = immediate["records_per_s"]
    rss0 = f.rss_mb()
    sched = f.bench("later", count=a.pending, header="TIMER_DELAY_SEC=86400")
    report["schedule_records_per_s"] = sched["records_per_s"]
    report["schedule_vs_immediate"] = sched["records_per_s"] / immediate["records_per_s"]
    rss1 = f.rss_mb()
    report["rss_mb_before"], report["rss_mb_after"] = rss0, rss1
    report["rss_bytes_per_pending"] = (rss1 - rss0) * 1024 * 1024 / a.pending
    f.kill9()
    report["restart_s"] = f.start()
    loaded = schedule_loaded(f.log)
    report["restart_pending"] = loaded.get("pending")
    report["restart_schedule_load_ms"] = loaded.get("elapsed_ms")
    report["rss_mb_after_restart"] = f.rss_mb()
    # After a restart the process holds the pending index and little else: its growth over a
    # fresh broker is what pending records cost (scheduling also leaves request buffers).
    report["rss_bytes_per_pending_after_restart"] = (
        (report["rss_mb_after_restart"] - report["rss_mb_fresh"]) * 1024 * 1024 / a.pending)
    base_delivered = f.counter("fjord_delay_delivered_total")
    lat = f.bench("soon", secs=a.secs, rate=a.rate, header="TIMER_DELAY_MS=2000")
    want = lat["records"]
    deadline = time.time() + 120
    while f.counter("fjord_delay_delivered_total") - base_delivered < want:
        if time.time() > deadline:
            raise RuntimeError("deliveries did not complete")
        time.sleep(0.2)
    qs, n = histogram_quantiles(f.metrics(), "fjord_delay_lateness_seconds", [0.5, 0.99, 0.999])
    report["lateness"] = {"delivered": n, "rate_per_s": lat["records_per_s"],
                          "p50_le_ms": qs[0.5] * 1000, "p99_le_ms": qs[0.99] * 1000,
                          "p999_le_ms": qs[0.999] * 1000}
    f.stop()
    report["overhead"] = overhead(a.reps)
    shutil.rmtree(DATA, ignore_errors=True)
    (OUT / "delay.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
