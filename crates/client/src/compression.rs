//! The record batch codecs, byte-compatible with Kafka's Java client: gzip stream, snappy in
//! xerial framing (raw snappy accepted on read, as librdkafka may write it), LZ4 frame, zstd.
use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// A hostile or corrupt batch must not make the client allocate without bound.
const MAX_DECOMPRESSED: usize = 256 << 20;

impl FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "none" => Compression::None,
            "gzip" => Compression::Gzip,
            "snappy" => Compression::Snappy,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::Zstd,
            _ => {
                return Err(format!(
                    "unknown codec '{s}' (none, gzip, snappy, lz4, zstd)"
                ))
            }
        })
    }
}

impl Compression {
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec in record batch attribute bits 0-2.
    pub fn from_attributes(attributes: i16) -> Result<Compression> {
        Ok(match attributes & 0x07 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            n => return Err(Error::Records(format!("unknown compression codec {n}"))),
        })
    }

    pub fn attribute_bits(self) -> i16 {
        self as i16
    }

    pub fn compress(self, data: &[u8]) -> Result<Vec<u8>> {
        let io = |e: std::io::Error| Error::Records(format!("{self:?} compression: {e}"));
        Ok(match self {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).map_err(io)?;
                e.finish().map_err(io)?
            }
            Compression::Snappy => xerial_compress(data)?,
            Compression::Lz4 => {
                let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
                e.write_all(data).map_err(io)?;
                e.finish().map_err(|e| io(std::io::Error::other(e)))?
            }
            Compression::Zstd => zstd::bulk::compress(data, 3).map_err(io)?,
        })
    }

    pub fn decompress(self, data: &[u8]) -> Result<Vec<u8>> {
        let corrupt = |e: std::io::Error| Error::Records(format!("{self:?} data: {e}"));
        match self {
            Compression::None => Ok(data.to_vec()),
            Compression::Gzip => read_bounded(flate2::read::GzDecoder::new(data)).map_err(corrupt),
            Compression::Snappy => xerial_decompress(data),
            Compression::Lz4 => {
                read_bounded(lz4_flex::frame::FrameDecoder::new(data)).map_err(corrupt)
            }
            Compression::Zstd => {
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

fn xerial_compress(data: &[u8]) -> Result<Vec<u8>> {
    let mut out = XERIAL_MAGIC.to_vec();
    out.extend_from_slice(&1i32.to_be_bytes()); // version
    out.extend_from_slice(&1i32.to_be_bytes()); // minimum compatible version
    let mut enc = snap::raw::Encoder::new();
    for chunk in data.chunks(32 * 1024) {
        let c = enc
            .compress_vec(chunk)
            .map_err(|e| Error::Records(format!("snappy: {e}")))?;
        out.extend_from_slice(&(c.len() as i32).to_be_bytes());
        out.extend_from_slice(&c);
    }
    Ok(out)
}

fn xerial_decompress(data: &[u8]) -> Result<Vec<u8>> {
    let corrupt = |e: String| Error::Records(format!("snappy data: {e}"));
    let mut dec = snap::raw::Decoder::new();
    if !data.starts_with(&XERIAL_MAGIC) {
        let len = snap::raw::decompress_len(data).map_err(|e| corrupt(e.to_string()))?;
        if len > MAX_DECOMPRESSED {
            return Err(corrupt("decompressed size limit exceeded".into()));
        }
        return dec.decompress_vec(data).map_err(|e| corrupt(e.to_string()));
    }
    let mut rest = data
        .get(16..)
        .ok_or_else(|| corrupt("short header".into()))?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (len_bytes, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("truncated chunk length".into()))?;
        let n = i32::from_be_bytes(*len_bytes);
        let chunk = usize::try_from(n)
            .ok()
            .and_then(|n| tail.get(..n))
            .ok_or_else(|| corrupt("chunk out of bounds".into()))?;
        let len = snap::raw::decompress_len(chunk).map_err(|e| corrupt(e.to_string()))?;
        if out.len() + len > MAX_DECOMPRESSED {
            return Err(corrupt("decompressed size limit exceeded".into()));
        }
        out.extend(
            dec.decompress_vec(chunk)
                .map_err(|e| corrupt(e.to_string()))?,
        );
        rest = &tail[chunk.len()..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_roundtrips() {
        let data: Vec<u8> = (0..50_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in Compression::ALL {
            let z = c.compress(&data).unwrap();
            assert_eq!(c.decompress(&z).unwrap(), data, "{c:?}");
            assert_eq!(Compression::from_attributes(c.attribute_bits()).unwrap(), c);
        }
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(Compression::Snappy.decompress(&raw).unwrap(), data);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for c in Compression::ALL {
            let _ = c.decompress(&[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 1, 2, 3, 4]);
            let _ = c.decompress(&[0xff; 40]);
        }
        assert!(Compression::from_attributes(7).is_err());
        assert!("brotli".parse::<Compression>().is_err());
    }
}
