//! Row values are JSON: it needs no schema migration when an optional field is added
//! (`#[serde(default)]`), and a value decoded is a value any version can read. Also here:
//! reading rows by id and pages of ids from the `(prefix, id)` index keys every row file uses.
//!
//! # Stored form
//!
//! A value is stored in one of three forms, told apart by its first byte:
//!
//! - plain JSON (first byte `{`, or any byte but the two markers): what every row written
//!   before issue 18 is, and every value too short to gain from compression;
//! - [`LZ4_DICT_1`], then the JSON's length (u32, little endian), then the JSON compressed as
//!   an LZ4 block against [`DICT_1`]: what builds of migration 15 wrote. Still read (and
//!   rewritten in the current form by `tasker compact`), never written.
//! - [`ZSTD_DICT_1`], then one zstd frame of the JSON compressed against [`DICT_1`] used as
//!   a raw-content dictionary, at level [`ZSTD_LEVEL`]: the form written since migration 16.
//!   The frame records the JSON's length (refused above [`MAX_VALUE`] before anything is
//!   allocated for it), and neither a checksum nor a dictionary id (the marker names the
//!   dictionary; redb's own page checksums cover the bytes). Written for every value of more
//!   than [`COMPRESS_FROM`] bytes when it comes out smaller.
//!
//! The dictionary holds the field names and skeletons rows repeat, so a row no longer spends
//! a third of its bytes on `"description":`, `"assignee_ids":[` and the like (nor a change-log
//! entry on `{"field":"title","before":`); zstd's entropy coding then takes another quarter off
//! what LZ4 stored (tasks of realistic text: 594 bytes as LZ4, about 440 as zstd).
//!
//! The dictionary is part of the file format: [`DICT_1`] must never change. A better one
//! would get a new marker byte, with every earlier form kept readable.
//!
//! zstd's dictionaries are prepared once per process ([`OnceLock`]) and its contexts reused
//! from a small idle set, so a row costs a few microseconds, not a dictionary load.

use std::io::Cursor;
use std::sync::{Mutex, OnceLock};

use redb::ReadableTable;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;

/// The marker byte of a value compressed with LZ4 against [`DICT_1`] (read, no longer
/// written).
pub const LZ4_DICT_1: u8 = 0x01;

/// The marker byte of a value compressed with zstd against [`DICT_1`]: what is written.
pub const ZSTD_DICT_1: u8 = 0x02;

/// The zstd level of [`ZSTD_DICT_1`] values; a reader does not depend on it. Measured on
/// 20,000 rows each of a synthetic import (bytes per row stored; LZ4 form for comparison):
/// tasks 842 JSON, 566 LZ4, 417 at level 3, 407 at 5, 401 at 19; comments 415, 328, 237,
/// 236, 235; change-log entries 1084, 630, 458, 422, 413. Level 5 compresses at half the
/// speed of 3 for 2% on rows (changes gain more, but an import's are small now), and 12 and
/// up at a tenth: 3 it is.
pub const ZSTD_LEVEL: i32 = 3;

/// Values up to this many bytes are stored as plain JSON (nothing to gain).
const COMPRESS_FROM: usize = 48;

/// The largest value a compressed value may claim to hold (a corrupt length is refused
/// before anything is allocated for it).
const MAX_VALUE: usize = 64 << 20;

/// The dictionary of markers [`LZ4_DICT_1`] and [`ZSTD_DICT_1`]: the JSON skeletons of tasker's rows (tasks,
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

/// A value's stored form: [`ZSTD_DICT_1`] when that is smaller, else the JSON.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(value)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode row: {e}")))?;
    Ok(pack(json))
}

fn pack(json: Vec<u8>) -> Vec<u8> {
    if json.len() <= COMPRESS_FROM || json.len() > MAX_VALUE {
        return json;
    }
    match compress(&json) {
        Some(stored) if stored.len() < json.len() => stored,
        // Plain JSON is always a readable form: the fallback if zstd ever fails.
        _ => json,
    }
}

/// [`DICT_1`] prepared for zstd, once per process.
struct Prepared {
    encoder: zstd::dict::EncoderDictionary<'static>,
    decoder: zstd::dict::DecoderDictionary<'static>,
}

fn prepared() -> &'static Prepared {
    static PREPARED: OnceLock<Prepared> = OnceLock::new();
    // DICT_1 does not begin with zstd's dictionary magic number, so zstd loads it as raw
    // content. `copy` fails only when memory runs out.
    PREPARED.get_or_init(|| Prepared {
        encoder: zstd::dict::EncoderDictionary::copy(DICT_1, ZSTD_LEVEL),
        decoder: zstd::dict::DecoderDictionary::copy(DICT_1),
    })
}

/// zstd contexts not in use, kept for the next value (a context costs an allocation of
/// tens to hundreds of KiB): taken for one value, then put back.
struct Contexts<T> {
    idle: Mutex<Vec<T>>,
}

impl<T> Contexts<T> {
    /// At most this many wait idle (one per thread that compresses at once is plenty).
    const KEEP: usize = 8;

    const fn new() -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `work` with an idle context, or a new one from `make`.
    fn with<R>(
        &self,
        make: impl FnOnce() -> std::io::Result<T>,
        work: impl FnOnce(&mut T) -> R,
    ) -> std::io::Result<R> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut context = match idle {
            Some(context) => context,
            None => make()?,
        };
        let result = work(&mut context);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < Self::KEEP {
            idle.push(context);
        }
        Ok(result)
    }
}

static COMPRESSORS: Contexts<zstd::bulk::Compressor<'static>> = Contexts::new();
static DECOMPRESSORS: Contexts<zstd::bulk::Decompressor<'static>> = Contexts::new();

fn new_compressor() -> std::io::Result<zstd::bulk::Compressor<'static>> {
    use zstd::zstd_safe::CParameter;
    let mut compressor = zstd::bulk::Compressor::with_prepared_dictionary(&prepared().encoder)?;
    compressor.set_parameter(CParameter::ChecksumFlag(false))?;
    compressor.set_parameter(CParameter::DictIdFlag(false))?;
    compressor.set_parameter(CParameter::ContentSizeFlag(true))?;
    Ok(compressor)
}

/// `json` in the [`ZSTD_DICT_1`] form; `None` if zstd failed.
fn compress(json: &[u8]) -> Option<Vec<u8>> {
    COMPRESSORS
        .with(new_compressor, |compressor| {
            let mut stored = Vec::with_capacity(1 + zstd::zstd_safe::compress_bound(json.len()));
            stored.push(ZSTD_DICT_1);
            let mut frame = Cursor::new(stored);
            frame.set_position(1);
            compressor.compress_to_buffer(json, &mut frame).ok()?;
            Some(frame.into_inner())
        })
        .ok()
        .flatten()
}

/// The JSON of a [`ZSTD_DICT_1`] frame, or why it is not one.
fn decompress(frame: &[u8]) -> Result<Vec<u8>, String> {
    let len = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(len)) => len,
        Ok(None) => return Err("a compressed value without its length".into()),
        Err(_) => return Err("a compressed value that is no zstd frame".into()),
    };
    if len > MAX_VALUE as u64 {
        return Err(format!("a compressed value claims {len} bytes"));
    }
    let mut json = Vec::with_capacity(len as usize);
    DECOMPRESSORS
        .with(
            || zstd::bulk::Decompressor::with_prepared_dictionary(&prepared().decoder),
            |decompressor| decompressor.decompress_to_buffer(frame, &mut json),
        )
        .map_err(|e| format!("cannot prepare zstd: {e}"))?
        .map_err(|e| format!("cannot decompress: {e}"))?;
    if json.len() as u64 != len {
        return Err(format!(
            "a compressed value of {} bytes claims {len}",
            json.len()
        ));
    }
    Ok(json)
}

/// The JSON of a stored value (any form).
fn unpack<'a>(table: &str, bytes: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt(format!("bad row in {table}: {why}"));
    match bytes.split_first() {
        Some((&ZSTD_DICT_1, frame)) => {
            Ok(std::borrow::Cow::Owned(decompress(frame).map_err(corrupt)?))
        }
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

/// A stored value (any form) in the form [`encode`] writes now, its JSON unchanged.
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

    /// A value in the [`LZ4_DICT_1`] form, as builds of migration 15 wrote it.
    fn lz4_form(json: &[u8]) -> Vec<u8> {
        let mut stored = vec![LZ4_DICT_1];
        stored.extend_from_slice(&(json.len() as u32).to_le_bytes());
        stored.extend_from_slice(&lz4_flex::block::compress_with_dict(json, DICT_1));
        stored
    }

    /// What is written now is zstd, smaller than JSON and than the LZ4 form, and reads back
    /// to the same value.
    #[test]
    fn compressed_rows_round_trip_and_are_smaller() {
        let task: Task = serde_json::from_value(task_json()).unwrap();
        let json = serde_json::to_vec(&task).unwrap();
        let stored = encode(&task).unwrap();
        assert_eq!(stored[0], ZSTD_DICT_1);
        assert!(
            stored.len() * 10 < json.len() * 8,
            "{} bytes stored for {} of JSON",
            stored.len(),
            json.len()
        );
        assert!(stored.len() < lz4_form(&json).len());
        let back: Task = decode("tasks", &stored).unwrap();
        assert_eq!(serde_json::to_vec(&back).unwrap(), json);
        // A short value stays JSON.
        assert_eq!(encode(&"short").unwrap(), b"\"short\"");
        // Many values, on several threads at once (sharing the idle contexts).
        let threads: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let value = serde_json::json!({"thread": t, "i": i, "text": "x".repeat(i)});
                        let stored = encode(&value).unwrap();
                        assert_eq!(decode::<serde_json::Value>("t", &stored).unwrap(), value);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    }

    /// Values of migration 15 (LZ4 against the same dictionary) still read, and `recode`
    /// (what `tasker compact` does) turns them and plain JSON into the zstd form.
    #[test]
    fn lz4_rows_still_read_and_recode_to_zstd() {
        let json = serde_json::to_vec(&task_json()).unwrap();
        let old = lz4_form(&json);
        let task: Task = decode("tasks", &old).unwrap();
        assert_eq!(task.title.as_str(), "Fix the login page");
        for stored in [old, json.clone()] {
            let recoded = recode("tasks", &stored).unwrap();
            assert_eq!(recoded[0], ZSTD_DICT_1);
            assert_eq!(unpack("tasks", &recoded).unwrap().as_ref(), json.as_slice());
        }
    }

    /// A damaged compressed value (either form) is a decoding error naming the table, never a
    /// panic or a huge allocation.
    #[test]
    fn damaged_values_are_errors() {
        let task: Task = serde_json::from_value(task_json()).unwrap();
        let json = serde_json::to_vec(&task).unwrap();
        let mut bad: Vec<Vec<u8>> = Vec::new();

        let lz4 = lz4_form(&json);
        let mut claims_too_much = lz4.clone();
        claims_too_much[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut claims_too_little = lz4.clone();
        claims_too_little[1..5].copy_from_slice(&10u32.to_le_bytes());
        bad.extend([claims_too_much, claims_too_little, vec![LZ4_DICT_1, 1]]);

        let zstd = encode(&task).unwrap();
        assert_eq!(zstd[0], ZSTD_DICT_1);
        // A frame header claiming 2^40 bytes (8-byte size field, single segment).
        let mut huge = vec![ZSTD_DICT_1, 0x28, 0xb5, 0x2f, 0xfd, 0xe0];
        huge.extend_from_slice(&(1u64 << 40).to_le_bytes());
        huge.extend_from_slice(&zstd[8..]);
        // The frame's size field one off (5: the descriptor, 6: the size).
        let mut size_off = zstd.clone();
        size_off[6] = size_off[6].wrapping_add(1);
        let mut not_zstd = zstd.clone();
        not_zstd[1] ^= 0xff;
        bad.extend([
            huge,
            size_off,
            not_zstd,
            vec![ZSTD_DICT_1],
            vec![ZSTD_DICT_1, 1],
        ]);
        for bad in &bad {
            match decode::<Task>("tasks", bad) {
                Err(StoreError::Corrupt(why)) => assert!(why.contains("tasks"), "{why}"),
                Err(other) => panic!("{other}"),
                Ok(_) => panic!("{bad:?} decoded"),
            }
        }
        // Cut short anywhere, or with any byte changed: an error or (a changed literal may
        // still be valid JSON of a task) a value, never a panic.
        for stored in [&lz4, &zstd] {
            for len in 0..stored.len() {
                if let Err(e) = decode::<Task>("tasks", &stored[..len]) {
                    assert!(matches!(e, StoreError::Corrupt(_)), "{e}");
                }
            }
            for at in 1..stored.len() {
                let mut flipped = stored.clone();
                flipped[at] ^= 0x5a;
                if let Err(e) = decode::<Task>("tasks", &flipped) {
                    assert!(matches!(e, StoreError::Corrupt(_)), "{e}");
                }
            }
        }
    }
}
