//! Writing an export file: the header, then each section as a JSON array with one record per
//! line, written as rows are read (nothing is collected in memory).

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::format::{FORMAT, VERSION};
use super::{PortableError, Section};

/// Writes the file's JSON around records handed to it one at a time. Sections must be opened
/// in [`Section::ALL`] order; the import relies on it.
pub struct ExportWriter<W: Write> {
    out: W,
    /// Whether the open section has a record yet (decides the comma).
    has_records: bool,
    open: Option<Section>,
}

impl<W: Write> ExportWriter<W> {
    /// Writes the header fields.
    pub fn start(mut out: W, exported_at: DateTime<Utc>) -> Result<Self, PortableError> {
        let at = exported_at.to_rfc3339_opts(SecondsFormat::Micros, true);
        write!(
            out,
            "{{\"format\":{},\"version\":{VERSION},\"exported_at\":{},\"tasker_version\":{}",
            json(&FORMAT)?,
            json(&at)?,
            json(&env!("CARGO_PKG_VERSION"))?
        )?;
        Ok(Self {
            out,
            has_records: false,
            open: None,
        })
    }

    /// Closes the open section (if any) and opens `section`.
    pub fn section(&mut self, section: Section) -> Result<(), PortableError> {
        self.close_section()?;
        write!(self.out, ",\n{}:[", json(&section.key())?)?;
        self.open = Some(section);
        self.has_records = false;
        Ok(())
    }

    /// Writes one record into the open section.
    pub fn record(&mut self, record: &impl Serialize) -> Result<(), PortableError> {
        let separator = if self.has_records { ",\n" } else { "\n" };
        self.out.write_all(separator.as_bytes())?;
        serde_json::to_writer(&mut self.out, record).map_err(std::io::Error::from)?;
        self.has_records = true;
        Ok(())
    }

    fn close_section(&mut self) -> Result<(), PortableError> {
        if self.open.take().is_some() {
            let end: &[u8] = if self.has_records { b"\n]" } else { b"]" };
            self.out.write_all(end)?;
        }
        Ok(())
    }

    /// Ends the document and returns the writer, flushed.
    pub fn finish(mut self) -> Result<W, PortableError> {
        self.close_section()?;
        self.out.write_all(b"\n}\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn json(value: &impl Serialize) -> Result<String, PortableError> {
    Ok(serde_json::to_string(value).map_err(std::io::Error::from)?)
}
