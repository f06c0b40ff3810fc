use super::*;

fn v1(entry: LogEntry) -> LogEntry {
    LogEntry { v: 1, ..entry }
}

#[test]
fn leaf_bytes_are_canonical_and_carry_no_payload() {
    let e = LogEntry::api_key(
        "k1",
        KeyChange::Created,
        Role::Agent,
        OffsetDateTime::UNIX_EPOCH,
    );
    let text = String::from_utf8(e.to_bytes()).unwrap();
    assert_eq!(
        text,
        r#"{"event":"created","id":"k1","role":"agent","ts":"1970-01-01T00:00:00Z","type":"key_event","v":2}"#
    );
    assert_eq!(LogEntry::parse(text.as_bytes()).unwrap(), e);
}

/// Known answers: the bytes version 1 wrote for these entries. Logs
/// written before version 2 must stay readable and verifiable.
#[test]
fn version_1_leaves_still_read() {
    let at = OffsetDateTime::UNIX_EPOCH;
    let v1_review = v1(LogEntry::new(
        "dec_1",
        at,
        LogEvent::Review {
            decision: ReviewChoice::Approve,
            reviewer: "k2".into(),
            reviewer_name: None,
            comment_hash: None,
            person: None,
            groups: None,
            action_hash: None,
            resolves: None,
        },
    ));
    let v1_token = v1(LogEntry::new(
        "dec_1",
        at,
        LogEvent::TokenIssued {
            jti: "tok_1".into(),
            kid: "kid1".into(),
            exp: rfc3339(at),
            claims_hash: None,
        },
    ));
    let cases = [
        (
            v1_review,
            r#"{"comment_hash":null,"decision":"approve","id":"dec_1","reviewer":"k2","ts":"1970-01-01T00:00:00Z","type":"review","v":1}"#,
        ),
        (
            v1(LogEntry::expiry("dec_1", at)),
            r#"{"id":"dec_1","ts":"1970-01-01T00:00:00Z","type":"expiry","v":1}"#,
        ),
        (
            v1(LogEntry::token_key_retired("kid1", at)),
            r#"{"event":"retired","id":"kid1","role":"token-signing","ts":"1970-01-01T00:00:00Z","type":"key_event","v":1}"#,
        ),
        (
            v1_token,
            r#"{"exp":"1970-01-01T00:00:00Z","id":"dec_1","jti":"tok_1","kid":"kid1","ts":"1970-01-01T00:00:00Z","type":"token_issued","v":1}"#,
        ),
    ];
    for (entry, expected) in cases {
        assert_eq!(String::from_utf8(entry.to_bytes()).unwrap(), expected);
        assert_eq!(LogEntry::parse(expected.as_bytes()).unwrap(), entry);
    }
}

/// Known answers for version 2: entries about a decision name the
/// previous one, and carry what version 1 left out.
#[test]
fn version_2_leaves_chain_and_bind_content() {
    let at = OffsetDateTime::UNIX_EPOCH;
    let review = Review {
        decision: ReviewChoice::Reject,
        reviewer_key_id: "k2".into(),
        reviewer_name: Some("Rita".into()),
        comment: Some("no".into()),
        reviewed_at: at,
        reviewer_user: None,
        groups: Vec::new(),
        action_hash: None,
        amended_payload: None,
    };
    let entry = LogEntry::review("dec_1", &review, true).after("ab".repeat(32));
    let bytes = entry.to_bytes();
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        format!(
            r#"{{"comment_hash":"{}","decision":"reject","id":"dec_1","prev":"{}","reviewer":"k2","reviewer_name":"Rita","ts":"1970-01-01T00:00:00Z","type":"review","v":2}}"#,
            digest(&"no"),
            "ab".repeat(32)
        )
    );
    assert_eq!(LogEntry::parse(&bytes).unwrap(), entry);
    let token = LogEntry::token_issued("dec_1", "tok_1", "kid1", at, "sha256:cc", at);
    assert!(String::from_utf8(token.to_bytes())
        .unwrap()
        .contains(r#""claims_hash":"sha256:cc""#));
}

#[test]
fn parse_refuses_other_versions_broken_chains_and_non_canonical_bytes() {
    let spaced = br#"{"id":"dec_1", "ts":"1970-01-01T00:00:00Z","type":"expiry","v":1}"#;
    assert_eq!(LogEntry::parse(spaced), Err(EntryError::NotCanonical));
    let v3 = br#"{"id":"dec_1","ts":"1970-01-01T00:00:00Z","type":"expiry","v":3}"#;
    assert_eq!(LogEntry::parse(v3), Err(EntryError::Version(3)));
    let extra = br#"{"extra":1,"id":"dec_1","ts":"1970-01-01T00:00:00Z","type":"expiry","v":1}"#;
    assert_eq!(LogEntry::parse(extra), Err(EntryError::NotCanonical));
    // A version 2 entry about a decision must name the previous one...
    let unchained = br#"{"id":"dec_1","ts":"1970-01-01T00:00:00Z","type":"expiry","v":2}"#;
    assert_eq!(
        LogEntry::parse(unchained),
        Err(EntryError::Incomplete(2, "expiry"))
    );
    // ...and a version 1 entry cannot.
    let chained_v1 =
        br#"{"id":"dec_1","prev":"ab","ts":"1970-01-01T00:00:00Z","type":"expiry","v":1}"#;
    assert_eq!(
        LogEntry::parse(chained_v1),
        Err(EntryError::Incomplete(1, "expiry"))
    );
    assert!(matches!(
        LogEntry::parse(br#"{"type":"unknown"}"#),
        Err(EntryError::Malformed(_))
    ));
}

#[test]
fn the_claims_hash_of_a_jwt_is_the_hash_of_its_claims() {
    use base64::Engine as _;
    let claims = serde_json::json!({"sub": "dec_1", "exp": 5, "aud": "x"});
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims).unwrap());
    let jwt = format!("h.{payload}.s");
    assert_eq!(claims_hash_of_jwt(&jwt), Some(claims_hash(&claims)));
    assert_eq!(claims_hash_of_jwt("garbage"), None);
}
