//! Storage engine benchmark (not a test). Run:
//! `cargo run --release -p fjord-storage --example storage_bench -- [--dir DIR] [--mib N] [--sync-secs S]`
//!
//! Measures, in one run: the disk's sequential write limit (dd with O_DIRECT + fdatasync), async
//! appends of 16 KiB and 1 KiB batches, sync (group commit) appends with 1/8/64 concurrent
//! appenders on distinct partitions, sequential read throughput and recovery scan speed.
use fjord_storage::testing::{batch_with, Codec, TestRecord};
use fjord_storage::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: f64 = 1024.0 * 1024.0;
const TS: i64 = 1_700_000_000_000;

struct Args {
    dir: PathBuf,
    mib: u64,
    sync_secs: u64,
}

fn args() -> Args {
    let mut a = Args {
        dir: std::env::temp_dir().join("fjord-storage-bench"),
        mib: 1024,
        sync_secs: 5,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for pair in v.chunks(2) {
        match (pair[0].as_str(), pair.get(1)) {
            ("--dir", Some(d)) => a.dir = PathBuf::from(d),
            ("--mib", Some(n)) => a.mib = n.parse().expect("--mib N"),
            ("--sync-secs", Some(n)) => a.sync_secs = n.parse().expect("--sync-secs S"),
            _ => panic!("usage: storage_bench [--dir DIR] [--mib N] [--sync-secs S]"),
        }
    }
    a
}

/// A batch of roughly `size` bytes made of 1 KiB records (or one record if smaller).
fn make_batch(size: usize) -> bytes::Bytes {
    let per = size.min(1024);
    let n = (size / per).max(1);
    let recs: Vec<_> = (0..n)
        .map(|i| TestRecord::value(&vec![(i % 251) as u8; per - 80], TS))
        .collect();
    batch_with(&recs, Codec::None)
}

fn dd(dir: &Path, mib: u64) -> f64 {
    let of = dir.join("dd.tmp");
    let t = Instant::now();
    let out = std::process::Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", of.display()))
        .args([
            "bs=1M",
            &format!("count={mib}"),
            "oflag=direct",
            "conv=fdatasync",
        ])
        .output()
        .expect("run dd");
    let secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&of);
    println!(
        "dd: {}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("")
    );
    mib as f64 / secs
}

fn manager(dir: &Path) -> Arc<LogManager> {
    let _ = std::fs::remove_dir_all(dir);
    LogManager::open(dir, ManagerOptions::default()).unwrap()
}

/// Appends `total` bytes in batches of `size`, then one flush. Returns MB/s.
fn async_appends(m: &LogManager, topic: &str, size: usize, total: u64) -> f64 {
    let log = m.open_log(topic, 0, LogConfig::default()).unwrap();
    let b = make_batch(size);
    let n = total / b.len() as u64;
    let t = Instant::now();
    for _ in 0..n {
        log.append(b.clone(), TS).unwrap();
    }
    let appended = t.elapsed().as_secs_f64();
    log.flush().unwrap();
    let total = t.elapsed().as_secs_f64();
    println!(
        "  {topic}: appends {appended:.2} s + final fdatasync {:.2} s",
        total - appended
    );
    (n * b.len() as u64) as f64 / MIB / total
}

/// `k` threads, each appending 1 KiB batches to its own partition and waiting for durability.
fn sync_appends(m: &LogManager, k: usize, secs: u64) -> (f64, f64) {
    let cfg = LogConfig {
        flush: FlushPolicy::Sync,
        ..LogConfig::default()
    };
    let b = make_batch(1024);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..k)
        .map(|p| {
            let log = m
                .open_log(&format!("sync{k}"), p as i32, cfg.clone())
                .unwrap();
            let (b, stop, count) = (b.clone(), stop.clone(), count.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let r = log.append(b.clone(), TS).unwrap();
                    r.durable.unwrap().wait_blocking().unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|h| h.join().unwrap());
    let n = count.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    (n, n * b.len() as f64 / MIB)
}

fn read_all(log: &Log) -> f64 {
    let t = Instant::now();
    let (mut off, mut bytes) = (0, 0u64);
    while off < log.log_end_offset() {
        let r = log.read(off, 1 << 20).unwrap();
        let last = fjord_storage::batch::batches(&r.records).last().unwrap();
        off = fjord_storage::batch::parse_header(last).last_offset + 1;
        bytes += r.records.len() as u64;
    }
    bytes as f64 / MIB / t.elapsed().as_secs_f64()
}

fn main() {
    let a = args();
    std::fs::create_dir_all(&a.dir).unwrap();
    println!(
        "dir {} ({} MiB per write phase, {} s per sync phase)",
        a.dir.display(),
        a.mib,
        a.sync_secs
    );
    let dd_mbs = dd(&a.dir, a.mib);
    println!("dd sequential write (O_DIRECT + fdatasync): {dd_mbs:.0} MiB/s");

    let data = a.dir.join("data");
    let m = manager(&data);
    let a16 = async_appends(&m, "async16k", 16 * 1024, a.mib << 20);
    println!(
        "async 16 KiB batches: {a16:.0} MiB/s ({:.0}% of dd)",
        100.0 * a16 / dd_mbs
    );
    let a1 = async_appends(&m, "async1k", 1024, (a.mib / 4).max(1) << 20);
    println!(
        "async 1 KiB batches: {a1:.0} MiB/s ({:.0}% of dd)",
        100.0 * a1 / dd_mbs
    );

    let mut single = 0.0;
    for k in [1, 8, 64] {
        let syncs = m.sync_count();
        let (rate, mbs) = sync_appends(&m, k, a.sync_secs);
        if k == 1 {
            single = rate;
        }
        let fsyncs = (m.sync_count() - syncs) as f64 / a.sync_secs as f64;
        println!(
            "sync, {k:2} appenders: {rate:8.0} appends/s {mbs:6.1} MiB/s ({:.1}x single; {fsyncs:.0} fdatasync/s)",
            rate / single
        );
    }

    let log = m.get_log("async16k", 0).unwrap();
    let r = read_all(&log);
    println!("sequential read (page cache warm): {r:.0} MiB/s");

    let size = log.size_bytes() as f64 / MIB;
    m.simulate_crash();
    drop((log, m));
    // Without a checkpoint every segment is scanned (CRC of every batch, index rebuild).
    std::fs::remove_file(data.join("fjord-checkpoint")).unwrap();
    let t = Instant::now();
    let m = LogManager::open(&data, ManagerOptions::default()).unwrap();
    m.open_log("async16k", 0, LogConfig::default()).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "recovery: {size:.0} MiB scanned in {secs:.2} s = {:.0} MiB/s ({:.2} s per GiB)",
        size / secs,
        secs * 1024.0 / size
    );
    m.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&data);
}
