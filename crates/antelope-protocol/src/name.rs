//! Account, permission and action names: base-32 text packed into a u64 (antelope-protocol.md §2, §0 item 5).
//!
//! Only names that round-trip are accepted, as nodeos does ("Name not properly normalized"): upper case,
//! `6`–`9`, a trailing `.`, more than 13 characters or a 13th character past `j` are refused.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A name, as its u64.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Name(u64);

/// Why a text is not a name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("a name cannot be empty")]
    Empty,
    #[error("a name has at most 13 characters, this one has {0}")]
    TooLong(usize),
    #[error("{0:?} is not allowed in a name (only a-z, 1-5 and '.')")]
    BadChar(char),
    #[error("the name is not normalized (a trailing '.', or a 13th character past 'j')")]
    NotNormalized,
}

const CHARMAP: &[u8; 32] = b".12345abcdefghijklmnopqrstuvwxyz";

fn symbol(c: char) -> Option<u64> {
    match c {
        '.' => Some(0),
        '1'..='5' => Some(u64::from(c as u8 - b'1') + 1),
        'a'..='z' => Some(u64::from(c as u8 - b'a') + 6),
        _ => None,
    }
}

impl Name {
    /// Parses a name, strictly.
    pub fn new(text: &str) -> Result<Self, NameError> {
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        let n = text.chars().count();
        if n > 13 {
            return Err(NameError::TooLong(n));
        }
        let mut value = 0u64;
        for (i, c) in text.chars().enumerate() {
            let sym = symbol(c).ok_or(NameError::BadChar(c))?;
            if i < 12 {
                value |= (sym & 0x1f) << (64 - 5 * (i + 1));
            } else {
                value |= sym & 0x0f;
            }
        }
        let name = Self(value);
        if name.to_string() != text {
            return Err(NameError::NotNormalized);
        }
        Ok(name)
    }

    pub const fn from_u64(value: u64) -> Self {
        Self(value)
    }

    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [b'.'; 13];
        let mut tmp = self.0;
        for i in 0..13 {
            let (mask, shift) = if i == 0 { (0x0f, 4) } else { (0x1f, 5) };
            out[12 - i] = CHARMAP[(tmp & mask) as usize];
            tmp >>= shift;
        }
        let end = out.iter().rposition(|c| *c != b'.').map_or(0, |p| p + 1);
        // Every byte comes from CHARMAP: ASCII.
        f.write_str(std::str::from_utf8(&out[..end]).unwrap_or(""))
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

impl FromStr for Name {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(name: &str) -> String {
        hex::encode(Name::new(name).expect("valid").as_u64().to_le_bytes())
    }

    #[test]
    fn the_spec_examples_pack_as_documented() {
        // antelope-protocol.md §2 gives the wire (little-endian) order.
        for (name, hex) in [
            ("eosio", "0000000000ea3055"),
            ("alice", "0000000000855c34"),
            ("active", "00000000a8ed3232"),
            ("owner", "0000000080ab26a7"),
            ("failover", "000000576d1a9d59"),
            ("regproducer", "00ae423ad15b99ba"),
            ("regproducer2", "20ae423ad15b99ba"),
            ("actfinkey", "0000f00a4eb73232"),
            ("linkauth", "0000002d6b03a78b"),
        ] {
            assert_eq!(wire(name), hex, "{name}");
        }
    }

    #[test]
    fn names_that_do_not_round_trip_are_refused() {
        assert_eq!(Name::new("Alice"), Err(NameError::BadChar('A')));
        assert_eq!(Name::new("alice6"), Err(NameError::BadChar('6')));
        assert_eq!(Name::new("alice."), Err(NameError::NotNormalized));
        assert_eq!(Name::new("aaaaaaaaaaaaz"), Err(NameError::NotNormalized), "13th char past j");
        assert!(Name::new("aaaaaaaaaaaaj").is_ok());
        assert_eq!(Name::new("aaaaaaaaaaaaaa"), Err(NameError::TooLong(14)));
        assert_eq!(Name::new(""), Err(NameError::Empty));
        assert!(Name::new("baagld.ak").is_ok());
    }
}
