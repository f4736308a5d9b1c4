//! What `Store::write` does with a write's `Effects`: nothing when it fails; the rest around
//! and after its commit.

use chrono::Utc;

use super::*;
use crate::domain::change::{ChangeAction, EntityKind, NewChange};
use crate::domain::task::{Task, TaskTitle};

fn task(creator: UserId) -> Task {
    Task::sample(creator)
}

/// A change-log entry about `task`.
fn deleted(task: &Task) -> NewChange {
    NewChange {
        at: Utc::now(),
        actor: task.created_by,
        entity: EntityKind::Task,
        entity_id: task.id.as_uuid(),
        team_id: None,
        project_id: None,
        audience: vec![task.created_by],
        previous_team_id: None,
        previous_project_id: None,
        task_id: None,
        action: ChangeAction::Deleted,
        fields: vec![],
    }
}

/// A store with group commit whose freed blobs arrive on the returned receiver.
fn store(dir: &tempfile::TempDir) -> (Store, tokio::sync::mpsc::UnboundedReceiver<Vec<[u8; 32]>>) {
    let store = Store::open_with_group_commit(&dir.path().join("t.redb"), 8 << 20).unwrap();
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    assert!(store.on_blobs_freed(sender));
    (store, receiver)
}

fn receipts_of(store: &Store) -> (u64, Vec<[u8; 32]>) {
    let receipts = lock(store.receipts.as_ref().expect("inside run"));
    (receipts.generation, receipts.blobs_freed.clone())
}

#[tokio::test]
async fn a_failed_write_applies_no_effects() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut freed) = store(&dir);
    let (me, hash) = (UserId::new(), [3u8; 32]);
    let t = task(me);
    store.import_tasks(std::slice::from_ref(&t)).unwrap();
    store.write(|tx| tx.add_blob_ref(hash)).unwrap();
    store.flushed().await.unwrap();
    store.reads.fill(store.reads.ticket(), &t, me, None);
    let (log_end, epoch, seq) = (
        store.log_end(),
        store.auth_epoch(),
        store.last_seq().unwrap(),
    );

    let written = t.clone();
    let failed = store
        .run::<_, StoreError, _>(move |s| {
            let failed: Result<(), StoreError> = s.write(|tx| {
                tx.append(deleted(&written))?;
                tx.drop_blob_ref(hash)?;
                tx.note_task_written(written.id.as_u128());
                tx.note_members_changed();
                tx.note_auth_changed();
                Err(StoreError::Stale)
            });
            assert_eq!(
                receipts_of(s),
                (0, vec![]),
                "nothing to wait for or hand over"
            );
            Ok(failed)
        })
        .await
        .unwrap();

    assert!(matches!(failed, Err(StoreError::Stale)));
    assert_eq!(store.log_end(), log_end);
    assert_eq!(store.auth_epoch(), epoch);
    assert_eq!(store.last_seq().unwrap(), seq, "rolled back");
    assert!(store.blob_referenced(hash).unwrap(), "rolled back");
    assert!(freed.try_recv().is_err(), "no blob handed over");
    assert!(
        store.reads.task_for(t.id, me).is_some(),
        "the cached task was not dropped"
    );
}

#[tokio::test]
async fn a_freed_blob_is_handed_over_only_after_the_commit_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (store, freed) = store(&dir);
    let hash = [5u8; 32];
    store
        .run(move |s| s.write(|tx| tx.add_blob_ref(hash)))
        .await
        .unwrap();

    let mut freed = store
        .run::<_, StoreError, _>(move |s| {
            s.write(|tx| {
                tx.drop_blob_ref(hash)?;
                assert!(receipts_of(s).1.is_empty(), "not before the commit");
                Ok::<_, StoreError>(())
            })?;
            let (generation, blobs) = receipts_of(s);
            assert!(generation > 0, "the answer waits for this commit's flush");
            assert_eq!(blobs, vec![hash], "freed once committed");
            let mut freed = freed;
            assert!(
                freed.try_recv().is_err(),
                "not handed over before it is durable"
            );
            Ok(freed)
        })
        .await
        .unwrap();

    assert_eq!(freed.try_recv().unwrap(), vec![hash]);
    assert!(!store.blob_referenced(hash).unwrap());
}

#[test]
fn a_write_touching_a_task_drops_it_from_the_read_cache() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.redb")).unwrap();
    let me = UserId::new();
    let (t, other) = (task(me), task(me));
    store.import_tasks(&[t.clone(), other.clone()]).unwrap();
    store.reads.fill(store.reads.ticket(), &t, me, None);
    store.reads.fill(store.reads.ticket(), &other, me, None);

    store
        .write(|tx| {
            tx.update_task(t.id, me, Utc::now(), |task| {
                task.title = TaskTitle::parse("renamed").unwrap();
                Ok(())
            })
        })
        .unwrap();

    assert!(store.reads.task_for(t.id, me).is_none(), "dropped");
    assert!(
        store.reads.task_for(other.id, me).is_some(),
        "a task the write did not touch stays"
    );
}
