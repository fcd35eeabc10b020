//! The node agent (`witness-trap agent`, issue 17): a small server beside a producer's node that takes
//! signed requests from the trap and performs one local action — on Antelope, nodeos's `producer_api`
//! pause, resume, paused and head; on Solana, the validator's admin socket: identity, demote and promote —
//! so that detection stays off-host and the action stays on the host.
//!
//! | module | job |
//! | --- | --- |
//! | [`keys`] | the Ed25519 keys' text forms: `ed25519:<base64>` (public), `ed25519-secret:<base64>` (the trap's secret) |
//! | [`request`] | the signed request and every check the agent makes (signature, trusted key, node, expiry, replay) |
//! | [`server`] | the HTTP(S) server: hyper, rustls (ring), one action at a time, JSON answers |
//! | [`backend`] | the [`backend::Backend`] trait, its errors, and nodeos's `producer_api` over TCP or a Unix socket |
//! | [`solana_admin`] | a Solana validator's admin socket (`<ledger>/admin.rpc`): `contactInfo`, `setIdentity`, tower files |
//! | [`client`] | the trap's side: sign, send, read the answer into typed errors |
//!
//! # The request scheme (version 1)
//!
//! One request is one HTTP `POST /v1/agent` with:
//!
//! * **body**: a JSON object with exactly the fields `action`, `node` (the agent's `AGENT_NODE_NAME`),
//!   `nonce` (32 lower-case hex characters: 16 random bytes) and `expires_at` (Unix time in milliseconds,
//!   an integer), and for `promote` only the optional `tower` (the standard base64, padded, of the staked
//!   identity's tower file, at most 8192 bytes decoded); at most 16384 bytes; no other field. The actions:
//!   * Antelope (`AGENT_ACTION=antelope-producer-api`): `"pause"`, `"resume"`, `"paused"`, and `"head"`
//!     (the node's local head block, from its `get_info`);
//!   * Solana (`AGENT_ACTION=solana-admin`): `"identity"` (the validator's identity public key),
//!     `"demote"` (switch to the junk identity) and `"promote"` (switch to the staked identity, requiring
//!     the tower when the request carries one).
//!
//!   An action the configured backend does not perform is refused after every check
//!   (`unsupported_action`, 400), having changed nothing.
//! * **`X-Witness-Trap-Key`**: the signer's public key, `ed25519:` followed by the standard base64 (with
//!   padding) of its 32 bytes — the text `key new --kind agent` prints and `AGENT_TRUSTED_KEYS` lists.
//! * **`X-Witness-Trap-Signature`**: the standard base64 (with padding) of the 64-byte Ed25519 signature
//!   (RFC 8032, pure Ed25519, no prehash, no context) of the **body bytes exactly as sent**. The agent
//!   verifies the bytes it received, never a re-serialization, with strict verification
//!   (`verify_strict`: non-canonical and small-order signatures and keys are refused).
//!
//! The agent checks, in this order, and refuses at the first failure with a 4xx (503 for a full nonce
//! memory) and `{"ok":false,"error":"<code>","message":"…"}`, having changed nothing:
//! body size (`too_large`) → both headers present (`unsigned`) → key header parses (`bad_key`) → key in
//! `AGENT_TRUSTED_KEYS` (`untrusted_key`) → signature decodes (`bad_signature_encoding`) and verifies
//! (`bad_signature`) → body is the JSON above, a `tower` only on a promote and within its bound (`malformed`) → `node` is this agent's (`wrong_node`) →
//! `expires_at` is after now (`expired`) and at most 30 s after now (`too_far_ahead`) → the nonce has not
//! been seen before its expiry (`replay`). No part of the body is parsed before its signature verifies.
//!
//! Nonces are remembered until their request's `expires_at` (so at most 30 s), at most 4096 at once; when
//! the memory is full of live nonces the agent refuses (`nonce_memory_full`, 503) rather than forget one,
//! since a forgotten live nonce could be replayed. A request replayed after its expiry is refused as
//! `expired`. Clocks: the trap and the agent must agree to within the validity (10 s by default); run NTP.
//!
//! A done action is answered 200 with `{"ok":true,"node":…,"action":…,"paused":…,"head":…,"identity":…,
//! "tower":…}`, each of the last four `null` unless the action reports it: `paused` for paused, `head` for
//! head, `identity` (base58) for identity, demote and promote, `tower` (base64) for a demote that found
//! the staked identity's tower file. A failed action is a 5xx with the node's code (`nodeos_…`,
//! `validator_…`, `identity_mismatch`), see [`server`].
//!
//! What the scheme does not do: sign the agent's answers. Over plain HTTP a machine on the path can
//! forge an answer (say `"paused": true`) though never a request; use TLS (`AGENT_TLS_CERT_FILE`,
//! `AGENT_TLS_KEY_FILE`) wherever the path between trap and agent is not yours.

pub mod backend;
pub mod client;
pub mod keys;
pub mod request;
pub mod server;
pub mod solana_admin;

pub use backend::{AntelopeProducerApi, Backend, BackendError, Performed, ProducerApi};
pub use client::{AgentClient, ClientError, ClientOptions, Demoted, Done};
pub use keys::{AgentPublicKey, AgentSigningKey};
pub use request::{Action, Refusal, Request, SignedRequest, Verifier};
pub use server::{serve, Agent, AgentError};
pub use solana_admin::SolanaAdmin;
