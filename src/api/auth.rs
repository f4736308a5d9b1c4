//! `/auth`: registration, login, token refresh, logout, profile and sessions.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::error::ApiResult;
use super::security::BearerAuth;
use super::text::Text;
use crate::domain::user::{
    EMAIL_MAX_CHARS, NAME_MAX_CHARS, PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS,
};

/// Email as documented in the spec (the domain parser enforces it).
type EmailText = Text<1, EMAIL_MAX_CHARS>;
/// Display name as documented in the spec.
type NameText = Text<1, NAME_MAX_CHARS>;
/// Password as documented in the spec: the byte limit implies this character limit.
type PasswordText = Text<PASSWORD_MIN_CHARS, PASSWORD_MAX_BYTES>;
use super::page::{Page, PageItem};
use super::spec::{Documented, OperationErrors};
use super::users::UserBody;
use super::{ApiTags, NoContent};
use crate::domain::{Session, SessionId};
use crate::service::{
    ClientInfo, Credentials, ProfileUpdate, Registration, Service, SessionTokens,
};

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Email address; stored lower-cased, at most 254 characters, unique.
    pub email: EmailText,
    /// Display name, 1 to 100 characters.
    pub name: NameText,
    /// At least 8 characters and at most 72 bytes in UTF-8 (bcrypt's limit; never truncated).
    #[oai(write_only)]
    pub password: PasswordText,
    /// The accept token of an invitation (the `token` of its accept link). Needed when the
    /// server's registration is invite-only; the new account claims that invitation (in any
    /// mode), so it is listed in `GET /invitations` and can be answered.
    #[oai(write_only)]
    pub invitation_token: Option<Text<1, 200>>,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: Text,
    #[oai(write_only)]
    pub password: Text,
}

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh. Each one works once.
    #[oai(write_only)]
    pub refresh_token: Text,
}

/// A profile change: only the fields present change; `null` leaves a field unchanged.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    /// New display name, 1 to 100 characters.
    #[oai(nullable)]
    pub name: Option<NameText>,
    /// New email address; needs `current_password`.
    #[oai(nullable)]
    pub email: Option<EmailText>,
    /// New password (8 characters to 72 bytes); needs `current_password`. Signs out every
    /// other session.
    #[oai(write_only, nullable)]
    pub password: Option<PasswordText>,
    /// The current password, required to change `email` or `password`.
    #[oai(write_only, nullable)]
    pub current_password: Option<Text>,
}

impl From<UpdateProfileRequest> for ProfileUpdate {
    fn from(body: UpdateProfileRequest) -> Self {
        Self {
            name: body.name.map(String::from),
            email: body.email.map(String::from),
            password: body.password.map(String::from),
            current_password: body.current_password.map(String::from),
        }
    }
}

/// A signed-in session: an access token for `Authorization: Bearer`, and a refresh token to
/// get the next one.
#[derive(Object)]
pub struct AuthResponse {
    /// Access token (JWT, HS256) for `Authorization: Bearer <token>`.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// When `token` stops working; refresh before then.
    pub expires_at: DateTime<Utc>,
    /// Opaque single-use token for `POST /auth/refresh`.
    pub refresh_token: String,
    /// When the session ends unless refreshed.
    pub refresh_expires_at: DateTime<Utc>,
    /// The session these tokens belong to.
    pub session_id: Uuid,
    pub user: UserBody,
}

impl From<SessionTokens> for AuthResponse {
    fn from(tokens: SessionTokens) -> Self {
        Self {
            token: tokens.access_token,
            token_type: "Bearer".to_string(),
            expires_at: tokens.access_expires_at,
            refresh_token: tokens.refresh_token,
            refresh_expires_at: tokens.session.expires_at,
            session_id: tokens.session.id.as_uuid(),
            user: tokens.user.into(),
        }
    }
}

/// A signed-in device or client.
#[derive(Object)]
#[oai(rename = "Session")]
pub struct SessionBody {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    /// Last login or token refresh.
    pub last_seen_at: DateTime<Utc>,
    /// When the session ends unless refreshed.
    pub expires_at: DateTime<Utc>,
    #[oai(nullable)]
    pub user_agent: Option<String>,
    #[oai(nullable)]
    pub ip: Option<String>,
    /// True for the session making this request.
    pub current: bool,
}

impl SessionBody {
    fn new(session: Session, current: SessionId) -> Self {
        Self {
            current: session.id == current,
            id: session.id.as_uuid(),
            created_at: session.created_at,
            last_seen_at: session.last_seen_at,
            expires_at: session.expires_at,
            user_agent: session.user_agent,
            ip: session.ip,
        }
    }
}

pub type SessionPage = Page<SessionBody>;

impl PageItem for SessionBody {
    const PAGE_NAME: &'static str = "SessionPage";
    const PAGE_DESCRIPTION: Option<&'static str> = Some("A page of sessions.");
    const CURSOR_DESCRIPTION: Option<&'static str> =
        Some("Pass as `cursor` to get the next page; null on the last page.");
}

#[derive(ApiResponse)]
pub enum RegisterResponse {
    /// The account was created and is signed in.
    #[oai(status = 201)]
    Created(
        Json<AuthResponse>,
        /// The new account's URL: `/api/users/me`.
        #[oai(header = "Location")]
        String,
    ),
}

fn client_info(req: &Request) -> ClientInfo {
    ClientInfo {
        user_agent: req.header("user-agent").map(str::to_owned),
        ip: req
            .extensions()
            .get::<super::limits::ClientAddress>()
            .map(|client| client.0)
            .or_else(|| req.remote_addr().as_socket_addr().map(|addr| addr.ip()))
            .map(|ip| ip.to_string()),
    }
}

pub struct AuthApi;

#[OpenApi(prefix_path = "/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Create an account
    ///
    /// Creates the account and signs it in. The first account of a server becomes its admin.
    /// Servers may restrict registration: `invitation_required` (403) when only holders of a
    /// pending invitation's accept token (`invitation_token`) may register,
    /// `registration_closed` (403) when nobody may. The 201's `Location` is the account's URL,
    /// `/api/users/me`.
    #[oai(path = "/register", method = "post", operation_id = "register")]
    async fn register(
        &self,
        service: Data<&Service>,
        req: &Request,
        body: Json<RegisterRequest>,
    ) -> ApiResult<RegisterResponse> {
        let input = Registration {
            email: body.0.email.into(),
            name: body.0.name.into(),
            password: body.0.password.into(),
            invitation_token: body.0.invitation_token.map(|t| t.0),
        };
        let tokens = service.register(input, client_info(req)).await?;
        Ok(RegisterResponse::Created(
            Json(tokens.into()),
            "/api/users/me".to_string(),
        ))
    }

    /// Sign in
    ///
    /// Exchanges email and password for an access token and a refresh token.
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        service: Data<&Service>,
        req: &Request,
        body: Json<LoginRequest>,
    ) -> ApiResult<Json<AuthResponse>> {
        let input = Credentials {
            email: body.0.email.into(),
            password: body.0.password.into(),
        };
        Ok(Json(service.login(input, client_info(req)).await?.into()))
    }

    /// Refresh the access token
    ///
    /// Returns a new access token and a new refresh token; the presented refresh token stops
    /// working. Presenting a refresh token a second time revokes the whole session, since only
    /// a stolen copy would be used twice.
    #[oai(path = "/refresh", method = "post", operation_id = "refreshToken")]
    async fn refresh(
        &self,
        service: Data<&Service>,
        body: Json<RefreshRequest>,
    ) -> ApiResult<Json<AuthResponse>> {
        Ok(Json(service.refresh(&body.0.refresh_token.0).await?.into()))
    }

    /// Sign out
    ///
    /// Ends this session: its access and refresh tokens stop working at once.
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, service: Data<&Service>, auth: BearerAuth) -> ApiResult<NoContent> {
        service.logout(&auth.0).await?;
        Ok(NoContent::Done)
    }

    /// Get my profile
    #[oai(path = "/profile", method = "get", operation_id = "getProfile")]
    async fn profile(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
    ) -> ApiResult<Json<UserBody>> {
        Ok(Json(service.profile(&auth.0).await?.into()))
    }

    /// Update my profile
    ///
    /// Only the fields present change. Changing `email` or `password` needs
    /// `current_password`; a new password signs out every other session.
    #[oai(path = "/profile", method = "put", operation_id = "updateProfile")]
    async fn update_profile(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        body: Json<UpdateProfileRequest>,
    ) -> ApiResult<Json<UserBody>> {
        Ok(Json(
            service.update_profile(&auth.0, body.0.into()).await?.into(),
        ))
    }

    /// List my sessions
    ///
    /// Every signed-in device of the caller, oldest first; `current` marks this one.
    #[oai(path = "/sessions", method = "get", operation_id = "listSessions")]
    async fn sessions(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<SessionPage>> {
        let page = service
            .sessions(&auth.0, cursor.0.as_deref(), limit.0)
            .await?;
        let current = auth.0.session_id;
        Ok(Json(Page::map(page, |s| SessionBody::new(s, current))))
    }

    /// Revoke a session
    ///
    /// Signs out one of my sessions (e.g. a lost phone). Its tokens stop working at once.
    #[oai(
        path = "/sessions/:id",
        method = "delete",
        operation_id = "revokeSession"
    )]
    async fn revoke_session(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> ApiResult<NoContent> {
        service
            .revoke_session(&auth.0, SessionId::from_uuid(id.0))
            .await?;
        Ok(NoContent::Done)
    }
}

/// Errors of these operations beyond those their shape implies (see `spec.rs`).
impl Documented for AuthApi {
    const ERRORS: &'static [OperationErrors] = &[
        ("register", &[403, 409, 422, 503]),
        ("login", &[401, 403, 503]),
        ("refreshToken", &[401]),
        ("getProfile", &[404]),
        ("updateProfile", &[404, 409, 422, 503]),
        ("listSessions", &[422]),
    ];

    fn examples() -> Vec<(&'static str, serde_json::Value)> {
        vec![(
            "RegisterRequest",
            serde_json::json!({
                "email": "ada@example.com",
                "name": "Ada Lovelace",
                "password": "correct horse battery"
            }),
        )]
    }
}
