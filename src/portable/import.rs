//! Reading an export file as a stream: a serde visitor walks the top-level object and hands
//! each record of each section to the store as soon as it is parsed, so memory stays flat
//! however many tasks the file holds.
//!
//! Why a record failed is kept in [`State`] (the serde error only carries text); the caller
//! turns it into a message naming the section, the record's index and the file position.

use std::fmt;
use std::marker::PhantomData;
use std::path::Path;

use chrono::{DateTime, Utc};
use indicatif::ProgressBar;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::format::{
    AttachmentRecord, CommentRecord, FORMAT, ProjectRecord, TaskRecord, TeamRecord, UserRecord,
    VERSION,
};
use super::{ImportReport, Section};
use crate::files::{BlobStore, Hash};
use crate::store::StoreError;
use crate::store::portable::{Checked, Importer};

/// Where the reader is and what went wrong, shared by the visitors.
pub(super) struct State<'a> {
    pub report: &'a mut ImportReport,
    /// `DATA_DIR/blobs`, when it exists: attachments whose blob is not there are skipped.
    pub blobs: Option<BlobStore>,
    pub progress: &'a ProgressBar,
    /// The section being read and the index of the record in it.
    pub position: Option<(Section, usize)>,
    /// A store failure (the serde error then only says "store failure").
    pub store_error: Option<StoreError>,
}

/// Why one record was refused.
enum Refused {
    Invalid(String),
    Store(StoreError),
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Refused::Store(e)
    }
}

impl State<'_> {
    fn refuse<E: de::Error>(&mut self, refused: Refused) -> E {
        match refused {
            Refused::Invalid(why) => E::custom(why),
            Refused::Store(e) => {
                self.store_error = Some(e);
                E::custom("store failure")
            }
        }
    }
}

/// A record of one section and how it goes into the store.
trait Record: DeserializeOwned {
    type Sink<'txn>;
    fn open<'txn>(importer: &Importer<'txn>) -> Result<Self::Sink<'txn>, StoreError>;
    fn apply(self, sink: &mut Self::Sink<'_>, state: &mut State<'_>) -> Result<(), Refused>;
}

/// Turns the store's verdict on a row into a refusal naming the row.
fn verdict(id: impl fmt::Display, checked: Checked) -> Result<(), Refused> {
    checked.map_err(|why| Refused::Invalid(format!("{id}: {why}")))
}

fn parsed<T>(id: impl fmt::Display, result: Result<T, String>) -> Result<T, Refused> {
    result.map_err(|why| Refused::Invalid(format!("{id}: {why}")))
}

impl Record for UserRecord {
    type Sink<'txn> = crate::store::portable::UserSink<'txn>;
    fn open<'txn>(importer: &Importer<'txn>) -> Result<Self::Sink<'txn>, StoreError> {
        importer.users()
    }
    fn apply(self, sink: &mut Self::Sink<'_>, state: &mut State<'_>) -> Result<(), Refused> {
        let id = format!("user {}", self.id);
        let user = parsed(&id, self.parse())?;
        verdict(&id, sink.insert(&user)?)?;
        state.report.users += 1;
        Ok(())
    }
}

impl Record for TeamRecord {
    type Sink<'txn> = crate::store::portable::TeamSink<'txn>;
    fn open<'txn>(importer: &Importer<'txn>) -> Result<Self::Sink<'txn>, StoreError> {
        importer.teams()
    }
    fn apply(self, sink: &mut Self::Sink<'_>, state: &mut State<'_>) -> Result<(), Refused> {
        let id = format!("team {}", self.id);
        let (team, members) = parsed(&id, self.parse())?;
        verdict(&id, sink.insert(&team, &members)?)?;
        state.report.teams += 1;
        state.report.memberships += members.len() as u64;
        Ok(())
    }
}

impl Record for ProjectRecord {
    type Sink<'txn> = crate::store::portable::ProjectSink<'txn>;
    fn open<'txn>(importer: &Importer<'txn>) -> Result<Self::Sink<'txn>, StoreError> {
        importer.projects()
    }
    fn apply(self, sink: &mut Self::Sink<'_>, state: &mut State<'_>) -> Result<(), Refused> {
        let id = format!("project {}", self.id);
        let project = parsed(&id, self.parse())?;
        verdict(&id, sink.insert(&project)?)?;
        state.report.projects += 1;
        Ok(())
    }
}

impl Record for TaskRecord {
    type Sink<'txn> = crate::store::portable::TaskSink<'txn>;
    fn open<'txn>(importer: &Importer<'txn>) -> Result<Self::Sink<'txn>, StoreError> {
        importer.tasks()
    }
    fn apply(self, sink: &mut Self::Sink<'_>, state: &mut State<'_>) -> Result<(), Refused> {
        let id = format!("task {}", self.id);
        let mut task = parsed(&id, self.parse())?;
        verdict(&id, sink.insert(&mut task)?)?;
        state.report.tasks += 1;
        Ok(())
    }
}

impl Record for CommentRecord {
    type Sink<'txn> = crate::store::portable::CommentSink<'txn>;
    fn open<'txn>(importer: &Importer<'txn>) -> Result<Self::Sink<'txn>, StoreError> {
        importer.comments()
    }
    fn apply(self, sink: &mut Self::Sink<'_>, state: &mut State<'_>) -> Result<(), Refused> {
        let id = format!("comment {}", self.id);
        let comment = parsed(&id, self.parse())?;
        verdict(&id, sink.insert(&comment)?)?;
        state.report.comments += 1;
        Ok(())
    }
}

impl Record for AttachmentRecord {
    type Sink<'txn> = crate::store::portable::AttachmentSink<'txn>;
    fn open<'txn>(importer: &Importer<'txn>) -> Result<Self::Sink<'txn>, StoreError> {
        importer.attachments()
    }
    fn apply(self, sink: &mut Self::Sink<'_>, state: &mut State<'_>) -> Result<(), Refused> {
        let id = format!("attachment {}", self.id);
        let attachment = parsed(&id, self.parse())?;
        // Only metadata travels in the file: a row whose bytes are not in DATA_DIR/blobs (with
        // the recorded size) would answer 404 or the wrong length; it is skipped and counted.
        let present = state.blobs.as_ref().is_some_and(|blobs| {
            let path = blobs.path(&Hash(attachment.sha256));
            std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == attachment.size)
        });
        if !present {
            state.report.attachments_skipped += 1;
            if state.report.skipped_examples.len() < 5 {
                state
                    .report
                    .skipped_examples
                    .push(format!("{id} ({})", attachment.sha256_hex()));
            }
            return Ok(());
        }
        verdict(&id, sink.insert(&attachment)?)?;
        state.report.attachments += 1;
        Ok(())
    }
}

/// The top-level object.
pub(super) struct FileVisitor<'s, 'a, 'txn> {
    pub state: &'s mut State<'a>,
    pub importer: &'s Importer<'txn>,
}

impl<'de> Visitor<'de> for FileVisitor<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a {FORMAT} JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let (mut format, mut version) = (false, false);
        let mut last: Option<Section> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "format" => {
                    let value: String = map.next_value()?;
                    if value != FORMAT {
                        return Err(de::Error::custom(format!(
                            "format is {value:?}: not a {FORMAT} file"
                        )));
                    }
                    format = true;
                }
                "version" => {
                    let value: u64 = map.next_value()?;
                    if value != VERSION {
                        return Err(de::Error::custom(format!(
                            "format version {value} is not supported (this tasker reads version {VERSION})"
                        )));
                    }
                    version = true;
                }
                "exported_at" => {
                    map.next_value::<DateTime<Utc>>()?;
                }
                "tasker_version" => {
                    map.next_value::<String>()?;
                }
                other => {
                    let Some(section) = Section::from_key(other) else {
                        return Err(de::Error::custom(format!("unknown field `{other}`")));
                    };
                    if !(format && version) {
                        return Err(de::Error::custom(
                            "`format` and `version` must come before the data sections",
                        ));
                    }
                    if last.is_some_and(|l| l >= section) {
                        return Err(de::Error::custom(format!(
                            "section `{other}` is out of order: sections come in the order users, teams, projects, tasks, comments, attachments, each once"
                        )));
                    }
                    last = Some(section);
                    self.state.position = Some((section, 0));
                    self.state.progress.set_message(other.to_string());
                    match section {
                        Section::Users => self.section::<UserRecord, A>(&mut map)?,
                        Section::Teams => self.section::<TeamRecord, A>(&mut map)?,
                        Section::Projects => self.section::<ProjectRecord, A>(&mut map)?,
                        Section::Tasks => self.section::<TaskRecord, A>(&mut map)?,
                        Section::Comments => self.section::<CommentRecord, A>(&mut map)?,
                        Section::Attachments => self.section::<AttachmentRecord, A>(&mut map)?,
                    }
                    self.state.position = None;
                }
            }
        }
        if !format {
            return Err(de::Error::custom(format!(
                "no `format` field: not a {FORMAT} file"
            )));
        }
        if !version {
            return Err(de::Error::custom("no `version` field"));
        }
        Ok(())
    }
}

impl FileVisitor<'_, '_, '_> {
    fn section<'de, R: Record, A: MapAccess<'de>>(&mut self, map: &mut A) -> Result<(), A::Error> {
        let mut sink =
            R::open(self.importer).map_err(|e| self.state.refuse::<A::Error>(Refused::Store(e)))?;
        map.next_value_seed(Rows::<R> {
            state: self.state,
            sink: &mut sink,
            record: PhantomData,
        })
    }
}

/// One section's array, applied record by record.
struct Rows<'s, 'a, 'k, 'txn, R: Record> {
    state: &'s mut State<'a>,
    sink: &'k mut R::Sink<'txn>,
    record: PhantomData<R>,
}

impl<'de, R: Record> DeserializeSeed<'de> for Rows<'_, '_, '_, '_, R> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, R: Record> Visitor<'de> for Rows<'_, '_, '_, '_, R> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        let mut index = 0;
        loop {
            if let Some((_, i)) = &mut self.state.position {
                *i = index;
            }
            let Some(record) = seq.next_element::<R>()? else {
                return Ok(());
            };
            record
                .apply(self.sink, self.state)
                .map_err(|refused| self.state.refuse::<S::Error>(refused))?;
            index += 1;
        }
    }
}

/// `DATA_DIR/blobs` when it exists (an operator copied it across before importing).
pub(super) fn blobs_of(data_dir: &Path) -> std::io::Result<Option<BlobStore>> {
    if data_dir.join("blobs").is_dir() {
        BlobStore::open(data_dir).map(Some)
    } else {
        Ok(None)
    }
}
