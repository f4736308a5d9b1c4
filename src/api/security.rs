//! Authentication is a type: an operation that takes [`BearerAuth`] cannot run without a valid
//! access token of a live session. The check itself is the service's (`Service::authenticate`).

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use super::error::Problem;
use crate::service::{AuthUser, Service};

/// `Authorization: Bearer <access token>` from `POST /auth/login`.
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
