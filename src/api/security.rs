//! Authentication is a type: an operation that takes [`BearerAuth`] cannot run without a valid
//! access token of a live session. The check itself is the service's (`Service::authenticate`).

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use super::error::Problem;
use crate::service::{AuthUser, Service};

/// The access `token` that `POST /auth/register` and `POST /auth/login` answer (not the
/// `refresh_token`). In Swagger UI press *Authorize* and paste the token alone: it is sent as
/// `Authorization: Bearer <token>`. It lasts until its `expires_at` (`--token-ttl`, 1 hour by
/// default); then get a new one with `POST /auth/refresh`, or sign in again. Swagger UI keeps
/// the token across reloads, in the browser's local storage: sign out (`POST /auth/logout`) or
/// clear it on a shared computer.
///
/// A personal access token (`tkr_pat_…`, made with `POST /auth/tokens`) is accepted the same
/// way, for scripts and integrations: it lasts until its own `expires_at` and may do only
/// what its scopes allow (403 `forbidden` naming the missing scope otherwise), in the teams
/// it is limited to. An expired one is 401 `access_token_expired`; a revoked one 401
/// `invalid_token`. It can never manage tokens, the password, the email, sessions or the
/// calendar feed.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerAuth(pub AuthUser);

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<AuthUser> {
    let service = req
        .data::<Service>()
        .expect("the service is attached to every request");
    service
        .authenticate(&bearer.token)
        .await
        .map_err(|e| Problem::from(e).into())
}
