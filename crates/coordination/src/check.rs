//! Checks of the coordination settings before anything is armed, each naming its variable, as Taurus checks
//! its Raft settings: the endpoint list (one member, or three or more: two is refused, it tolerates no
//! failure and doubles the ways to lose quorum), the prefix, and every endpoint answering as a healthy
//! member with a leader.

use std::time::Duration;

use crate::EtcdOptions;

/// `ETCD_ENDPOINTS`: returns whether TLS is on (all `https://`).
pub fn check_endpoints(endpoints: &[String]) -> Result<bool, String> {
    if endpoints.is_empty() {
        return Err(
            "ETCD_ENDPOINTS is empty: give 1 etcd member (a test) or 3 or 5 (production), comma-separated".into()
        );
    }
    if endpoints.len() == 2 {
        return Err(
            "ETCD_ENDPOINTS lists 2 members: a 2-member etcd stops when either fails; run 1 (a test) or 3 or 5".into(),
        );
    }
    let mut schemes = std::collections::BTreeSet::new();
    for e in endpoints {
        let (scheme, rest) = e
            .split_once("://")
            .ok_or_else(|| format!("ETCD_ENDPOINTS: {e:?} is not http://host:port or https://host:port"))?;
        if scheme != "http" && scheme != "https" {
            return Err(format!("ETCD_ENDPOINTS: {e:?} must start with http:// or https://"));
        }
        let hostport = rest.trim_end_matches('/');
        let ok = hostport
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && !h.contains('/') && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            return Err(format!("ETCD_ENDPOINTS: {e:?} needs a host and a port (http://host:2379)"));
        }
        schemes.insert(scheme);
    }
    if schemes.len() > 1 {
        return Err("ETCD_ENDPOINTS mixes http:// and https://: use one scheme for every member".into());
    }
    Ok(schemes.contains("https"))
}

/// `ETCD_PREFIX`: starts and ends with `/`, printable ASCII, no empty segment.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let fine = prefix.len() >= 2
        && prefix.starts_with('/')
        && prefix.ends_with('/')
        && !prefix.contains("//")
        && prefix.chars().all(|c| c.is_ascii_graphic());
    if fine {
        Ok(())
    } else {
        Err(format!("ETCD_PREFIX {prefix:?} must start and end with '/', without spaces or '//' (like /witness-trap/)"))
    }
}

/// Every endpoint, one by one: it answers `status` within the request timeout, has a leader and reports no
/// error (a member without quorum, or out of space, is not healthy).
pub async fn check_reachable(options: &EtcdOptions) -> Result<(), String> {
    let mut problems = Vec::new();
    for endpoint in &options.endpoints {
        let one = EtcdOptions { endpoints: vec![endpoint.clone()], ..options.clone() };
        let connect = async {
            let o = one.connect_options().map_err(|e| e.to_string())?;
            let mut c = etcd_client::Client::connect([endpoint], Some(o)).await.map_err(|e| e.to_string())?;
            c.status().await.map_err(|e| e.to_string())
        };
        let limit = options.request_timeout.max(Duration::from_secs(1)) * 2;
        match tokio::time::timeout(limit, connect).await {
            Ok(Ok(s)) if s.leader() == 0 => problems.push(format!("{endpoint}: no leader (no quorum)")),
            Ok(Ok(s)) if !s.errors().is_empty() => problems.push(format!("{endpoint}: {}", s.errors().join("; "))),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => problems.push(format!("{endpoint}: {e}")),
            Err(_) => problems.push(format!("{endpoint}: no answer within {} s", limit.as_secs())),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("ETCD_ENDPOINTS: not every member is reachable and healthy: {}", problems.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn endpoint_lists() {
        assert_eq!(check_endpoints(&list(&["http://127.0.0.1:2379"])), Ok(false));
        assert_eq!(check_endpoints(&list(&["https://a:2379", "https://b:2379", "https://c:2379"])), Ok(true));
        let two = check_endpoints(&list(&["http://a:2379", "http://b:2379"])).unwrap_err();
        assert!(two.contains("2 members"), "{two}");
        assert!(check_endpoints(&list(&["http://a:2379", "https://b:2379", "http://c:2379"]))
            .unwrap_err()
            .contains("mixes"));
        for bad in ["a:2379", "tcp://a:2379", "http://a", "http://:2379", "http://a:0", "http://a:2379/x/y:1"] {
            let e = check_endpoints(&list(&[bad])).unwrap_err();
            assert!(e.starts_with("ETCD_ENDPOINTS"), "{bad}: {e}");
        }
        assert!(check_endpoints(&[]).is_err());
    }

    #[test]
    fn prefixes() {
        assert!(check_prefix("/witness-trap/").is_ok());
        assert!(check_prefix("/prod/wt/").is_ok());
        for bad in ["", "/", "witness-trap/", "/witness-trap", "/a//b/", "/a b/"] {
            assert!(check_prefix(bad).unwrap_err().starts_with("ETCD_PREFIX"), "{bad}");
        }
    }
}
