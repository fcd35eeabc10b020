//! The binary encoding (fc::raw, antelope-protocol.md §2): every type writes itself ([`Pack`]) and reads
//! itself back ([`Unpack`]), as rust-bitcoin does its consensus encoding.
//!
//! Integers are little-endian; lengths and counts are varuint32 (LEB128); strings and byte blobs carry
//! their length. A reader never allocates more than the bytes it was given could hold, so a hostile
//! length cannot exhaust memory.

use thiserror::Error;

use crate::name::Name;

/// Writes the wire form.
pub trait Pack {
    fn pack(&self, out: &mut Vec<u8>);

    /// The wire form as a new vector.
    fn packed(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.pack(&mut out);
        out
    }
}

/// Reads the wire form.
pub trait Unpack: Sized {
    fn unpack(r: &mut Reader<'_>) -> Result<Self, UnpackError>;

    /// Exactly one value: trailing bytes are an error.
    fn unpack_all(bytes: &[u8]) -> Result<Self, UnpackError> {
        let mut r = Reader::new(bytes);
        let v = Self::unpack(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

/// Why bytes do not decode.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UnpackError {
    #[error("the bytes end before the value does")]
    Eof,
    #[error("{0} bytes are left after the value")]
    Trailing(usize),
    #[error("varuint32 is longer than 5 bytes or above 2^32")]
    BadVarint,
    #[error("a string is not UTF-8")]
    BadUtf8,
    #[error("{0}")]
    Invalid(String),
}

/// A cursor over bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], UnpackError> {
        if n > self.remaining() {
            return Err(UnpackError::Eof);
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], UnpackError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn varuint32(&mut self) -> Result<u32, UnpackError> {
        let mut value: u64 = 0;
        for i in 0..5 {
            let b = self.array::<1>()?[0];
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return u32::try_from(value).map_err(|_| UnpackError::BadVarint);
            }
        }
        Err(UnpackError::BadVarint)
    }

    /// A length or count, bounded by what is left (each item is at least `min_item` bytes).
    pub fn len(&mut self, min_item: usize) -> Result<usize, UnpackError> {
        let n = self.varuint32()? as usize;
        if n.saturating_mul(min_item.max(1)) > self.remaining() {
            return Err(UnpackError::Eof);
        }
        Ok(n)
    }

    pub fn finish(self) -> Result<(), UnpackError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(UnpackError::Trailing(n)),
        }
    }
}

/// varuint32 (LEB128): `127 → 7f`, `128 → 80 01`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VarUint32(pub u32);

impl Pack for VarUint32 {
    fn pack(&self, out: &mut Vec<u8>) {
        let mut v = self.0;
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
}

impl Unpack for VarUint32 {
    fn unpack(r: &mut Reader<'_>) -> Result<Self, UnpackError> {
        r.varuint32().map(VarUint32)
    }
}

/// A length prefix. Lengths above u32 cannot occur in anything this crate builds (a transaction is small).
pub fn pack_len(len: usize, out: &mut Vec<u8>) {
    VarUint32(u32::try_from(len).unwrap_or(u32::MAX)).pack(out);
}

macro_rules! int {
    ($t:ty, $n:expr) => {
        impl Pack for $t {
            fn pack(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
        impl Unpack for $t {
            fn unpack(r: &mut Reader<'_>) -> Result<Self, UnpackError> {
                Ok(<$t>::from_le_bytes(r.array::<$n>()?))
            }
        }
    };
}
int!(u8, 1);
int!(u16, 2);
int!(u32, 4);
int!(u64, 8);

impl Pack for Name {
    fn pack(&self, out: &mut Vec<u8>) {
        self.as_u64().pack(out);
    }
}

impl Unpack for Name {
    fn unpack(r: &mut Reader<'_>) -> Result<Self, UnpackError> {
        u64::unpack(r).map(Name::from_u64)
    }
}

impl Pack for String {
    fn pack(&self, out: &mut Vec<u8>) {
        pack_len(self.len(), out);
        out.extend_from_slice(self.as_bytes());
    }
}

impl Unpack for String {
    fn unpack(r: &mut Reader<'_>) -> Result<Self, UnpackError> {
        let n = r.len(1)?;
        String::from_utf8(r.take(n)?.to_vec()).map_err(|_| UnpackError::BadUtf8)
    }
}

/// Raw bytes with their length (action data).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl Pack for Bytes {
    fn pack(&self, out: &mut Vec<u8>) {
        pack_len(self.0.len(), out);
        out.extend_from_slice(&self.0);
    }
}

impl Unpack for Bytes {
    fn unpack(r: &mut Reader<'_>) -> Result<Self, UnpackError> {
        let n = r.len(1)?;
        Ok(Bytes(r.take(n)?.to_vec()))
    }
}

impl<T: Pack> Pack for Vec<T> {
    fn pack(&self, out: &mut Vec<u8>) {
        pack_len(self.len(), out);
        for item in self {
            item.pack(out);
        }
    }
}

impl<T: Unpack> Unpack for Vec<T> {
    fn unpack(r: &mut Reader<'_>) -> Result<Self, UnpackError> {
        let n = r.len(1)?;
        (0..n).map(|_| T::unpack(r)).collect()
    }
}

/// A binary extension (`T$`): nothing when absent; present when bytes remain.
impl<T: Pack> Pack for Option<T> {
    fn pack(&self, out: &mut Vec<u8>) {
        if let Some(v) = self {
            v.pack(out);
        }
    }
}

impl<T: Unpack> Unpack for Option<T> {
    fn unpack(r: &mut Reader<'_>) -> Result<Self, UnpackError> {
        if r.remaining() == 0 {
            Ok(None)
        } else {
            T::unpack(r).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varuint32_examples_of_the_spec() {
        for (v, hex) in
            [(0u32, "00"), (127, "7f"), (128, "8001"), (152, "9801"), (300, "ac02"), (u32::MAX, "ffffffff0f")]
        {
            assert_eq!(hex::encode(VarUint32(v).packed()), hex, "{v}");
            assert_eq!(VarUint32::unpack_all(&hex::decode(hex).expect("hex")), Ok(VarUint32(v)));
        }
        assert_eq!(VarUint32::unpack_all(&[0xff, 0xff, 0xff, 0xff, 0x1f]), Err(UnpackError::BadVarint));
        assert_eq!(VarUint32::unpack_all(&[0x80]), Err(UnpackError::Eof));
    }

    #[test]
    fn a_hostile_length_does_not_allocate() {
        // A count of 2^32-1 items with 3 bytes behind it: refused before any allocation.
        assert_eq!(Vec::<u64>::unpack_all(&[0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]), Err(UnpackError::Eof));
        assert_eq!(String::unpack_all(&[0x05, b'a']), Err(UnpackError::Eof));
        assert_eq!(u16::unpack_all(&[1, 0, 0]), Err(UnpackError::Trailing(1)));
    }
}
