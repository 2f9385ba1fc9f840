//! The protobuf wire format, read side only: varints, fixed 32/64-bit words and
//! length-delimited slices over a borrowed buffer. Every read is bounds-checked and returns
//! [`WireError`] instead of panicking, so arbitrary bytes are safe to feed in.

/// A wire-level defect; the caller adds the field path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WireError {
    /// The buffer ends inside a value.
    Truncated,
    /// A varint longer than 10 bytes.
    VarintTooLong,
    /// Field number 0 or above 2^29-1.
    BadTag,
    /// Wire types 3 and 4 (groups, unused by Kubernetes) or 6 and 7 (undefined).
    BadWireType(u8),
}

impl WireError {
    pub(super) fn describe(self) -> String {
        match self {
            Self::Truncated => "unexpected end of data".to_string(),
            Self::VarintTooLong => "varint longer than 10 bytes".to_string(),
            Self::BadTag => "invalid field number".to_string(),
            Self::BadWireType(t) => format!("unsupported wire type {t}"),
        }
    }
}

/// Protobuf wire types (the low 3 bits of a field key).
pub(super) const VARINT: u8 = 0;
pub(super) const FIXED64: u8 = 1;
pub(super) const LEN: u8 = 2;
pub(super) const FIXED32: u8 = 5;

/// A value as it sits on the wire, before the schema gives it a meaning.
#[derive(Debug, Clone, Copy)]
pub(super) enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    /// No Kubernetes field uses 32-bit words; they are only skipped.
    Fixed32,
}

impl Raw<'_> {
    pub(super) fn wire_type(&self) -> u8 {
        match self {
            Raw::Varint(_) => VARINT,
            Raw::Fixed64(_) => FIXED64,
            Raw::Len(_) => LEN,
            Raw::Fixed32 => FIXED32,
        }
    }
}

/// A cursor over one message's bytes.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(super) fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = *self.buf.get(self.pos).ok_or(WireError::Truncated)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::VarintTooLong)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated)?;
        let slice = self.buf.get(self.pos..end).ok_or(WireError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    pub(super) fn fixed64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.fixed::<8>()?))
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// The next field: its number and raw value.
    pub(super) fn field(&mut self) -> Result<(u32, Raw<'a>), WireError> {
        let key = self.varint()?;
        let tag = u32::try_from(key >> 3).map_err(|_| WireError::BadTag)?;
        if tag == 0 || tag > (1 << 29) - 1 {
            return Err(WireError::BadTag);
        }
        let raw = match (key & 7) as u8 {
            VARINT => Raw::Varint(self.varint()?),
            FIXED64 => Raw::Fixed64(self.fixed64()?),
            LEN => {
                let len = usize::try_from(self.varint()?).map_err(|_| WireError::Truncated)?;
                Raw::Len(self.take(len)?)
            }
            FIXED32 => {
                self.take(4)?;
                Raw::Fixed32
            }
            other => return Err(WireError::BadWireType(other)),
        };
        Ok((tag, raw))
    }
}
