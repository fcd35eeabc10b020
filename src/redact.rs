//! Showing URLs without their secrets: an endpoint or webhook URL may carry `user:pass@` or `?api_key=`,
//! and logs, errors, the state file and `status` must never show them.

/// `url` without credentials or query string, for logs, errors and the state file: an endpoint URL may
/// carry `user:pass@` or `?api_key=`.
pub fn url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let had_secret = !u.username().is_empty() || u.password().is_some() || u.query().is_some();
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            let mut s = u.to_string();
            if had_secret {
                s.push_str(" (credentials hidden)");
            }
            s
        }
        // Not a URL: show it without anything that could be a credential (before '@', after '?').
        Err(_) => {
            let s = url.rsplit('@').next().unwrap_or(url);
            s.split('?').next().unwrap_or(s).to_string()
        }
    }
}
