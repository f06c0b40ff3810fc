//! Webhook subscriptions and request callbacks: Standard Webhooks POSTs.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use gatehouse_app::callbacks::CallbackAllowlist;
use gatehouse_app::notice::NoticeData;
use gatehouse_app::outbox::{Channel, OutboxEvent, Owed, Sent};
use gatehouse_app::App;
use gatehouse_store::outbox::Delivery;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::settings::{CallbackSettings, WebhookSecret, WebhookSettings};
use crate::signing;

/// Posts a signed Standard Webhooks message; 2xx is delivered, anything
/// else (including a redirect, which is never followed) is a failure.
pub async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    key: &[u8],
    id: &str,
    body: String,
) -> Sent {
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = signing::standard_webhooks(key, id, timestamp, body.as_bytes());
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("Gatehouse/", env!("CARGO_PKG_VERSION")),
        )
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Sent::Delivered {
            code: Some(r.status().as_u16()),
        },
        Ok(r) => Sent::Failed {
            code: Some(r.status().as_u16()),
            error: format!("the receiver answered {}", r.status()),
            permanent: false,
        },
        Err(e) => Sent::Failed {
            code: None,
            error: describe(&e),
            permanent: false,
        },
    }
}

/// A transport error in one line, with its causes (reqwest's own message
/// is only "error sending request").
pub fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A subscription: from the configuration file or the admin API.
struct Subscription {
    url: String,
    key: Vec<u8>,
    events: Vec<String>,
}

/// `[[webhooks]]` and the subscriptions made through the API.
pub struct WebhookChannel {
    client: reqwest::Client,
    /// Configured subscriptions by target name (`config-N` or their name).
    configured: Vec<(String, Subscription)>,
}

impl WebhookChannel {
    pub fn new(client: reqwest::Client, settings: &[WebhookSettings]) -> WebhookChannel {
        let configured = settings
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let name = w
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("config-{}", i + 1));
                (
                    name,
                    Subscription {
                        url: w.url.0.to_string(),
                        key: w.secret.key(),
                        events: w.events.clone(),
                    },
                )
            })
            .collect();
        WebhookChannel { client, configured }
    }

    /// The subscription a delivery's target names, as it is now.
    async fn find(&self, app: &App, target: &str) -> Option<Subscription> {
        if let Some((_, s)) = self.configured.iter().find(|(n, _)| n == target) {
            return Some(Subscription {
                url: s.url.clone(),
                key: s.key.clone(),
                events: s.events.clone(),
            });
        }
        let stored = app.stored_webhooks().await.ok()?;
        let w = stored.iter().find(|w| w.id == target)?;
        Some(Subscription {
            url: w.url.clone(),
            key: signing::secret_key(&w.secret).ok()?,
            events: w.events.clone(),
        })
    }
}

#[async_trait]
impl Channel for WebhookChannel {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn wants(&self, app: &App, event_type: &str) -> bool {
        self.configured
            .iter()
            .any(|(_, s)| s.events.iter().any(|e| e == event_type))
            || app.stored_webhooks().await.is_ok_and(|hooks| {
                hooks
                    .iter()
                    .any(|w| w.events.iter().any(|e| e == event_type))
            })
    }

    async fn owed(&self, app: &App, ev: &OutboxEvent<'_>) -> Vec<Owed> {
        let data = NoticeData::new(
            ev.decision,
            ev.event,
            ev.log_index,
            app.config().public_url.as_deref(),
        );
        let body = data.envelope(ev.event_type, ev.at);
        let mut owed: Vec<Owed> = self
            .configured
            .iter()
            .filter(|(_, s)| s.events.iter().any(|e| e == ev.event_type))
            .map(|(name, _)| Owed {
                target: name.clone(),
                payload: body.clone(),
            })
            .collect();
        if let Ok(stored) = app.stored_webhooks().await {
            owed.extend(
                stored
                    .iter()
                    .filter(|w| w.events.iter().any(|e| e == ev.event_type))
                    .map(|w| Owed {
                        target: w.id.clone(),
                        payload: body.clone(),
                    }),
            );
        }
        owed
    }

    async fn send(&self, app: &App, d: &Delivery) -> Sent {
        let Some(sub) = self.find(app, &d.new.target).await else {
            return Sent::Failed {
                code: None,
                error: format!("the subscription {} no longer exists", d.new.target),
                permanent: true,
            };
        };
        post_signed(
            &self.client,
            &sub.url,
            &sub.key,
            &d.new.id,
            d.new.payload.clone(),
        )
        .await
    }
}

/// Per-request `callback_url`s: the resolution, signed with the asking
/// key's secret or the global one, sent only where the allowlist allows.
pub struct CallbackChannel {
    client: reqwest::Client,
    allow: Arc<CallbackAllowlist>,
    secret: Option<WebhookSecret>,
    key_secrets: std::collections::BTreeMap<String, WebhookSecret>,
}

impl CallbackChannel {
    pub fn new(
        settings: &CallbackSettings,
        timeout: std::time::Duration,
    ) -> Result<CallbackChannel, String> {
        let allow = Arc::new(CallbackAllowlist::parse(&settings.allow)?);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve names itself, past the address check.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                allow: allow.clone(),
            }))
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the callback client: {e}"))?;
        Ok(CallbackChannel {
            client,
            allow,
            secret: settings.secret.clone(),
            key_secrets: settings.key_secrets.clone(),
        })
    }
}

#[async_trait]
impl Channel for CallbackChannel {
    fn name(&self) -> &'static str {
        "callback"
    }

    async fn wants(&self, _app: &App, event_type: &str) -> bool {
        event_type == "decision.resolved" && !self.allow.is_empty()
    }

    async fn owed(&self, app: &App, ev: &OutboxEvent<'_>) -> Vec<Owed> {
        let Some(url) = &ev.decision.request.callback_url else {
            return Vec::new();
        };
        let data = NoticeData::new(
            ev.decision,
            ev.event,
            ev.log_index,
            app.config().public_url.as_deref(),
        );
        // The key's name is fixed now, so a later rename cannot move the
        // callback to another secret.
        let key_name = app
            .key_name(&ev.decision.created_by)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        vec![Owed {
            target: url.clone(),
            payload: format!(
                "{{\"key\":{},\"body\":{}}}",
                serde_json::Value::String(key_name),
                data.envelope(ev.event_type, ev.at)
            ),
        }]
    }

    async fn send(&self, _app: &App, d: &Delivery) -> Sent {
        // The allowlist may have changed since the request was made.
        if let Err(e) = self.allow.check_url(&d.new.target) {
            return Sent::Failed {
                code: None,
                error: e,
                permanent: true,
            };
        }
        let Ok(stored) = serde_json::from_str::<serde_json::Value>(&d.new.payload) else {
            return Sent::Failed {
                code: None,
                error: "unreadable delivery".into(),
                permanent: true,
            };
        };
        let key_name = stored["key"].as_str().unwrap_or_default();
        let Some(secret) = self.key_secrets.get(key_name).or(self.secret.as_ref()) else {
            return Sent::Failed {
                code: None,
                error: "no callback secret is configured for this key".into(),
                permanent: true,
            };
        };
        let body = stored["body"].to_string();
        match post_signed(&self.client, &d.new.target, &secret.key(), &d.new.id, body).await {
            // Refused by the address check: trying again cannot help.
            Sent::Failed {
                code: None, error, ..
            } if error.contains(REFUSED) => Sent::Failed {
                code: None,
                error,
                permanent: true,
            },
            other => other,
        }
    }
}

const REFUSED: &str = "resolves only to addresses callbacks may not reach";

/// Resolves names for callbacks and drops every address the allowlist
/// does not let a callback reach, so a name cannot point a callback into
/// the operator's networks (DNS rebinding included: the addresses checked
/// are the addresses connected to).
struct GuardedResolver {
    allow: Arc<CallbackAllowlist>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allow.address_allowed(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(format!("{host} {REFUSED}").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}
