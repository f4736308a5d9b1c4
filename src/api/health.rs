//! `/health`: liveness for load balancers, monitors and `install.sh`.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::error::ApiResult;
use super::spec::Documented;
use crate::service::Service;

#[derive(Object)]
pub struct Health {
    /// `ok` when the server answers requests.
    pub status: String,
    /// The server's version.
    pub version: String,
    /// Seconds since the server started.
    pub uptime_s: u64,
    pub search_index: SearchIndexHealth,
}

/// Where the search index stands.
#[derive(Object)]
pub struct SearchIndexHealth {
    /// `ready`, or `rebuilding` (search answers 503 until it is done).
    pub status: String,
    /// Committed changes not yet searchable (normally 0, briefly more under writes).
    pub lag: u64,
    /// While rebuilding: tasks indexed so far, and how many there are.
    #[oai(skip_serializing_if_is_none)]
    pub rebuilt: Option<u64>,
    #[oai(skip_serializing_if_is_none)]
    pub rebuild_total: Option<u64>,
}

pub struct HealthApi;

/// `/health` answers only with what every operation can.
impl Documented for HealthApi {}

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
            search_index: {
                let index = service.index_status();
                let rebuilding = !index.ready;
                SearchIndexHealth {
                    status: if rebuilding { "rebuilding" } else { "ready" }.to_string(),
                    lag: index.lag,
                    rebuilt: rebuilding.then_some(index.rebuilt),
                    rebuild_total: rebuilding.then_some(index.rebuild_total),
                }
            },
        }))
    }
}
