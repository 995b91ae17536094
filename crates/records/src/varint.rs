//! Zigzag varints (protobuf's and Kafka's `ByteUtils.writeVarlong`), the length and delta
//! encoding inside v2 records.
use crate::error::{bad, Error};

/// Appends a zigzag varlong (an i32 value encodes the same as Kafka's varint).
pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Appends a length-prefixed byte string where -1 means null (Kafka's nullable varbytes).
pub fn put_nullable(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// Bounds-checked reader over varint-encoded record fields: every read of bad input is an
/// error, never a panic, and never an allocation.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.remaining() {
            return Err(bad("record field runs past the record"));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A zigzag varlong of at most 10 bytes whose value fits in 64 bits.
    pub fn varlong(&mut self) -> Result<i64, Error> {
        let mut raw: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = *self
                .b
                .get(self.pos)
                .ok_or_else(|| bad("truncated varint"))?;
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(bad("varint overflow"));
            }
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
            }
        }
        Err(bad("varint too long"))
    }

    /// A varint field, which Kafka defines as 32-bit.
    pub fn varint(&mut self) -> Result<i32, Error> {
        let v = self.varlong()?;
        i32::try_from(v).map_err(|_| bad("varint out of i32 range"))
    }

    /// A length-prefixed byte string where -1 means null.
    pub fn nullable(&mut self) -> Result<Option<&'a [u8]>, Error> {
        match self.varint()? {
            -1 => Ok(None),
            n if n < -1 => Err(bad("negative length")),
            n => self.bytes(n as usize).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EDGES: [i64; 10] = [
        0,
        1,
        -1,
        63,
        -64,
        64,
        300,
        i32::MAX as i64,
        i64::MIN,
        i64::MAX,
    ];

    #[test]
    fn varlong_roundtrip() {
        for v in EDGES {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            let mut r = Reader::new(&out);
            assert_eq!(r.varlong().unwrap(), v);
            assert_eq!(r.remaining(), 0);
        }
    }

    #[test]
    fn varint_rejects_values_beyond_i32() {
        let mut out = Vec::new();
        put_varlong(&mut out, i64::from(i32::MAX) + 1);
        assert!(Reader::new(&out).varint().is_err());
    }

    #[test]
    fn malformed_varints_are_errors() {
        assert!(Reader::new(&[0x80, 0x80]).varlong().is_err()); // truncated
        assert!(Reader::new(&[0xff; 11]).varlong().is_err()); // too long
        let mut overflow = vec![0xff; 9];
        overflow.push(0x02);
        assert!(Reader::new(&overflow).varlong().is_err());
    }

    #[test]
    fn nullable_roundtrip_and_bounds() {
        let mut out = Vec::new();
        put_nullable(&mut out, None);
        put_nullable(&mut out, Some(b"abc"));
        let mut r = Reader::new(&out);
        assert_eq!(r.nullable().unwrap(), None);
        assert_eq!(r.nullable().unwrap(), Some(&b"abc"[..]));
        assert!(Reader::new(&[0x06, b'a']).nullable().is_err()); // 3 bytes claimed, 1 present
        assert!(Reader::new(&[0x03]).nullable().is_err()); // -2
    }
}
