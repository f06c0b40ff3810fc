//! The notification sections of the configuration file: `[outbox]`,
//! `[[webhooks]]`, `[callbacks]`, `[slack]`, `[smtp]` and `[groups.NAME]`.
//! Every value is checked while it is read, so an error names its line.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A secret: literal text, `env:NAME` (read from the environment) or
/// `file:PATH` (read from a file, one trailing newline dropped). Read once,
/// when the configuration is loaded; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Resolves `env:` and `file:` references.
    pub fn resolve(raw: &str) -> Result<Secret, String> {
        if let Some(name) = raw.strip_prefix("env:") {
            return std::env::var(name)
                .map(Secret)
                .map_err(|_| format!("the environment variable {name} is not set"));
        }
        if let Some(path) = raw.strip_prefix("file:") {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the secret file {path}: {e}"))?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            return Ok(Secret(text.to_string()));
        }
        Ok(Secret(raw.to_string()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        let raw = String::deserialize(d)?;
        Secret::resolve(&raw).map_err(serde::de::Error::custom)
    }
}

/// A Standard Webhooks secret: `whsec_` and base64 of at least 24 bytes
/// (the specification asks for 24 to 64).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct WebhookSecret(pub Secret);

impl WebhookSecret {
    pub fn key(&self) -> Vec<u8> {
        crate::signing::secret_key(self.0.expose()).unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for WebhookSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<WebhookSecret, D::Error> {
        let secret = Secret::deserialize(d)?;
        crate::signing::secret_key(secret.expose()).map_err(serde::de::Error::custom)?;
        Ok(WebhookSecret(secret))
    }
}

/// A duration written like 30s, 10m, 24h or 7d.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Span(pub Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        let raw = String::deserialize(d)?;
        gatehouse_policy::parse_duration(&raw)
            .map(Span)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{raw:?} is not a duration like 30s, 10m, 24h or 7d"
                ))
            })
    }
}

/// An absolute http(s) URL.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HttpUrl(pub url::Url);

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HttpUrl, D::Error> {
        let raw = String::deserialize(d)?;
        gatehouse_app::deliveries::check_webhook_url(&raw)
            .map(HttpUrl)
            .map_err(serde::de::Error::custom)
    }
}

/// `[outbox]`: how deliveries are retried.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxSettings {
    /// Attempts before a delivery is dead-lettered (default 12).
    pub max_attempts: u32,
    /// Age after which a delivery is dead-lettered (default 24h).
    pub max_age: Span,
    /// The wait after the first failure, doubled per attempt (default 5s).
    pub backoff: Span,
    /// The longest wait between attempts (default 10m).
    pub max_backoff: Span,
    /// The longest one attempt may take (default 10s).
    pub timeout: Span,
    /// Attempts in flight at once per replica (default 16).
    pub concurrency: usize,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        let d = gatehouse_app::outbox::OutboxConfig::default();
        OutboxSettings {
            max_attempts: d.max_attempts,
            max_age: Span(d.max_age),
            backoff: Span(d.backoff),
            max_backoff: Span(d.max_backoff),
            timeout: Span(d.attempt_timeout),
            concurrency: d.concurrency,
        }
    }
}

impl OutboxSettings {
    pub fn config(&self) -> gatehouse_app::outbox::OutboxConfig {
        gatehouse_app::outbox::OutboxConfig {
            max_attempts: self.max_attempts.max(1),
            max_age: self.max_age.0,
            backoff: self.backoff.0,
            max_backoff: self.max_backoff.0.max(self.backoff.0),
            attempt_timeout: self.timeout.0,
            concurrency: self.concurrency.max(1),
            ..Default::default()
        }
    }
}

/// One `[[webhooks]]` subscription.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// A name for the subscription, shown with its deliveries (default:
    /// `config-N`, by position in the file).
    #[serde(default)]
    pub name: Option<String>,
    pub url: HttpUrl,
    pub secret: WebhookSecret,
    #[serde(deserialize_with = "event_types")]
    pub events: Vec<String>,
}

fn event_types<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let events = Vec::<String>::deserialize(d)?;
    gatehouse_app::deliveries::check_event_types(&events).map_err(serde::de::Error::custom)?;
    Ok(events)
}

/// `[callbacks]`: which `callback_url`s requests may name, and the
/// secrets callbacks are signed with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbackSettings {
    /// Host names (`hooks.example.com`), subdomains (`*.example.com`),
    /// addresses and networks (`10.0.0.0/8`).
    #[serde(deserialize_with = "allowlist")]
    pub allow: Vec<String>,
    /// The Standard Webhooks secret for callbacks of keys without their own.
    pub secret: Option<WebhookSecret>,
    /// Secrets by API key name.
    pub key_secrets: BTreeMap<String, WebhookSecret>,
}

fn allowlist<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let entries = Vec::<String>::deserialize(d)?;
    gatehouse_app::callbacks::CallbackAllowlist::parse(&entries)
        .map_err(serde::de::Error::custom)?;
    Ok(entries)
}

/// `[slack]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSettings {
    /// The bot's token (`xoxb-…`), for chat.postMessage and chat.update.
    pub bot_token: Secret,
    /// The app's signing secret, to verify interaction requests.
    pub signing_secret: Secret,
    /// Slack's Web API (default https://slack.com/api).
    #[serde(default = "slack_api")]
    pub api_base: HttpUrl,
}

fn slack_api() -> HttpUrl {
    HttpUrl(url::Url::parse("https://slack.com/api").expect("a valid URL"))
}

/// `[smtp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// `smtps://host:465` (TLS), `smtp://host:587?tls=required`
    /// (STARTTLS) or `smtp://host:25` (plain, for a relay on loopback).
    pub url: Secret,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// The sender, e.g. `Gatehouse <gatehouse@example.com>`.
    pub from: String,
    /// How long a sign-in link in a mail works (default 24h).
    #[serde(default = "link_ttl")]
    pub link_ttl: Span,
}

fn link_ttl() -> Span {
    Span(Duration::from_secs(24 * 3600))
}

/// `[groups.NAME]`: where a group is notified.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupSettings {
    /// The Slack channel id (e.g. `C0123ABCD`) its requests are posted to.
    pub slack_channel: Option<String>,
    /// Addresses to mail instead of the members' own.
    pub emails: Vec<String>,
}

/// Every notification section of the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    pub outbox: OutboxSettings,
    pub webhooks: Vec<WebhookSettings>,
    pub callbacks: CallbackSettings,
    pub slack: Option<SlackSettings>,
    pub smtp: Option<SmtpSettings>,
    pub groups: BTreeMap<String, GroupSettings>,
}
