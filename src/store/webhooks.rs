//! Webhooks: the hook rows (`WEBHOOKS`) with a team's index (`WEBHOOKS_BY_TEAM`), each hook's
//! durable delivery state (`WEBHOOK_STATES`: its cursor in the change log, failures, when the
//! next attempt is due) and its delivery log (`WEBHOOK_DELIVERIES`, the newest
//! `MAX_DELIVERIES`). An attempt's record and the state it leads to are one commit, so after a
//! crash the cursor and the log agree; the cursor moves past an entry only with a 2xx for it
//! (or when the hook does not want it).

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable};
use uuid::Uuid;

use super::codec::{decode, encode, read_row};
use super::tables::*;
use super::tx::{Cause, Tx};
use super::{Store, StoreError};
use crate::domain::change::{ChangeAction, EntityKind, FieldChange, NewChange};
use crate::domain::webhooks::{DeliveryState, MAX_DELIVERIES, MAX_WEBHOOKS_PER_TEAM, Webhook};
use crate::domain::{TeamId, UserId, WebhookId};

/// What a delivery attempt leads to.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A 2xx: the cursor moves to the delivered entry.
    Delivered { seq: u64 },
    /// Entries up to `seq` are not for this hook: the cursor moves there, nothing is sent.
    Skipped { seq: u64 },
    /// No 2xx: the cursor moves only over what was skipped (`skipped_to`), the failure is
    /// counted and the next attempt is due at `retry_at`.
    Failed {
        skipped_to: u64,
        retry_at: DateTime<Utc>,
    },
    /// No 2xx and nothing left to try, or too far behind: the hook is disabled and its
    /// creator notified.
    Disabled { skipped_to: u64, reason: String },
    /// A person's redelivery or ping: logged, the state untouched.
    Manual,
}

impl Tx<'_> {
    fn webhook(&self, id: WebhookId) -> Result<Option<Webhook>, StoreError> {
        read_row(&self.txn().open_table(WEBHOOKS)?, "webhooks", id.as_u128())
    }

    fn webhook_state(&self, id: WebhookId) -> Result<DeliveryState, StoreError> {
        Ok(read_row(
            &self.txn().open_table(WEBHOOK_STATES)?,
            "webhook_states",
            id.as_u128(),
        )?
        .unwrap_or_default())
    }

    fn put_webhook_state(&self, id: WebhookId, state: &DeliveryState) -> Result<(), StoreError> {
        self.txn()
            .open_table(WEBHOOK_STATES)?
            .insert(id.as_u128(), encode(state)?.as_slice())?;
        Ok(())
    }

    fn last_seq(&self) -> Result<u64, StoreError> {
        Ok(self
            .txn()
            .open_table(CHANGES)?
            .last()?
            .map_or(0, |(key, _)| key.value()))
    }

    /// Disables `hook` for `reason`: the row says so, and its creator is told through the
    /// change log (an entry only they see) and their inbox. The actor is tasker itself (the
    /// nil id).
    fn disable_webhook(&self, mut hook: Webhook, reason: &str) -> Result<Webhook, StoreError> {
        let at = Utc::now();
        hook.enabled = false;
        hook.disabled_reason = Some(reason.to_string());
        hook.updated_at = at;
        self.txn()
            .open_table(WEBHOOKS)?
            .insert(hook.id.as_u128(), encode(&hook)?.as_slice())?;
        let actor = UserId::from_uuid(Uuid::nil());
        let seq = self.append(NewChange {
            at,
            actor,
            entity: EntityKind::Webhook,
            entity_id: hook.id.as_uuid(),
            team_id: None,
            project_id: None,
            audience: vec![hook.created_by],
            previous_team_id: None,
            previous_project_id: None,
            task_id: None,
            action: ChangeAction::Updated,
            fields: vec![
                FieldChange {
                    field: "enabled".into(),
                    before: true.into(),
                    after: false.into(),
                },
                FieldChange::set("disabled_reason", &reason),
            ],
        })?;
        self.notify_webhook_disabled(
            Cause { seq, actor, at },
            hook.created_by,
            hook.team_id,
            hook.id.as_uuid(),
            format!("{} ({reason})", hook.url),
        )?;
        Ok(hook)
    }
}

impl Store {
    /// A hook and its delivery state.
    pub fn webhook(&self, id: WebhookId) -> Result<Option<(Webhook, DeliveryState)>, StoreError> {
        let txn = self.db().begin_read()?;
        let hook: Option<Webhook> = read_row(&txn.open_table(WEBHOOKS)?, "webhooks", id.as_u128())?;
        let Some(hook) = hook else { return Ok(None) };
        let state: Option<DeliveryState> = read_row(
            &txn.open_table(WEBHOOK_STATES)?,
            "webhook_states",
            id.as_u128(),
        )?;
        Ok(Some((hook, state.unwrap_or_default())))
    }

    /// A team's hooks with their states, oldest first (at most [`MAX_WEBHOOKS_PER_TEAM`]).
    pub fn webhooks_of_team(
        &self,
        team: TeamId,
    ) -> Result<Vec<(Webhook, DeliveryState)>, StoreError> {
        let txn = self.db().begin_read()?;
        let index = txn.open_table(WEBHOOKS_BY_TEAM)?;
        let (rows, states) = (txn.open_table(WEBHOOKS)?, txn.open_table(WEBHOOK_STATES)?);
        let t = team.as_u128();
        let mut hooks = Vec::new();
        for entry in index
            .range((t, 0)..=(t, u128::MAX))?
            .take(MAX_WEBHOOKS_PER_TEAM * 2)
        {
            let id = entry?.0.value().1;
            if let Some(hook) = read_row::<Webhook>(&rows, "webhooks", id)? {
                let state: Option<DeliveryState> = read_row(&states, "webhook_states", id)?;
                hooks.push((hook, state.unwrap_or_default()));
            }
        }
        Ok(hooks)
    }

    /// The ids of every enabled hook: what the delivery worker runs at start and after a hook
    /// changes (a read of every hook row, never on a request's path).
    pub fn enabled_webhooks(&self) -> Result<Vec<WebhookId>, StoreError> {
        let txn = self.db().begin_read()?;
        let mut ids = Vec::new();
        for entry in txn.open_table(WEBHOOKS)?.iter()? {
            let (key, value) = entry?;
            let hook: Webhook = decode("webhooks", value.value())?;
            if hook.enabled {
                ids.push(WebhookId::from_u128(key.value()));
            }
        }
        Ok(ids)
    }

    /// Stores a new hook, which delivers what is committed after this write. Refused with
    /// `Busy`-free `Ok(None)` when the team has [`MAX_WEBHOOKS_PER_TEAM`] already.
    pub fn create_webhook(&self, hook: &Webhook) -> Result<Option<DeliveryState>, StoreError> {
        self.write(|tx| {
            let mut index = tx.txn().open_table(WEBHOOKS_BY_TEAM)?;
            let t = hook.team_id.as_u128();
            if index.range((t, 0)..=(t, u128::MAX))?.count() >= MAX_WEBHOOKS_PER_TEAM {
                return Ok(None);
            }
            index.insert((t, hook.id.as_u128()), ())?;
            tx.txn()
                .open_table(WEBHOOKS)?
                .insert(hook.id.as_u128(), encode(hook)?.as_slice())?;
            let state = DeliveryState {
                cursor: tx.last_seq()?,
                ..DeliveryState::default()
            };
            tx.put_webhook_state(hook.id, &state)?;
            Ok(Some(state))
        })
    }

    /// Replaces a hook's row (its team stays). Enabling a disabled hook clears its failures
    /// and resumes from where it stopped, or from the log's end when that is more than
    /// `max_lag` entries away. `None` when the hook is gone.
    pub fn update_webhook(
        &self,
        hook: &Webhook,
        max_lag: u64,
    ) -> Result<Option<DeliveryState>, StoreError> {
        self.write(|tx| {
            let Some(old) = tx.webhook(hook.id)? else {
                return Ok(None);
            };
            let mut state = tx.webhook_state(hook.id)?;
            if hook.enabled && !old.enabled {
                let end = tx.last_seq()?;
                if end.saturating_sub(state.cursor) > max_lag {
                    state.cursor = end;
                }
                state.failures = 0;
                state.next_attempt_at = None;
                tx.put_webhook_state(hook.id, &state)?;
            }
            tx.txn()
                .open_table(WEBHOOKS)?
                .insert(hook.id.as_u128(), encode(hook)?.as_slice())?;
            Ok(Some(state))
        })
    }

    /// Removes a hook, its state and its delivery log; false when it was gone.
    pub fn delete_webhook(&self, id: WebhookId) -> Result<bool, StoreError> {
        self.write(|tx| {
            let Some(hook) = tx.webhook(id)? else {
                return Ok(false);
            };
            let key = id.as_u128();
            tx.txn().open_table(WEBHOOKS)?.remove(key)?;
            tx.txn()
                .open_table(WEBHOOKS_BY_TEAM)?
                .remove((hook.team_id.as_u128(), key))?;
            tx.txn().open_table(WEBHOOK_STATES)?.remove(key)?;
            tx.txn()
                .open_table(WEBHOOK_DELIVERIES)?
                .retain_in((key, 0)..=(key, u64::MAX), |_, _| false)?;
            Ok(true)
        })
    }

    /// The newest `limit` delivery records of a hook, newest first.
    pub fn webhook_deliveries(
        &self,
        id: WebhookId,
        limit: usize,
    ) -> Result<Vec<crate::domain::webhooks::Delivery>, StoreError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(WEBHOOK_DELIVERIES)?;
        let key = id.as_u128();
        let mut page = Vec::new();
        for entry in table.range((key, 0)..=(key, u64::MAX))?.rev().take(limit) {
            page.push(decode("webhook_deliveries", entry?.1.value())?);
        }
        Ok(page)
    }

    /// One delivery record of a hook.
    pub fn webhook_delivery(
        &self,
        id: WebhookId,
        delivery: u64,
    ) -> Result<Option<crate::domain::webhooks::Delivery>, StoreError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(WEBHOOK_DELIVERIES)?;
        table
            .get((id.as_u128(), delivery))?
            .map(|row| decode("webhook_deliveries", row.value()))
            .transpose()
    }

    /// Records an attempt (when `delivery` is given: its number is assigned here, and the
    /// oldest record past [`MAX_DELIVERIES`] goes) and applies its `outcome` to the hook's
    /// state, in one commit. The cursor never moves back. Returns the record as stored and
    /// the hook's state after it; `None` when the hook is gone.
    pub fn record_webhook_attempt(
        &self,
        id: WebhookId,
        delivery: Option<crate::domain::webhooks::Delivery>,
        outcome: Outcome,
    ) -> Result<Option<(Option<crate::domain::webhooks::Delivery>, DeliveryState)>, StoreError>
    {
        self.write(|tx| {
            let Some(hook) = tx.webhook(id)? else {
                return Ok(None);
            };
            let mut state = tx.webhook_state(id)?;
            let key = id.as_u128();
            let recorded = match delivery {
                Some(mut delivery) => {
                    state.deliveries += 1;
                    delivery.id = state.deliveries;
                    let mut log = tx.txn().open_table(WEBHOOK_DELIVERIES)?;
                    log.insert((key, delivery.id), encode(&delivery)?.as_slice())?;
                    if let Some(oldest) = state.deliveries.checked_sub(MAX_DELIVERIES as u64) {
                        log.retain_in((key, 0)..=(key, oldest), |_, _| false)?;
                    }
                    Some(delivery)
                }
                None => None,
            };
            let advance = |state: &mut DeliveryState, seq: u64| {
                state.cursor = state.cursor.max(seq);
            };
            match outcome {
                Outcome::Delivered { seq } => {
                    advance(&mut state, seq);
                    state.failures = 0;
                    state.next_attempt_at = None;
                }
                Outcome::Skipped { seq } => advance(&mut state, seq),
                Outcome::Failed {
                    skipped_to,
                    retry_at,
                } => {
                    advance(&mut state, skipped_to);
                    state.failures += 1;
                    state.next_attempt_at = Some(retry_at);
                }
                Outcome::Disabled { skipped_to, reason } => {
                    advance(&mut state, skipped_to);
                    state.failures = 0;
                    state.next_attempt_at = None;
                    if hook.enabled {
                        tx.disable_webhook(hook, &reason)?;
                    }
                }
                Outcome::Manual => {}
            }
            tx.put_webhook_state(id, &state)?;
            Ok(Some((recorded, state)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::webhooks::{Delivery, DeliveryKind};

    fn hook(team: TeamId) -> Webhook {
        Webhook {
            id: WebhookId::new(),
            team_id: team,
            project_id: None,
            url: "https://example.com/hook".into(),
            events: vec![],
            secret: "whsec_AAAA".into(),
            enabled: true,
            disabled_reason: None,
            created_by: UserId::new(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn record(hook: &Webhook, ok: bool) -> Delivery {
        Delivery {
            id: 0,
            webhook_id: hook.id,
            kind: DeliveryKind::Event,
            event_id: "msg_1".into(),
            event_type: "task.created".into(),
            seq: Some(1),
            attempt: 1,
            at: Utc::now(),
            status: Some(if ok { 200 } else { 500 }),
            error: None,
            duration_ms: 1,
            request_body: "{}".into(),
            response_body: String::new(),
            ok,
        }
    }

    #[test]
    fn the_log_keeps_the_newest_hundred_and_the_cursor_only_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let hook = hook(TeamId::new());
        store.create_webhook(&hook).unwrap().unwrap();
        for seq in 1..=150u64 {
            store
                .record_webhook_attempt(
                    hook.id,
                    Some(record(&hook, true)),
                    Outcome::Delivered { seq },
                )
                .unwrap();
        }
        let log = store.webhook_deliveries(hook.id, 1000).unwrap();
        assert_eq!(log.len(), MAX_DELIVERIES);
        assert_eq!(log[0].id, 150);
        assert_eq!(log[99].id, 51);
        store
            .record_webhook_attempt(hook.id, None, Outcome::Skipped { seq: 3 })
            .unwrap();
        assert_eq!(store.webhook(hook.id).unwrap().unwrap().1.cursor, 150);
        assert!(store.delete_webhook(hook.id).unwrap());
        assert!(store.webhook_deliveries(hook.id, 1000).unwrap().is_empty());
    }

    #[test]
    fn disabling_tells_the_creator() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let hook = hook(TeamId::new());
        store.create_webhook(&hook).unwrap().unwrap();
        let outcome = Outcome::Disabled {
            skipped_to: 0,
            reason: "the retries ran out".into(),
        };
        store
            .record_webhook_attempt(hook.id, Some(record(&hook, false)), outcome)
            .unwrap();
        let (after, _) = store.webhook(hook.id).unwrap().unwrap();
        assert!(!after.enabled);
        let inbox = store
            .notifications(hook.created_by, None, false, 10)
            .unwrap();
        assert_eq!(inbox.items.len(), 1);
        assert!(store.enabled_webhooks().unwrap().is_empty());
    }
}
