//! `/health`: liveness for load balancers, monitors and `install.sh`.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::error::ApiResult;
use crate::service::Service;

#[derive(Object)]
pub struct Health {
    /// `ok` when the server answers requests.
    pub status: String,
    /// The server's version.
    pub version: String,
    /// Seconds since the server started.
    pub uptime_s: u64,
}

pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Ops")]
impl HealthApi {
    /// Server health
    ///
    /// Needs no authentication.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self, service: Data<&Service>) -> ApiResult<Json<Health>> {
        Ok(Json(Health {
            status: "ok".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_s: service.uptime().as_secs(),
        }))
    }
}
