//! The OpenAPI 3.1 document, generated from the API types
//! (`gatehouse-api`) and the routes' annotations. `/openapi.json` serves
//! it; `gatehouse openapi` prints it; `openapi/gatehouse.json` in the
//! repository is a copy a test keeps current.

use std::sync::OnceLock;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse",
        description = "A self-hosted decision gate for AI agents and automation: ask before a \
                       side effect, get allow, reject or pending_review from versioned Cedar \
                       policies, run only on allow or approved, prove it with a signed approval \
                       token, and report what ran. Every error is `{\"error\": {\"code\", \
                       \"message\"}}`; a failure never approves.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(
        gatehouse_api::ErrorBody,
        gatehouse_api::ErrorDetail,
        gatehouse_api::queries::PoliciesParam
    )),
    modifiers(&Security),
    tags(
        (name = "gate", description = "The Gate API: requests, reads, long-polls, reviews, task events"),
        (name = "decide", description = "The Decide API: Decision Records v1"),
        (name = "executions", description = "Execution receipts and outcomes"),
        (name = "tokens", description = "Signed approval tokens"),
        (name = "evidence", description = "Replay, verification and Decision Packets"),
        (name = "log", description = "The transparency log"),
        (name = "keys", description = "API keys"),
        (name = "users", description = "People and their groups"),
        (name = "notifications", description = "Webhook subscriptions and the deliveries of the outbox"),
        (name = "hooks", description = "Private hooks for no-code tools: ask with a hook secret instead of an API key, get a route instruction"),
        (name = "service", description = "Health, readiness, this document"),
    )
)]
struct Base;

/// API keys go in `Authorization: Bearer …` or `x-api-key`.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key: gh_<id>_<secret>"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "An API key: gh_<id>_<secret>",
            ))),
        );
    }
}

/// The base document the routes add their paths to.
pub(crate) fn base() -> Document {
    let mut doc = Base::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// The whole document: the base plus every route, with each alias path
/// described as its original is (operation ids suffixed, so they stay
/// unique).
pub fn document() -> Document {
    let mut doc = crate::routes::documented().into_openapi();
    for (alias, original) in crate::routes::ALIASES {
        let Some(mut item) = doc.paths.paths.get(original).cloned() else {
            continue;
        };
        for op in [&mut item.get, &mut item.post].into_iter().flatten() {
            op.operation_id = op.operation_id.take().map(|id| format!("{id}_gate"));
        }
        doc.paths.paths.insert(alias.to_string(), item);
    }
    add_answers_of_every_route(&mut doc);
    doc
}

/// Answers the HTTP layer can give on any route, before or beside its
/// handler: every operation lists them, so a client (or a fuzzer) never
/// meets an undocumented status. A route's own, more specific description
/// of the same status is kept.
fn add_answers_of_every_route(doc: &mut Document) {
    use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
    let error = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                )
                .build(),
        )
    };
    let every = [
        ("400", "`bad_request`: the path or query string does not decode, or holds a NUL character (`%00`)"),
        ("414", "`uri_too_long`: the request target is over 8 KiB"),
        ("431", "`headers_too_large`: over 64 header fields, or over 32 KiB of them"),
        ("500", "`internal`: something failed; nothing was approved"),
        ("503", "`unavailable`: storage cannot be used right now, or `too_many_connections`; nothing was approved; see `Retry-After`"),
    ];
    let with_body = [
        (
            "408",
            "`request_timeout`: the body did not arrive in time; the connection is closed",
        ),
        (
            "413",
            "`payload_too_large`: the body is over the server's limit",
        ),
        (
            "415",
            "`unsupported_media_type`: not `application/json` in UTF-8 without a content encoding",
        ),
    ];
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let has_body = op.request_body.is_some();
            let answers = &mut op.responses.responses;
            let extra = every.iter().chain(with_body.iter().filter(|_| has_body));
            for (status, description) in extra {
                answers
                    .entry(status.to_string())
                    .or_insert_with(|| error(description));
            }
        }
    }
}

/// The document as pretty JSON, built once.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        serde_json::to_value(document())
            .and_then(|mut doc| {
                crate::openapi_rules::apply(&mut doc);
                serde_json::to_string_pretty(&doc)
            })
            .unwrap_or_else(|e| format!("{{\"error\": \"cannot render the document: {e}\"}}"))
    })
}
