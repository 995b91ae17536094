//! One record inside a v2 batch's (decompressed) records area:
//! `length attributes timestampDelta offsetDelta key value headers`, all lengths and deltas as
//! zigzag varints. Decoding is strict (as Kafka's `DefaultRecord.readFrom`): a record whose
//! fields do not fill exactly its length, a null header key or a negative count is an error.
use crate::error::{bad, Error};
use crate::varint::{put_nullable, put_varlong, Reader};

/// One decoded record; slices borrow the (decompressed) records area.
#[derive(Debug, Clone)]
pub struct RecordRef<'a> {
    /// The whole encoded record including its length prefix (re-usable verbatim).
    pub raw: &'a [u8],
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// Already validated by [`next_record`]; decoded lazily because most readers skip them.
    pub headers: Headers<'a>,
}

/// The headers of a decoded record: `(key, value)` pairs, value possibly null.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    area: Reader<'a>,
    left: i32,
}

impl<'a> Headers<'a> {
    pub fn len(&self) -> usize {
        self.left.max(0) as usize
    }
    pub fn is_empty(&self) -> bool {
        self.left <= 0
    }
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left <= 0 {
            return None;
        }
        self.left -= 1;
        // next_record checked every header, so these reads cannot fail.
        let key = self.area.nullable().ok().flatten()?;
        let value = self.area.nullable().ok()?;
        Some((key, value))
    }
}

/// Decodes the next record from `rest` and advances it past the record.
pub fn next_record<'a>(rest: &mut &'a [u8]) -> Result<RecordRef<'a>, Error> {
    let start: &'a [u8] = rest;
    let mut prefix = Reader::new(start);
    let len = prefix.varint()?;
    if len < 0 || len as usize > prefix.remaining() {
        return Err(bad("record length out of bounds"));
    }
    let (body_at, end) = (prefix.pos(), prefix.pos() + len as usize);
    let mut body = Reader::new(&start[body_at..end]);
    body.bytes(1)?; // attributes (unused in v2)
    let timestamp_delta = body.varlong()?;
    let offset_delta = body.varint()?;
    let key = body.nullable()?;
    let value = body.nullable()?;
    let headers = read_headers(&mut body)?;
    if body.remaining() != 0 {
        return Err(bad("record length does not match its fields"));
    }
    *rest = &start[end..];
    Ok(RecordRef {
        raw: &start[..end],
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
    })
}

/// Checks the header list and returns a lazy view of it.
fn read_headers<'a>(body: &mut Reader<'a>) -> Result<Headers<'a>, Error> {
    let count = body.varint()?;
    if count < 0 {
        return Err(bad("negative header count"));
    }
    let area = body.clone();
    for _ in 0..count {
        if body.nullable()?.is_none() {
            return Err(bad("null header key"));
        }
        body.nullable()?;
    }
    Ok(Headers { area, left: count })
}

/// A record to encode, borrowed from whatever the caller keeps it in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRecord<'a> {
    /// Milliseconds since the epoch; stored as a delta from the batch's first timestamp.
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

/// Appends one record (with its length prefix) to `out`.
pub fn encode_record(out: &mut Vec<u8>, r: &NewRecord<'_>, base_ts: i64, offset_delta: i32) {
    let mut body =
        Vec::with_capacity(16 + r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len));
    body.push(0); // attributes (unused in v2)
    put_varlong(&mut body, r.timestamp - base_ts);
    put_varlong(&mut body, i64::from(offset_delta));
    put_nullable(&mut body, r.key);
    put_nullable(&mut body, r.value);
    put_varlong(&mut body, r.headers.len() as i64);
    for (k, v) in &r.headers {
        put_nullable(&mut body, Some(k));
        put_nullable(&mut body, *v);
    }
    put_varlong(out, body.len() as i64);
    out.extend_from_slice(&body);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NewRecord<'static> {
        NewRecord {
            timestamp: 1_005,
            key: Some(b"k"),
            value: None,
            headers: vec![(b"h1", Some(b"v1")), (b"h2", None)],
        }
    }

    #[test]
    fn encode_then_decode() {
        let mut buf = Vec::new();
        encode_record(&mut buf, &sample(), 1_000, 3);
        encode_record(&mut buf, &NewRecord::default(), 0, 4);
        let mut rest = &buf[..];
        let r = next_record(&mut rest).unwrap();
        assert_eq!((r.timestamp_delta, r.offset_delta), (5, 3));
        assert_eq!((r.key, r.value), (Some(&b"k"[..]), None));
        assert_eq!(r.headers.len(), 2);
        let h: Vec<_> = r.headers.collect();
        assert_eq!(h, vec![(&b"h1"[..], Some(&b"v1"[..])), (&b"h2"[..], None)]);
        let second = next_record(&mut rest).unwrap();
        assert_eq!(second.raw.len() + r.raw.len(), buf.len());
        assert!(second.headers.is_empty() && rest.is_empty());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut buf = Vec::new();
        encode_record(&mut buf, &sample(), 1_000, 0);
        for cut in 0..buf.len() {
            let mut rest = &buf[..cut];
            assert!(next_record(&mut rest).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn null_header_key_and_slack_are_rejected() {
        // Length 8 (zigzag 16): attributes, ts 0, delta 0, null key, null value, one header
        // (zigzag 2) whose key is null.
        let null_key = [16u8, 0, 0, 0, 1, 1, 2, 1, 1];
        assert!(next_record(&mut &null_key[..]).is_err());
        let mut buf = Vec::new();
        encode_record(&mut buf, &NewRecord::default(), 0, 0);
        buf[0] += 2; // one more byte claimed than the fields use
        buf.push(0);
        assert!(next_record(&mut &buf[..]).is_err());
    }
}
