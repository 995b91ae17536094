//! Crash test: a child process appends in Sync mode and prints every acknowledged offset; the
//! parent SIGKILLs it mid-load, reopens the data dir and checks every acknowledged record.
use fjord_storage::testing::{batch_with, decode, Codec, TestRecord};
use fjord_storage::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

const ENV: &str = "FJORD_CRASH_CHILD_DIR";
const PARTITIONS: i32 = 3;
const THREADS_PER_PARTITION: usize = 2;

fn cfg() -> LogConfig {
    LogConfig {
        flush: FlushPolicy::Sync,
        segment_bytes: 64 * 1024,
        index_interval_bytes: 1024,
        ..LogConfig::default()
    }
}

/// The record value is derived from its (partition, thread, sequence) so the parent can check it.
fn value(p: i32, t: usize, seq: u64) -> Vec<u8> {
    format!("p{p}-t{t}-s{seq}-").repeat(20).into_bytes()
}

/// Child mode: append forever (until killed).
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(ENV) else { return };
    let m = LogManager::open(std::path::Path::new(&dir), ManagerOptions::default()).unwrap();
    let mut handles = Vec::new();
    for p in 0..PARTITIONS {
        let log = m.open_log("crash", p, cfg()).unwrap();
        for t in 0..THREADS_PER_PARTITION {
            let log = log.clone();
            handles.push(std::thread::spawn(move || append_loop(&log, p, t)));
        }
    }
    for h in handles {
        let _ = h.join();
    }
}

fn append_loop(log: &Arc<Log>, p: i32, t: usize) {
    for seq in 0.. {
        let rec = TestRecord::kv(
            format!("{t}").as_bytes(),
            &value(p, t, seq),
            1_700_000_000_000,
        );
        let r = log
            .append(batch_with(&[rec], Codec::None), 1_700_000_000_000)
            .unwrap();
        r.durable.unwrap().wait_blocking().unwrap();
        // One line per acknowledgement; println! takes the stdout lock so lines never interleave.
        println!("ACK {p} {t} {seq} {}", r.base_offset);
    }
}

#[test]
fn acknowledged_sync_appends_survive_sigkill() {
    if std::env::var(ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acks = Vec::new();
    // Kill while appends are in flight: after a fixed number of acknowledgements.
    while acks.len() < 600 {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.strip_prefix("ACK ") {
            acks.push(rest.to_string());
        }
    }
    child.kill().unwrap(); // SIGKILL
                           // Lines printed before the kill are still in the pipe: they were acknowledged too.
    for line in lines.map_while(Result::ok) {
        if let Some(rest) = line.strip_prefix("ACK ") {
            acks.push(rest.to_string());
        }
    }
    child.wait().unwrap();
    assert!(acks.len() >= 600, "child produced only {} acks", acks.len());

    let m = LogManager::open(dir.path(), ManagerOptions::default()).unwrap();
    let logs: Vec<_> = (0..PARTITIONS)
        .map(|p| m.open_log("crash", p, cfg()).unwrap())
        .collect();
    for ack in &acks {
        let f: Vec<&str> = ack.split(' ').collect();
        let (p, t, seq, off): (i32, usize, u64, i64) = (
            f[0].parse().unwrap(),
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
        );
        let recs = decode(&logs[p as usize].read(off, 1).unwrap().records).unwrap();
        let rec = recs
            .iter()
            .find(|r| r.offset == off)
            .expect("acknowledged offset readable");
        assert_eq!(
            rec.value.as_deref(),
            Some(&value(p, t, seq)[..]),
            "partition {p} offset {off}"
        );
    }
    m.shutdown().unwrap();
}
