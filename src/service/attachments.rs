//! Attachments (DESIGN.md sections 3 and 5). Anyone who can see the task lists and downloads
//! its files; who may attach and delete is `domain::access`'s to say.
//!
//! An upload is checked before any byte is read, streamed to a temp file in the data dir while
//! hashed (memory stays flat), stored once per content hash, and only then recorded, in one
//! transaction for all files of the request that also decides, again, whether the caller may
//! attach: a failure anywhere keeps nothing.

use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use chrono::Utc;
use tokio::io::{AsyncRead, ReadBuf};

use super::{AuthUser, Error, Result, Service};
use crate::domain::access;
use crate::domain::attachment::Attachment;
use crate::domain::page::Page;
use crate::domain::scope::{Access, Area};
use crate::domain::task::Task;
use crate::domain::team::TeamRole;
use crate::domain::{AttachmentId, TaskId, UserId, Validator};
use crate::files::{Pinned, ReceiveError, Received, names};
use crate::store::StoreError;

/// The most files one upload request may carry.
pub const MAX_FILES_PER_UPLOAD: usize = 20;

/// An attachment and what the caller may do with it.
#[derive(Debug, Clone)]
pub struct AttachmentView {
    pub attachment: Attachment,
    pub can_delete: bool,
}

/// A file received in full (in a temp file), not yet stored or recorded.
pub struct IncomingFile {
    received: Received,
    filename: String,
}

fn attachment_view(
    me: UserId,
    attachment: Attachment,
    task: &Task,
    role: Option<TeamRole>,
) -> AttachmentView {
    AttachmentView {
        can_delete: access::may_delete_attachment(me, &attachment, task, role),
        attachment,
    }
}

fn store_error(e: StoreError) -> Error {
    match e {
        StoreError::NotFound => Error::NotFound("attachment"),
        StoreError::Archived => Error::ProjectArchived,
        other => Error::Internal(other),
    }
}

/// Reads through to `inner`, remembering whether a read failed: such a failure is the
/// client's (a broken multipart body or a dropped connection), not the server's disk.
struct Tracked<R> {
    inner: R,
    failed: bool,
}

impl<R: AsyncRead + Unpin> AsyncRead for Tracked<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Err(_)) = &polled {
            self.failed = true;
        }
        polled
    }
}

impl Service {
    /// The largest file one upload may carry.
    pub fn max_upload_bytes(&self) -> u64 {
        self.config.max_upload_bytes
    }

    /// Checks, before any byte of an upload is read, that the caller may attach to `task`:
    /// 404 when they cannot see it, 403 when they may not attach.
    pub async fn check_may_attach(&self, auth: &AuthUser, task: TaskId) -> Result<()> {
        auth.allows(Area::Attachments, Access::Write)?;
        let (current, role) = self.visible_task(auth, task).await?;
        if access::may_attach(auth.user_id, &current.task, role) {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "only the task's creator and assignees, and the team's owners and admins, may attach files".into(),
            ))
        }
    }

    /// Streams one file of an upload to a temp file, hashing it; over the size limit nothing
    /// is kept (413).
    pub async fn receive_file(
        &self,
        reader: impl AsyncRead + Unpin,
        filename: Option<&str>,
    ) -> Result<IncomingFile> {
        let limit = self.config.max_upload_bytes;
        let mut tracked = Tracked {
            inner: reader,
            failed: false,
        };
        match self.blobs.receive(&mut tracked, limit).await {
            Ok(received) => Ok(IncomingFile {
                received,
                filename: names::sanitize_filename(filename),
            }),
            Err(ReceiveError::TooLarge { limit }) => Err(Error::UploadTooLarge(limit)),
            Err(ReceiveError::Io(e)) if tracked.failed => Err(Error::BadRequest(format!(
                "the upload could not be read: {e}"
            ))),
            Err(ReceiveError::Io(e)) => Err(Error::Storage(e.to_string())),
        }
    }

    /// Stores received files and records them as attachments of `task`, all or nothing.
    pub async fn attach(
        &self,
        auth: &AuthUser,
        task: TaskId,
        files: Vec<IncomingFile>,
    ) -> Result<Vec<AttachmentView>> {
        auth.allows(Area::Attachments, Access::Write)?;
        let mut v = Validator::default();
        if files.is_empty() {
            v.push("file", "send at least one file in a `file` field");
        }
        if files.len() > MAX_FILES_PER_UPLOAD {
            v.push(
                "file",
                format!("at most {MAX_FILES_PER_UPLOAD} files per upload"),
            );
        }
        v.finish().map_err(Error::Validation)?;
        let now = Utc::now();
        let rows: Vec<Attachment> = files
            .iter()
            .map(|f| Attachment {
                id: AttachmentId::new(),
                task_id: task,
                uploaded_by: auth.user_id,
                filename: f.filename.clone(),
                content_type: f.received.sniffed_type().to_string(),
                size: f.received.size,
                sha256: f.received.hash.0,
                created_at: now,
            })
            .collect();
        let quota = self.config.user_quota_bytes;
        if let Some(quota) = quota {
            // Checked again in the write; this saves storing what would be refused.
            let (me, adding) = (auth.user_id, rows.iter().map(|r| r.size).sum::<u64>());
            let used = self.store.run(move |s| s.upload_bytes_of(me)).await?;
            if used + adding > quota {
                return Err(Error::QuotaExceeded(quota));
            }
        }
        let hashes: Vec<[u8; 32]> = rows.iter().map(|r| r.sha256).collect();
        // The blobs are on disk (and pinned, so no concurrent delete removes them) before the
        // rows that refer to them are committed; the pins go once the commit is durable.
        let blobs = self.blobs.clone();
        let pins: Vec<Pinned> = tokio::task::spawn_blocking(move || {
            files
                .into_iter()
                .map(|f| blobs.persist(f.received))
                .collect::<std::io::Result<Vec<_>>>()
        })
        .await
        .map_err(|e| Error::Storage(e.to_string()))?
        .map_err(|e| Error::Storage(e.to_string()))?;
        let recorded = self.record_attachments(auth, task, rows, quota).await;
        drop(pins);
        if recorded.is_err() {
            // Nothing refers to what was stored for this request (unless other attachments
            // had the same content): remove it now rather than at the next start.
            self.remove_freed_blobs(hashes).await;
        }
        recorded
    }

    /// Commits the rows of stored files, in the transaction that decides (again, on the task
    /// and the caller's role as they are now) whether the caller may attach.
    async fn record_attachments(
        &self,
        auth: &AuthUser,
        task: TaskId,
        rows: Vec<Attachment>,
        quota: Option<u64>,
    ) -> Result<Vec<AttachmentView>> {
        let (me, reach) = (auth.user_id, auth.reach());
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let (current, role) = super::tasks::visible_in(tx, task, me, &reach, "task")?;
                    if !access::may_attach(me, &current, role) {
                        return Err(Error::Forbidden(
                            "only the task's creator and assignees, and the team's owners and admins, may attach files".into(),
                        ));
                    }
                    let stored = tx.create_attachments(&rows, quota).map_err(|e| match e {
                        StoreError::QuotaExceeded => Error::QuotaExceeded(quota.unwrap_or_default()),
                        e => super::create_error(e, "task"),
                    })?;
                    Ok(stored
                        .into_iter()
                        .map(|a| attachment_view(me, a, &current, role))
                        .collect())
                })
            })
            .await
    }

    /// A task's attachments, oldest first.
    pub async fn attachments(
        &self,
        auth: &AuthUser,
        task: TaskId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<AttachmentView>> {
        let mut v = Validator::default();
        let (after, limit) = super::page_args(cursor, limit, &mut v);
        v.finish().map_err(Error::Validation)?;
        auth.allows(Area::Attachments, Access::Read)?;
        let (current, role) = self.visible_task(auth, task).await?;
        let rows = self
            .store
            .run(move |s| s.attachments_of_task(task, after, limit.get() + 1))
            .await?;
        let me = auth.user_id;
        Ok(Page::from_overfetch(rows, limit, |a| a.id.as_u128())
            .map(|a| attachment_view(me, a, &current.task, role)))
    }

    /// An attachment whose task the caller can see (404 otherwise).
    pub async fn attachment(&self, auth: &AuthUser, id: AttachmentId) -> Result<AttachmentView> {
        auth.allows(Area::Attachments, Access::Read)?;
        Ok(self.visible_attachment(auth, id).await?.0)
    }

    /// An attachment whose task the caller can see, and the caller's role in the task's team.
    async fn visible_attachment(
        &self,
        auth: &AuthUser,
        id: AttachmentId,
    ) -> Result<(AttachmentView, Option<TeamRole>)> {
        let me = auth.user_id;
        match self.store.run(move |s| s.attachment_for(id, me)).await? {
            Some((attachment, task, role))
                if access::may_see_task(me, &task, role) && auth.reaches(task.team_id) =>
            {
                Ok((attachment_view(me, attachment, &task, role), role))
            }
            _ => Err(Error::NotFound("attachment")),
        }
    }

    /// An attachment and the path of its bytes, for a download.
    pub async fn attachment_content(
        &self,
        auth: &AuthUser,
        id: AttachmentId,
    ) -> Result<(AttachmentView, PathBuf)> {
        let view = self.attachment(auth, id).await?;
        let path = self.blobs.path(&crate::files::Hash(view.attachment.sha256));
        Ok((view, path))
    }

    /// Deletes an attachment: its uploader, the task's creator, or a team owner or admin.
    /// The blob goes when no other attachment refers to it.
    pub async fn delete_attachment(&self, auth: &AuthUser, id: AttachmentId) -> Result<()> {
        auth.allows(Area::Attachments, Access::Write)?;
        let (me, reach) = (auth.user_id, auth.reach());
        self.store
            .run(move |s| {
                s.write(|tx| {
                    let attachment = tx.attachment(id)?.ok_or(Error::NotFound("attachment"))?;
                    let (task, role) =
                        super::tasks::visible_in(tx, attachment.task_id, me, &reach, "attachment")?;
                    if !access::may_delete_attachment(me, &attachment, &task, role) {
                        return Err(Error::Forbidden(
                            "only the uploader, the task's creator and the team's owners and admins may delete it".into(),
                        ));
                    }
                    tx.delete_attachment(id, me, Utc::now()).map_err(store_error)
                })
            })
            .await
    }

    /// Removes the files of blobs that lost their last reference (after that was durable).
    /// A blob referenced again meanwhile, or pinned by an upload in flight, stays.
    pub(super) async fn remove_freed_blobs(&self, hashes: Vec<[u8; 32]>) {
        let (blobs, store) = (self.blobs.clone(), self.store.clone());
        let removed = tokio::task::spawn_blocking(move || {
            let mut removed = 0;
            for hash in hashes {
                let referenced = || {
                    store
                        .blob_referenced(hash)
                        .map_err(std::io::Error::other)
                };
                match blobs.remove_if_unreferenced(crate::files::Hash(hash), referenced) {
                    Ok(true) => removed += 1,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "could not remove a freed blob; the next start sweeps it"),
                }
            }
            removed
        })
        .await;
        if let Ok(removed) = removed
            && removed > 0
        {
            tracing::debug!(removed, "removed freed blobs");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failing_source_is_told_apart_from_the_disk() {
        struct Broken;
        impl AsyncRead for Broken {
            fn poll_read(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
                _: &mut ReadBuf<'_>,
            ) -> Poll<std::io::Result<()>> {
                Poll::Ready(Err(std::io::Error::other("connection reset")))
            }
        }
        let mut tracked = Tracked {
            inner: Broken,
            failed: false,
        };
        let mut buf = [0u8; 4];
        let read = tokio::io::AsyncReadExt::read(&mut tracked, &mut buf).await;
        assert!(read.is_err() && tracked.failed);
    }
}
