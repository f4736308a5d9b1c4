//! Current figures for monitoring, exposed by the API at `/metrics`.

use super::{Result, Service};

/// One gauge: a Prometheus metric name, its help text and its current value.
#[derive(Debug, Clone)]
pub struct Gauge {
    pub name: &'static str,
    pub help: &'static str,
    pub value: f64,
}

impl Service {
    /// The gauges `/metrics` shows. This list is the extension point: a part of the server
    /// with its own figure adds its gauge here and the endpoint exposes it; nothing in the API
    /// changes.
    pub async fn gauges(&self) -> Result<Vec<Gauge>> {
        // The table's length is kept by redb: O(1), no scan.
        let tasks = self.store.run(|s| s.task_count()).await?;
        let connections = self.hub.connections().await;
        let index = self.index_status();
        let outbox = self.outbox_gauges().await?;
        let (hooks_ok, hooks_failed) = self.webhook_delivery_counts();
        Ok(vec![
            Gauge {
                name: "tasker_tasks",
                help: "Tasks stored.",
                value: tasks as f64,
            },
            Gauge {
                name: "tasker_websocket_connections",
                help: "Open WebSocket connections to the real-time feed.",
                value: connections as f64,
            },
            Gauge {
                name: "tasker_webhook_deliveries_ok",
                help: "Webhook deliveries answered 2xx since the server started.",
                value: hooks_ok as f64,
            },
            Gauge {
                name: "tasker_webhook_deliveries_failed",
                help: "Webhook deliveries that failed (no answer or not 2xx) since the server started.",
                value: hooks_failed as f64,
            },
            Gauge {
                name: "tasker_index_lag",
                help: "Committed changes the search index has not applied yet.",
                value: index.lag as f64,
            },
            Gauge {
                name: "tasker_index_ready",
                help: "1 when search is served, 0 while the index is rebuilt.",
                value: if index.ready { 1.0 } else { 0.0 },
            },
        ]
        .into_iter()
        .chain(outbox)
        .collect())
    }
}
