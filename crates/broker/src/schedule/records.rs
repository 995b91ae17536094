//! The schedule log's records. Every record's first header is `fjord.schedule`, whose value
//! starts with a kind byte:
//!
//! - `0` entry: `due i64, partition i32, producer_id i64, epoch i16, first_seq i32,
//!   last_seq i32, codec u8, topic utf8`; the record's key, value, timestamp and remaining headers are
//!   the scheduled record's own. The producer fields (or -1) are the produced batch's, so
//!   recovery can restore the target partition's idempotence state from them.
//! - `1` round: `n u32, n × entry offset i64, m u32, m × (partition i32, end i64, len u16,
//!   topic)`: entries about to be delivered and where each target partition ended before.
//! - `2` done: `n u32, n × (due i64, entry offset i64)`: delivered.
//! - `3` cancel: `n u32, n × (due i64, entry offset i64)`: cancelled before delivery.
//!
//! All integers big-endian. Decoding is total: a malformed value is an error, never a panic.
use bytes::{BufMut, Bytes, BytesMut};

pub const SCHEDULE_HEADER: &[u8] = b"fjord.schedule";

/// Where a scheduled record goes and what producer sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    pub due_ms: i64,
    pub topic: String,
    pub partition: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub first_seq: i32,
    pub last_seq: i32,
    /// The codec bits of the batch the record came in (delivered in the same codec).
    pub codec: u8,
}

/// A target partition's log end before a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetEnd {
    pub topic: String,
    pub partition: i32,
    pub end_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleRecord {
    Entry(EntryMeta),
    Round {
        entries: Vec<i64>,
        targets: Vec<TargetEnd>,
    },
    /// `(due, entry offset)` of each entry delivered.
    Done(Vec<(i64, i64)>),
    /// `(due, entry offset)` of each entry cancelled.
    Cancel(Vec<(i64, i64)>),
}

impl ScheduleRecord {
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        match self {
            ScheduleRecord::Entry(m) => {
                b.put_u8(0);
                b.put_i64(m.due_ms);
                b.put_i32(m.partition);
                b.put_i64(m.producer_id);
                b.put_i16(m.producer_epoch);
                b.put_i32(m.first_seq);
                b.put_i32(m.last_seq);
                b.put_u8(m.codec);
                b.put_slice(m.topic.as_bytes());
            }
            ScheduleRecord::Round { entries, targets } => {
                b.put_u8(1);
                put_offsets(&mut b, entries);
                b.put_u32(targets.len() as u32);
                for t in targets {
                    b.put_i32(t.partition);
                    b.put_i64(t.end_offset);
                    b.put_u16(t.topic.len() as u16);
                    b.put_slice(t.topic.as_bytes());
                }
            }
            ScheduleRecord::Done(entries) => {
                b.put_u8(2);
                put_pairs(&mut b, entries);
            }
            ScheduleRecord::Cancel(entries) => {
                b.put_u8(3);
                put_pairs(&mut b, entries);
            }
        }
        b.freeze()
    }

    pub fn decode(v: &[u8]) -> Result<ScheduleRecord, String> {
        let mut r = Reader(v);
        let record = match r.u8()? {
            0 => ScheduleRecord::Entry(EntryMeta {
                due_ms: r.i64()?,
                partition: r.i32()?,
                producer_id: r.i64()?,
                producer_epoch: r.i16()?,
                first_seq: r.i32()?,
                last_seq: r.i32()?,
                codec: r.u8()?,
                topic: r.utf8(r.0.len())?,
            }),
            1 => {
                let entries = r.offsets()?;
                let m = r.u32()? as usize;
                let mut targets = Vec::with_capacity(m.min(r.0.len() / 14));
                for _ in 0..m {
                    let partition = r.i32()?;
                    let end_offset = r.i64()?;
                    let len = r.u16()? as usize;
                    targets.push(TargetEnd {
                        topic: r.utf8(len)?,
                        partition,
                        end_offset,
                    });
                }
                ScheduleRecord::Round { entries, targets }
            }
            2 => ScheduleRecord::Done(r.pairs()?),
            3 => ScheduleRecord::Cancel(r.pairs()?),
            kind => return Err(format!("unknown schedule record kind {kind}")),
        };
        if !r.0.is_empty() {
            return Err("trailing bytes in a schedule record".into());
        }
        Ok(record)
    }
}

fn put_offsets(b: &mut BytesMut, offsets: &[i64]) {
    b.put_u32(offsets.len() as u32);
    for o in offsets {
        b.put_i64(*o);
    }
}

fn put_pairs(b: &mut BytesMut, pairs: &[(i64, i64)]) {
    b.put_u32(pairs.len() as u32);
    for (due, offset) in pairs {
        b.put_i64(*due);
        b.put_i64(*offset);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("schedule record too short".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn utf8(&mut self, n: usize) -> Result<String, String> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "topic name is not UTF-8".into())
    }
    fn offsets(&mut self) -> Result<Vec<i64>, String> {
        let n = self.u32()? as usize;
        if n > self.0.len() / 8 {
            return Err("schedule record too short for its offsets".into());
        }
        (0..n).map(|_| self.i64()).collect()
    }
    fn pairs(&mut self) -> Result<Vec<(i64, i64)>, String> {
        let n = self.u32()? as usize;
        if n > self.0.len() / 16 {
            return Err("schedule record too short for its entries".into());
        }
        (0..n).map(|_| Ok((self.i64()?, self.i64()?))).collect()
    }
}
