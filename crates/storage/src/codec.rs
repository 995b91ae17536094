//! Compression codecs of the records area, byte-compatible with Kafka's Java client:
//! gzip stream, snappy in xerial framing (raw snappy accepted on read), LZ4 frame, zstd frame.
use crate::StorageError;
use std::io::{Read, Write};

/// The codec in attribute bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Refuse to inflate beyond this: a hostile batch must not exhaust memory in the cleaner.
const MAX_DECOMPRESSED: usize = 256 << 20;

impl Codec {
    pub const ALL: [Codec; 5] = [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ];

    pub fn from_attributes(attrs: i16) -> Result<Codec, StorageError> {
        Ok(match attrs & 0x07 {
            0 => Codec::None,
            1 => Codec::Gzip,
            2 => Codec::Snappy,
            3 => Codec::Lz4,
            4 => Codec::Zstd,
            n => return Err(StorageError::InvalidBatch(format!("unknown codec {n}"))),
        })
    }

    pub fn attribute_bits(self) -> i16 {
        match self {
            Codec::None => 0,
            Codec::Gzip => 1,
            Codec::Snappy => 2,
            Codec::Lz4 => 3,
            Codec::Zstd => 4,
        }
    }

    pub fn compress(self, data: &[u8]) -> Result<Vec<u8>, StorageError> {
        let out = match self {
            Codec::None => data.to_vec(),
            Codec::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data)?;
                e.finish()?
            }
            Codec::Snappy => xerial_compress(data)?,
            Codec::Lz4 => {
                let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
                e.write_all(data)?;
                e.finish().map_err(std::io::Error::other)?
            }
            Codec::Zstd => zstd::bulk::compress(data, 3)?,
        };
        Ok(out)
    }

    pub fn decompress(self, data: &[u8]) -> Result<Vec<u8>, StorageError> {
        let corrupt = |e: std::io::Error| StorageError::InvalidBatch(format!("{self:?}: {e}"));
        match self {
            Codec::None => Ok(data.to_vec()),
            Codec::Gzip => read_bounded(flate2::read::GzDecoder::new(data)).map_err(corrupt),
            Codec::Snappy => xerial_decompress(data),
            Codec::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(data)).map_err(corrupt),
            Codec::Zstd => {
                let d = zstd::stream::read::Decoder::new(data).map_err(corrupt)?;
                read_bounded(d).map_err(corrupt)
            }
        }
    }
}

fn read_bounded(r: impl Read) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    r.take(MAX_DECOMPRESSED as u64 + 1).read_to_end(&mut out)?;
    if out.len() > MAX_DECOMPRESSED {
        return Err(std::io::Error::other("decompressed size limit exceeded"));
    }
    Ok(out)
}

fn xerial_compress(data: &[u8]) -> Result<Vec<u8>, StorageError> {
    let mut out = XERIAL_MAGIC.to_vec();
    out.extend_from_slice(&1i32.to_be_bytes()); // version
    out.extend_from_slice(&1i32.to_be_bytes()); // minimum compatible version
    let mut enc = snap::raw::Encoder::new();
    for chunk in data.chunks(32 * 1024) {
        let c = enc
            .compress_vec(chunk)
            .map_err(|e| StorageError::Io(std::io::Error::other(e)))?;
        out.extend_from_slice(&(c.len() as i32).to_be_bytes());
        out.extend_from_slice(&c);
    }
    Ok(out)
}

fn xerial_decompress(data: &[u8]) -> Result<Vec<u8>, StorageError> {
    let corrupt = |e: String| StorageError::InvalidBatch(format!("snappy: {e}"));
    let mut dec = snap::raw::Decoder::new();
    if !data.starts_with(&XERIAL_MAGIC) {
        return dec.decompress_vec(data).map_err(|e| corrupt(e.to_string()));
    }
    let mut rest = data
        .get(16..)
        .ok_or_else(|| corrupt("short header".into()))?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(corrupt("truncated chunk length".into()));
        }
        let n = i32::from_be_bytes(rest[..4].try_into().expect("4 bytes"));
        let chunk = usize::try_from(n)
            .ok()
            .and_then(|n| rest.get(4..4 + n))
            .ok_or_else(|| corrupt("chunk out of bounds".into()))?;
        let len = snap::raw::decompress_len(chunk).map_err(|e| corrupt(e.to_string()))?;
        if out.len() + len > MAX_DECOMPRESSED {
            return Err(corrupt("decompressed size limit exceeded".into()));
        }
        out.extend(
            dec.decompress_vec(chunk)
                .map_err(|e| corrupt(e.to_string()))?,
        );
        rest = &rest[4 + chunk.len()..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_roundtrips() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in Codec::ALL {
            let z = c.compress(&data).unwrap();
            assert_eq!(c.decompress(&z).unwrap(), data, "{c:?}");
            assert_eq!(Codec::from_attributes(c.attribute_bits()).unwrap(), c);
        }
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(Codec::Snappy.decompress(&raw).unwrap(), data);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for c in Codec::ALL {
            let _ = c.decompress(&[0x82, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        }
        assert!(Codec::from_attributes(7).is_err());
    }
}
