//! The binary encoding (`fc::raw::pack`, protocol.md §3.1): the [`Pack`] trait, the [`Sink`] it writes to,
//! and the primitives. Each wire type implements [`Pack`] in the file that defines it, writing its fields
//! in `FC_REFLECT` order; this file owns only integers, varints, strings, byte vectors, fixed arrays and
//! sorted maps. Also the inverse for the few values that hived itself unpacks from opaque bytes
//! (`witness_set_properties` prop values, §4.2): a bounds-checked [`Reader`].
//!
//! Model: rust-bitcoin's `consensus::encode::Encodable`, except that a value's bytes can depend on two
//! pieces of context — legacy vs HF26 asset symbols ([`PackMode`], §1.2) and mainnet vs testnet legacy
//! symbol names — which the sink carries so that one `pack` call needs no extra arguments.

use std::collections::BTreeMap;

use thiserror::Error;

use super::chain::ChainSpec;

/// Which binary form to produce (§1.4). Steem knows only `Legacy`; Hive accepts both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PackMode {
    /// Assets carry the 8-byte legacy symbol (`STEEM`, `SBD`, …).
    Legacy,
    /// Assets carry the 4-byte NAI `asset_num` (Hive `pack_type::hf26`).
    Hf26,
}

/// Where packed bytes go, together with the context that decides how assets pack.
#[derive(Clone, Debug)]
pub struct Sink {
    bytes: Vec<u8>,
    mode: PackMode,
    testnet: bool,
}

impl Sink {
    /// A sink for a mainnet build (legacy symbols `STEEM`/`SBD`).
    pub fn new(mode: PackMode) -> Self {
        Self { bytes: Vec::with_capacity(256), mode, testnet: false }
    }

    /// A sink whose legacy asset symbols follow `chain` (`TESTS`/`TBD` on testnet builds, §1.2).
    pub fn for_chain(chain: &ChainSpec, mode: PackMode) -> Self {
        Self { bytes: Vec::with_capacity(256), mode, testnet: chain.testnet }
    }

    /// Legacy or HF26 asset symbols.
    pub fn mode(&self) -> PackMode {
        self.mode
    }

    /// Whether legacy symbols are the testnet names.
    pub fn testnet(&self) -> bool {
        self.testnet
    }

    /// Appends raw bytes.
    pub fn put(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// An empty sink with the same context, for values that are packed and then embedded as a byte vector
    /// (`witness_set_properties` prop values).
    pub fn nested(&self) -> Sink {
        Sink { bytes: Vec::new(), mode: self.mode, testnet: self.testnet }
    }
}

/// A value with an `fc::raw` binary form.
pub trait Pack {
    /// Appends this value's bytes to `sink`.
    fn pack(&self, sink: &mut Sink);
}

/// Packs `value` alone for a mainnet build.
pub fn to_bytes<T: Pack + ?Sized>(value: &T, mode: PackMode) -> Vec<u8> {
    let mut sink = Sink::new(mode);
    value.pack(&mut sink);
    sink.into_bytes()
}

/// Packs `value` alone with `chain`'s legacy symbol names.
pub fn to_bytes_for<T: Pack + ?Sized>(value: &T, chain: &ChainSpec, mode: PackMode) -> Vec<u8> {
    let mut sink = Sink::for_chain(chain, mode);
    value.pack(&mut sink);
    sink.into_bytes()
}

/// `fc::unsigned_int`: unsigned LEB128, 7 bits per byte, high bit = more (§3.1). Counts, lengths, op ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Varint(pub u64);

impl Pack for Varint {
    fn pack(&self, sink: &mut Sink) {
        let mut v = self.0;
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                sink.put(&[byte]);
                return;
            }
            sink.put(&[byte | 0x80]);
        }
    }
}

/// Writes a length or count as a varint.
pub fn pack_len(len: usize, sink: &mut Sink) {
    Varint(len as u64).pack(sink);
}

macro_rules! pack_le {
    ($($t:ty),*) => {$(
        impl Pack for $t {
            fn pack(&self, sink: &mut Sink) {
                sink.put(&self.to_le_bytes());
            }
        }
    )*};
}
// fc packs fixed-width integers as their little-endian memory image (§3.1).
pack_le!(u8, u16, u32, u64, i8, i16, i32, i64);

impl Pack for bool {
    fn pack(&self, sink: &mut Sink) {
        sink.put(&[u8::from(*self)]);
    }
}

/// `std::string` / `account_name_type`: varint byte length, then the UTF-8 bytes.
impl Pack for str {
    fn pack(&self, sink: &mut Sink) {
        pack_len(self.len(), sink);
        sink.put(self.as_bytes());
    }
}

impl Pack for String {
    fn pack(&self, sink: &mut Sink) {
        self.as_str().pack(sink);
    }
}

/// `std::vector<T>`: varint count, then the items. For `u8` this is also `vector<char>` (bytes).
impl<T: Pack> Pack for [T] {
    fn pack(&self, sink: &mut Sink) {
        pack_len(self.len(), sink);
        for item in self {
            item.pack(sink);
        }
    }
}

impl<T: Pack> Pack for Vec<T> {
    fn pack(&self, sink: &mut Sink) {
        self.as_slice().pack(sink);
    }
}

/// Twist: a fixed-size byte array (`fc::array<char, N>`, public keys, signatures, chain ids) is written
/// raw, with no length prefix, unlike a `Vec<u8>`.
impl<const N: usize> Pack for [u8; N] {
    fn pack(&self, sink: &mut Sink) {
        sink.put(self);
    }
}

/// `flat_map<K, V>`: varint count, then key ‖ value pairs sorted by key. Twist: the order is the node's
/// `std::less<K>`; for `String` keys that is bytewise, exactly `BTreeMap<String, _>`'s order (§0 item 4).
impl<K: Pack, V: Pack> Pack for BTreeMap<K, V> {
    fn pack(&self, sink: &mut Sink) {
        pack_len(self.len(), sink);
        for (k, v) in self {
            k.pack(sink);
            v.pack(sink);
        }
    }
}

/// Why bytes could not be unpacked.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum UnpackError {
    /// Fewer bytes than the type needs.
    #[error("unexpected end of data: needed {needed} more bytes, {available} left")]
    UnexpectedEnd {
        /// Bytes the next read needed.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// Bytes left over after the value.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// A varint longer than 64 bits.
    #[error("varint too long")]
    VarintOverflow,
    /// A string that is not UTF-8.
    #[error("string is not valid utf-8")]
    NotUtf8,
}

/// A bounds-checked cursor over packed bytes. Only what prop validation needs.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], UnpackError> {
        if self.bytes.len() < n {
            return Err(UnpackError::UnexpectedEnd { needed: n, available: self.bytes.len() });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    /// Takes the next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], UnpackError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// The bytes not read yet, without consuming them.
    pub fn peek(&self) -> &'a [u8] {
        self.bytes
    }

    /// Reads a little-endian u16.
    pub fn u16(&mut self) -> Result<u16, UnpackError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian u32.
    pub fn u32(&mut self) -> Result<u32, UnpackError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian i32.
    pub fn i32(&mut self) -> Result<i32, UnpackError> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian i64.
    pub fn i64(&mut self) -> Result<i64, UnpackError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// Reads an LEB128 varint.
    pub fn varint(&mut self) -> Result<u64, UnpackError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let [byte] = self.array::<1>()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(UnpackError::VarintOverflow)
    }

    /// Reads a varint-prefixed UTF-8 string.
    pub fn string(&mut self) -> Result<String, UnpackError> {
        let len = self.varint()?;
        let len = usize::try_from(len)
            .map_err(|_| UnpackError::UnexpectedEnd { needed: usize::MAX, available: self.bytes.len() })?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| UnpackError::NotUtf8)
    }

    /// Fails unless every byte was read. hived's `unpack_from_vector` ignores leftovers; we are stricter
    /// because we only ever build these values ourselves.
    pub fn finish(self) -> Result<(), UnpackError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(UnpackError::TrailingBytes(self.bytes.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_of<T: Pack + ?Sized>(v: &T) -> String {
        hex::encode(to_bytes(v, PackMode::Legacy))
    }

    #[test]
    fn varint_boundaries() {
        for (v, expect) in [
            (0u64, "00"),
            (1, "01"),
            (127, "7f"),
            (128, "8001"),
            (300, "ac02"),
            (16383, "ff7f"),
            (16384, "808001"),
            (u64::from(u32::MAX), "ffffffff0f"),
        ] {
            assert_eq!(hex_of(&Varint(v)), expect, "varint {v}");
            let bytes = hex::decode(expect).unwrap();
            let mut r = Reader::new(&bytes);
            assert_eq!(r.varint().unwrap(), v);
            r.finish().unwrap();
        }
    }

    #[test]
    fn fixed_width_integers_are_little_endian() {
        assert_eq!(hex_of(&1234u16), "d204");
        assert_eq!(hex_of(&u16::MAX), "ffff");
        assert_eq!(hex_of(&0xcafe_babeu32), "bebafeca");
        assert_eq!(hex_of(&65536u32), "00000100");
        assert_eq!(hex_of(&-1i16), "ffff");
        assert_eq!(hex_of(&-2i32), "feffffff");
        assert_eq!(hex_of(&3000i64), "b80b000000000000");
        assert_eq!(hex_of(&-1i64), "ffffffffffffffff");
        assert_eq!(hex_of(&i64::MIN), "0000000000000080");
        assert_eq!(hex_of(&7u8), "07");
        assert_eq!(hex_of(&true), "01");
    }

    #[test]
    fn strings_and_bytes_are_length_prefixed() {
        assert_eq!(hex_of(""), "00");
        assert_eq!(hex_of("alice"), "05616c696365");
        // UTF-8 length is in bytes, not characters.
        assert_eq!(hex_of("é"), "02c3a9");
        let long = "a".repeat(128);
        assert!(hex_of(long.as_str()).starts_with("800161"));
        assert_eq!(hex_of(&vec![0xabu8, 0xcd]), "02abcd");
        assert_eq!(hex_of(&Vec::<u8>::new()), "00");
        assert_eq!(hex_of(&[0xabu8, 0xcd]), "abcd");
        assert_eq!(hex_of(&vec![1u16, 2]), "0201000200");
    }

    #[test]
    fn map_is_sorted_bytewise() {
        let mut m = BTreeMap::new();
        m.insert("new_signing_key".to_string(), vec![1u8]);
        m.insert("key".to_string(), vec![2u8]);
        m.insert("Z".to_string(), vec![]);
        assert_eq!(hex_of(&m), "03015a00036b657901020f6e65775f7369676e696e675f6b65790101");
    }

    #[test]
    fn reader_rejects_short_and_trailing_input() {
        assert_eq!(Reader::new(&[1, 2, 3]).u32(), Err(UnpackError::UnexpectedEnd { needed: 4, available: 3 }));
        let mut r = Reader::new(&[1, 0, 9]);
        assert_eq!(r.u16().unwrap(), 1);
        assert_eq!(r.finish(), Err(UnpackError::TrailingBytes(1)));
        assert_eq!(Reader::new(&[0xff; 11]).varint(), Err(UnpackError::VarintOverflow));
        assert_eq!(Reader::new(&[0x05, b'a']).string(), Err(UnpackError::UnexpectedEnd { needed: 5, available: 1 }));
        assert_eq!(Reader::new(&[0x01, 0xff]).string(), Err(UnpackError::NotUtf8));
    }
}
