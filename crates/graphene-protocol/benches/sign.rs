//! Serialize + sign + self-verify per transaction, the work the trap does at the moment it fires:
//! build the legacy digest, sign (fc-canonical loop), recover the key and compare (protocol.md §3.6).
//! Both operations: op 42 (no assets, one serialization) and op 11 (assets, Hive legacy digest).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use graphene_protocol::*;

fn transactions(signer: &PrivateKey) -> Vec<(&'static str, Transaction)> {
    let head = BlockId::from_hex("05e7bc5f3e319509113eb261bf995824a9efd567").expect("literal block id");
    let expiration: TimePointSec = "2025-09-02T10:35:30".parse().expect("literal time");
    let backup = PrivateKey::generate().public_key();
    let op42 = Operation::WitnessSetProperties(WitnessSetProperties::key_swap("alice", signer.public_key(), backup));
    let op11 = Operation::WitnessUpdate(WitnessUpdate {
        owner: "alice".into(),
        url: "https://example.com".into(),
        block_signing_key: backup,
        props: LegacyChainProperties {
            account_creation_fee: Asset::core(3000),
            maximum_block_size: 65536,
            interest_rate: 0,
        },
        fee: Asset::core(0),
    });
    vec![
        ("op42_witness_set_properties", Transaction::with_tapos(&head, expiration, vec![op42])),
        ("op11_witness_update", Transaction::with_tapos(&head, expiration, vec![op11])),
    ]
}

fn bench_sign(c: &mut Criterion) {
    let chain = ChainSpec::hive();
    let signer = PrivateKey::generate();
    for (name, tx) in transactions(&signer) {
        c.bench_function(&format!("serialize_sign_verify/{name}"), |b| {
            b.iter(|| {
                // sign_transaction validates, serializes, signs and self-checks by recovery.
                let signed = sign_transaction(black_box(&tx), &chain, &signer).expect("valid transaction");
                black_box(signed)
            })
        });
    }
    let digest = [7u8; 32];
    c.bench_function("sign_digest_only", |b| b.iter(|| black_box(sign_digest(black_box(&digest), &signer))));
    let sig = sign_digest(&digest, &signer);
    c.bench_function("recover_only", |b| b.iter(|| black_box(recover(black_box(&digest), &sig))));
}

criterion_group!(benches, bench_sign);
criterion_main!(benches);
