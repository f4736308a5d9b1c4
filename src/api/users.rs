//! `/users`: the caller's own account.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use super::auth::UpdateProfileRequest;
use super::error::ApiResult;
use super::security::BearerAuth;
use super::spec::OperationErrors;
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
            created_at: user.created_at,
            updated_at: user.updated_at,
            version: user.version,
        }
    }
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
pub(super) const ERRORS: &[OperationErrors] =
    &[("getMe", &[404]), ("updateMe", &[404, 409, 422, 503])];
