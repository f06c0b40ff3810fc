//! Signatures: Standard Webhooks (outgoing webhooks and callbacks) and
//! Slack's request signing (incoming interactions).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The key bytes of a Standard Webhooks secret (`whsec_` and base64).
pub fn secret_key(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret
        .strip_prefix("whsec_")
        .ok_or("a webhook secret starts with whsec_ (then base64 of 24 to 64 bytes)")?;
    let key = STANDARD
        .decode(encoded)
        .map_err(|_| "the part after whsec_ is not base64")?;
    if !(24..=64).contains(&key.len()) {
        return Err(format!(
            "a webhook secret holds 24 to 64 bytes, this one {}",
            key.len()
        ));
    }
    Ok(key)
}

/// The `webhook-signature` header: `v1,` and the base64 HMAC-SHA256 of
/// `id.timestamp.body` under the secret's key.
pub fn standard_webhooks(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Why a Slack request was not accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SlackRefusal {
    #[error("missing X-Slack-Request-Timestamp or X-Slack-Signature")]
    Missing,
    #[error("the request timestamp is more than five minutes from now")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

/// Checks Slack's `X-Slack-Signature` (`v0=` and hex HMAC-SHA256 of
/// `v0:timestamp:body` under the signing secret), with the timestamp
/// within five minutes of `now`; the comparison takes constant time.
pub fn verify_slack(
    signing_secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SlackRefusal> {
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return Err(SlackRefusal::Missing);
    };
    let when: i64 = ts.trim().parse().map_err(|_| SlackRefusal::Stale)?;
    if (now - when).abs() > 300 {
        return Err(SlackRefusal::Stale);
    }
    let expected = slack_signature(signing_secret, ts.trim(), body);
    if expected.as_bytes().ct_eq(sig.trim().as_bytes()).into() {
        Ok(())
    } else {
        Err(SlackRefusal::Mismatch)
    }
}

/// `v0=` and the hex HMAC-SHA256 of `v0:timestamp:body`.
pub fn slack_signature(signing_secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac =
        HmacSha256::new_from_slice(signing_secret).expect("HMAC takes keys of any length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut out = String::with_capacity(3 + 64);
    out.push_str("v0=");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks libraries' own test vector.
    #[test]
    fn standard_webhooks_known_answer() {
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = standard_webhooks(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    /// The example in Slack's "Verifying requests from Slack".
    #[test]
    fn slack_known_answer() {
        let secret = b"8f742231b10e8888abcd99yyyzzz85a5";
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let sig = slack_signature(secret, "1531420618", body);
        assert_eq!(
            sig,
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
        assert_eq!(
            verify_slack(
                secret,
                Some("1531420618"),
                Some(&sig),
                body,
                1531420618 + 299
            ),
            Ok(())
        );
        assert_eq!(
            verify_slack(
                secret,
                Some("1531420618"),
                Some(&sig),
                body,
                1531420618 + 301
            ),
            Err(SlackRefusal::Stale)
        );
        assert_eq!(
            verify_slack(
                secret,
                Some("1531420618"),
                Some(&sig),
                b"token=x",
                1531420618
            ),
            Err(SlackRefusal::Mismatch)
        );
        assert_eq!(
            verify_slack(secret, None, Some(&sig), body, 1531420618),
            Err(SlackRefusal::Missing)
        );
    }

    #[test]
    fn secrets_must_be_whsec_base64() {
        assert!(secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(secret_key("whsec_!!!").is_err());
        assert!(secret_key("whsec_c2hvcnQ=").is_err());
    }
}
