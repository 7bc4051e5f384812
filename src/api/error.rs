//! The admin API's errors and how they answer: a status code and a JSON
//! body `{"error": "..."}`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use thiserror::Error;

/// Why a request failed.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("this route needs the admin role")]
    Forbidden,
    #[error("no destination `{0}`")]
    NoDestination(String),
    #[error("no route {0}")]
    NoRoute(String),
    #[error("method {0} not allowed on {1}")]
    NoMethod(String, String),
    #[error("invalid query: {0}")]
    BadQuery(String),
    #[error("invalid destination: {0}")]
    Invalid(String),
    /// A request body that cannot be read or is not JSON (413 when too large).
    #[error("{1}")]
    Body(StatusCode, String),
    #[error("{0}")]
    Conflict(String),
    #[error("the relay is shutting down")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NoDestination(_) | ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::NoMethod(..) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadQuery(_) | ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::Body(status, _) => *status,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.to_string() }));
        let mut resp = (self.status(), body).into_response();
        if matches!(self, ApiError::Unauthorized) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}
