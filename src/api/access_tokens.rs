//! `/auth/tokens`: personal access tokens. Create one (its secret is in this answer only),
//! list them, revoke one. A token works as `Authorization: Bearer tkr_pat_…` on the API and
//! the WebSocket, limited to its scopes (and teams); it can never manage tokens itself, nor
//! the password, email, sessions or calendar feed: those need a signed-in session.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::error::ApiResult;
use super::page::{Page, PageItem};
use super::security::BearerAuth;
use super::spec::Documented;
use super::text::Text;
use super::{ApiTags, NoContent};
use crate::domain::scope::AccessToken;
use crate::domain::{AccessTokenId, TeamId};
use crate::service::{NewAccessToken, Service};

/// A token's name as documented in the spec.
type TokenNameText = Text<1, 100>;

#[derive(Object)]
#[oai(deny_unknown_fields)]
pub struct CreateAccessTokenRequest {
    /// What the token is for ("CI deploy", "Home Assistant"), 1 to 100 characters.
    pub name: TokenNameText,
    /// What it may do: `<area>:read` or `<area>:write` (write includes read) for the areas
    /// `tasks`, `comments`, `attachments`, `projects`, `teams`, `notifications`; and `admin`
    /// (site administration: only a site admin may ask for it). At least one.
    pub scopes: Vec<String>,
    /// When it stops working: required, in the future, and at most the server's maximum
    /// lifetime ahead (`--token-max-lifetime`, 1 year by default).
    pub expires_at: DateTime<Utc>,
    /// Limit the token to these teams (you must be a member of each): it then sees nothing
    /// of other teams, nor personal tasks. Leave out (or null) for every team of yours.
    #[oai(nullable)]
    pub team_ids: Option<Vec<Uuid>>,
}

/// A personal access token, never its secret.
#[derive(Object)]
pub struct AccessTokenBody {
    pub id: Uuid,
    pub name: String,
    /// Its scopes (`tasks:write` stands for read and write).
    pub scopes: Vec<String>,
    /// The teams it is limited to; null for every team of its owner.
    #[oai(nullable)]
    pub team_ids: Option<Vec<Uuid>>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// When it was last used (updated at most once a minute); null if never.
    #[oai(nullable)]
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<AccessToken> for AccessTokenBody {
    fn from(t: AccessToken) -> Self {
        Self {
            id: t.id.as_uuid(),
            name: t.name.as_str().to_string(),
            scopes: t.scopes.names(),
            team_ids: t
                .team_ids
                .map(|teams| teams.into_iter().map(|t| t.as_uuid()).collect()),
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// A new token, with its secret: shown this once (only a hash is kept).
#[derive(Object)]
pub struct CreatedAccessToken {
    /// The secret, `tkr_pat_` and 64 hex digits. Send it as `Authorization: Bearer <token>`.
    /// Treat it as a password.
    pub token: String,
    /// The token's record, as `GET /auth/tokens` lists it.
    pub access_token: AccessTokenBody,
}

#[derive(ApiResponse)]
pub enum CreatedTokenResponse {
    /// The token; its secret is in this answer only.
    #[oai(status = 201)]
    Created(
        Json<CreatedAccessToken>,
        /// `/api/auth/tokens`.
        #[oai(header = "Location")]
        String,
    ),
}

pub type AccessTokenPage = Page<AccessTokenBody>;

impl PageItem for AccessTokenBody {
    const PAGE_NAME: &'static str = "AccessTokenPage";
    const PAGE_DESCRIPTION: Option<&'static str> =
        Some("Your personal access tokens, oldest first (all of them: at most 100).");
}

pub struct AccessTokensApi;

#[OpenApi(prefix_path = "/auth/tokens", tag = "ApiTags::Auth")]
impl AccessTokensApi {
    /// Create a personal access token
    ///
    /// For scripts, CI jobs and integrations: a token with the scopes it needs, an expiry,
    /// and optionally limited to some teams. The answer carries its secret this once. Only
    /// a signed-in session may create tokens (a token may not: 403).
    #[oai(path = "/", method = "post", operation_id = "createAccessToken")]
    async fn create(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        body: Json<CreateAccessTokenRequest>,
    ) -> ApiResult<CreatedTokenResponse> {
        let body = body.0;
        let input = NewAccessToken {
            name: body.name.0,
            scopes: body.scopes,
            expires_at: Some(body.expires_at),
            team_ids: body
                .team_ids
                .map(|teams| teams.into_iter().map(TeamId::from_uuid).collect()),
        };
        let issued = service.create_access_token(&auth.0, input).await?;
        Ok(CreatedTokenResponse::Created(
            Json(CreatedAccessToken {
                token: issued.token,
                access_token: issued.record.into(),
            }),
            "/api/auth/tokens".to_string(),
        ))
    }

    /// List my personal access tokens
    ///
    /// Name, scopes, teams, creation, expiry and last use of each; never the secret. Only a
    /// signed-in session may list them.
    #[oai(path = "/", method = "get", operation_id = "listAccessTokens")]
    async fn list(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
    ) -> ApiResult<Json<AccessTokenPage>> {
        let tokens = service.access_tokens(&auth.0).await?;
        Ok(Json(Page {
            items: tokens.into_iter().map(Into::into).collect(),
            next_cursor: None,
        }))
    }

    /// Revoke a personal access token
    ///
    /// It stops working at once; WebSockets opened with it are closed (code 4001). Someone
    /// else's token is `not_found`.
    #[oai(path = "/:id", method = "delete", operation_id = "revokeAccessToken")]
    async fn revoke(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> ApiResult<NoContent> {
        service
            .revoke_access_token(&auth.0, AccessTokenId::from_uuid(id.0))
            .await?;
        Ok(NoContent::Done)
    }
}

/// The request example (its errors are those its shape implies: see `spec.rs`).
impl Documented for AccessTokensApi {
    fn examples() -> Vec<(&'static str, serde_json::Value)> {
        vec![(
            "CreateAccessTokenRequest",
            serde_json::json!({
                "name": "CI deploy",
                "scopes": ["tasks:write", "comments:read"],
                "expires_at": "2027-06-30T00:00:00Z"
            }),
        )]
    }
}
