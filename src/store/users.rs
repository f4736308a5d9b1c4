//! Account rows and the email index.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::codec::{encode, read_row};
use super::tables::*;
use super::tx::{Rx, Tx};
use super::{Store, StoreError};
use crate::domain::user::PasswordHash;
use crate::domain::{Email, Role, SessionId, User, UserId, UserName};

/// The fields a profile update may change; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub name: Option<UserName>,
    pub email: Option<Email>,
    pub password_hash: Option<PasswordHash>,
}

impl Tx<'_> {
    /// The id of the account with `email`.
    pub(super) fn user_id_by_email(&self, email: &str) -> Result<Option<UserId>, StoreError> {
        Ok(self
            .txn()
            .open_table(USERS_BY_EMAIL)?
            .get(email)?
            .map(|id| UserId::from_u128(id.value())))
    }

    /// An account, as this transaction sees it.
    pub fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        read_row(&self.txn().open_table(USERS)?, "users", id.as_u128())
    }

    /// Inserts a new account (see [`Store::insert_user`]), in this transaction.
    pub fn insert_user(&self, mut user: User) -> Result<User, StoreError> {
        let mut users = self.txn().open_table(USERS)?;
        let mut by_email = self.txn().open_table(USERS_BY_EMAIL)?;
        if by_email.get(user.email.as_str())?.is_some() {
            return Err(StoreError::EmailTaken);
        }
        if user.role != Role::Admin {
            user.role = Role::for_new_account(users.is_empty()?);
        }
        users.insert(user.id.as_u128(), encode(&user)?.as_slice())?;
        by_email.insert(user.email.as_str(), user.id.as_u128())?;
        Ok(user)
    }

    /// Applies `changes` to an account, keeping the email index unique; a new email is
    /// unverified. When the password
    /// changes, every session of the user except `keep_session` is deleted in the same
    /// transaction, so no other device stays signed in with the old password. When the email
    /// changes, the pending invitations to the old one are revoked in the same transaction.
    pub fn update_user(
        &self,
        id: UserId,
        changes: UserChanges,
        keep_session: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let tx = self;
        {
            tx.note_auth_changed();
            let mut users = tx.txn().open_table(USERS)?;
            let mut by_email = tx.txn().open_table(USERS_BY_EMAIL)?;
            let Some(mut user): Option<User> = read_row(&users, "users", id.as_u128())? else {
                return Err(StoreError::NotFound);
            };
            let (mut changed, mut old_email) = (false, None);
            if let Some(email) = changes.email.filter(|e| *e != user.email) {
                if by_email.get(email.as_str())?.is_some() {
                    return Err(StoreError::EmailTaken);
                }
                by_email.remove(user.email.as_str())?;
                by_email.insert(email.as_str(), id.as_u128())?;
                old_email = Some(std::mem::replace(&mut user.email, email));
                // A new address is unverified until its owner opens the link sent there.
                user.email_verified_at = None;
                changed = true;
            }
            if let Some(name) = changes.name.filter(|n| *n != user.name) {
                user.name = name;
                changed = true;
            }
            let password_changed = changes.password_hash.is_some();
            if let Some(hash) = changes.password_hash {
                user.password_hash = hash;
                changed = true;
            }
            if changed {
                user.version += 1;
                user.updated_at = now;
                users.insert(id.as_u128(), encode(&user)?.as_slice())?;
            }
            drop((users, by_email));
            if let Some(old_email) = old_email {
                tx.revoke_invitations_to(&old_email, id, now)?;
            }
            if password_changed {
                tx.delete_sessions_of_user(id, keep_session)?;
            }
            Ok(user)
        }
    }

    /// Marks `id`'s address verified at `now` when it is still `email` and not verified yet;
    /// the account as it is after. `None` when the account is gone.
    pub fn set_email_verified(
        &self,
        id: UserId,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<Option<User>, StoreError> {
        let mut users = self.txn().open_table(USERS)?;
        let Some(mut user): Option<User> = read_row(&users, "users", id.as_u128())? else {
            return Ok(None);
        };
        if user.email == *email && user.email_verified_at.is_none() {
            user.email_verified_at = Some(now);
            user.version += 1;
            user.updated_at = now;
            users.insert(id.as_u128(), encode(&user)?.as_slice())?;
        }
        Ok(Some(user))
    }
}

impl Rx {
    pub(super) fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        read_row(&self.txn().open_table(USERS)?, "users", id.as_u128())
    }
}

impl Store {
    /// Whether no account exists yet (a fresh server, before its first set-up).
    pub fn has_no_users(&self) -> Result<bool, StoreError> {
        let txn = self.db().begin_read()?;
        Ok(txn.open_table(USERS)?.is_empty()?)
    }

    /// Inserts a new account. The first account of the server becomes its admin, decided in
    /// the same transaction so two simultaneous first registrations cannot both be admin. An
    /// account handed in as admin (`tasker user create --admin`) stays admin.
    pub fn insert_user(&self, user: User) -> Result<User, StoreError> {
        self.write(|tx| tx.insert_user(user))
    }

    pub fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let txn = self.db().begin_read()?;
        let users = txn.open_table(USERS)?;
        read_row(&users, "users", id.as_u128())
    }

    pub fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let txn = self.db().begin_read()?;
        let Some(id) = txn
            .open_table(USERS_BY_EMAIL)?
            .get(email.as_str())?
            .map(|v| v.value())
        else {
            return Ok(None);
        };
        let users = txn.open_table(USERS)?;
        read_row(&users, "users", id)
    }

    /// Applies `changes` to an account (see [`Tx::update_user`]), in a transaction of its own.
    pub fn update_user(
        &self,
        id: UserId,
        changes: UserChanges,
        keep_session: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        self.write(|tx| tx.update_user(id, changes, keep_session, now))
    }

    /// Replaces a password hash by an equivalent one (same password, another bcrypt cost),
    /// unless the password changed meanwhile. Sessions and the version are left alone: the
    /// account did not change for its owner.
    pub fn replace_password_hash(
        &self,
        id: UserId,
        old: &PasswordHash,
        new: PasswordHash,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let mut users = tx.txn().open_table(USERS)?;
            let user: Option<User> = read_row(&users, "users", id.as_u128())?;
            if let Some(mut user) = user.filter(|u| u.password_hash == *old) {
                user.password_hash = new;
                users.insert(id.as_u128(), encode(&user)?.as_slice())?;
            }
            Ok(())
        })
    }

    /// Every account, oldest id first. A full scan: for the admin CLI, never a request path.
    pub fn all_users(&self) -> Result<Vec<User>, StoreError> {
        let txn = self.db().begin_read()?;
        let mut users = Vec::new();
        for entry in txn.open_table(USERS)?.iter()? {
            let (_, row) = entry?;
            users.push(super::codec::decode("users", row.value())?);
        }
        Ok(users)
    }

    /// Disables or enables an account. Disabling also deletes all its sessions in the same
    /// transaction, so no device stays signed in.
    pub fn set_user_disabled(
        &self,
        id: UserId,
        disabled: bool,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        self.write(|tx| {
            tx.note_auth_changed();
            let mut users = tx.txn().open_table(USERS)?;
            let Some(mut user): Option<User> = read_row(&users, "users", id.as_u128())? else {
                return Err(StoreError::NotFound);
            };
            if user.disabled != disabled {
                user.disabled = disabled;
                user.version += 1;
                user.updated_at = now;
                users.insert(id.as_u128(), encode(&user)?.as_slice())?;
            }
            if disabled {
                tx.delete_sessions_of_user(id, None)?;
            }
            Ok(user)
        })
    }
}
