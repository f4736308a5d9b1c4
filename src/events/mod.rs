//! The real-time fan-out: committed change-log entries and the notifications they caused,
//! delivered to every connected client allowed to see them, in the order of their positions
//! ([`Cursor`]: `seq`, then the frame's slot within it).
//!
//! One dispatcher ([`Hub::dispatch`]) reads the change log from where it left off whenever a
//! durable write happened, and hands each entry to the connections that may see it: members of
//! its team, or the people of a personal task (`audience`). Each connection keeps its user's
//! teams, updated by the membership entries as they pass, so someone who leaves a team stops
//! receiving its changes from that entry on. A connection's queue is bounded: one that falls
//! behind is cut off (it resumes with `since`), never buffered without bound.
//!
//! Subscribing takes the dispatcher's lock, so a new connection gets a `position`: everything
//! up to it comes from a replay of the store, everything after it from the live queue. That
//! hand-off has no gap and no duplicate.

/// The position of a frame, which a client resumes after.
mod cursor;
/// The hub: connections, visibility and the dispatcher.
mod hub;

pub use cursor::{BadCursor, Cursor};
pub use hub::{Ending, Event, Hub, Refused, Subscription, TokenLimit, Viewer};
