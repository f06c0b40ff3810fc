//! Compiling a policy set: the schema, every policy with its annotations,
//! strict validation (every problem named with file and line), and one
//! slice of policies per action, so evaluation cost does not grow with
//! policies for other actions.

use std::collections::HashMap;
use std::str::FromStr;

use cedar_policy::{
    ActionConstraint, Authorizer, EntityId, EntityTypeName, EntityUid, Policy, PolicyId, PolicySet,
    Schema, SchemaFragment, ValidationMode, Validator,
};
use gatehouse_core::canonical;
use miette::Diagnostic;

use crate::annotations::{self, PolicyMeta};
use crate::engine::{Engine, EngineOptions, Slice};
use crate::schema_shape::{action_shapes, ActionShape};
use crate::{PolicyError, PolicyFile};

/// The policy every review slice gets: with it, the review set can only
/// deny through a matching forbid, which is exactly "send to review".
const REVIEW_BASELINE_ID: &str = "gatehouse::review-baseline";

/// Version of a policy set: SHA-256 over the canonical JSON of its files.
pub(crate) fn policy_version(files: &[PolicyFile]) -> String {
    let digest = canonical::canonical_sha256_hex(&files).unwrap_or_default();
    format!("pv_{}", &digest[..32])
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    // Offsets come from Cedar's diagnostics; never panic on a bad one.
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, col)
}

/// Renders a Cedar diagnostic as `file:line:col: message`.
fn located(file: &str, text: &str, diag: &dyn Diagnostic) -> String {
    let offset = diag
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|l| l.offset());
    let mut message = diag.to_string();
    if let Some(help) = diag.help() {
        message = format!("{message} ({help})");
    }
    match offset {
        Some(o) => {
            let (line, col) = line_col(text, o);
            format!("{file}:{line}:{col}: {message}")
        }
        None => format!("{file}: {message}"),
    }
}

fn invalid(message: impl ToString) -> PolicyError {
    PolicyError::Invalid(vec![message.to_string()])
}

/// The one schema file, parsed: the schema, its namespace, and each
/// action's shape.
struct ParsedSchema<'a> {
    file: &'a PolicyFile,
    schema: Schema,
    namespace: String,
    shapes: HashMap<String, ActionShape>,
}

fn read_schema(files: &[PolicyFile]) -> Result<ParsedSchema<'_>, PolicyError> {
    let schemas: Vec<&PolicyFile> = files
        .iter()
        .filter(|f| f.name.ends_with(".cedarschema"))
        .collect();
    let [file] = schemas[..] else {
        return Err(PolicyError::SchemaCount(schemas.len()));
    };
    let at = |e: &dyn Diagnostic| PolicyError::Invalid(vec![located(&file.name, &file.text, e)]);
    let (fragment, _) = SchemaFragment::from_cedarschema_str(&file.text).map_err(|e| at(&e))?;
    let json = fragment
        .to_json_value()
        .map_err(|e| invalid(format!("{}: {e}", file.name)))?;
    let (schema, _) = Schema::from_cedarschema_str(&file.text).map_err(|e| at(&e))?;
    let (namespace, shapes) = action_shapes(&json);
    Ok(ParsedSchema {
        file,
        schema,
        namespace,
        shapes,
    })
}

/// Every policy of every `.cedar` file, renamed to its id, with its
/// metadata; problems are collected, not returned at the first.
fn read_policies(
    policy_files: &[&PolicyFile],
    problems: &mut Vec<String>,
) -> (PolicySet, HashMap<String, PolicyMeta>) {
    let mut all = PolicySet::new();
    let mut meta = HashMap::new();
    for file in policy_files {
        let parsed = match PolicySet::from_str(&file.text) {
            Ok(p) => p,
            Err(errors) => {
                problems.extend(errors.iter().map(|e| located(&file.name, &file.text, e)));
                continue;
            }
        };
        if parsed.templates().next().is_some() {
            problems.push(format!("{}: policy templates are not supported", file.name));
        }
        for (n, policy) in parsed.policies().enumerate() {
            let (id, policy_meta) = annotations::read(policy, &file.name, n, problems);
            if meta.contains_key(&id) {
                problems.push(format!("{}: policy id {id:?} is used twice", file.name));
                continue;
            }
            if let Err(e) = all.add(policy.new_id(PolicyId::new(&id))) {
                problems.push(format!("{}: policy {id}: {e}", file.name));
                continue;
            }
            meta.insert(id, policy_meta);
        }
    }
    (all, meta)
}

/// Strict validation against the schema, each error located in its file.
fn validate(
    schema: &Schema,
    all: &PolicySet,
    meta: &HashMap<String, PolicyMeta>,
    policy_files: &[&PolicyFile],
    problems: &mut Vec<String>,
) {
    let result = Validator::new(schema.clone()).validate(all, ValidationMode::Strict);
    for err in result.validation_errors() {
        let id = err.policy_id().to_string();
        let file = meta.get(&id).map(|m| m.file.clone()).unwrap_or_default();
        let text = policy_files
            .iter()
            .find(|f| f.name == file)
            .map(|f| f.text.as_str())
            .unwrap_or("");
        problems.push(located(&file, text, err));
    }
}

fn action_uid(action_type: &str, name: &str) -> Result<EntityUid, PolicyError> {
    let ty = EntityTypeName::from_str(action_type).map_err(invalid)?;
    Ok(EntityUid::from_type_name_and_id(ty, EntityId::new(name)))
}

/// The decide and review sets for each action the schema declares.
fn slices(
    parsed: &ParsedSchema<'_>,
    all: &PolicySet,
    meta: &HashMap<String, PolicyMeta>,
) -> Result<HashMap<String, Slice>, PolicyError> {
    let action_type = if parsed.namespace.is_empty() {
        "Action".to_string()
    } else {
        format!("{}::Action", parsed.namespace)
    };
    let group_ids: Vec<EntityUid> = parsed.schema.action_groups().cloned().collect();
    let baseline = Policy::parse(
        Some(PolicyId::new(REVIEW_BASELINE_ID)),
        "permit(principal, action, resource);",
    )
    .map_err(invalid)?;
    let mut slices = HashMap::new();
    for (name, shape) in &parsed.shapes {
        let uid = action_uid(&action_type, name)?;
        let applies = |p: &Policy| match p.action_constraint() {
            ActionConstraint::Any => true,
            ActionConstraint::Eq(a) => a == uid,
            // Membership through action groups is resolved by Cedar at
            // evaluation; here a policy naming any group is kept.
            ActionConstraint::In(list) => list.iter().any(|a| *a == uid || group_ids.contains(a)),
        };
        let mut decide = PolicySet::new();
        let mut review = PolicySet::new();
        for p in all.policies().filter(|p| applies(p)) {
            let target = if meta[&p.id().to_string()].review_tier {
                &mut review
            } else {
                &mut decide
            };
            target.add(p.clone()).map_err(invalid)?;
        }
        review.add(baseline.clone()).map_err(invalid)?;
        let type_name = |t: &str| {
            EntityTypeName::from_str(t).map_err(|e| {
                invalid(format!(
                    "{}: action {name:?} needs a principal and a resource type: {e}",
                    parsed.file.name
                ))
            })
        };
        slices.insert(
            name.clone(),
            Slice {
                decide,
                review,
                action: uid,
                principal_type: type_name(&shape.principal_type)?,
                resource_type: type_name(&shape.resource_type)?,
            },
        );
    }
    Ok(slices)
}

impl Engine {
    /// Compiles a policy set: exactly one `.cedarschema` and at least one
    /// `.cedar` file. Every problem is reported, with file and line.
    pub fn compile(files: Vec<PolicyFile>, options: EngineOptions) -> Result<Self, PolicyError> {
        let parsed = read_schema(&files)?;
        let policy_files: Vec<&PolicyFile> = files
            .iter()
            .filter(|f| f.name.ends_with(".cedar"))
            .collect();
        if policy_files.is_empty() {
            return Err(PolicyError::NoPolicies(parsed.file.name.clone()));
        }
        let mut problems = Vec::new();
        let (all, meta) = read_policies(&policy_files, &mut problems);
        if problems.is_empty() {
            validate(&parsed.schema, &all, &meta, &policy_files, &mut problems);
        }
        if !problems.is_empty() {
            return Err(PolicyError::Invalid(problems));
        }
        let entities = parsed
            .schema
            .action_entities()
            .map_err(|e| invalid(format!("{}: {e}", parsed.file.name)))?;
        let slices = slices(&parsed, &all, &meta)?;
        let ParsedSchema { schema, shapes, .. } = parsed;
        Ok(Engine {
            version: policy_version(&files),
            files,
            schema,
            shapes,
            slices,
            meta,
            entities,
            authorizer: Authorizer::new(),
            options,
        })
    }
}
