//! The errors a simulated node answers with, shaped as hived's: JSON-RPC error codes and fc exceptions
//! with their log stack (protocol.md §5.9). Shared by the server and the broadcast checks.

use serde_json::{json, Value};

/// JSON-RPC error codes used by hived's `json_rpc_plugin`.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    /// `JSON_RPC_SERVER_ERROR`: fc exceptions that are not asserts.
    pub const SERVER_ERROR: i64 = -32000;
    /// `JSON_RPC_ERROR_DURING_CALL`: `fc::assert_exception` and subclasses.
    pub const ERROR_DURING_CALL: i64 = -32003;
}

/// The `error` member of a JSON-RPC response (§5.9).
#[derive(Debug, Clone, PartialEq)]
pub struct RpcFailure {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcFailure {
    /// An error with no fc payload (envelope problems).
    pub fn plain(code: i64, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), data: None }
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.data {
            e["data"] = d.clone();
        }
        e
    }
}

/// One fc exception as hived serialises it: `what()` plus a stack of log messages.
#[derive(Debug, Clone)]
pub struct FcError {
    /// JSON-RPC code (-32003 for asserts, -32000 otherwise; differs between chains, §5.9).
    pub rpc_code: i64,
    /// fc code (10 for `assert_exception`, 3010000 for `tx_missing_active_auth`, …).
    pub fc_code: i64,
    pub name: &'static str,
    pub what: &'static str,
    /// Stack entries: (format string with `${var}` placeholders, its data, source method).
    pub stack: Vec<(String, Value, &'static str)>,
}

impl FcError {
    pub fn new(rpc_code: i64, fc_code: i64, name: &'static str, what: &'static str) -> Self {
        Self { rpc_code, fc_code, name, what, stack: Vec::new() }
    }

    /// Append a log message (the innermost first, as fc does).
    pub fn log(mut self, format: impl Into<String>, data: Value, method: &'static str) -> Self {
        self.stack.push((format.into(), data, method));
        self
    }

    /// The JSON-RPC error object; `timestamp` is the node's time text.
    pub fn into_failure(self, timestamp: &str) -> RpcFailure {
        // `message` = what() ":" the formatted log messages (one per line), as fc's to_string does.
        let formatted: Vec<String> = self.stack.iter().map(|(f, d, _)| substitute(f, d)).collect();
        let message = format!("{}:{}", self.what, formatted.join("\n"));
        let stack: Vec<Value> = self
            .stack
            .iter()
            .enumerate()
            .map(|(i, (format, data, method))| {
                json!({
                    "context": {"level": "error", "file": "database.cpp", "line": 4000 + i, "method": method,
                                "hostname": "", "thread_name": "th_a", "timestamp": timestamp},
                    "format": format,
                    "data": data,
                })
            })
            .collect();
        let data = json!({"code": self.fc_code, "name": self.name, "message": self.what, "stack": stack});
        RpcFailure { code: self.rpc_code, message, data: Some(data) }
    }
}

/// Replace `${name}` in an fc format string with the value from `data` (strings unquoted).
fn substitute(format: &str, data: &Value) -> String {
    let mut out = String::new();
    let mut rest = format;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let key = &after[..end];
                match data.get(key) {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(v) => out.push_str(&v.to_string()),
                    None => out.push_str(&rest[start..start + 2 + end + 1]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_fc_placeholders() {
        assert_eq!(
            substitute("Missing Active Authority ${id}", &json!({"id": "alice"})),
            "Missing Active Authority alice"
        );
        assert_eq!(substitute("a ${n} b ${missing}", &json!({"n": 3})), "a 3 b ${missing}");
        assert_eq!(substitute("open ${", &json!({})), "open ${");
    }
}
