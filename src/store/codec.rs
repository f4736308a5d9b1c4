//! Row values are JSON. It is slower than a binary format, but rows are small, it needs no
//! schema migration when an optional field is added (`#[serde(default)]`), and a data file
//! can be inspected with standard tools.

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
