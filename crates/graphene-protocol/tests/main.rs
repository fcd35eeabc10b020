//! Integration tests of `graphene_protocol`, one binary:
//! the vectors produced by hived's own code, the annotated examples of protocol.md, and property tests.

/// Every case of `tests/vectors/hive-steem-protocol.json` (hived compiled to WASM, cross-checked with dhive,
/// dsteem, steem-js and hive-tx; see `tests/vectors/README.md`).
mod vectors;

/// The worked examples in protocol.md §3.2, §3.3, §4.2 and §5.7, through the JSON path.
mod examples;

/// proptest round trips: key text ⇄ bytes, JSON ⇄ struct ⇄ bytes, signatures over random digests.
mod roundtrip;
