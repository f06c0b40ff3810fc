//! Policy evaluation cost per decision, with 1 policy and with 200 policies
//! that target other actions. Slicing by action should make them equal.
//!
//!   cargo bench -p gatehouse-policy --bench evaluate

use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse_core::ActionRequest;
use gatehouse_policy::{Clock, Engine, EngineOptions, PolicyFile};
use serde_json::json;

fn engine(other_actions: usize) -> Engine {
    let mut schema = String::from(
        "entity Agent; entity Subject;\n\
         action \"issue_refund\" appliesTo { principal: Agent, resource: Subject, \
         context: { risk: String, payload: { amount: Long } } };\n",
    );
    let mut policies = String::from(
        "@id(\"base\") permit(principal, action, resource);\n\
         @id(\"refund-review\") @tier(\"review\") forbid(principal, action == Action::\"issue_refund\", resource) \
         when { context.payload.amount > 10000 };\n",
    );
    for i in 0..other_actions {
        schema.push_str(&format!(
            "action \"other_{i}\" appliesTo {{ principal: Agent, resource: Subject, context: {{ risk: String, payload: {{ n: Long }} }} }};\n"
        ));
        policies.push_str(&format!(
            "@id(\"other-{i}\") forbid(principal, action == Action::\"other_{i}\", resource) when {{ context.payload.n > {i} }};\n"
        ));
    }
    let files = vec![
        PolicyFile {
            name: "p.cedar".into(),
            text: policies,
        },
        PolicyFile {
            name: "s.cedarschema".into(),
            text: schema,
        },
    ];
    Engine::compile(files, EngineOptions::default()).expect("valid bench policies")
}

fn bench(c: &mut Criterion) {
    let request: ActionRequest = serde_json::from_value(json!({
        "agent": "support", "action": "issue_refund", "subject": "cus_1", "risk": "high",
        "payload": {"amount": 50000, "currency": "usd"}, "task_id": "t"
    }))
    .unwrap();
    let clock = Clock {
        local_hour: 12,
        weekday: "monday",
    };
    for (label, others) in [
        ("2 policies", 0),
        ("202 policies (200 for other actions)", 200),
    ] {
        let engine = engine(others);
        assert_eq!(engine.policy_count(), 2 + others);
        c.bench_function(&format!("evaluate issue_refund, {label}"), |b| {
            b.iter(|| {
                engine
                    .evaluate(std::hint::black_box(&request), clock)
                    .unwrap()
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
