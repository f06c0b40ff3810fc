//! Which actions a policy set rejects whatever their subject and arguments:
//! what the MCP proxy's `--hide-rejected` leaves out of a tool list. The
//! answer errs towards "not always": a tool is hidden only when a
//! decide-tier `forbid` without conditions names it for every subject, or
//! no `permit` could ever apply to it; anything that depends on a request's
//! content stays listed, and is decided when it is called.

use cedar_policy::{
    Effect, EntityId, EntityTypeName, EntityUid, Policy, PrincipalConstraint, ResourceConstraint,
};

use crate::engine::{Engine, UnknownActionMode, DEFAULT_ACTION};

impl Engine {
    /// Whether every request `principal` could make for `action` is
    /// rejected by this policy set.
    pub fn always_rejects(&self, principal: &str, action: &str) -> bool {
        let evaluated = if self.shapes.contains_key(action) {
            action
        } else if self.shapes.contains_key(DEFAULT_ACTION) {
            DEFAULT_ACTION
        } else {
            return self.options.unknown_action == UnknownActionMode::Reject;
        };
        let Some(slice) = self.slices.get(evaluated) else {
            return self.options.unknown_action == UnknownActionMode::Reject;
        };
        let agent = EntityUid::from_type_name_and_id(
            slice.principal_type.clone(),
            EntityId::new(principal),
        );
        let forbidden = slice.decide.policies().any(|p| {
            p.effect() == Effect::Forbid
                && !p.has_non_scope_constraint()
                && surely_principal(p, &agent)
                && every_resource(p, &slice.resource_type)
        });
        let permitted = slice
            .decide
            .policies()
            .any(|p| p.effect() == Effect::Permit && maybe_principal(p, &agent));
        forbidden || !permitted
    }
}

/// The policy's principal scope certainly includes `agent`.
fn surely_principal(p: &Policy, agent: &EntityUid) -> bool {
    match p.principal_constraint() {
        PrincipalConstraint::Any => true,
        PrincipalConstraint::Is(t) => &t == agent.type_name(),
        PrincipalConstraint::Eq(uid) | PrincipalConstraint::In(uid) => &uid == agent,
        PrincipalConstraint::IsIn(t, uid) => &t == agent.type_name() && &uid == agent,
    }
}

/// The policy's principal scope may include `agent` (an `in` may hold
/// through an entity hierarchy, so it is assumed to).
fn maybe_principal(p: &Policy, agent: &EntityUid) -> bool {
    match p.principal_constraint() {
        PrincipalConstraint::Any | PrincipalConstraint::In(_) => true,
        PrincipalConstraint::Is(t) | PrincipalConstraint::IsIn(t, _) => &t == agent.type_name(),
        PrincipalConstraint::Eq(uid) => &uid == agent,
    }
}

/// The policy's resource scope includes every subject.
fn every_resource(p: &Policy, resource_type: &EntityTypeName) -> bool {
    match p.resource_constraint() {
        ResourceConstraint::Any => true,
        ResourceConstraint::Is(t) => &t == resource_type,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::{Engine, EngineOptions, PolicyFile};

    fn engine(policies: &str) -> Engine {
        let schema = include_str!("../testdata/screen.cedarschema");
        Engine::compile(
            vec![
                PolicyFile::new("policies.cedar", policies),
                PolicyFile::new("schema.cedarschema", schema),
            ],
            EngineOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn only_unconditional_rejections_count() {
        let e = engine(
            r#"permit(principal, action, resource);
            forbid(principal, action == Action::"delete", resource);
            forbid(principal, action == Action::"write", resource) when { context.risk == "high" };
            forbid(principal == Agent::"intern", action == Action::"read", resource);
            @tier("review") forbid(principal, action == Action::"default", resource);"#,
        );
        assert!(e.always_rejects("bot", "delete"));
        // A condition on the request: decided per call.
        assert!(!e.always_rejects("bot", "write"));
        // A principal scope: only that agent.
        assert!(e.always_rejects("intern", "read"));
        assert!(!e.always_rejects("bot", "read"));
        // Review is not rejection; undeclared actions are evaluated as "default".
        assert!(!e.always_rejects("bot", "undeclared"));
    }

    #[test]
    fn no_permit_rejects_everything_it_covers() {
        let e = engine(r#"permit(principal, action == Action::"read", resource);"#);
        assert!(!e.always_rejects("bot", "read"));
        assert!(e.always_rejects("bot", "delete"));
        let e = engine(r#"permit(principal == Agent::"ops", action, resource);"#);
        assert!(e.always_rejects("bot", "read"));
        assert!(!e.always_rejects("ops", "read"));
    }
}
