//! The notifier: the channels of the application's outbox (see
//! `gatehouse_app::outbox`). Webhook subscriptions and request callbacks
//! are Standard Webhooks POSTs (`webhooks.rs`), signed in `signing.rs`;
//! the configuration file's notification sections are read and checked in
//! `settings.rs`. The outbox decides what is owed and when to try again;
//! this crate only speaks the wire formats.

pub mod settings;
pub mod signing;
pub mod webhooks;

use std::sync::Arc;

use gatehouse_app::outbox::{Channel, Outbox};

use crate::settings::NotifySettings;

/// The outbox with every channel the settings configure. Webhooks are
/// always on, because subscriptions can be made through the API at any
/// time; the others only when their section is present.
pub fn outbox(settings: &NotifySettings) -> Result<Outbox, String> {
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
    Ok(Outbox { channels, config })
}
