//! Row values are JSON: it needs no schema migration when an optional field is added
//! (`#[serde(default)]`), and a value decoded is a value any version can read. Also here:
//! reading rows by id and pages of ids from the `(prefix, id)` index keys every row file uses.
//!
//! # Stored form
//!
//! A value is stored in one of two forms, told apart by its first byte:
//!
//! - plain JSON (first byte `{`, or any byte but [`LZ4_DICT_1`]): what every row written before
//!   issue 18 is, and still read as it is;
//! - [`LZ4_DICT_1`], then the JSON's length (u32, little endian), then the JSON compressed as
//!   an LZ4 block against [`DICT_1`]: a dictionary of the field names and skeletons rows
//!   repeat, so a row no longer spends a third of its bytes on `"description":`,
//!   `"assignee_ids":[` and the like (nor a change-log entry on `{"field":"title","before":`).
//!   Written for every value of more than [`COMPRESS_FROM`] bytes when it comes out smaller.
//!
//! The dictionary is part of the file format: [`DICT_1`] must never change. A better one
//! would get a new marker byte, with both kept readable.

use redb::ReadableTable;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;

/// The marker byte of a value compressed against [`DICT_1`].
pub const LZ4_DICT_1: u8 = 0x01;

/// Values up to this many bytes are stored as plain JSON (nothing to gain).
const COMPRESS_FROM: usize = 48;

/// The largest value a compressed value may claim to hold (a corrupt length is refused
/// before anything is allocated for it).
const MAX_VALUE: usize = 64 << 20;

/// The LZ4 dictionary of marker [`LZ4_DICT_1`]: the JSON skeletons of tasker's rows (tasks,
/// change-log entries with their fields, comments, notifications, projects, teams, users,
/// memberships, sessions), the most common last. FROZEN: stored values depend on every byte.
pub const DICT_1: &[u8] = concat!(
    r#"{"id":"","user_id":"","email":"","name":"","role":"member","password_hash":"$2b$12$","disabled":false,"created_at":"2026-"#,
    r#"{"id":"","user_id":"","created_at":"2026-","expires_at":"2026-","refresh_hash":"","previous_hashes":[],"user_agent":"Mozilla/5.0 ("#,
    r#"{"team_id":"","user_id":"","role":"owner","joined_at":"2026-"#,
    r#"{"id":"","name":"","description":"","created_by":"","created_at":"2026-","archived":false,"team_id":"","#,
    r#"{"seq":,"user_id":"","kind":"task_assigned","actor_id":"","created_at":"2026-","read_at":null,"task_id":"","team_id":"","entity_id":null,"subject":"","fields":[]}"#,
    r#"{"kind":"task_updated","kind":"comment_added","fields":["status","title","due_date","priority"]"#,
    r#"{"id":"","task_id":"","filename":"","content_type":"application/octet-stream","size":,"sha256":"","uploaded_by":"","created_at":"2026-"#,
    r#"{"id":"","task_id":"","author_id":"","body":"","created_at":"2026-","updated_at":"2026-","edited_at":null,"version":1}"#,
    r#"{"field":"body","before":null,"after":""},{"field":"name","before":null,"after":""},{"field":"role","before":null,"after":"member"},{"field":"filename","before":null,"after":""}"#,
    r#"{"field":"labels","before":[],"after":["bug","feature"]},{"field":"due_date","before":null,"after":"2026-"#,
    r#"{"field":"rank","before":"","after":""},{"field":"status","before":"todo","after":"done"},{"field":"status","before":"in_progress","after":"blocked"},{"field":"priority","before":"medium","after":"high"},{"field":"description","before":"","after":""}"#,
    r#"{"seq":,"at":"2026-","actor":"","entity":"comment","entity_id":"","team_id":"","project_id":"","audience":[],"task_id":"","action":"deleted","fields":[]}"#,
    r#"{"seq":,"at":"2026-","actor":"","entity":"task","entity_id":"","team_id":"","project_id":"","audience":[""],"previous_team_id":"","previous_project_id":"","action":"updated","fields":[{"field":"title","before":"","after":""}]}"#,
    r#"{"seq":,"at":"2026-","actor":"","entity":"task","entity_id":"","team_id":"","project_id":"","action":"created","fields":[{"field":"title","before":null,"after":""},{"field":"status","before":null,"after":"todo"},{"field":"priority","before":null,"after":"medium"},{"field":"rank","before":null,"after":""},{"field":"description","before":null,"after":""},{"field":"labels","before":null,"after":[""]},{"field":"project_id","before":null,"after":""},{"field":"assignee_ids","before":null,"after":[""]}]}"#,
    r#"{"id":"","title":"","description":"","status":"in_progress","priority":"high","due_date":"2026-","labels":[],"project_id":null,"team_id":null,"assignee_ids":[],"created_by":"","created_at":"2026-","updated_at":"2026-","version":1,"comment_count":0,"attachment_count":0,"rank":""}"#,
    r#"{"id":"","title":"","description":"","status":"todo","priority":"medium","due_date":null,"labels":[""],"project_id":"","team_id":"","assignee_ids":[""],"created_by":"","created_at":"2026-","updated_at":"2026-","version":1,"comment_count":0,"attachment_count":0,"rank":""}"#,
)
.as_bytes();

/// A value's stored form: compressed against [`DICT_1`] when that is smaller, else the JSON.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(value)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode row: {e}")))?;
    Ok(pack(json))
}

fn pack(json: Vec<u8>) -> Vec<u8> {
    if json.len() <= COMPRESS_FROM || json.len() > MAX_VALUE {
        return json;
    }
    let compressed = lz4_flex::block::compress_with_dict(&json, DICT_1);
    if compressed.len() + 5 >= json.len() {
        return json;
    }
    let mut stored = Vec::with_capacity(compressed.len() + 5);
    stored.push(LZ4_DICT_1);
    stored.extend_from_slice(&(json.len() as u32).to_le_bytes());
    stored.extend_from_slice(&compressed);
    stored
}

/// The JSON of a stored value (either form).
fn unpack<'a>(table: &str, bytes: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt(format!("bad row in {table}: {why}"));
    match bytes.split_first() {
        Some((&LZ4_DICT_1, rest)) => {
            let (len, block) = rest
                .split_first_chunk::<4>()
                .ok_or_else(|| corrupt("a compressed value without its length".into()))?;
            let len = u32::from_le_bytes(*len) as usize;
            if len > MAX_VALUE {
                return Err(corrupt(format!("a compressed value claims {len} bytes")));
            }
            let json = lz4_flex::block::decompress_with_dict(block, len, DICT_1)
                .map_err(|e| corrupt(format!("cannot decompress: {e}")))?;
            if json.len() != len {
                return Err(corrupt(format!(
                    "a compressed value of {} bytes claims {len}",
                    json.len()
                )));
            }
            Ok(std::borrow::Cow::Owned(json))
        }
        _ => Ok(std::borrow::Cow::Borrowed(bytes)),
    }
}

/// A stored value (either form) in the form [`encode`] writes now, its JSON unchanged.
pub fn recode(table: &str, bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    Ok(pack(unpack(table, bytes)?.into_owned()))
}

pub fn decode<T: DeserializeOwned>(table: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(&unpack(table, bytes)?)
        .map_err(|e| StoreError::Corrupt(format!("bad row in {table}: {e}")))
}

/// Reads and decodes the JSON row under an id key; `table` names the table in errors.
pub fn read_row<T: DeserializeOwned>(
    rows: &impl ReadableTable<u128, &'static [u8]>,
    table: &str,
    id: u128,
) -> Result<Option<T>, StoreError> {
    rows.get(id)?
        .map(|row| decode(table, row.value()))
        .transpose()
}

/// Ids after `after` in the second half of `(prefix, id)` keys, up to `limit`.
pub fn ids_after<V: redb::Value + 'static>(
    table: &impl ReadableTable<(u128, u128), V>,
    prefix: u128,
    after: Option<u128>,
    limit: usize,
) -> Result<Vec<u128>, StoreError> {
    let start = match after {
        Some(u128::MAX) => return Ok(vec![]),
        Some(after) => after + 1,
        None => 0,
    };
    let mut ids = Vec::new();
    for entry in table
        .range((prefix, start)..=(prefix, u128::MAX))?
        .take(limit)
    {
        ids.push(entry?.0.value().1);
    }
    Ok(ids)
}

/// Up to `limit` rows of `rows` listed by `index` under `prefix` after `after`, in index
/// order, read in one snapshot; `name` names the table in errors.
pub fn rows_after<T: DeserializeOwned>(
    txn: &redb::ReadTransaction,
    index: redb::TableDefinition<(u128, u128), ()>,
    rows: redb::TableDefinition<u128, &'static [u8]>,
    name: &str,
    prefix: u128,
    after: Option<u128>,
    limit: usize,
) -> Result<Vec<T>, StoreError> {
    let ids = ids_after(&txn.open_table(index)?, prefix, after, limit)?;
    let rows = txn.open_table(rows)?;
    let mut page = Vec::with_capacity(ids.len());
    for id in ids {
        page.extend(read_row::<T>(&rows, name, id)?);
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::task::Task;

    fn task_json() -> serde_json::Value {
        serde_json::json!({
            "id": "019a8f3c-1d2e-7f00-8000-0123456789ab", "title": "Fix the login page",
            "description": "The login page loses the email when the password is wrong, and the error says nothing useful about why.",
            "status": "todo", "priority": "medium", "due_date": null, "labels": ["bug"],
            "project_id": "019a8f3c-0000-7000-8000-000000000001",
            "team_id": "019a8f3c-0000-7000-8000-000000000002",
            "assignee_ids": ["019a8f3c-0000-7000-8000-000000000003"],
            "created_by": "019a8f3c-0000-7000-8000-000000000003",
            "created_at": "2026-11-21T10:00:00Z", "updated_at": "2026-11-21T10:00:00Z",
            "version": 1, "comment_count": 0, "attachment_count": 0, "rank": "U"
        })
    }

    /// Rows written before values were compressed are plain JSON: they still read.
    #[test]
    fn plain_json_rows_still_read() {
        let old = serde_json::to_vec(&task_json()).unwrap();
        let task: Task = decode("tasks", &old).unwrap();
        assert_eq!(task.title.as_str(), "Fix the login page");
        let small: u64 = decode("meta", b"7").unwrap();
        assert_eq!(small, 7);
    }

    /// What is written now is smaller and reads back to the same value.
    #[test]
    fn compressed_rows_round_trip_and_are_smaller() {
        let task: Task = serde_json::from_value(task_json()).unwrap();
        let json = serde_json::to_vec(&task).unwrap();
        let stored = encode(&task).unwrap();
        assert_eq!(stored[0], LZ4_DICT_1);
        assert!(
            stored.len() * 10 < json.len() * 8,
            "{} bytes stored for {} of JSON",
            stored.len(),
            json.len()
        );
        let back: Task = decode("tasks", &stored).unwrap();
        assert_eq!(serde_json::to_vec(&back).unwrap(), json);
        // A short value stays JSON.
        assert_eq!(encode(&"short").unwrap(), b"\"short\"");
    }

    /// A damaged compressed value is a decoding error naming the table, never a panic or a
    /// huge allocation.
    #[test]
    fn damaged_values_are_errors() {
        let task: Task = serde_json::from_value(task_json()).unwrap();
        let stored = encode(&task).unwrap();
        let mut claims_too_much = stored.clone();
        claims_too_much[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut truncated = stored.clone();
        truncated.truncate(stored.len() / 2);
        let mut claims_too_little = stored.clone();
        claims_too_little[1..5].copy_from_slice(&10u32.to_le_bytes());
        let mut flipped = stored.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x5a;
        for bad in [
            &claims_too_much[..],
            &claims_too_little,
            &truncated,
            &flipped,
            &[LZ4_DICT_1, 1][..],
        ] {
            match decode::<Task>("tasks", bad) {
                Err(StoreError::Corrupt(why)) => assert!(why.contains("tasks"), "{why}"),
                Err(other) => panic!("{other}"),
                Ok(_) => {} // a flipped literal may still be valid JSON of a task
            }
        }
    }
}
