//! JSON-RPC 2.0 envelopes shared by the cluster endpoint and the admin socket: request checks, result and error
//! objects with the codes Agave's `jsonrpc-core` and `RpcCustomError` use.

use serde_json::{json, Map, Value};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// `RpcCustomError::NodeUnhealthy`.
pub const NODE_UNHEALTHY: i64 = -32005;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), data: None }
    }
    pub fn parse() -> Self {
        Self::new(PARSE_ERROR, "Parse error")
    }
    pub fn invalid_request() -> Self {
        Self::new(INVALID_REQUEST, "Invalid request")
    }
    pub fn method_not_found() -> Self {
        Self::new(METHOD_NOT_FOUND, "Method not found")
    }
    pub fn invalid_params(detail: impl std::fmt::Display) -> Self {
        Self::new(INVALID_PARAMS, format!("Invalid params: {detail}"))
    }
    fn to_value(&self) -> Value {
        let mut o = Map::new();
        o.insert("code".into(), self.code.into());
        o.insert("message".into(), self.message.clone().into());
        if let Some(d) = &self.data {
            o.insert("data".into(), d.clone());
        }
        Value::Object(o)
    }
}

/// A response object for request `id`.
pub fn response(id: &Value, outcome: Result<Value, RpcError>) -> Value {
    match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "result": result, "id": id}),
        Err(e) => json!({"jsonrpc": "2.0", "error": e.to_value(), "id": id}),
    }
}

/// A checked request: its id (null when absent or unusable), method and params (null when absent).
pub struct Request<'a> {
    pub id: Value,
    pub method: &'a str,
    pub params: &'a Value,
}

/// Check a request object's envelope: `"jsonrpc":"2.0"`, a string method, an id that is a number, string or
/// null. Err carries the id to answer with.
pub fn request(v: &Value) -> Result<Request<'_>, (Value, RpcError)> {
    static NULL: Value = Value::Null;
    let Some(obj) = v.as_object() else { return Err((Value::Null, RpcError::invalid_request())) };
    let id = match obj.get("id") {
        None => Value::Null,
        Some(id @ (Value::Number(_) | Value::String(_) | Value::Null)) => id.clone(),
        Some(_) => return Err((Value::Null, RpcError::invalid_request())),
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err((id, RpcError::invalid_request()));
    }
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        return Err((id, RpcError::invalid_request()));
    };
    Ok(Request { id, method, params: obj.get("params").unwrap_or(&NULL) })
}

/// Positional params: absent or null is none; anything but an array is invalid (Agave's methods take arrays).
pub fn positional(params: &Value) -> Result<&[Value], RpcError> {
    match params {
        Value::Null => Ok(&[]),
        Value::Array(a) => Ok(a),
        other => Err(RpcError::invalid_params(format!("invalid type: {}, expected a sequence", kind(other)))),
    }
}

/// The optional config object at `idx` (absent or null: empty).
pub fn config(params: &[Value], idx: usize) -> Result<Map<String, Value>, RpcError> {
    match params.get(idx) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(o)) => Ok(o.clone()),
        Some(other) => Err(RpcError::invalid_params(format!("invalid type: {}, expected a config map", kind(other)))),
    }
}

/// An optional field of a config object, with a type check.
pub fn opt_field<T>(cfg: &Map<String, Value>, name: &str, get: fn(&Value) -> Option<T>) -> Result<Option<T>, RpcError> {
    match cfg.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => get(v).map(Some).ok_or_else(|| RpcError::invalid_params(format!("invalid type for `{name}`"))),
    }
}

/// serde's name for a JSON value's type, for error texts.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "sequence",
        Value::Object(_) => "map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let ok = response(&json!(7), Ok(json!("ok")));
        assert_eq!(ok, json!({"jsonrpc":"2.0","result":"ok","id":7}));
        let mut e = RpcError::new(NODE_UNHEALTHY, "Node is unhealthy");
        e.data = Some(json!({}));
        let err = response(&json!(1), Err(e));
        assert_eq!(err["error"], json!({"code":-32005,"message":"Node is unhealthy","data":{}}));
        assert!(request(&json!({"jsonrpc":"1.0","method":"x","id":1})).is_err());
        assert!(request(&json!({"jsonrpc":"2.0","id":1})).is_err());
        assert!(request(&json!([1])).is_err());
        let v = json!({"jsonrpc":"2.0","method":"getSlot","id":"a"});
        let r = request(&v).ok().unwrap();
        assert_eq!((r.method, &r.id, r.params), ("getSlot", &json!("a"), &Value::Null));
        assert!(positional(&json!({"a":1})).is_err());
        assert!(config(&[json!(5)], 0).is_err());
    }
}
