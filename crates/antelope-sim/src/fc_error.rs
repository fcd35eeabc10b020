//! The error replies of a simulated nodeos, shaped as spring's `http_plugin` writes them
//! (antelope-protocol.md §6 "Error shape"): `{"code":<http>,"message":…,"error":{"code":<fc code>,"name":…,
//! "what":…,"details":[{"message","file","line_number","method"}]}}`. Shared by the server and the push checks;
//! the HTTP status and message follow the exception (`handle_exception`): unknown block 400, unsatisfied
//! authorization 401, duplicate 409, everything else 500.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// fc / chain exception codes (spring `exceptions.hpp`).
pub mod code {
    pub const ASSERT: i64 = 10;
    pub const PACKED_TRANSACTION_TYPE: i64 = 3_010_010;
    pub const TRANSACTION: i64 = 3_040_000;
    pub const EXPIRED_TX: i64 = 3_040_005;
    pub const TX_EXP_TOO_FAR: i64 = 3_040_006;
    pub const INVALID_REF_BLOCK: i64 = 3_040_007;
    pub const TX_DUPLICATE: i64 = 3_040_008;
    pub const EOSIO_ASSERT_MESSAGE: i64 = 3_050_003;
    pub const ACCOUNT_QUERY: i64 = 3_060_002;
    pub const CONTRACT_TABLE_QUERY: i64 = 3_060_003;
    pub const TX_CPU_USAGE_EXCEEDED: i64 = 3_080_004;
    pub const UNSATISFIED_AUTHORIZATION: i64 = 3_090_003;
    pub const MISSING_AUTH: i64 = 3_090_004;
    pub const IRRELEVANT_AUTH: i64 = 3_090_005;
    pub const TX_IRRELEVANT_SIG: i64 = 3_090_006;
    pub const UNKNOWN_BLOCK: i64 = 3_100_002;
    pub const INVALID_HTTP_REQUEST: i64 = 3_200_006;
}

/// One error reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FcError {
    pub http: u16,
    /// The top-level `message` ("Internal Service Error", "Unknown Block", …).
    pub message: &'static str,
    pub code: i64,
    pub name: &'static str,
    pub what: &'static str,
    /// `details[0].message`.
    pub detail: String,
    pub file: &'static str,
    pub method: &'static str,
}

impl FcError {
    /// A 500 "Internal Service Error" (what `handle_exception` answers for any other fc exception).
    pub fn internal(code: i64, name: &'static str, what: &'static str, detail: impl Into<String>) -> Self {
        Self {
            http: 500,
            message: "Internal Service Error",
            code,
            name,
            what,
            detail: detail.into(),
            file: "controller.cpp",
            method: "push_transaction",
        }
    }

    fn at(mut self, file: &'static str, method: &'static str) -> Self {
        self.file = file;
        self.method = method;
        self
    }

    pub fn unknown_block(num: impl std::fmt::Display) -> Self {
        Self {
            http: 400,
            message: "Unknown Block",
            ..Self::internal(code::UNKNOWN_BLOCK, "unknown_block_exception", "Unknown block", "")
        }
        .detail(format!("Could not find block: {num}"))
        .at("chain_plugin.cpp", "get_block_info")
    }

    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self {
            http: 400,
            message: "Invalid Request",
            ..Self::internal(code::INVALID_HTTP_REQUEST, "invalid_http_request", "invalid http request", detail)
        }
        .at("http_plugin.cpp", "parse_params")
    }

    pub fn unknown_account(account: &str) -> Self {
        Self {
            http: 400,
            message: "Invalid Request",
            ..Self::internal(
                code::ACCOUNT_QUERY,
                "account_query_exception",
                "Account Query Exception",
                format!("fail to retrieve account for {account}"),
            )
        }
        .at("chain_plugin.cpp", "get_account")
    }

    pub fn table_query(detail: impl Into<String>) -> Self {
        Self::internal(
            code::CONTRACT_TABLE_QUERY,
            "contract_table_query_exception",
            "Contract Table Query Exception",
            detail,
        )
        .at("chain_plugin.cpp", "get_table_rows")
    }

    pub fn packed_trx(detail: impl Into<String>) -> Self {
        Self::internal(
            code::PACKED_TRANSACTION_TYPE,
            "packed_transaction_type_exception",
            "Invalid packed transaction",
            detail,
        )
        .at("transaction.cpp", "packed_transaction")
    }

    /// fc's `FC_ASSERT` (e.g. "signature is not canonical").
    pub fn assert(detail: impl Into<String>) -> Self {
        Self::internal(code::ASSERT, "assert_exception", "Assert Exception", detail)
            .at("elliptic_secp256k1.cpp", "public_key")
    }

    pub fn transaction(detail: impl Into<String>) -> Self {
        Self::internal(code::TRANSACTION, "transaction_exception", "Transaction exception", detail)
            .at("transaction_context.cpp", "validate_referenced_accounts")
    }

    pub fn expired(expiration: &str, pending_block_time: &str) -> Self {
        Self::internal(
            code::EXPIRED_TX,
            "expired_tx_exception",
            "Expired Transaction",
            format!(
                "transaction has expired, expiration is {expiration} and pending block time is {pending_block_time}"
            ),
        )
        .at("controller.cpp", "validate_expiration")
    }

    pub fn too_far(reference: &str, expiration: &str, max_secs: u32) -> Self {
        Self::internal(
            code::TX_EXP_TOO_FAR,
            "tx_exp_too_far_exception",
            "Transaction Expiration Too Far",
            format!(
                "Transaction expiration is too far in the future relative to the reference time of {reference}, \
                 expiration is {expiration} and the maximum transaction lifetime is {max_secs} seconds"
            ),
        )
        .at("controller.cpp", "validate_expiration")
    }

    pub fn invalid_ref_block(ref_block_num: u16, ref_block_prefix: u32) -> Self {
        Self::internal(
            code::INVALID_REF_BLOCK,
            "invalid_ref_block_exception",
            "Invalid Reference Block",
            format!("Transaction's reference block did not match. Is this transaction from a different fork? (ref_block_num {ref_block_num}, ref_block_prefix {ref_block_prefix})"),
        )
        .at("controller.cpp", "validate_tapos")
    }

    pub fn duplicate(txid: &str) -> Self {
        Self {
            http: 409,
            message: "Conflict",
            ..Self::internal(
                code::TX_DUPLICATE,
                "tx_duplicate",
                "Duplicate transaction",
                format!("duplicate transaction {txid}"),
            )
        }
        .at("producer_plugin.cpp", "on_incoming_transaction_async")
    }

    pub fn unsatisfied(auth: &str) -> Self {
        Self {
            http: 401,
            message: "UnAuthorized",
            ..Self::internal(
                code::UNSATISFIED_AUTHORIZATION,
                "unsatisfied_authorization",
                "Provided keys, permissions, and delays do not satisfy declared authorizations",
                format!("transaction declares authority '{auth}', but does not have signatures for it."),
            )
        }
        .at("authorization_manager.cpp", "check_authorization")
    }

    pub fn irrelevant_auth(auth: &str, min: &str) -> Self {
        Self::internal(
            code::IRRELEVANT_AUTH,
            "irrelevant_auth_exception",
            "Irrelevant authority included",
            format!("action declares irrelevant authority '{auth}'; minimum authority is {min}"),
        )
        .at("authorization_manager.cpp", "check_authorization")
    }

    pub fn irrelevant_sig(keys: &str) -> Self {
        Self::internal(
            code::TX_IRRELEVANT_SIG,
            "tx_irrelevant_sig",
            "Irrelevant signature included",
            format!("transaction bears irrelevant signatures from these keys: {keys}"),
        )
        .at("authorization_manager.cpp", "check_authorization")
    }

    pub fn missing_auth(account: &str) -> Self {
        Self::internal(
            code::MISSING_AUTH,
            "missing_auth_exception",
            "Missing required authority",
            format!("missing authority of {account}"),
        )
        .at("apply_context.cpp", "require_authorization")
    }

    pub fn cpu_exceeded(billable_us: i64) -> Self {
        Self::internal(
            code::TX_CPU_USAGE_EXCEEDED,
            "tx_cpu_usage_exceeded",
            "Transaction exceeded the current CPU usage limit imposed on the transaction",
            format!("billed CPU time (200 us) is greater than the maximum billable CPU time for the transaction ({billable_us} us)"),
        )
        .at("transaction_context.cpp", "validate_account_cpu_usage")
    }

    /// A contract `check(false, msg)`.
    pub fn assert_message(msg: &str) -> Self {
        Self::internal(
            code::EOSIO_ASSERT_MESSAGE,
            "eosio_assert_message_exception",
            "eosio_assert_message assertion failure",
            format!("assertion failure with message: {msg}"),
        )
        .at("cf_system.cpp", "eosio_assert")
    }

    fn detail(mut self, detail: String) -> Self {
        self.detail = detail;
        self
    }

    /// The body.
    pub fn to_json(&self) -> Value {
        json!({
            "code": self.http,
            "message": self.message,
            "error": {
                "code": self.code,
                "name": self.name,
                "what": self.what,
                "details": [{"message": self.detail, "file": self.file, "line_number": 3000 + (self.code % 1000), "method": self.method}],
            },
        })
    }

    /// The whole HTTP reply.
    pub fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, [(header::CONTENT_TYPE, "application/json")], self.to_json().to_string()).into_response()
    }
}

/// 404 for a path no plugin registered (`Unknown Endpoint`).
pub fn unknown_endpoint() -> Response {
    let body = json!({"code": 404, "message": "Not Found", "error": {"code": 0, "name": "exception", "what": "unspecified",
        "details": [{"message": "Unknown Endpoint", "file": "beast_http_session.hpp", "line_number": 248, "method": "handle_request"}]}});
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_shape() {
        let v = FcError::unsatisfied("{\"actor\":\"alice\",\"permission\":\"failover\"}").to_json();
        assert_eq!(v["code"], 401);
        assert_eq!(v["error"]["code"], 3_090_003);
        assert_eq!(v["error"]["name"], "unsatisfied_authorization");
        assert!(v["error"]["details"][0]["message"].as_str().unwrap().contains("does not have signatures"));
        for k in ["message", "file", "line_number", "method"] {
            assert!(v["error"]["details"][0].get(k).is_some(), "{k}");
        }
        assert_eq!(FcError::unknown_block(5).to_json()["message"], "Unknown Block");
        assert_eq!(FcError::duplicate("ab").http, 409);
    }
}
