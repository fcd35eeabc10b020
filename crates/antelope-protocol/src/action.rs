//! Actions and the data of the `eosio` actions a failover needs (antelope-protocol.md §3, §4):
//! `regproducer`, `regproducer2`, `actfinkey`, `unregprod`, `updateauth`, `linkauth`.

use crate::keys::PublicKey;
use crate::name::Name;
use crate::pack::{Bytes, Pack, Reader, Unpack, UnpackError, VarUint32};

/// `actor@permission`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermissionLevel {
    pub actor: Name,
    pub permission: Name,
}

/// One action: the contract, the action's name, who authorises it, and its packed data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub account: Name,
    pub name: Name,
    pub authorization: Vec<PermissionLevel>,
    pub data: Vec<u8>,
}

impl Action {
    pub fn new(account: Name, name: Name, authorization: Vec<PermissionLevel>, data: &impl Pack) -> Self {
        Self { account, name, authorization, data: data.packed() }
    }
}

/// A public key on the wire: the variant index (0 = K1) and the 33 bytes.
impl Pack for PublicKey {
    fn pack(&self, out: &mut Vec<u8>) {
        out.push(0);
        out.extend_from_slice(&self.to_bytes());
    }
}

impl Unpack for PublicKey {
    fn unpack(r: &mut Reader<'_>) -> Result<Self, UnpackError> {
        match r.array::<1>()?[0] {
            0 => PublicKey::from_bytes(r.array::<33>()?).map_err(|e| UnpackError::Invalid(e.to_string())),
            t => Err(UnpackError::Invalid(format!("public key type {t} is not K1"))),
        }
    }
}

/// Implements Pack and Unpack field by field, in declaration order (the ABI's order).
macro_rules! wire_struct {
    ($t:ident { $($f:ident),* $(,)? }) => {
        impl Pack for $t {
            fn pack(&self, out: &mut Vec<u8>) {
                $( self.$f.pack(out); )*
            }
        }
        impl Unpack for $t {
            fn unpack(r: &mut Reader<'_>) -> Result<Self, UnpackError> {
                Ok(Self { $( $f: Unpack::unpack(r)?, )* })
            }
        }
    };
}

wire_struct!(PermissionLevel { actor, permission });

impl Pack for Action {
    fn pack(&self, out: &mut Vec<u8>) {
        self.account.pack(out);
        self.name.pack(out);
        self.authorization.pack(out);
        // Action data carries its own length (§0 item 6).
        Bytes(self.data.clone()).pack(out);
    }
}

impl Unpack for Action {
    fn unpack(r: &mut Reader<'_>) -> Result<Self, UnpackError> {
        Ok(Self {
            account: Name::unpack(r)?,
            name: Name::unpack(r)?,
            authorization: Vec::unpack(r)?,
            data: Bytes::unpack(r)?.0,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyWeight {
    pub key: PublicKey,
    pub weight: u16,
}
wire_struct!(KeyWeight { key, weight });

/// `block_signing_authority_v0`, always written as variant 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSigningAuthority {
    pub threshold: u32,
    pub keys: Vec<KeyWeight>,
}

impl Pack for BlockSigningAuthority {
    fn pack(&self, out: &mut Vec<u8>) {
        VarUint32(0).pack(out);
        self.threshold.pack(out);
        self.keys.pack(out);
    }
}

impl Unpack for BlockSigningAuthority {
    fn unpack(r: &mut Reader<'_>) -> Result<Self, UnpackError> {
        match r.varuint32()? {
            0 => Ok(Self { threshold: u32::unpack(r)?, keys: Vec::unpack(r)? }),
            v => Err(UnpackError::Invalid(format!("block signing authority variant {v} is unknown"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegProducer {
    pub producer: Name,
    pub producer_key: PublicKey,
    pub url: String,
    pub location: u16,
}
wire_struct!(RegProducer { producer, producer_key, url, location });

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegProducer2 {
    pub producer: Name,
    pub producer_authority: BlockSigningAuthority,
    pub url: String,
    pub location: u16,
}
wire_struct!(RegProducer2 { producer, producer_authority, url, location });

/// The finalizer key travels as its `PUB_BLS_…` text, not as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActFinKey {
    pub finalizer_name: Name,
    pub finalizer_key: String,
}
wire_struct!(ActFinKey { finalizer_name, finalizer_key });

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnregProd {
    pub producer: Name,
}
wire_struct!(UnregProd { producer });

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionLevelWeight {
    pub permission: PermissionLevel,
    pub weight: u16,
}
wire_struct!(PermissionLevelWeight { permission, weight });

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitWeight {
    pub wait_sec: u32,
    pub weight: u16,
}
wire_struct!(WaitWeight { wait_sec, weight });

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    pub threshold: u32,
    pub keys: Vec<KeyWeight>,
    pub accounts: Vec<PermissionLevelWeight>,
    pub waits: Vec<WaitWeight>,
}
wire_struct!(Authority { threshold, keys, accounts, waits });

/// `authorized_by` is a binary extension: absent, it adds no byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateAuth {
    pub account: Name,
    pub permission: Name,
    pub parent: Name,
    pub auth: Authority,
    pub authorized_by: Option<Name>,
}
wire_struct!(UpdateAuth { account, permission, parent, auth, authorized_by });

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkAuth {
    pub account: Name,
    pub code: Name,
    pub type_: Name,
    pub requirement: Name,
    pub authorized_by: Option<Name>,
}
wire_struct!(LinkAuth { account, code, type_, requirement, authorized_by });
