//! Site administration: what only a server admin may do.

use super::{AuthUser, Error, Result, Service};
use crate::domain::access;
use crate::store::StoreError;

impl Service {
    /// Refuses (403) anyone who is not a site admin.
    /// A personal access token needs the `admin` scope besides.
    pub fn require_admin(&self, auth: &AuthUser) -> Result<()> {
        if auth.token.as_ref().is_some_and(|g| !g.scopes.admin()) {
            return Err(Error::Forbidden(
                "this access token lacks the scope admin".into(),
            ));
        }
        if access::may_administer(auth.role) {
            Ok(())
        } else {
            Err(Error::Forbidden("only a site admin may do this".into()))
        }
    }

    /// Writes a backup archive of the whole data dir to `out` (see [`crate::backup`]), on the
    /// blocking pool. The caller checks who may ask.
    pub async fn write_backup<W: std::io::Write + Send + 'static>(&self, out: W) -> Result<()> {
        let (store, blobs) = (self.store.clone(), self.blobs.clone());
        let data_dir = self.config.data_dir.clone();
        tokio::task::spawn_blocking(move || {
            crate::backup::write_backup(&store, &blobs, &data_dir, out).map(|_| ())
        })
        .await
        .map_err(|e| Error::Internal(StoreError::Join(e.to_string())))?
        .map_err(|e| Error::Storage(format!("backup failed: {e:#}")))
    }
}
