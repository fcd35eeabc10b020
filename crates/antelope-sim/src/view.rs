//! What one endpoint sees of the chain: the live chain, a view some blocks behind (`Fault::Lagging`), or a
//! minority fork (`Fault::Fork`). A stale endpoint reads a frozen copy of the chain through `View::Live`.
//!
//! The minority fork shares everything up to the moment it was set; after that it has the real chain's blocks
//! except the watched producer's (its slots are gaps there), renumbered and with other ids, and its LIB stays
//! where it was. It is built lazily from the real chain's history when the endpoint is read. Schedule, table
//! rows and accounts are the live chain's in every view (only blocks, head and LIB differ).

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use crate::chain::{BlockRecord, Chain};

/// A minority fork's own blocks.
#[derive(Debug, Clone)]
pub struct ForkState {
    /// The last block shared with the real chain.
    base: BlockRecord,
    lib: BlockRecord,
    blocks: Vec<BlockRecord>,
    /// The last real block considered.
    last_real: u32,
    salt: u64,
    /// Transactions pushed to this endpoint (answered as accepted, never relayed).
    pub pushed: Vec<[u8; 32]>,
}

impl ForkState {
    pub fn new(chain: &Chain, salt: u64) -> Self {
        let base = chain.head().clone();
        let lib = chain.block(chain.lib_num()).cloned().unwrap_or_else(|| base.clone());
        Self { last_real: base.num, base, lib, blocks: Vec::new(), salt, pushed: Vec::new() }
    }

    /// Take in the real blocks made since the last read.
    pub fn catch_up(&mut self, chain: &Chain) {
        let watched = chain.watched();
        let new: Vec<BlockRecord> = chain.blocks_after(self.last_real).cloned().collect();
        for real in new {
            self.last_real = real.num;
            if real.producer == watched {
                continue;
            }
            let prev = self.head().clone();
            let num = prev.num + 1;
            let mut rng = StdRng::seed_from_u64(self.salt ^ u64::from(real.num).rotate_left(17));
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&num.to_be_bytes());
            rng.fill_bytes(&mut id[4..]);
            self.blocks.push(BlockRecord { num, id, previous: prev.id, txids: Vec::new(), ..real });
        }
    }

    pub fn head(&self) -> &BlockRecord {
        self.blocks.last().unwrap_or(&self.base)
    }

    fn block<'a>(&'a self, chain: &'a Chain, num: u32) -> Option<&'a BlockRecord> {
        if num <= self.base.num {
            return chain.block(num);
        }
        self.blocks.get((num - self.base.num - 1) as usize)
    }

    /// The TaPoS ring as this fork has it.
    fn ring_id(&self, chain: &Chain, ref_block_num: u16) -> Option<[u8; 32]> {
        if let Some(b) = self.blocks.iter().rev().find(|b| (b.num & 0xffff) as u16 == ref_block_num) {
            return Some(b.id);
        }
        // Shared history: the real ring, as long as it names a block at or before the fork point.
        let id = chain.ring_id(ref_block_num)?;
        let num = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
        (num <= self.base.num).then(|| chain.block(num).map(|b| b.id)).flatten()
    }
}

/// One endpoint's reading of the chain.
#[derive(Clone, Copy)]
pub enum View<'a> {
    Live(&'a Chain),
    Lagging(&'a Chain, u32),
    Fork(&'a Chain, &'a ForkState),
}

impl<'a> View<'a> {
    pub fn chain(&self) -> &'a Chain {
        match self {
            View::Live(c) | View::Lagging(c, _) | View::Fork(c, _) => c,
        }
    }

    pub fn head(&self) -> &'a BlockRecord {
        match *self {
            View::Live(c) => c.head(),
            View::Lagging(c, n) => {
                let want = c.head().num.saturating_sub(n);
                c.block(want).or_else(|| c.blocks_after(0).next()).unwrap_or(c.head())
            }
            View::Fork(_, f) => f.head(),
        }
    }

    pub fn lib(&self) -> &'a BlockRecord {
        match *self {
            View::Live(c) => c.block(c.lib_num()).unwrap_or(c.head()),
            View::Lagging(c, _) => {
                let want = self.head().num.saturating_sub(c.params().lib_lag).min(c.lib_num());
                c.block(want).unwrap_or(self.head())
            }
            View::Fork(_, f) => &f.lib,
        }
    }

    /// A block at or below this view's head.
    pub fn block(&self, num: u32) -> Option<&'a BlockRecord> {
        if num > self.head().num {
            return None;
        }
        match *self {
            View::Live(c) | View::Lagging(c, _) => c.block(num),
            View::Fork(c, f) => f.block(c, num),
        }
    }

    /// The id TaPoS `ref_block_num` names in this view.
    pub fn ring_id(&self, ref_block_num: u16) -> Option<[u8; 32]> {
        match *self {
            View::Live(c) | View::Lagging(c, _) => c.ring_id(ref_block_num),
            View::Fork(c, f) => f.ring_id(c, ref_block_num),
        }
    }
}
