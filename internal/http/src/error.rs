//! API errors: every failure is a JSON `{"error": "..."}` with a status chosen in one place.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use tiercache_master::protocol::RemoteError;
use tiercache_master::MasterError;

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request: no key, empty key, bad ttl...
    #[error("{0}")]
    BadRequest(String),
    /// No such key or route.
    #[error("{0}")]
    NotFound(String),
    /// Key or value over its limit.
    #[error("{0}")]
    TooLarge(String),
    /// Admin call without the admin token.
    #[error("missing or wrong admin token (send Authorization: Bearer <ADMIN_TOKEN>)")]
    Unauthorized,
    /// Client API call without the client password, when one is set.
    #[error("missing or wrong client password (send Authorization: Bearer <CLIENT_PASSWORD>)")]
    ClientUnauthorized,
    /// Method not supported on this route.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Not enough auxiliaries reachable.
    #[error("{0}")]
    Unavailable(String),
    /// The cluster is not in a state that allows it (a member too old for a setting).
    #[error("{0}")]
    Conflict(String),
    /// An admin fan-out failed on some auxiliaries: the message, and the per-node results
    /// that go into the body beside it.
    #[error("{message}")]
    Partial {
        /// What failed.
        message: String,
        /// The rest of the body (per-node results).
        body: serde_json::Value,
    },
    /// `/health` of a master that cannot serve: the health body itself.
    #[error("not ready")]
    NotReady(serde_json::Value),
}

impl From<MasterError> for ApiError {
    fn from(e: MasterError) -> Self {
        match &e {
            MasterError::Refused { error: RemoteError::TooLarge { .. }, .. } => ApiError::TooLarge(e.to_string()),
            MasterError::NoAuxiliaries
            | MasterError::Quorum { .. }
            | MasterError::Refused { .. }
            | MasterError::NotRecorded(_)
            | MasterError::OlderRelease(_) => ApiError::Unavailable(e.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized | ApiError::ClientUnauthorized => StatusCode::UNAUTHORIZED,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) | ApiError::Partial { .. } | ApiError::NotReady(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            ApiError::Partial { message, body } => {
                let mut body = body.clone();
                body["error"] = message.clone().into();
                body
            }
            ApiError::NotReady(body) => body.clone(),
            other => serde_json::json!({ "error": other.to_string() }),
        };
        HttpResponse::build(self.status_code()).json(body)
    }
}

pub(crate) async fn not_found_route() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such route; see /health, /metrics, /nodes, /cache/".into()))
}
