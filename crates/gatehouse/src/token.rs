//! `gatehouse token verify`: what an executor runs before a sensitive action.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use gatehouse_token::{verify, Expectation};
use jsonwebtoken::jwk::JwkSet;
use serde_json::{Map, Value};

use crate::cli::TokenCommand;

pub async fn run(cmd: TokenCommand) -> Result<ExitCode> {
    let TokenCommand::Verify {
        token,
        action,
        jwks,
        audience,
    } = cmd;
    let text = std::fs::read_to_string(&action)
        .with_context(|| format!("cannot read {}", action.display()))?;
    let action: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", action.display()))?;
    let field = |names: &[&str]| -> Result<String> {
        names
            .iter()
            .find_map(|n| action.get(*n).and_then(Value::as_str))
            .map(str::to_string)
            .with_context(|| format!("the action file needs {}", names.join(" or ")))
    };
    let tool = field(&["tool_name", "action"])?;
    let subject = field(&["subject"])?;
    let payload: Map<String, Value> = match action.get("payload") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => bail!("the action's payload must be a JSON object"),
    };
    let keys: JwkSet = if jwks.starts_with("http://") || jwks.starts_with("https://") {
        reqwest::get(&jwks)
            .await
            .with_context(|| format!("cannot fetch {jwks}"))?
            .error_for_status()?
            .json()
            .await
            .with_context(|| format!("{jwks} is not a JWKS"))?
    } else {
        let text = std::fs::read_to_string(&jwks).with_context(|| format!("cannot read {jwks}"))?;
        serde_json::from_str(&text).with_context(|| format!("{jwks} is not a JWKS"))?
    };
    let action_hash = gatehouse_core::action_hash(&tool, &subject, &payload);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match verify(
        &token,
        &keys,
        &Expectation {
            action_hash: &action_hash,
            audience: &audience,
            now,
        },
    ) {
        Ok(claims) => {
            println!("ok: signature, type, time window, audience and action binding all pass");
            println!(
                "decision {}  token {}  expires {}",
                claims.sub, claims.jti, claims.exp
            );
            println!("note: single use is enforced only by the server, at POST /api/tokens/redeem");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("FAIL  {e}");
            Ok(ExitCode::from(1))
        }
    }
}
