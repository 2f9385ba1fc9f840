//! SPDY/3.1 frames: their wire layout, reading one from a byte stream and writing one.
//!
//! Every frame has an 8-byte header. A control frame starts with the control bit, the version
//! (3) and the type, then 8 bits of flags and a 24-bit length; a data frame starts with a
//! 31-bit stream id, then flags and length. Header blocks (SYN_STREAM, SYN_REPLY, HEADERS)
//! are compressed by [`crate::headers`]; this module only carries them as bytes.

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::Error;

/// The SPDY version spoken.
pub const VERSION: u16 = 3;
/// The largest payload a frame's 24-bit length can carry.
pub const MAX_LENGTH: usize = (1 << 24) - 1;

/// Control frame types.
pub(crate) mod kind {
    pub(crate) const SYN_STREAM: u16 = 1;
    pub(crate) const SYN_REPLY: u16 = 2;
    pub(crate) const RST_STREAM: u16 = 3;
    pub(crate) const SETTINGS: u16 = 4;
    pub(crate) const PING: u16 = 6;
    pub(crate) const GOAWAY: u16 = 7;
    pub(crate) const HEADERS: u16 = 8;
    pub(crate) const WINDOW_UPDATE: u16 = 9;
}

/// The length of a data frame's header (stream id, flags, length), which comes before its
/// payload.
pub const DATA_HEADER: usize = 8;

/// The header of a data frame on `stream` with `flags` and a payload of `len` bytes (at most
/// [`MAX_LENGTH`]).
pub fn data_header(stream: u32, flags: u8, len: usize) -> [u8; DATA_HEADER] {
    let mut h = [0u8; DATA_HEADER];
    h[..4].copy_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    h[4..].copy_from_slice(&((u32::from(flags) << 24) | (len as u32 & 0x00ff_ffff)).to_be_bytes());
    h
}

/// The FIN flag (data frames, SYN_STREAM, SYN_REPLY, HEADERS).
pub const FLAG_FIN: u8 = 0x01;

/// RST_STREAM status codes used here.
pub mod status {
    /// The peer broke the protocol on this stream.
    pub const PROTOCOL_ERROR: u32 = 1;
    /// The stream is refused (too many streams).
    pub const REFUSED_STREAM: u32 = 3;
    /// The stream is no longer wanted.
    pub const CANCEL: u32 = 5;
}

/// A frame as read from or written to the wire (header blocks still compressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A new stream from the peer.
    SynStream {
        /// Its id (odd from a client).
        stream: u32,
        /// FIN (the peer sends nothing more) and UNIDIRECTIONAL flags.
        flags: u8,
        /// The compressed header block.
        block: Bytes,
    },
    /// The answer to a SYN_STREAM.
    SynReply {
        /// The stream.
        stream: u32,
        /// FIN flag.
        flags: u8,
        /// The compressed header block.
        block: Bytes,
    },
    /// More headers on a stream.
    Headers {
        /// The stream.
        stream: u32,
        /// FIN flag.
        flags: u8,
        /// The compressed header block.
        block: Bytes,
    },
    /// The stream is abandoned.
    RstStream {
        /// The stream.
        stream: u32,
        /// Why ([`status`]).
        status: u32,
    },
    /// Settings (ignored here: no flow control is done, as spdystream does none).
    Settings,
    /// A ping, answered with the same id.
    Ping(u32),
    /// The peer stops.
    GoAway {
        /// The last stream it accepted.
        last_stream: u32,
        /// Why.
        status: u32,
    },
    /// Flow-control credit (ignored, as spdystream ignores it).
    WindowUpdate,
    /// Stream data.
    Data {
        /// The stream.
        stream: u32,
        /// FIN flag.
        flags: u8,
        /// The payload.
        data: Bytes,
    },
}

/// Reads one frame; `Ok(None)` at a clean end of stream between frames. Payloads above
/// `max_payload` are refused before they are read.
pub async fn read<R: AsyncRead + Unpin>(
    r: &mut R,
    max_payload: usize,
) -> Result<Option<Frame>, Error> {
    let mut head = [0u8; 8];
    let n = r.read(&mut head[..1]).await?;
    if n == 0 {
        return Ok(None);
    }
    r.read_exact(&mut head[1..]).await?;
    let first = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let flags = head[4];
    let len = (u32::from_be_bytes([0, head[5], head[6], head[7]])) as usize;
    if len > max_payload {
        return Err(Error::Protocol(format!(
            "frame of {len} bytes exceeds the limit of {max_payload}"
        )));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    let mut p = Bytes::from(payload);
    if first & 0x8000_0000 == 0 {
        let stream = first & 0x7fff_ffff;
        if stream == 0 {
            return Err(Error::Protocol("data frame on stream 0".into()));
        }
        return Ok(Some(Frame::Data {
            stream,
            flags,
            data: p,
        }));
    }
    let version = ((first >> 16) & 0x7fff) as u16;
    if version != VERSION {
        return Err(Error::Protocol(format!(
            "unsupported SPDY version {version}"
        )));
    }
    let typ = (first & 0xffff) as u16;
    let word = |p: &Bytes, at: usize| -> Result<u32, Error> {
        p.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| Error::Protocol(format!("control frame type {typ} is too short")))
    };
    let stream_of = |p: &Bytes| -> Result<u32, Error> {
        let s = word(p, 0)? & 0x7fff_ffff;
        if s == 0 {
            return Err(Error::Protocol(format!(
                "control frame type {typ} on stream 0"
            )));
        }
        Ok(s)
    };
    let frame = match typ {
        kind::SYN_STREAM => {
            let stream = stream_of(&p)?;
            if p.len() < 10 {
                return Err(Error::Protocol("SYN_STREAM is too short".into()));
            }
            Frame::SynStream {
                stream,
                flags,
                block: p.split_off(10),
            }
        }
        kind::SYN_REPLY | kind::HEADERS => {
            let stream = stream_of(&p)?;
            let block = p.split_off(4);
            if typ == kind::SYN_REPLY {
                Frame::SynReply {
                    stream,
                    flags,
                    block,
                }
            } else {
                Frame::Headers {
                    stream,
                    flags,
                    block,
                }
            }
        }
        kind::RST_STREAM => Frame::RstStream {
            stream: stream_of(&p)?,
            status: word(&p, 4)?,
        },
        kind::SETTINGS => Frame::Settings,
        kind::PING => Frame::Ping(word(&p, 0)?),
        kind::GOAWAY => Frame::GoAway {
            last_stream: word(&p, 0)? & 0x7fff_ffff,
            status: word(&p, 4).unwrap_or(0),
        },
        kind::WINDOW_UPDATE => Frame::WindowUpdate,
        // Unknown control frames are ignored, as the SPDY/3 draft asks.
        _ => Frame::Settings,
    };
    Ok(Some(frame))
}

fn control(out: &mut BytesMut, typ: u16, flags: u8, len: usize) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(typ);
    out.put_u32((u32::from(flags) << 24) | (len as u32 & 0x00ff_ffff));
}

/// Appends `frame`'s wire form to `out`. Data longer than [`MAX_LENGTH`] must be split by the
/// caller.
pub fn write(frame: &Frame, out: &mut BytesMut) {
    match frame {
        Frame::SynStream {
            stream,
            flags,
            block,
        } => {
            control(out, kind::SYN_STREAM, *flags, block.len() + 10);
            out.put_u32(*stream);
            out.put_u32(0);
            out.put_u16(0);
            out.put_slice(block);
        }
        Frame::SynReply {
            stream,
            flags,
            block,
        }
        | Frame::Headers {
            stream,
            flags,
            block,
        } => {
            let typ = if matches!(frame, Frame::SynReply { .. }) {
                kind::SYN_REPLY
            } else {
                kind::HEADERS
            };
            control(out, typ, *flags, block.len() + 4);
            out.put_u32(*stream);
            out.put_slice(block);
        }
        Frame::RstStream { stream, status } => {
            control(out, kind::RST_STREAM, 0, 8);
            out.put_u32(*stream);
            out.put_u32(*status);
        }
        Frame::Settings => {
            control(out, kind::SETTINGS, 0, 4);
            out.put_u32(0);
        }
        Frame::Ping(id) => {
            control(out, kind::PING, 0, 4);
            out.put_u32(*id);
        }
        Frame::GoAway {
            last_stream,
            status,
        } => {
            control(out, kind::GOAWAY, 0, 8);
            out.put_u32(*last_stream);
            out.put_u32(*status);
        }
        Frame::WindowUpdate => {}
        Frame::Data {
            stream,
            flags,
            data,
        } => {
            out.put_slice(&data_header(*stream, *flags, data.len()));
            out.put_slice(data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn roundtrip(f: Frame) -> Frame {
        let mut out = BytesMut::new();
        write(&f, &mut out);
        let mut r = &out[..];
        read(&mut r, MAX_LENGTH).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn frames_roundtrip() {
        for f in [
            Frame::SynStream {
                stream: 1,
                flags: FLAG_FIN,
                block: Bytes::from_static(b"abc"),
            },
            Frame::SynReply {
                stream: 3,
                flags: 0,
                block: Bytes::from_static(b"xyz"),
            },
            Frame::RstStream {
                stream: 5,
                status: status::CANCEL,
            },
            Frame::Ping(7),
            Frame::GoAway {
                last_stream: 9,
                status: 0,
            },
            Frame::Data {
                stream: 11,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"hello"),
            },
        ] {
            assert_eq!(roundtrip(f.clone()).await, f);
        }
    }

    #[tokio::test]
    async fn bad_frames_are_errors_not_panics() {
        // A data frame on stream 0.
        let mut r: &[u8] = &[0, 0, 0, 0, 0, 0, 0, 0];
        assert!(read(&mut r, 16).await.is_err());
        // A control frame of version 2.
        let mut r: &[u8] = &[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1];
        assert!(read(&mut r, 16).await.is_err());
        // A SYN_STREAM too short for its fixed fields.
        let mut r: &[u8] = &[0x80, 3, 0, 1, 0, 0, 0, 4, 0, 0, 0, 1];
        assert!(read(&mut r, 16).await.is_err());
        // A frame longer than the limit is refused before its payload is read.
        let mut r: &[u8] = &[0, 0, 0, 1, 0, 0, 1, 0];
        assert!(read(&mut r, 16).await.is_err());
        // Truncated input.
        let mut r: &[u8] = &[0, 0, 0, 1, 0, 0, 0, 9, 1];
        assert!(read(&mut r, 16).await.is_err());
        // A clean end between frames.
        let mut r: &[u8] = &[];
        assert!(read(&mut r, 16).await.unwrap().is_none());
    }
}
