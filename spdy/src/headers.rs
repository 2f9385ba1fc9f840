//! SPDY/3 header blocks: the name/value block format and its compression.
//!
//! A block is a 32-bit count, then for each header a 32-bit length and the (lowercase) name,
//! a 32-bit length and the value (several values joined by NUL). Each direction of a
//! connection compresses all its blocks as one zlib stream primed with the SPDY/3 dictionary
//! and sync-flushed after every block, so a [`Codec`] lives as long as its connection.

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::Error;

/// The SPDY/3 header compression dictionary (from the SPDY/3 specification).
const DICTIONARY: &[u8] = include_bytes!("dictionary.bin");

/// The largest decompressed header block accepted: a zlib bomb must not grow memory.
pub const MAX_BLOCK: usize = 64 * 1024;

/// Headers as (lowercase name, value) pairs, in block order.
pub type Headers = Vec<(String, String)>;

/// One connection's header compression state (one direction each way).
pub struct Codec {
    inflate: Decompress,
    deflate: Compress,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Codec")
    }
}

impl Codec {
    /// A fresh codec.
    pub fn new() -> Result<Codec, Error> {
        let mut deflate = Compress::new(Compression::best(), true);
        deflate
            .set_dictionary(DICTIONARY)
            .map_err(|e| Error::Protocol(format!("header compressor: {e}")))?;
        Ok(Codec {
            inflate: Decompress::new(true),
            deflate,
        })
    }

    /// Decodes one compressed block received from the peer.
    pub fn decode(&mut self, block: &[u8]) -> Result<Headers, Error> {
        let mut out = Vec::with_capacity(1024);
        let mut input = block;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= MAX_BLOCK {
                    return Err(Error::Protocol(format!(
                        "header block larger than {MAX_BLOCK} bytes"
                    )));
                }
                out.reserve(out.len().min(MAX_BLOCK - out.len()).max(1024));
            }
            let before_in = self.inflate.total_in();
            let before_out = self.inflate.total_out();
            match self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
            {
                Ok(status) => {
                    let used = (self.inflate.total_in() - before_in) as usize;
                    input = &input[used..];
                    let produced = self.inflate.total_out() - before_out;
                    if status == Status::StreamEnd {
                        return Err(Error::Protocol("header stream ended".into()));
                    }
                    if input.is_empty() && out.len() < out.capacity() {
                        break;
                    }
                    if used == 0 && produced == 0 && out.len() < out.capacity() {
                        break;
                    }
                }
                Err(e) => match e.needs_dictionary() {
                    Some(_) => {
                        let used = (self.inflate.total_in() - before_in) as usize;
                        input = &input[used..];
                        self.inflate.set_dictionary(DICTIONARY).map_err(|e| {
                            Error::Protocol(format!("header dictionary refused: {e}"))
                        })?;
                    }
                    None => {
                        return Err(Error::Protocol(format!("bad header block: {e}")));
                    }
                },
            }
        }
        if out.len() > MAX_BLOCK {
            return Err(Error::Protocol(format!(
                "header block larger than {MAX_BLOCK} bytes"
            )));
        }
        parse_block(&out)
    }

    /// Encodes and compresses a block to send.
    pub fn encode(&mut self, headers: &[(&str, &str)]) -> Result<Bytes, Error> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            raw.extend_from_slice(&(name.len() as u32).to_be_bytes());
            raw.extend_from_slice(name.as_bytes());
            raw.extend_from_slice(&(value.len() as u32).to_be_bytes());
            raw.extend_from_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input = &raw[..];
        loop {
            if out.len() == out.capacity() {
                out.reserve(256);
            }
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| Error::Protocol(format!("header compression: {e}")))?;
            input = &input[(self.deflate.total_in() - before) as usize..];
            // Done when all input is taken and the flush fit in the buffer.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        Ok(Bytes::from(out))
    }
}

fn parse_block(b: &[u8]) -> Result<Headers, Error> {
    let bad = || Error::Protocol("malformed header block".into());
    let mut at = 0usize;
    let word = |at: &mut usize| -> Result<usize, Error> {
        let w = b.get(*at..*at + 4).ok_or_else(bad)?;
        *at += 4;
        Ok(u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as usize)
    };
    let count = word(&mut at)?;
    // Each header takes at least 8 bytes: a count beyond that is a lie.
    if count > b.len() / 8 {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let n = word(&mut at)?;
        let name = b.get(at..at + n).ok_or_else(bad)?;
        at += n;
        let v = word(&mut at)?;
        let value = b.get(at..at + v).ok_or_else(bad)?;
        at += v;
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        for one in value.split(|c| *c == 0) {
            out.push((name.clone(), String::from_utf8_lossy(one).into_owned()));
        }
    }
    Ok(out)
}

/// The first value of header `name` (lowercase).
pub fn get<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_roundtrip_across_one_stream() {
        let mut a = Codec::new().unwrap();
        let mut b = Codec::new().unwrap();
        for i in 0..5 {
            let port = i.to_string();
            let block = a
                .encode(&[("streamType", "data"), ("port", &port), ("requestID", "0")])
                .unwrap();
            let h = b.decode(&block).unwrap();
            assert_eq!(get(&h, "streamtype"), Some("data"));
            assert_eq!(get(&h, "port"), Some(port.as_str()));
            assert_eq!(get(&h, "requestid"), Some("0"));
        }
        let empty = a.encode(&[]).unwrap();
        assert!(b.decode(&empty).unwrap().is_empty());
    }

    #[test]
    fn garbage_and_lies_are_errors() {
        let mut c = Codec::new().unwrap();
        assert!(c.decode(b"not zlib at all").is_err());
        assert!(parse_block(&[0, 0, 0, 9]).is_err());
        assert!(parse_block(&[0, 0, 0, 1, 0, 0, 0, 200, b'a']).is_err());
        assert_eq!(
            parse_block(&[0, 0, 0, 1, 0, 0, 0, 1, b'a', 0, 0, 0, 3, b'x', 0, b'y']).unwrap(),
            vec![("a".into(), "x".into()), ("a".into(), "y".into())]
        );
    }

    #[test]
    fn a_decompression_bomb_is_refused() {
        let mut a = Codec::new().unwrap();
        let big = "x".repeat(200 * 1024);
        let block = a.encode(&[("a", &big)]).unwrap();
        assert!(block.len() < 4096);
        let mut b = Codec::new().unwrap();
        let e = b.decode(&block).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
    }
}
