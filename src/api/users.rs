//! `/users`: the caller's own account.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use super::auth::UpdateProfileRequest;
use super::error::ApiResult;
use super::page::{Page, PageItem};
use super::security::BearerAuth;
use super::spec::{Documented, OperationErrors};
use crate::domain::{Role, User};
use crate::service::Service;

/// Server-wide role: the first account of a server is `admin`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "ServerRole", rename_all = "snake_case")]
pub enum RoleBody {
    Admin,
    User,
}

/// An account, as its owner sees it.
#[derive(Object, Debug, Clone)]
#[oai(rename = "User")]
pub struct UserBody {
    pub id: Uuid,
    /// Lower-cased email address.
    pub email: String,
    pub name: String,
    pub role: RoleBody,
    /// Whether the owner confirmed `email` from the link mailed there (since its last
    /// change). Invitations to the address open without their link only when it is.
    pub verified: bool,
    /// When `email` was confirmed; null while it is not.
    #[oai(nullable)]
    pub email_verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Incremented on every change.
    pub version: u64,
}

impl From<User> for UserBody {
    fn from(user: User) -> Self {
        Self {
            id: user.id.as_uuid(),
            email: user.email.into(),
            name: user.name.into(),
            role: match user.role {
                Role::Admin => RoleBody::Admin,
                Role::User => RoleBody::User,
            },
            verified: user.email_verified_at.is_some(),
            email_verified_at: user.email_verified_at,
            created_at: user.created_at,
            updated_at: user.updated_at,
            version: user.version,
        }
    }
}

/// Someone who shares a team with the caller.
#[derive(Object)]
pub struct Person {
    pub id: Uuid,
    pub name: String,
    pub email: String,
}

impl From<User> for Person {
    fn from(user: User) -> Self {
        Self {
            id: user.id.as_uuid(),
            name: user.name.into(),
            email: user.email.into(),
        }
    }
}

pub type PersonPage = Page<Person>;

impl PageItem for Person {
    const PAGE_NAME: &'static str = "PersonPage";
    const PAGE_DESCRIPTION: Option<&'static str> = Some("A page of people.");
}

pub struct UsersApi;

#[OpenApi(prefix_path = "/users", tag = "ApiTags::Users")]
impl UsersApi {
    /// Get my account
    ///
    /// Same as `GET /auth/profile`.
    #[oai(path = "/me", method = "get", operation_id = "getMe")]
    async fn me(&self, service: Data<&Service>, auth: BearerAuth) -> ApiResult<Json<UserBody>> {
        Ok(Json(service.profile(&auth.0).await?.into()))
    }

    /// Find teammates
    ///
    /// People who share a team with me (me included), for assignment pickers: `q` matches
    /// part of the name or email, case-insensitively. Nobody else is ever listed.
    #[oai(path = "/", method = "get", operation_id = "searchUsers")]
    async fn search(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        /// Part of a name or email (at most 100 characters); absent lists every teammate.
        q: Query<Option<String>>,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<PersonPage>> {
        let page = service
            .teammates(&auth.0, q.0.as_deref(), cursor.0.as_deref(), limit.0)
            .await?;
        Ok(Json(Page::map(page, Person::from)))
    }

    /// Update my account
    ///
    /// Same as `PUT /auth/profile`: only the fields present change. Changing `email` or
    /// `password` needs `current_password`; a new password signs out every other session.
    #[oai(path = "/me", method = "patch", operation_id = "updateMe")]
    async fn update_me(
        &self,
        service: Data<&Service>,
        auth: BearerAuth,
        body: Json<UpdateProfileRequest>,
    ) -> ApiResult<Json<UserBody>> {
        Ok(Json(
            service.update_profile(&auth.0, body.0.into()).await?.into(),
        ))
    }
}

/// Errors of these operations beyond those their shape implies (see `spec.rs`).
impl Documented for UsersApi {
    const ERRORS: &'static [OperationErrors] = &[
        ("searchUsers", &[422]),
        ("getMe", &[404]),
        ("updateMe", &[404, 409, 422, 503]),
    ];
}
