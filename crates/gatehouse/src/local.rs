//! Commands that work on local files or the database directly.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use gatehouse_log::checkpoint::LogSigner;
use gatehouse_policy::cases::{parse_cases, run_case};
use gatehouse_policy::{read_policy_dir, Engine, EngineOptions};
use gatehouse_store::{Role, Store};
use gatehouse_store_postgres::PostgresStore;
use gatehouse_store_sqlite::SqliteStore;
use gatehouse_token::TokenSigner;
use time::OffsetDateTime;

use crate::cli::{KeysCommand, PolicyCommand, StorageArgs};

/// A signing key: the text of environment variable `env` when it is set
/// (for secret stores that inject variables); else a file, `--...-key-file`
/// when given, or with SQLite in the data directory, where it is created
/// (mode 0600) on first use. PostgreSQL needs one or the other, because
/// every replica must sign with the same key.
struct KeyFile<'a> {
    given: &'a Option<std::path::PathBuf>,
    env: &'static str,
    default_name: &'static str,
    flag: &'static str,
    keygen: &'static str,
}

impl KeyFile<'_> {
    /// The key text from the environment, if it is supplied there.
    fn env_text(&self) -> Option<String> {
        std::env::var(self.env)
            .ok()
            .filter(|v| !v.trim().is_empty())
    }

    fn path(&self, storage: &StorageArgs) -> Result<std::path::PathBuf> {
        Ok(match (self.given, &storage.database_url) {
            (Some(path), _) => path.clone(),
            (None, Some(_)) => bail!(
                "replicas sharing PostgreSQL must share one key: create it once with `{}` (keep it \
                 private, mode 0600) and pass {} to every replica and command, or put the key's \
                 text in {}",
                self.keygen,
                self.flag,
                self.env
            ),
            (None, None) => storage.data.join(self.default_name),
        })
    }

    /// Reads the key text (and says where it came from), creating a key
    /// file with `generate` where allowed.
    fn load(
        &self,
        storage: &StorageArgs,
        generate: impl FnOnce() -> Result<String>,
    ) -> Result<(String, String)> {
        if let Some(text) = self.env_text() {
            return Ok((self.env.to_string(), text));
        }
        let path = self.path(storage)?;
        let source = path.display().to_string();
        if path.exists() || self.given.is_some() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the key file {source}"))?;
            return Ok((source, text));
        }
        std::fs::create_dir_all(&storage.data)
            .with_context(|| format!("cannot create {}", storage.data.display()))?;
        let text = generate()?;
        write_private(&path, text.trim_end())?;
        Ok((source, text))
    }
}

fn log_key_file(storage: &StorageArgs) -> KeyFile<'_> {
    KeyFile {
        given: &storage.log_key_file,
        env: "GATEHOUSE_LOG_SIGNING_KEY",
        default_name: "log-signing.key",
        flag: "--log-key-file (GATEHOUSE_LOG_KEY_FILE)",
        keygen: "gatehouse log keygen --out log-signing.key",
    }
}

fn token_key_file(storage: &StorageArgs) -> KeyFile<'_> {
    KeyFile {
        given: &storage.token_key_file,
        env: "GATEHOUSE_TOKEN_SIGNING_KEY",
        default_name: "token-signing.pem",
        flag: "--token-key-file (GATEHOUSE_TOKEN_KEY_FILE)",
        keygen: "gatehouse log keygen --token --out token-signing.pem",
    }
}

/// The checkpoint signing key (signed-note private key).
pub fn load_signer(storage: &StorageArgs) -> Result<Arc<LogSigner>> {
    let (path, text) = log_key_file(storage).load(storage, || {
        let (skey, _) = LogSigner::generate(&storage.log_origin).with_context(|| {
            format!(
                "--log-origin {:?} is not a valid log name",
                storage.log_origin
            )
        })?;
        Ok(skey)
    })?;
    Ok(Arc::new(LogSigner::from_private_key(&text).with_context(
        || format!("{path} does not hold a log key"),
    )?))
}

/// The approval-token signing key (Ed25519, PKCS#8 PEM).
pub fn load_token_signer(storage: &StorageArgs) -> Result<Arc<TokenSigner>> {
    let (path, text) = token_key_file(storage).load(storage, || Ok(TokenSigner::generate()?.0))?;
    Ok(Arc::new(TokenSigner::from_pem(&text).with_context(
        || format!("{path} does not hold an Ed25519 PKCS#8 key"),
    )?))
}

/// The file the token key is read from, unless the environment supplies it.
pub fn token_key_path(storage: &StorageArgs) -> Option<std::path::PathBuf> {
    let key = token_key_file(storage);
    match key.env_text() {
        Some(_) => None,
        None => key.path(storage).ok(),
    }
}

/// Where `keys rotate` keeps the key it replaced: beside the current one,
/// for the server to sign again the stored tokens that key issued.
pub fn previous_token_key_path(current: &std::path::Path) -> std::path::PathBuf {
    let mut name = current.as_os_str().to_owned();
    name.push(".previous");
    name.into()
}

/// The key `keys rotate` replaced, if it was kept beside the current one.
pub fn load_previous_token_signer(current: &std::path::Path) -> Result<Option<Arc<TokenSigner>>> {
    let path = previous_token_key_path(current);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let signer = TokenSigner::from_pem(&text)
        .with_context(|| format!("{} does not hold an Ed25519 PKCS#8 key", path.display()))?;
    Ok(Some(Arc::new(signer)))
}

/// `gatehouse keys rotate`: a new token key replaces the old one in place;
/// the old public key is recorded so the JWKS keeps it while it is needed,
/// and the old private key is kept as `FILE.previous` (owner-only): the
/// database stores tokens without their signatures, and the server signs
/// the tokens that key issued again when their agents read them.
pub async fn rotate_token_key(storage: &StorageArgs) -> Result<()> {
    let key = token_key_file(storage);
    if key.env_text().is_some() {
        bail!(
            "the token key comes from {}, which this command cannot rewrite: keep the key in a \
             file (--token-key-file) to rotate it here",
            key.env
        );
    }
    let path = key.path(storage)?;
    let old = load_token_signer(storage)?;
    let store = open_store(storage).await?;
    let (pem, new) = TokenSigner::generate()?;
    let jwk = serde_json::to_string(old.jwk())?;
    store
        .retire_token_key(old.kid(), &jwk, OffsetDateTime::now_utc())
        .await?;
    let previous = previous_token_key_path(&path);
    let _ = std::fs::remove_file(&previous);
    let old_text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    write_private(&previous, old_text.trim_end())?;
    // Write beside the old key, then rename over it: never a half-written key.
    let tmp = path.with_extension("pem.new");
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, pem.trim_end())?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot replace {}", path.display()))?;
    println!("new token key {} written to {}", new.kid(), path.display());
    println!(
        "old key {} stays in the JWKS until the tokens it signed expire, and is kept in {} to \
         show those tokens again; delete that file once they have expired",
        old.kid(),
        previous.display()
    );
    println!(
        "running servers sign with the new key once they re-read the file (every \
         --token-key-reload, 10s by default, or at once on SIGHUP); with PostgreSQL, copy the \
         file to every replica"
    );
    Ok(())
}

/// Creates a file only its owner can read, failing if it already exists.
pub fn write_private(path: &std::path::Path, contents: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(format!("{contents}\n").as_bytes())?;
    Ok(())
}

pub async fn open_store(storage: &StorageArgs) -> Result<Arc<dyn Store>> {
    open_store_with(storage, gatehouse_store_sqlite::DEFAULT_READ_CONNECTIONS).await
}

/// [`open_store`] with SQLite reading through at most `read_connections`
/// connections at once.
pub async fn open_store_with(
    storage: &StorageArgs,
    read_connections: usize,
) -> Result<Arc<dyn Store>> {
    let signer = load_signer(storage)?;
    Ok(match &storage.database_url {
        Some(url) => Arc::new(
            PostgresStore::connect(url, signer)
                .await
                .context("cannot open the PostgreSQL database")?,
        ),
        None => Arc::new(
            SqliteStore::open_with(&storage.data, signer, read_connections).with_context(|| {
                format!("cannot open the database in {}", storage.data.display())
            })?,
        ),
    })
}

pub async fn keys(cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::Create {
            role,
            name,
            user,
            storage,
        } => {
            let role = Role::parse(&role).context("unknown role")?;
            let store = open_store(&storage).await?;
            let name = gatehouse_app::access::key_name(name.or_else(|| user.clone()), role)?;
            let mut new =
                gatehouse_app::access::generate_key(role, &name, OffsetDateTime::now_utc());
            if let Some(user) = user {
                let found = store.get_user(&user).await?;
                if !found.is_some_and(|u| u.is_active()) {
                    bail!("no active user named {user:?}; create it with `gatehouse users create`");
                }
                new.key.user = Some(user);
            }
            store.create_key(&new.key).await?;
            println!(
                "created {} key {} ({name}); the secret below is shown only once:",
                role.as_str(),
                new.key.id
            );
            println!("{}", new.secret);
        }
        KeysCommand::List { storage } => {
            let store = open_store(&storage).await?;
            println!(
                "{:<28} {:<9} {:<24} {:<8} USER",
                "ID", "ROLE", "NAME", "STATUS"
            );
            for k in store.list_keys().await? {
                let status = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:<28} {:<9} {:<24} {status:<8} {}",
                    k.id,
                    k.role.as_str(),
                    k.name,
                    k.user.as_deref().unwrap_or("-")
                );
            }
        }
        KeysCommand::Rotate { storage } => rotate_token_key(&storage).await?,
        KeysCommand::Revoke { id, storage } => {
            let store = open_store(&storage).await?;
            if !store.revoke_key(&id, OffsetDateTime::now_utc()).await? {
                bail!("no API key with id {id}");
            }
            println!("revoked {id}; running servers stop accepting it within a few seconds");
        }
    }
    Ok(())
}

/// Compiles the policy set in `dir`, naming the directory on failure.
fn compile_dir(dir: &std::path::Path) -> Result<Engine> {
    Engine::compile(read_policy_dir(dir)?, EngineOptions::default())
        .with_context(|| format!("the policies in {} are not a valid set", dir.display()))
}

pub fn policy(cmd: PolicyCommand) -> Result<ExitCode> {
    match cmd {
        PolicyCommand::Check { dir } => {
            let engine = compile_dir(&dir)?;
            println!(
                "ok: {} policies, version {}",
                engine.policy_count(),
                engine.version()
            );
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Test { dir, cases } => {
            let engine = compile_dir(&dir)?;
            let text = std::fs::read_to_string(&cases)
                .with_context(|| format!("cannot read {}", cases.display()))?;
            let cases =
                parse_cases(&text).with_context(|| "cases file is not a JSON array of cases")?;
            let mut failed = 0;
            for case in &cases {
                let result = run_case(&engine, case, gatehouse_api::requests::case_request);
                if result.passed() {
                    println!("ok    {}", result.name);
                } else {
                    failed += 1;
                    println!(
                        "FAIL  {}: expected {}, got {} ({})",
                        result.name, result.expected, result.actual, result.detail
                    );
                }
            }
            println!("{} passed, {failed} failed", cases.len() - failed);
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
