//! The one error shape of the API: RFC 9457 `application/problem+json`.
//!
//! Every failure a client can provoke ends here: service errors become an [`ApiError`]
//! (`From<service::Error>`); everything poem or poem-openapi rejects before a handler runs
//! (bad JSON, wrong types, bad ids, a missing bearer token) and everything outside any
//! operation (unknown route, wrong method, oversize body, a panic) reaches [`render_error`]
//! through the app's `catch_all_error`. (poem-openapi's `bad_request_handler` would not help:
//! for a `Result<T, E>` it takes the handler from `T`, never from the error type.) Internal causes are logged, never
//! shown: a client sees only the stable `code` and safe text.

use poem::Response;
use poem::error::ResponseError;
use poem::http::{HeaderValue, StatusCode, header};
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
};
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Enum, Object};

use crate::domain::FieldError;
use crate::service::{AuthError, Error as ServiceError};

pub const PROBLEM_JSON: &str = "application/problem+json";
const WWW_AUTHENTICATE: &str = "Bearer realm=\"tasker\"";

/// Stable, machine-readable error codes. Clients branch on these, never on `title` or `detail`.
///
/// | code | status | meaning |
/// |---|---|---|
/// | `bad_request` | 400 | the request could not be understood (e.g. a header with bytes HTTP forbids) |
/// | `invalid_body` | 400 | the body is empty, not valid JSON, or not a JSON object |
/// | `invalid_parameter` | 400 | a path or query parameter is malformed (e.g. not a UUID) or out of range |
/// | `unauthenticated` | 401 | no bearer token was sent |
/// | `invalid_token` | 401 | the token is malformed, tampered, or not HS256 |
/// | `token_expired` | 401 | the access token expired: refresh it |
/// | `session_revoked` | 401 | the session was signed out, revoked or replaced |
/// | `invalid_credentials` | 401 | email or password is wrong |
/// | `invalid_refresh_token` | 401 | the refresh token is unknown, expired or was reused |
/// | `account_disabled` | 403 | the account is disabled by an admin |
/// | `forbidden` | 403 | you may see this but not do that |
/// | `registration_closed` | 403 | this server does not let anyone register (`--registration closed`) |
/// | `invitation_required` | 403 | registration is by invitation: send `invitation_token`, the token of a pending invitation |
/// | `not_found` | 404 | no such resource, or you may not see it; or no such route |
/// | `method_not_allowed` | 405 | the route exists but not with this method |
/// | `email_taken` | 409 | an account with this email exists |
/// | `last_owner` | 409 | the change would leave a team without an owner |
/// | `already_invited` | 409 | this email already has a pending invitation to the team |
/// | `already_member` | 409 | this person is already a member of the team |
/// | `invitation_closed` | 409 | the invitation was answered, revoked or has expired |
/// | `inviter_lacks_role` | 409 | the inviter no longer holds a role that may grant the invited one (accepting changed nothing) |
/// | `project_archived` | 409 | the project is archived (read-only) |
/// | `request_timeout` | 408 | the request body stopped arriving (`--body-timeout`); the connection closes |
/// | `precondition_failed` | 412 | `If-Match` names an older version: nothing changed; the problem's `current` is the resource as it is now (its tag in `ETag`) |
/// | `payload_too_large` | 413 | the body (or an uploaded file) is over its limit |
/// | `uri_too_long` | 414 | the request's URI is too long; the connection closes |
/// | `quota_exceeded` | 413 | the upload would take your attachments over your storage quota |
/// | `unsupported_media_type` | 415 | the body is not `application/json` (uploads: not `multipart/form-data`) |
/// | `range_not_satisfiable` | 416 | the `Range` starts past the end of the file |
/// | `upgrade_required` | 426 | `/ws` was called without a WebSocket upgrade |
/// | `validation_failed` | 422 | fields break the rules, or are missing, `null`, of the wrong type or unknown to the schema; see `errors[]` |
/// | `idempotency_key_reused` | 422 | the `Idempotency-Key` was used for a different request |
/// | `idempotent_resource_gone` | 410 | a retry with this `Idempotency-Key`: what its first request created has since been deleted |
/// | `rate_limited` | 429 | too many requests; see `Retry-After` |
/// | `headers_too_large` | 431 | the request's headers are too large or too many; the connection closes |
/// | `internal_error` | 500 | a bug or a storage failure; it is logged |
/// | `service_unavailable` | 503 | the server is busy; retry shortly |
/// | `index_rebuilding` | 503 | the search index is being rebuilt; retry shortly |
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    InvalidBody,
    InvalidParameter,
    Unauthenticated,
    InvalidToken,
    TokenExpired,
    SessionRevoked,
    InvalidCredentials,
    InvalidRefreshToken,
    AccountDisabled,
    Forbidden,
    RegistrationClosed,
    InvitationRequired,
    NotFound,
    MethodNotAllowed,
    EmailTaken,
    LastOwner,
    AlreadyInvited,
    AlreadyMember,
    InvitationClosed,
    InviterLacksRole,
    ProjectArchived,
    RequestTimeout,
    PreconditionFailed,
    PayloadTooLarge,
    UriTooLong,
    QuotaExceeded,
    UnsupportedMediaType,
    RangeNotSatisfiable,
    UpgradeRequired,
    ValidationFailed,
    IdempotencyKeyReused,
    IdempotentResourceGone,
    RateLimited,
    HeadersTooLarge,
    InternalError,
    ServiceUnavailable,
    IndexRebuilding,
    MailNotConfigured,
    InvalidLink,
}

/// One invalid field.
#[derive(Object, Debug, Clone)]
pub struct FieldProblem {
    /// The field's JSON path in the request body, e.g. `email` or `labels[2]`.
    pub field: String,
    /// What is wrong with it, e.g. `must be at most 100 characters`.
    pub message: String,
}

/// An error response (RFC 9457 problem details).
#[derive(Object, Debug, Clone)]
pub struct Problem {
    /// The HTTP status code, repeated for convenience.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Short human-readable summary of the kind of problem.
    pub title: String,
    /// Human-readable explanation of this occurrence.
    pub detail: String,
    /// The invalid fields, for `validation_failed`; empty otherwise.
    pub errors: Vec<FieldProblem>,
}

impl Problem {
    pub fn new(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            status: status.as_u16(),
            code,
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let mut problem = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ValidationFailed,
            "one or more fields are invalid",
        );
        problem.errors = errors
            .into_iter()
            .map(|e| FieldProblem {
                field: e.field,
                message: e.message,
            })
            .collect();
        problem
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Classifies an error raised by poem or poem-openapi before a handler ran.
    pub fn from_poem(err: poem::Error) -> Self {
        let err = match err.downcast::<Problem>() {
            Ok(problem) => return problem,
            Err(err) => err,
        };
        let status = err.status();
        let (code, detail) = if let Some(payload) = err.downcast_ref::<ParseRequestPayloadError>() {
            // A JSON body's fields are named by `validation` before this; what is left is
            // another kind of body (a multipart upload) that does not parse.
            (
                ErrorCode::InvalidBody,
                format!("the body cannot be read: {}", payload.reason),
            )
        } else if let Some(path) = err.downcast_ref::<ParsePathError>() {
            // The path error names poem's internal route parameter; the reason is what helps.
            (
                ErrorCode::InvalidParameter,
                format!("invalid path parameter: {}", path.reason),
            )
        } else if err.is::<poem::error::ParsePathError>() {
            (
                ErrorCode::InvalidParameter,
                "invalid path parameter: not valid percent-encoded UTF-8".to_string(),
            )
        } else if err.is::<ParseParamError>() {
            (ErrorCode::InvalidParameter, err.to_string())
        } else if err.is::<ContentTypeError>() {
            (
                ErrorCode::UnsupportedMediaType,
                format!("{err}; send application/json"),
            )
        } else if err.is::<AuthorizationError>() {
            (
                ErrorCode::Unauthenticated,
                "send `Authorization: Bearer <token>`".to_string(),
            )
        } else {
            match status {
                StatusCode::NOT_FOUND => (ErrorCode::NotFound, "no such route".to_string()),
                StatusCode::METHOD_NOT_ALLOWED => (
                    ErrorCode::MethodNotAllowed,
                    "this route does not accept this method".to_string(),
                ),
                StatusCode::PAYLOAD_TOO_LARGE => (
                    ErrorCode::PayloadTooLarge,
                    "the request body is too large".to_string(),
                ),
                StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                    ErrorCode::UnsupportedMediaType,
                    "unsupported content type".to_string(),
                ),
                s if s.is_server_error() => {
                    tracing::error!(error = %err, "unhandled server error");
                    (
                        ErrorCode::InternalError,
                        "an internal error occurred; it has been logged".to_string(),
                    )
                }
                _ => (ErrorCode::BadRequest, err.to_string()),
            }
        };
        Problem::new(status, code, detail)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}: {}", self.status, self.code, self.detail)
    }
}

impl std::error::Error for Problem {}

/// Lets a `Problem` travel as a `poem::Error` (from the bearer checker or a middleware) and
/// render itself with the same body an operation's `ApiError` has.
impl ResponseError for Problem {
    fn status(&self) -> StatusCode {
        self.status_code()
    }

    fn as_response(&self) -> Response {
        let mut response = Response::builder()
            .status(self.status_code())
            .content_type(PROBLEM_JSON)
            .body(self.to_json_string());
        if self.status == 401 {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(WWW_AUTHENTICATE),
            );
        }
        response
    }
}

/// Every error an operation can answer with. One type for all operations, so every documented
/// operation lists the same complete set and the spec never misses a status it can return.
#[derive(ApiResponse, Debug)]
pub enum ApiError {
    /// Malformed request: a body that is empty, not JSON or not a JSON object, a bad id or
    /// parameter (`bad_request`, `invalid_body`, `invalid_parameter`).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// Missing, invalid, expired or revoked credentials.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// Allowed to see but not to do this (`forbidden`, `account_disabled`; on register
    /// `registration_closed`, `invitation_required`).
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource, or not visible to the caller (`not_found`).
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// Conflicts with existing data (`email_taken`).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// A retry with an `Idempotency-Key` whose first request created something since deleted
    /// (`idempotent_resource_gone`): send a new key to create it again.
    #[oai(status = 410, content_type = "application/problem+json")]
    Gone(Json<Problem>),
    /// The body is over its limit (`payload_too_large`).
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body is not JSON (`unsupported_media_type`).
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// Fields break the rules, or are missing, `null`, of the wrong type or unknown; each is
    /// listed in `errors` by its JSON path (`validation_failed`).
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// Too many requests (`rate_limited`).
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>),
    /// An internal error; it is logged (`internal_error`).
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The server is busy (`service_unavailable`).
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        let body = Json(problem);
        match body.0.status {
            400 => ApiError::BadRequest(body),
            401 => ApiError::Unauthorized(body, WWW_AUTHENTICATE.to_string()),
            403 => ApiError::Forbidden(body),
            404 => ApiError::NotFound(body),
            409 => ApiError::Conflict(body),
            410 => ApiError::Gone(body),
            413 => ApiError::PayloadTooLarge(body),
            415 => ApiError::UnsupportedMediaType(body),
            422 => ApiError::Unprocessable(body),
            429 => ApiError::TooManyRequests(body),
            503 => ApiError::Unavailable(body),
            _ => ApiError::Internal(body),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        Problem::from(err).into()
    }
}

impl From<ServiceError> for Problem {
    fn from(err: ServiceError) -> Self {
        use StatusCode as S;
        match err {
            ServiceError::Validation(errors) => Problem::validation(errors),
            ServiceError::Unauthenticated(AuthError::AccountDisabled) => Problem::new(
                S::FORBIDDEN,
                ErrorCode::AccountDisabled,
                AuthError::AccountDisabled.to_string(),
            ),
            ServiceError::Unauthenticated(reason) => {
                let code = match reason {
                    AuthError::InvalidCredentials => ErrorCode::InvalidCredentials,
                    AuthError::InvalidToken => ErrorCode::InvalidToken,
                    AuthError::TokenExpired => ErrorCode::TokenExpired,
                    AuthError::SessionRevoked => ErrorCode::SessionRevoked,
                    AuthError::InvalidRefreshToken | AuthError::AccountDisabled => {
                        ErrorCode::InvalidRefreshToken
                    }
                };
                Problem::new(S::UNAUTHORIZED, code, reason.to_string())
            }
            ServiceError::NotFound(what) => Problem::new(
                S::NOT_FOUND,
                ErrorCode::NotFound,
                format!("{what} not found"),
            ),
            ServiceError::EmailTaken => {
                Problem::new(S::CONFLICT, ErrorCode::EmailTaken, err.to_string())
            }
            ServiceError::LastOwner => {
                Problem::new(S::CONFLICT, ErrorCode::LastOwner, err.to_string())
            }
            ServiceError::AlreadyInvited => {
                Problem::new(S::CONFLICT, ErrorCode::AlreadyInvited, err.to_string())
            }
            ServiceError::AlreadyMember => {
                Problem::new(S::CONFLICT, ErrorCode::AlreadyMember, err.to_string())
            }
            ServiceError::InvitationClosed => {
                Problem::new(S::CONFLICT, ErrorCode::InvitationClosed, err.to_string())
            }
            ServiceError::InviterLacksRole => {
                Problem::new(S::CONFLICT, ErrorCode::InviterLacksRole, err.to_string())
            }
            ServiceError::ProjectArchived => {
                Problem::new(S::CONFLICT, ErrorCode::ProjectArchived, err.to_string())
            }
            ServiceError::IdempotencyKeyReused => Problem::new(
                S::UNPROCESSABLE_ENTITY,
                ErrorCode::IdempotencyKeyReused,
                err.to_string(),
            ),
            ServiceError::IdempotentResourceGone => {
                Problem::new(S::GONE, ErrorCode::IdempotentResourceGone, err.to_string())
            }
            ServiceError::RegistrationClosed => {
                Problem::new(S::FORBIDDEN, ErrorCode::RegistrationClosed, err.to_string())
            }
            ServiceError::InvitationRequired => {
                Problem::new(S::FORBIDDEN, ErrorCode::InvitationRequired, err.to_string())
            }
            ServiceError::Forbidden(ref reason) => {
                Problem::new(S::FORBIDDEN, ErrorCode::Forbidden, reason.clone())
            }
            ServiceError::QuotaExceeded(_) => Problem::new(
                S::PAYLOAD_TOO_LARGE,
                ErrorCode::QuotaExceeded,
                err.to_string(),
            ),
            ServiceError::UploadTooLarge(_) => Problem::new(
                S::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                err.to_string(),
            ),
            ServiceError::MailNotConfigured => Problem::new(
                S::SERVICE_UNAVAILABLE,
                ErrorCode::MailNotConfigured,
                err.to_string(),
            ),
            ServiceError::InvalidLink => {
                Problem::new(S::BAD_REQUEST, ErrorCode::InvalidLink, err.to_string())
            }
            ServiceError::BadRequest(ref reason) => {
                Problem::new(S::BAD_REQUEST, ErrorCode::BadRequest, reason.clone())
            }
            ServiceError::Storage(ref cause) => {
                tracing::error!(error = %cause, "attachment storage failed");
                Problem::new(
                    S::INTERNAL_SERVER_ERROR,
                    ErrorCode::InternalError,
                    "an internal error occurred; it has been logged",
                )
            }
            ServiceError::Busy => Problem::new(
                S::SERVICE_UNAVAILABLE,
                ErrorCode::ServiceUnavailable,
                err.to_string(),
            ),
            ServiceError::IndexRebuilding { .. } => Problem::new(
                S::SERVICE_UNAVAILABLE,
                ErrorCode::IndexRebuilding,
                err.to_string(),
            ),
            ServiceError::Search(ref cause) => {
                tracing::error!(error = %cause, "search failed");
                Problem::new(
                    S::INTERNAL_SERVER_ERROR,
                    ErrorCode::InternalError,
                    "an internal error occurred; it has been logged",
                )
            }
            ServiceError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                Problem::new(
                    S::INTERNAL_SERVER_ERROR,
                    ErrorCode::InternalError,
                    "an internal error occurred; it has been logged",
                )
            }
        }
    }
}

/// Renders any error that escaped an operation (unknown route, wrong method, a middleware's
/// rejection, a panic) as a problem. Responses an operation already built are kept.
pub fn render_error(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    // The matched route template, for the request log and metrics.
    let pattern = err.data::<poem::PathPattern>().cloned();
    let mut response = Problem::from_poem(err).as_response();
    if let Some(pattern) = pattern {
        response.set_data(pattern);
    }
    response
}

pub type ApiResult<T> = Result<T, ApiError>;
