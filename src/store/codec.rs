//! Row values are JSON. It is slower than a binary format, but rows are small, it needs no
//! schema migration when an optional field is added (`#[serde(default)]`), and a data file
//! can be inspected with standard tools. Also here: reading rows by id and pages of ids from
//! the `(prefix, id)` index keys every row file uses.

use redb::ReadableTable;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(format!("cannot encode row: {e}")))
}

pub fn decode<T: DeserializeOwned>(table: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
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
