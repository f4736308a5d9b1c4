//! Export: every section of `tasker export` read row by row from one [`Snapshot`], so the file
//! is one consistent point in time and memory stays flat however large the store.

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, TableHandle};
use serde::de::DeserializeOwned;

use super::super::StoreError;
use super::super::codec::decode;
use super::super::snapshot::Snapshot;
use super::super::tables::*;
use crate::domain::User;
use crate::domain::attachment::Attachment;
use crate::domain::comment::Comment;
use crate::domain::project::Project;
use crate::domain::task::Task;
use crate::domain::team::{Membership, Team};

/// Rows per exported section, for progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportCounts {
    pub users: u64,
    pub teams: u64,
    pub projects: u64,
    pub tasks: u64,
    pub comments: u64,
    pub attachments: u64,
}

impl ExportCounts {
    /// Records in the whole file.
    pub fn total(&self) -> u64 {
        self.users + self.teams + self.projects + self.tasks + self.comments + self.attachments
    }
}

/// Calls `f` with every row of an id-keyed JSON table, in id order.
fn each_row<T: DeserializeOwned, E: From<StoreError>>(
    txn: &ReadTransaction,
    table: redb::TableDefinition<u128, &'static [u8]>,
    mut f: impl FnMut(T) -> Result<(), E>,
) -> Result<(), E> {
    let rows = txn.open_table(table).map_err(StoreError::from)?;
    for entry in rows.iter().map_err(StoreError::from)? {
        let (_, row) = entry.map_err(StoreError::from)?;
        f(decode(table.name(), row.value())?)?;
    }
    Ok(())
}

impl Snapshot {
    /// How many rows each section will have.
    pub fn counts(&self) -> Result<ExportCounts, StoreError> {
        let len = |table| -> Result<u64, StoreError> { Ok(self.txn.open_table(table)?.len()?) };
        Ok(ExportCounts {
            users: len(USERS)?,
            teams: len(TEAMS)?,
            projects: len(PROJECTS)?,
            tasks: len(TASKS)?,
            comments: len(COMMENTS)?,
            attachments: len(ATTACHMENTS)?,
        })
    }

    /// Every account, in id order (the caller leaves out what is secret).
    pub fn users<E: From<StoreError>>(
        &self,
        f: impl FnMut(User) -> Result<(), E>,
    ) -> Result<(), E> {
        each_row(&self.txn, USERS, f)
    }

    /// Every team with its members (in user id order).
    pub fn teams<E: From<StoreError>>(
        &self,
        mut f: impl FnMut(Team, Vec<Membership>) -> Result<(), E>,
    ) -> Result<(), E> {
        let members = self
            .txn
            .open_table(TEAM_MEMBERS)
            .map_err(StoreError::from)?;
        each_row(&self.txn, TEAMS, |team: Team| {
            let t = team.id.as_u128();
            let mut list = Vec::new();
            for entry in members
                .range((t, 0)..=(t, u128::MAX))
                .map_err(StoreError::from)?
            {
                let (_, row) = entry.map_err(StoreError::from)?;
                list.push(decode("team_members", row.value())?);
            }
            f(team, list)
        })
    }

    /// Every project, in id order.
    pub fn projects<E: From<StoreError>>(
        &self,
        f: impl FnMut(Project) -> Result<(), E>,
    ) -> Result<(), E> {
        each_row(&self.txn, PROJECTS, f)
    }

    /// Every task, in id order.
    pub fn tasks<E: From<StoreError>>(
        &self,
        f: impl FnMut(Task) -> Result<(), E>,
    ) -> Result<(), E> {
        each_row(&self.txn, TASKS, f)
    }

    /// Every comment, in id order.
    pub fn comments<E: From<StoreError>>(
        &self,
        f: impl FnMut(Comment) -> Result<(), E>,
    ) -> Result<(), E> {
        each_row(&self.txn, COMMENTS, f)
    }

    /// Every attachment's metadata, in id order.
    pub fn attachments<E: From<StoreError>>(
        &self,
        f: impl FnMut(Attachment) -> Result<(), E>,
    ) -> Result<(), E> {
        each_row(&self.txn, ATTACHMENTS, f)
    }
}
