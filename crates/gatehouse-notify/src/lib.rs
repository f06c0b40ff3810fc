//! The notifier: the channels of the application's outbox (see
//! `gatehouse_app::outbox`). Webhook subscriptions and request callbacks
//! are Standard Webhooks POSTs (`webhooks.rs`), signed in `signing.rs`;
//! the configuration file's notification sections are read and checked in
//! `settings.rs`. The outbox decides what is owed and when to try again;
//! this crate only speaks the wire formats.

pub mod email;
pub mod settings;
pub mod signing;
pub mod slack;
pub mod slack_http;
pub mod webhooks;

use std::sync::Arc;

use gatehouse_app::outbox::{Channel, Outbox};

use crate::settings::NotifySettings;

/// The outbox's channels and the routes that answer Slack.
pub struct Notifier {
    pub outbox: Outbox,
    slack: Option<Arc<slack::Slack>>,
}

impl Notifier {
    /// The endpoints the notifier answers (Slack's interactions), to merge
    /// into the server's routes; none without Slack.
    pub fn routes(&self, app: Arc<gatehouse_app::App>) -> axum::Router {
        match &self.slack {
            Some(slack) => slack_http::router(app, slack.clone()),
            None => axum::Router::new(),
        }
    }
}

/// The outbox with every channel the settings configure. Webhooks are
/// always on, because subscriptions can be made through the API at any
/// time; the others only when their section is present.
pub fn build(settings: &NotifySettings, public_url: Option<&str>) -> Result<Notifier, String> {
    let config = settings.outbox.config();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.attempt_timeout)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let mut channels: Vec<Arc<dyn Channel>> = vec![Arc::new(webhooks::WebhookChannel::new(
        client.clone(),
        &settings.webhooks,
    ))];
    if !settings.callbacks.allow.is_empty() {
        if settings.callbacks.secret.is_none() && settings.callbacks.key_secrets.is_empty() {
            return Err(
                "[callbacks] allow is set but no secret signs the callbacks: set [callbacks] secret"
                    .into(),
            );
        }
        channels.push(Arc::new(webhooks::CallbackChannel::new(
            &settings.callbacks,
            config.attempt_timeout,
        )?));
    }
    if settings.slack.is_some() && public_url.is_none() {
        return Err(
            "[slack] needs public_url: its messages link to the console (set public_url or --public-url)"
                .into(),
        );
    }
    let slack = settings
        .slack
        .as_ref()
        .map(|s| Arc::new(slack::Slack::new(s, &settings.groups, client.clone())));
    if let Some(slack) = &slack {
        channels.push(Arc::new(slack::SlackChannel(slack.clone())));
    }
    if let Some(smtp) = &settings.smtp {
        channels.push(Arc::new(email::EmailChannel::new(
            smtp,
            &settings.groups,
            public_url,
            config.attempt_timeout,
        )?));
    }
    Ok(Notifier {
        outbox: Outbox::new(channels, config),
        slack,
    })
}
