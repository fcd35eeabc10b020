//! Showing URLs without their secrets: an endpoint or webhook URL may carry `user:pass@`, `?api_key=`
//! or, as most paid RPC providers do (QuickNode, Alchemy, Infura, Ankr), the key as a path segment; logs,
//! errors, the state file, metrics labels and `status` must never show them.

/// The shortest path segment taken for a key. Provider keys are 24 to 64 characters; the paths of
/// public endpoints (`/rpc`, `/v1/chain`, `/ext/bc/C/rpc`, `/v2`) are short words.
const KEY_SEGMENT_MIN: usize = 16;

/// `url` without credentials, query string or key-like path segments, for logs, errors and the state
/// file; marked "(credentials hidden)" when something was removed.
pub fn url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        // "user:pass@host" parses as scheme "user" with an opaque path: handled below, as not a URL.
        Ok(mut u) if !u.cannot_be_a_base() => {
            let mut had_secret = !u.username().is_empty() || u.password().is_some() || u.query().is_some();
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            if u.path_segments().is_some_and(|mut s| s.any(looks_like_key)) {
                let path: Vec<&str> = u
                    .path_segments()
                    .into_iter()
                    .flatten()
                    .map(|s| if looks_like_key(s) { "***" } else { s })
                    .collect();
                u.set_path(&path.join("/"));
                had_secret = true;
            }
            let mut s = u.to_string();
            if had_secret {
                s.push_str(" (credentials hidden)");
            }
            s
        }
        // Not a URL: show it without anything that could be a credential (before '@', after '?').
        _ => {
            let s = url.rsplit('@').next().unwrap_or(url);
            s.split('?').next().unwrap_or(s).to_string()
        }
    }
}

/// A path segment that is an API key: long, made of key characters, with both letters and digits.
fn looks_like_key(segment: &str) -> bool {
    segment.len() >= KEY_SEGMENT_MIN
        && segment.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && segment.chars().any(|c| c.is_ascii_digit())
        && segment.chars().any(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::url;

    #[test]
    fn plain_urls_are_shown_as_they_are() {
        for u in [
            "https://api.hive.blog/",
            "https://api.mainnet-beta.solana.com/",
            "http://127.0.0.1:8899/",
            "https://eos.greymass.com/v1/chain",
            "https://api.avax.network/ext/bc/C/rpc",
        ] {
            assert_eq!(url(u), u, "{u}");
        }
    }

    #[test]
    fn user_info_and_query_are_hidden() {
        assert_eq!(url("https://bob:hunter2@rpc.example/"), "https://rpc.example/ (credentials hidden)");
        assert_eq!(
            url("https://mainnet.helius-rpc.com/?api-key=0f3c9a6e-1b2d-4e5f-8a7b-9c0d1e2f3a4b"),
            "https://mainnet.helius-rpc.com/ (credentials hidden)"
        );
    }

    #[test]
    fn provider_keys_in_the_path_are_hidden() {
        let cases = [
            (
                "https://example.solana-mainnet.quiknode.pro/5f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6/",
                "https://example.solana-mainnet.quiknode.pro/***/",
            ),
            (
                "https://solana-mainnet.g.alchemy.com/v2/aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY",
                "https://solana-mainnet.g.alchemy.com/v2/***",
            ),
            ("https://mainnet.infura.io/v3/9aa3d95b3bc440fa88ea12eaa4456161", "https://mainnet.infura.io/v3/***"),
            ("https://rpc.ankr.com/solana/0123456789abcdef0123456789abcdef", "https://rpc.ankr.com/solana/***"),
        ];
        for (raw, shown) in cases {
            assert_eq!(url(raw), format!("{shown} (credentials hidden)"), "{raw}");
        }
    }

    #[test]
    fn long_words_without_digits_are_not_keys() {
        assert_eq!(url("https://rpc.example/mainnetbetaendpoint/"), "https://rpc.example/mainnetbetaendpoint/");
    }

    #[test]
    fn not_a_url_loses_what_could_be_a_credential() {
        assert_eq!(url("bob:pw@rpc.example?key=1"), "rpc.example");
    }
}
