//! Compression codecs of the records area, byte-compatible with Kafka's Java client: gzip stream,
//! snappy in xerial framing (raw snappy accepted on read, as librdkafka may write it), LZ4 frame,
//! zstd frame.
use crate::error::{bad, Error};
use std::io::{Read, Write};
use std::str::FromStr;

/// The codec in batch attribute bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Xerial header: magic, version, minimum compatible version.
const XERIAL_HEADER_LEN: usize = 16;
/// Java's `SnappyOutputStream` block size.
const XERIAL_BLOCK: usize = 32 * 1024;
/// Refuse to inflate beyond this: a hostile or corrupt batch must not exhaust memory in the
/// broker's cleaner or in a consumer.
pub const MAX_DECOMPRESSED: usize = 256 << 20;

/// Kafka's `compression.type` names, as the CLI accepts them.
impl FromStr for Codec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "none" => Codec::None,
            "gzip" => Codec::Gzip,
            "snappy" => Codec::Snappy,
            "lz4" => Codec::Lz4,
            "zstd" => Codec::Zstd,
            _ => {
                return Err(format!(
                    "unknown codec '{s}' (none, gzip, snappy, lz4, zstd)"
                ))
            }
        })
    }
}

impl Codec {
    pub const ALL: [Codec; 5] = [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ];

    /// The codec named by a batch's attributes (bits 0-2; other bits are ignored).
    pub fn from_attributes(attributes: i16) -> Result<Codec, Error> {
        Ok(match attributes & 0x07 {
            0 => Codec::None,
            1 => Codec::Gzip,
            2 => Codec::Snappy,
            3 => Codec::Lz4,
            4 => Codec::Zstd,
            n => return Err(bad(format!("unknown compression codec {n}"))),
        })
    }

    pub fn attribute_bits(self) -> i16 {
        self as i16
    }

    pub fn compress(self, data: &[u8]) -> Result<Vec<u8>, Error> {
        let io = |source: std::io::Error| Error::Compress {
            codec: self,
            source,
        };
        Ok(match self {
            Codec::None => data.to_vec(),
            Codec::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).map_err(io)?;
                e.finish().map_err(io)?
            }
            Codec::Snappy => xerial_compress(data).map_err(io)?,
            Codec::Lz4 => {
                let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
                e.write_all(data).map_err(io)?;
                e.finish().map_err(|e| io(std::io::Error::other(e)))?
            }
            Codec::Zstd => zstd::bulk::compress(data, 3).map_err(io)?,
        })
    }

    /// Decompresses at most [`MAX_DECOMPRESSED`] bytes; more is an error, never an allocation.
    pub fn decompress(self, data: &[u8]) -> Result<Vec<u8>, Error> {
        let corrupt = |e: std::io::Error| bad(format!("{self:?} data: {e}"));
        match self {
            Codec::None => Ok(data.to_vec()),
            Codec::Gzip => read_bounded(flate2::read::GzDecoder::new(data)).map_err(corrupt),
            Codec::Snappy => snappy_decompress(data),
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

/// Xerial framing as Java's `SnappyOutputStream` writes it: header, then length-prefixed
/// raw-snappy blocks of at most 32 KiB input each.
fn xerial_compress(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = XERIAL_MAGIC.to_vec();
    out.extend_from_slice(&1i32.to_be_bytes()); // version
    out.extend_from_slice(&1i32.to_be_bytes()); // minimum compatible version
    let mut enc = snap::raw::Encoder::new();
    for chunk in data.chunks(XERIAL_BLOCK) {
        let c = enc.compress_vec(chunk).map_err(std::io::Error::other)?;
        out.extend_from_slice(&(c.len() as i32).to_be_bytes());
        out.extend_from_slice(&c);
    }
    Ok(out)
}

fn snappy_corrupt(e: impl std::fmt::Display) -> Error {
    bad(format!("snappy data: {e}"))
}

/// Xerial-framed or, without the magic, one raw snappy block; both bounded before allocating.
fn snappy_decompress(data: &[u8]) -> Result<Vec<u8>, Error> {
    let mut dec = snap::raw::Decoder::new();
    if !data.starts_with(&XERIAL_MAGIC) {
        let len = snap::raw::decompress_len(data).map_err(snappy_corrupt)?;
        if len > MAX_DECOMPRESSED {
            return Err(snappy_corrupt("decompressed size limit exceeded"));
        }
        return dec.decompress_vec(data).map_err(snappy_corrupt);
    }
    let mut rest = data
        .get(XERIAL_HEADER_LEN..)
        .ok_or_else(|| snappy_corrupt("short header"))?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (len_bytes, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| snappy_corrupt("truncated chunk length"))?;
        let chunk = usize::try_from(i32::from_be_bytes(*len_bytes))
            .ok()
            .and_then(|n| tail.get(..n))
            .ok_or_else(|| snappy_corrupt("chunk out of bounds"))?;
        let len = snap::raw::decompress_len(chunk).map_err(snappy_corrupt)?;
        if out.len() + len > MAX_DECOMPRESSED {
            return Err(snappy_corrupt("decompressed size limit exceeded"));
        }
        out.extend(dec.decompress_vec(chunk).map_err(snappy_corrupt)?);
        rest = &tail[chunk.len()..];
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
    fn xerial_blocks_are_32k() {
        let data = vec![7u8; 100_000];
        let z = Codec::Snappy.compress(&data).unwrap();
        assert!(z.starts_with(&XERIAL_MAGIC));
        let mut rest = &z[XERIAL_HEADER_LEN..];
        let mut blocks = 0;
        while let Some((n, tail)) = rest.split_first_chunk::<4>() {
            let n = i32::from_be_bytes(*n) as usize;
            rest = &tail[n..];
            blocks += 1;
        }
        assert_eq!(blocks, 4);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for c in Codec::ALL {
            let _ = c.decompress(&[0x82, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
            let _ = c.decompress(&[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 1, 2, 3, 4]);
            let _ = c.decompress(&[0xff; 40]);
        }
        assert!(Codec::from_attributes(7).is_err());
        assert!("brotli".parse::<Codec>().is_err());
        assert_eq!("LZ4".parse::<Codec>(), Ok(Codec::Lz4));
    }

    #[test]
    fn raw_snappy_claiming_too_much_is_refused() {
        // A raw snappy preamble (varint length) claiming 512 MiB.
        let mut claim = Vec::new();
        let mut n = 512u64 << 20;
        while n >= 0x80 {
            claim.push((n as u8) | 0x80);
            n >>= 7;
        }
        claim.push(n as u8);
        assert!(Codec::Snappy.decompress(&claim).is_err());
    }
}
