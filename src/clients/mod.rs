//! The gate's outside world as data: pure request builders and response parsers for the
//! Cloudflare API, the Analytics Engine SQL API, Slack webhooks and `/healthz` probes, plus
//! the small validation and text helpers they share. Nothing here sends anything.

pub mod analytics;
pub mod cloudflare;
pub mod http;
pub mod probe;
pub mod slack;

/// True when `s` is a UUID in the canonical 8-4-4-4-12 hex form (either case), the form
/// Worker version ids take. Callers rely on this before putting an id in a URL path, a
/// header or SQL text: a valid UUID contains only `[0-9A-Fa-f-]`.
pub fn is_uuid(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// True when `s` is a Worker script name the gate will put in an API path: 1 to 63
/// characters of `[a-z0-9_-]`, not starting or ending with `-`. Cloudflare refuses
/// uppercase names and documents 63 characters as the limit (they become DNS labels in
/// `<script>.<subdomain>.workers.dev`); the restricted charset also means no escaping is
/// ever needed in a URL path.
pub fn is_script_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The longest prefix of `s` that is at most `max_bytes` bytes and ends on a char
/// boundary. Never splits a UTF-8 sequence, never panics.
pub fn truncate_to_bytes(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` cut to at most `max_chars` Unicode scalar values; when it had to be cut, the last
/// kept character is replaced by `…` so the result still has at most `max_chars` chars.
/// `max_chars == 0` gives the empty string.
pub fn truncate_chars_with_ellipsis(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    if max_chars == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max_chars - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_check_accepts_canonical_form_only() {
        let cases = [
            ("bcf48806-b317-4351-9ee7-36e7d557d4de", true),
            ("BCF48806-B317-4351-9EE7-36E7D557D4DE", true),
            ("bcf48806b31743519ee736e7d557d4de", false),
            ("bcf48806-b317-4351-9ee7-36e7d557d4d", false),
            ("bcf48806-b317-4351-9ee7-36e7d557d4dg", false),
            ("bcf48806-b317-4351-9ee7_36e7d557d4de", false),
            ("') OR 1=1 --                        ", false),
            ("", false),
        ];
        for (input, want) in cases {
            assert_eq!(is_uuid(input), want, "{input:?}");
        }
    }

    #[test]
    fn script_name_check_refuses_what_cloudflare_refuses() {
        let cases = [
            ("mauntic-gateway", true),
            ("tenant_cache-2", true),
            ("a", true),
            ("Mauntic", false),
            ("-lead", false),
            ("trail-", false),
            ("has space", false),
            ("../etc", false),
            ("", false),
        ];
        for (input, want) in cases {
            assert_eq!(is_script_name(input), want, "{input:?}");
        }
        assert!(is_script_name(&"a".repeat(63)));
        assert!(!is_script_name(&"a".repeat(64)));
    }

    #[test]
    fn byte_truncation_never_splits_a_char() {
        assert_eq!(truncate_to_bytes("héllo", 2), "h");
        assert_eq!(truncate_to_bytes("héllo", 3), "hé");
        assert_eq!(truncate_to_bytes("abc", 10), "abc");
        assert_eq!(truncate_to_bytes("🚀🚀", 5), "🚀");
        assert_eq!(truncate_to_bytes("🚀", 0), "");
    }

    #[test]
    fn char_truncation_marks_the_cut_with_an_ellipsis() {
        assert_eq!(truncate_chars_with_ellipsis("abcdef", 4), "abc…");
        assert_eq!(truncate_chars_with_ellipsis("abcd", 4), "abcd");
        assert_eq!(truncate_chars_with_ellipsis("ééééé", 3), "éé…");
        assert_eq!(truncate_chars_with_ellipsis("abc", 0), "");
    }
}
