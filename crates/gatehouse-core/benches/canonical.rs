//! Canonical JSON of a decision record, the largest value hashed on the
//! decide path: our RFC 8785 writer against canon-json, which it replaced.
//!
//!   cargo bench -p gatehouse-core --bench canonical

use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse_core::canonical::to_canonical_vec;
use serde::Serialize;
use serde_json::json;

fn record() -> serde_json::Value {
    json!({
        "decision_id": "dec_01JD5Z8W4Q9X2M7N3K6P0R1S2T",
        "request_id": "req_01JD5Z8W4Q9X2M7N3K6P0R1S2V",
        "workflow": "billing_discount_gate",
        "action": "apply_discount",
        "subject": "cus_1",
        "risk": "low",
        "summary": "Approve annual-plan discount exception before billing update?",
        "payload": {
            "customer_id": "cus_1", "invoice_or_subscription_id": "sub_1",
            "requested_action": "apply_discount", "discount_percent": 15,
            "margin_floor": "passed", "owner_rule": "verified"
        },
        "verdict": "allow", "status": "allow",
        "reasons": [{"policy_id": "base", "message": "allowed by base policy"}],
        "policy_version": "pv_3f2a9c", "created_at": "2026-11-21T12:00:00.123Z",
        "created_by": "key_01JD5Z8W4Q9X2M7N3K6P0R1S2W",
        "action_hash": "sha256:6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b",
        "context": {"risk": "low", "hour": 12, "weekday": "saturday"}
    })
}

fn canon_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, canon_json::CanonicalFormatter::new());
    value.serialize(&mut ser).unwrap();
    out
}

fn bench(c: &mut Criterion) {
    let v = record();
    assert_eq!(to_canonical_vec(&v).unwrap(), canon_json(&v));
    c.bench_function("record/gatehouse_jcs", |b| {
        b.iter(|| to_canonical_vec(&v).unwrap())
    });
    c.bench_function("record/canon_json", |b| b.iter(|| canon_json(&v)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
