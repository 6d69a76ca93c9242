//! `ApiError`: every way a JSON request of the operator API fails, with its status, in one
//! place. Handlers return it (or convert a `StoreError`, `AccountError` or `Refused` into it
//! with `?`); its `IntoResponse` writes `{"error": …}` and logs the collector's own failures
//! once, with their causes, without showing them to the caller.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::actions::accounts::AccountError;
use crate::actions::change::Refused;
use crate::store::StoreError;

/// A refused or failed API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400: the request is wrong; the message says how.
    Invalid(String),
    /// 401: no caller, or not one that may ask.
    Unauthorized(String),
    /// 404: the object named does not exist.
    NotFound(String),
    /// 409: the object is not in a state that allows the change.
    Conflict(String),
    /// 413: the body is larger than any operator route reads.
    TooLarge,
    /// 429: password hashing is at capacity; retry in a second.
    Busy(String),
    /// 500: the collector failed at `what` (logged with its cause).
    Internal { what: &'static str, cause: String },
    /// 503: the store failed (logged with its cause).
    Store(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// What the caller reads.
    pub fn message(&self) -> String {
        match self {
            ApiError::Invalid(m)
            | ApiError::Unauthorized(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::Busy(m) => m.clone(),
            ApiError::TooLarge => "request body too large".into(),
            ApiError::Internal { what, .. } => format!("{what} failed"),
            ApiError::Store(_) => "store unavailable".into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal { what, cause } => tracing::error!(error = %cause, "{what} failed in the API"),
            ApiError::Store(cause) => tracing::error!(error = %cause, "store error in the API"),
            _ => {}
        }
        let mut response = (self.status(), Json(serde_json::json!({ "error": self.message() }))).into_response();
        if matches!(self, ApiError::Busy(_)) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(common::report(&e))
    }
}

impl From<&StoreError> for ApiError {
    fn from(e: &StoreError) -> Self {
        ApiError::Store(common::report(e))
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid(m) => ApiError::Invalid(m),
            AccountError::Busy(m) => ApiError::Busy(m),
            AccountError::Hashing(cause) => ApiError::Internal { what: "password hashing", cause },
            AccountError::Store(e) => e.into(),
        }
    }
}

impl From<Refused> for ApiError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Invalid(m) => ApiError::Invalid(m),
            // A change's object that is not there ("no incident #7").
            Refused::Conflict(m) if m.starts_with("no ") => ApiError::NotFound(m),
            Refused::Conflict(m) => ApiError::Conflict(m),
            Refused::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn each_failure_has_its_status_and_hides_the_collectors_own_causes() {
        let hashing: ApiError = AccountError::Hashing("argon2: out of memory".into()).into();
        assert_eq!(
            (hashing.status(), hashing.message().as_str()),
            (StatusCode::INTERNAL_SERVER_ERROR, "password hashing failed")
        );
        let missing: ApiError = Refused::Conflict("no incident #7".into()).into();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let busy = ApiError::from(AccountError::Busy("hashing is busy".into())).into_response();
        assert_eq!(busy.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
        assert_eq!(ApiError::from(Refused::Conflict("already resolved".into())).status(), StatusCode::CONFLICT);
    }
}
