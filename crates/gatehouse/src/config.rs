//! The configuration file (`gatehouse serve --config FILE`, or
//! `GATEHOUSE_CONFIG`): TOML holding every `serve` flag by its long name
//! with underscores (`review_timeout = "24h"`), and the notification
//! sections. Flags and environment variables override the file: its values
//! become the flags' defaults. Every value is checked while it is read, so
//! an error names its line; `gatehouse config check FILE` does only that.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use gatehouse_notify::settings::{
    CallbackSettings, GroupSettings, HttpUrl, NotifySettings, OutboxSettings, Secret,
    SlackSettings, SmtpSettings, WebhookSettings,
};
use serde::{Deserialize, Deserializer};

/// Text checked by a rule while it is read, kept as written so it can
/// become a flag's default.
#[derive(Debug, Clone)]
pub struct Checked<const RULE: u8>(pub String);

const DURATION: u8 = 0;
const OFFSET: u8 = 1;
const LOG_FORMAT: u8 = 2;
const UNKNOWN_ACTION: u8 = 3;
const RELOAD: u8 = 4;

impl<'de, const RULE: u8> Deserialize<'de> for Checked<RULE> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        let ok = match RULE {
            DURATION => gatehouse_policy::parse_duration(&raw).is_some(),
            RELOAD => raw == "off" || gatehouse_policy::parse_duration(&raw).is_some(),
            OFFSET => {
                let format = time::macros::format_description!(
                    "[offset_hour sign:mandatory]:[offset_minute]"
                );
                time::UtcOffset::parse(&raw, &format).is_ok()
            }
            LOG_FORMAT => matches!(raw.as_str(), "text" | "json"),
            _ => matches!(raw.as_str(), "review" | "reject"),
        };
        if ok {
            return Ok(Checked(raw));
        }
        let expected = match RULE {
            DURATION => "a duration like 30s, 10m, 24h or 7d",
            RELOAD => "a duration like 10s, or off",
            OFFSET => "a UTC offset like +02:00",
            LOG_FORMAT => "text or json",
            _ => "review or reject",
        };
        Err(serde::de::Error::custom(format!(
            "{raw:?} is not {expected}"
        )))
    }
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    listen: Option<String>,
    data: Option<PathBuf>,
    database_url: Option<Secret>,
    log_key_file: Option<PathBuf>,
    token_key_file: Option<PathBuf>,
    log_origin: Option<String>,
    policies: Option<PathBuf>,
    unknown_action: Option<Checked<UNKNOWN_ACTION>>,
    review_timeout: Option<Checked<DURATION>>,
    rate_limit: Option<u32>,
    rate_burst: Option<u32>,
    body_limit: Option<usize>,
    header_timeout: Option<Checked<DURATION>>,
    body_timeout: Option<Checked<DURATION>>,
    max_connections: Option<u32>,
    max_waiters: Option<usize>,
    public_url: Option<HttpUrl>,
    session_idle: Option<Checked<DURATION>>,
    session_lifetime: Option<Checked<DURATION>>,
    sign_in_limit: Option<u32>,
    max_wait: Option<Checked<DURATION>>,
    read_connections: Option<u32>,
    token_audience: Option<String>,
    token_ttl: Option<Checked<DURATION>>,
    token_key_reload: Option<Checked<RELOAD>>,
    utc_offset: Option<Checked<OFFSET>>,
    metrics_listen: Option<String>,
    log_format: Option<Checked<LOG_FORMAT>>,

    #[serde(default)]
    outbox: OutboxSettings,
    #[serde(default)]
    webhooks: Vec<WebhookSettings>,
    #[serde(default)]
    callbacks: CallbackSettings,
    slack: Option<SlackSettings>,
    smtp: Option<SmtpSettings>,
    #[serde(default)]
    groups: std::collections::BTreeMap<String, GroupSettings>,
}

/// A loaded file: the flag defaults it sets and the notification settings.
pub struct Loaded {
    pub path: PathBuf,
    pub flags: Vec<(&'static str, String)>,
    pub notify: NotifySettings,
}

fn text(s: &Option<String>) -> Option<String> {
    s.clone()
}

fn path(p: &Option<PathBuf>) -> Option<String> {
    p.as_ref().map(|p| p.display().to_string())
}

fn checked<const R: u8>(c: &Option<Checked<R>>) -> Option<String> {
    c.as_ref().map(|c| c.0.clone())
}

fn num(n: Option<impl ToString>) -> Option<String> {
    n.map(|n| n.to_string())
}

impl FileConfig {
    /// Every flag the file sets, by its clap id (the field's name).
    fn flags(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("listen", text(&self.listen)),
            ("data", path(&self.data)),
            (
                "database_url",
                self.database_url.as_ref().map(|s| s.expose().to_string()),
            ),
            ("log_key_file", path(&self.log_key_file)),
            ("token_key_file", path(&self.token_key_file)),
            ("log_origin", text(&self.log_origin)),
            ("policies", path(&self.policies)),
            ("unknown_action", checked(&self.unknown_action)),
            ("review_timeout", checked(&self.review_timeout)),
            ("rate_limit", num(self.rate_limit)),
            ("rate_burst", num(self.rate_burst)),
            ("body_limit", num(self.body_limit)),
            ("header_timeout", checked(&self.header_timeout)),
            ("body_timeout", checked(&self.body_timeout)),
            ("max_connections", num(self.max_connections)),
            ("max_waiters", num(self.max_waiters)),
            (
                "public_url",
                self.public_url.as_ref().map(|u| u.0.to_string()),
            ),
            ("session_idle", checked(&self.session_idle)),
            ("session_lifetime", checked(&self.session_lifetime)),
            ("sign_in_limit", num(self.sign_in_limit)),
            ("max_wait", checked(&self.max_wait)),
            ("read_connections", num(self.read_connections)),
            ("token_audience", text(&self.token_audience)),
            ("token_ttl", checked(&self.token_ttl)),
            ("token_key_reload", checked(&self.token_key_reload)),
            ("utc_offset", checked(&self.utc_offset)),
            ("metrics_listen", text(&self.metrics_listen)),
            ("log_format", checked(&self.log_format)),
        ]
    }
}

/// The line (1-based) where `key` is first set in `text`, for errors that
/// concern a whole value rather than a token.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// Reads and checks a configuration file.
pub fn load(file: &Path) -> Result<Loaded> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow!("cannot read the configuration file {}: {e}", file.display()))?;
    parse(file, &text)
}

fn parse(file: &Path, text: &str) -> Result<Loaded> {
    let name = file.display();
    let config: FileConfig = toml::from_str(text).map_err(|e| {
        // toml names the line and column and shows the line.
        anyhow!("{name}: {e}")
    })?;
    let at = |key: &str| {
        line_of(text, key)
            .map(|l| format!("{name}, line {l}"))
            .unwrap_or_else(|| name.to_string())
    };
    if config.data.is_some() && config.database_url.is_some() {
        return Err(anyhow!(
            "{}: data and database_url are both set; keep one (SQLite or PostgreSQL)",
            at("database_url")
        ));
    }
    if !config.callbacks.allow.is_empty()
        && config.callbacks.secret.is_none()
        && config.callbacks.key_secrets.is_empty()
    {
        return Err(anyhow!(
            "{}: [callbacks] allow is set but nothing signs the callbacks; add secret = \"whsec_…\"",
            at("allow")
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, w) in config.webhooks.iter().enumerate() {
        let n = w
            .name
            .clone()
            .unwrap_or_else(|| format!("config-{}", i + 1));
        if !names.insert(n.clone()) {
            return Err(anyhow!("{name}: two [[webhooks]] are named {n:?}"));
        }
    }
    let flags = config
        .flags()
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    Ok(Loaded {
        path: file.to_path_buf(),
        flags,
        notify: NotifySettings {
            outbox: config.outbox,
            webhooks: config.webhooks,
            callbacks: config.callbacks,
            slack: config.slack,
            smtp: config.smtp,
            groups: config.groups,
        },
    })
}

/// `serve`'s command with the file's values as its flags' defaults.
pub fn with_defaults(serve: clap::Command, loaded: &Loaded) -> clap::Command {
    loaded.flags.iter().fold(serve, |cmd, (id, value)| {
        let value = value.clone();
        cmd.mut_arg(*id, move |a| a.default_value(value))
    })
}

/// `gatehouse config check FILE`.
pub fn check(file: &Path) -> Result<()> {
    let loaded = load(file)?;
    let n = &loaded.notify;
    // The address may come from --public-url or the environment instead,
    // which this check cannot see: a warning, not an error.
    let has_public_url = loaded.flags.iter().any(|(k, _)| *k == "public_url");
    for (section, on) in [("[slack]", n.slack.is_some()), ("[smtp]", n.smtp.is_some())] {
        if on && !has_public_url {
            eprintln!(
                "warning: {section} needs public_url (here, --public-url or GATEHOUSE_PUBLIC_URL): its messages link to the console"
            );
        }
    }
    println!(
        "{}: ok ({} settings, {} webhooks, callbacks {}, slack {}, smtp {}, {} groups)",
        loaded.path.display(),
        loaded.flags.len(),
        n.webhooks.len(),
        if n.callbacks.allow.is_empty() {
            "off"
        } else {
            "on"
        },
        if n.slack.is_some() { "on" } else { "off" },
        if n.smtp.is_some() { "on" } else { "off" },
        n.groups.len(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn err(text: &str) -> String {
        format!(
            "{:#}",
            parse(Path::new("g.toml"), text).err().expect("an error")
        )
    }

    /// Every `serve` flag can be set in the file, under its own name.
    #[test]
    fn every_serve_flag_has_a_key() {
        let serve = crate::cli::Cli::command()
            .find_subcommand("serve")
            .expect("serve")
            .clone();
        let mut flags: Vec<String> = serve
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .filter(|id| !matches!(id.as_str(), "config" | "help"))
            .collect();
        flags.sort();
        let empty: FileConfig = toml::from_str("").unwrap();
        let mut keys: Vec<String> = empty.flags().iter().map(|(k, _)| k.to_string()).collect();
        keys.sort();
        assert_eq!(keys, flags);
    }

    #[test]
    fn errors_name_the_line() {
        let e = err("listen = \"127.0.0.1:1\"\nreview_timeout = \"soon\"\n");
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("not a duration"), "{e}");
        let e = err("listen = \"x\"\n\n[[webhooks]]\nurl = \"https://h.example/x\"\nsecret = \"nope\"\nevents = [\"decision.resolved\"]\n");
        assert!(e.contains("line 5"), "{e}");
        assert!(e.contains("whsec_"), "{e}");
        let e = err("[[webhooks]]\nurl = \"https://h.example/x\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nevents = [\"decision.made\"]\n");
        assert!(e.contains("line 4") && e.contains("unknown event"), "{e}");
        let e = err("lisen = \"x\"\n");
        assert!(e.contains("line 1") && e.contains("lisen"), "{e}");
        let e = err("[callbacks]\nallow = [\"hooks.example.com\"]\n");
        assert!(e.contains("line 2") && e.contains("secret"), "{e}");
        let e = err(
            "[slack]\nbot_token = \"env:GATEHOUSE_TEST_SURELY_UNSET\"\nsigning_secret = \"x\"\n",
        );
        assert!(
            e.contains("line 2") && e.contains("GATEHOUSE_TEST_SURELY_UNSET"),
            "{e}"
        );
    }

    #[test]
    fn secrets_come_from_env_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("db");
        std::fs::write(&secret, "postgres://u:p@db/x\n").unwrap();
        let text = format!("database_url = \"file:{}\"\n", secret.display());
        let loaded = parse(Path::new("g.toml"), &text).unwrap();
        assert_eq!(
            loaded.flags,
            vec![("database_url", "postgres://u:p@db/x".to_string())]
        );
    }
}
