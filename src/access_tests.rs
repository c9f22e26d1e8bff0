//! Tests of the pure Access JWT checks (the signature is checked under `wrangler dev`:
//! tests/e2e/test_access.py).

use super::*;

fn b64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn token(header: &str, claims: &str, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.as_bytes()),
        b64(claims.as_bytes()),
        b64(sig)
    )
}

const HEADER: &str = r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#;
const NOW: f64 = 1_800_000_000.0;

fn config() -> AccessConfig {
    AccessConfig::new("e2e-team", "aud-tag", None).unwrap()
}

fn claims(extra: &str) -> Claims {
    let text = format!(
        r#"{{"iss":"https://e2e-team.cloudflareaccess.com","aud":["aud-tag"],"exp":{},"nbf":{},"email":"ops@example.com"{extra}}}"#,
        NOW + 60.0,
        NOW
    );
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_well_formed_rs256_token_yields_its_key_id_signing_input_and_signature() {
    let t = token(HEADER, r#"{"email":"a@b.c"}"#, b"\x01\x02\x03");
    let parsed = parse(&t).unwrap();
    assert_eq!(parsed.kid, "k1");
    assert_eq!(parsed.signature, [1, 2, 3]);
    assert_eq!(parsed.signing_input, t.rsplit_once('.').unwrap().0);
    assert_eq!(identity(&parsed.claims), "a@b.c");
}

#[test]
fn any_algorithm_but_rs256_is_refused_whatever_its_spelling() {
    for alg in [
        "none", "None", "NONE", "nOnE", "HS256", "RS384", "rs256", "PS256", "ES256",
    ] {
        let header = format!(r#"{{"alg":"{alg}","kid":"k1"}}"#);
        let t = token(&header, "{}", b"sig");
        assert_eq!(
            parse(&t),
            Err(Refusal::Invalid("algorithm is not RS256")),
            "{alg}"
        );
    }
    // alg none with the empty signature kept behind the last dot.
    let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(b"{}"));
    assert!(matches!(parse(&none), Err(Refusal::Invalid(_))));
}

#[test]
fn a_token_without_key_id_or_with_crit_or_without_signature_is_refused() {
    let cases = [
        token(r#"{"alg":"RS256"}"#, "{}", b"s"),
        token(r#"{"alg":"RS256","kid":""}"#, "{}", b"s"),
        token(r#"{"alg":"RS256","kid":"k1","crit":["exp"]}"#, "{}", b"s"),
        token(HEADER, "{}", b""),
    ];
    for t in cases {
        assert!(matches!(parse(&t), Err(Refusal::Invalid(_))), "{t}");
    }
}

#[test]
fn garbage_of_every_shape_is_refused_as_invalid() {
    let good = token(HEADER, "{}", b"s");
    let long = "a".repeat(64 * 1024);
    let cases = [
        "".to_string(),
        "abc".into(),
        "a.b".into(),
        "a.b.c.d".into(),
        format!("{good}.x"),
        good.replace('.', "+"),
        format!("{}=.e30.cw", b64(HEADER.as_bytes())),
        format!("{}.e30.c/w", b64(HEADER.as_bytes())),
        format!("{}.e30.c w", b64(HEADER.as_bytes())),
        token("not json", "{}", b"s"),
        token(HEADER, "not json", b"s"),
        token(HEADER, "[1,2]", b"s"),
        token("[]", "{}", b"s"),
        long,
    ];
    for t in cases {
        assert!(
            matches!(parse(&t), Err(Refusal::Invalid(_))),
            "{:?}",
            &t[..t.len().min(60)]
        );
    }
}

#[test]
fn base64url_refuses_padding_and_the_standard_alphabet() {
    assert_eq!(decode_base64url("aGk").unwrap(), b"hi");
    assert_eq!(decode_base64url("-_8").unwrap(), [0xfb, 0xff]);
    for bad in ["aGk=", "+/8", "a", "aGk\n"] {
        assert_eq!(decode_base64url(bad), None, "{bad:?}");
    }
}

#[test]
fn valid_claims_pass_with_aud_as_an_array_or_a_plain_string() {
    assert_eq!(check_claims(&claims(""), &config(), NOW), Ok(()));
    let mut plain = claims("");
    plain.aud = Some(serde_json::json!("aud-tag"));
    assert_eq!(check_claims(&plain, &config(), NOW), Ok(()));
    let mut several = claims("");
    several.aud = Some(serde_json::json!(["other", "aud-tag"]));
    assert_eq!(check_claims(&several, &config(), NOW), Ok(()));
}

#[test]
fn the_wrong_audience_or_issuer_is_refused_by_name() {
    let mut c = claims("");
    c.aud = Some(serde_json::json!(["other"]));
    assert_eq!(
        check_claims(&c, &config(), NOW),
        Err(Refusal::WrongAudience)
    );
    c.aud = None;
    assert_eq!(
        check_claims(&c, &config(), NOW),
        Err(Refusal::WrongAudience)
    );
    c.aud = Some(serde_json::json!([["aud-tag"]]));
    assert_eq!(
        check_claims(&c, &config(), NOW),
        Err(Refusal::WrongAudience)
    );
    let mut c = claims("");
    c.iss = Some("https://other.cloudflareaccess.com".into());
    assert_eq!(check_claims(&c, &config(), NOW), Err(Refusal::WrongIssuer));
    c.iss = None;
    assert_eq!(check_claims(&c, &config(), NOW), Err(Refusal::WrongIssuer));
}

#[test]
fn expiry_and_not_before_allow_sixty_seconds_of_skew_and_no_more() {
    let mut c = claims("");
    c.exp = Some(NOW - 30.0);
    assert_eq!(check_claims(&c, &config(), NOW), Ok(()), "inside the skew");
    c.exp = Some(NOW - 60.0);
    assert_eq!(check_claims(&c, &config(), NOW), Err(Refusal::Expired));
    c.exp = Some(NOW - 120.0);
    assert_eq!(check_claims(&c, &config(), NOW), Err(Refusal::Expired));
    c.exp = None;
    assert!(matches!(
        check_claims(&c, &config(), NOW),
        Err(Refusal::Invalid(_))
    ));
    let mut c = claims("");
    c.nbf = Some(NOW + 30.0);
    assert_eq!(check_claims(&c, &config(), NOW), Ok(()), "inside the skew");
    c.nbf = Some(NOW + 120.0);
    assert_eq!(check_claims(&c, &config(), NOW), Err(Refusal::NotYetValid));
}

#[test]
fn identity_is_the_email_else_the_service_token_else_the_subject() {
    assert_eq!(identity(&claims("")), "ops@example.com");
    let mut c = claims("");
    c.email = None;
    c.common_name = Some("abc.access".into());
    assert_eq!(identity(&c), "service:abc.access");
    c.common_name = None;
    c.sub = Some("uuid".into());
    assert_eq!(identity(&c), "uuid");
}

#[test]
fn the_team_is_accepted_as_a_name_a_host_or_the_issuer_url() {
    for team in [
        "myteam",
        "myteam.cloudflareaccess.com",
        "https://myteam.cloudflareaccess.com/",
    ] {
        let c = AccessConfig::new(team, "aud", None).unwrap();
        assert_eq!(c.issuer, "https://myteam.cloudflareaccess.com");
        assert_eq!(
            c.certs_url,
            "https://myteam.cloudflareaccess.com/cdn-cgi/access/certs"
        );
    }
    let c = AccessConfig::new("t", "aud", Some("http://127.0.0.1:1/certs")).unwrap();
    assert_eq!(c.certs_url, "http://127.0.0.1:1/certs");
    for bad in ["", "my team", "https://evil.com/x"] {
        assert!(AccessConfig::new(bad, "aud", None).is_err(), "{bad:?}");
    }
}

#[test]
fn only_rsa_signing_keys_for_rs256_are_taken_from_the_jwks() {
    let doc = r#"{"keys":[
        {"kid":"a","kty":"RSA","alg":"RS256","use":"sig","e":"AQAB","n":"nn"},
        {"kid":"b","kty":"RSA","e":"AQAB","n":"nn"},
        {"kid":"c","kty":"RSA","alg":"RS384","e":"AQAB","n":"nn"},
        {"kid":"d","kty":"EC","crv":"P-256","x":"x","y":"y"},
        {"kid":"e","kty":"RSA","use":"enc","e":"AQAB","n":"nn"},
        {"kty":"RSA","e":"AQAB","n":"nn"}
    ],"public_cert":{"kid":"a","cert":"..."}}"#;
    let kids: Vec<String> = jwks_keys(doc).unwrap().into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, ["a", "b"]);
    assert!(jwks_keys("{}").is_err());
    assert!(jwks_keys("<html>").is_err());
}

#[test]
fn each_refusal_has_its_status_and_code_and_never_allows() {
    let cases = [
        (Refusal::Invalid("x"), 401, "access_invalid"),
        (Refusal::Expired, 401, "access_expired"),
        (Refusal::NotYetValid, 401, "access_not_yet_valid"),
        (Refusal::WrongAudience, 401, "access_wrong_audience"),
        (Refusal::WrongIssuer, 401, "access_wrong_issuer"),
        (Refusal::UnknownKey, 401, "access_unknown_key"),
        (Refusal::KeysUnavailable, 503, "access_keys_unavailable"),
    ];
    for (refusal, status, code) in cases {
        let err = ApiError::from(refusal);
        assert_eq!((err.status(), err.code()), (status, code), "{refusal:?}");
    }
}

#[test]
fn keys_are_fetched_when_none_are_held_or_they_are_an_hour_old() {
    let none = KeyCacheState::default();
    assert_eq!(
        fetch_reason(none, false, false, NOW),
        Some(FetchReason::Refresh)
    );
    let fresh = KeyCacheState {
        fetched_at_ms: Some(NOW - 1_000.0),
        ..KeyCacheState::default()
    };
    assert_eq!(fetch_reason(fresh, true, false, NOW), None);
    let stale = KeyCacheState {
        fetched_at_ms: Some(NOW - KEYS_TTL_MS),
        ..fresh
    };
    assert_eq!(
        fetch_reason(stale, true, false, NOW),
        Some(FetchReason::Refresh)
    );
}

#[test]
fn stale_keys_serve_for_a_minute_after_a_failed_refresh_instead_of_every_request_waiting() {
    let stale = KeyCacheState {
        fetched_at_ms: Some(NOW - KEYS_TTL_MS - 5_000.0),
        failed_fetch_at_ms: Some(NOW - 10_000.0),
        ..KeyCacheState::default()
    };
    assert_eq!(fetch_reason(stale, true, false, NOW), None);
    let a_minute_later = KeyCacheState {
        failed_fetch_at_ms: Some(NOW - FAILED_REFRESH_RETRY_MS),
        ..stale
    };
    assert_eq!(
        fetch_reason(a_minute_later, true, false, NOW),
        Some(FetchReason::Refresh)
    );
    // An unknown key id still gets its own (rate-limited) fetch.
    assert_eq!(
        fetch_reason(stale, false, false, NOW),
        Some(FetchReason::UnknownKey)
    );
    // With no keys held there is nothing to serve: every request tries (and is refused 503
    // when the fetch fails).
    let none_held = KeyCacheState {
        failed_fetch_at_ms: Some(NOW - 1_000.0),
        ..KeyCacheState::default()
    };
    assert_eq!(
        fetch_reason(none_held, false, false, NOW),
        Some(FetchReason::Refresh)
    );
}

#[test]
fn an_unknown_key_id_causes_at_most_one_fetch_a_minute_and_one_a_request() {
    let held = KeyCacheState {
        fetched_at_ms: Some(NOW - 1_000.0),
        ..KeyCacheState::default()
    };
    assert_eq!(
        fetch_reason(held, false, false, NOW),
        Some(FetchReason::UnknownKey)
    );
    assert_eq!(fetch_reason(held, false, true, NOW), None, "once a request");
    let just_refetched = KeyCacheState {
        unknown_key_fetch_at_ms: Some(NOW - 59_000.0),
        ..held
    };
    assert_eq!(fetch_reason(just_refetched, false, false, NOW), None);
    let minute_ago = KeyCacheState {
        unknown_key_fetch_at_ms: Some(NOW - UNKNOWN_KEY_REFETCH_MS),
        ..held
    };
    assert_eq!(
        fetch_reason(minute_ago, false, false, NOW),
        Some(FetchReason::UnknownKey)
    );
    let none = KeyCacheState::default();
    assert_eq!(
        fetch_reason(none, false, true, NOW),
        None,
        "a failed first fetch is not retried in the request"
    );
}
