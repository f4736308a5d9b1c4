//! Where a client is in the feed: the position of one frame, which it may resume after.
//!
//! One change-log entry (`seq`) may cause two frames for one user: the change itself and the
//! notification it caused them (notifications are keyed by user and `seq`, so at most one).
//! Each kind has a fixed slot within its `seq`, in the order they are sent, so a frame's
//! position does not depend on what else that connection was sent: `<seq>.<slot>`, the
//! change `N.0`, its notification `N.1`. Positions are ordered by `seq`, then slot. Resuming
//! after a position sends exactly the frames after it; a position in the last slot
//! ([`Cursor::end_of`]) stands for every frame of its `seq`, which is what `?since=N` means
//! and what a `reset` frame carries.

use std::fmt;
use std::str::FromStr;

/// The position of a frame: its `seq`, then its slot within that `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    pub seq: u64,
    pub slot: u32,
}

impl Cursor {
    /// The slot of a change frame.
    pub const CHANGE: u32 = 0;
    /// The slot of the notification a change caused.
    pub const NOTIFICATION: u32 = 1;
    /// The last slot: a position there stands for every frame of its `seq`.
    pub const LAST: u32 = Self::NOTIFICATION;

    pub fn new(seq: u64, slot: u32) -> Self {
        Self { seq, slot }
    }

    /// After every frame of `seq` (`?since=seq`, and a `reset` frame's position).
    pub fn end_of(seq: u64) -> Self {
        Self::new(seq, Self::LAST)
    }

    /// The newest `seq` all of whose frames are at or before this position: the log is read
    /// from just after it when resuming here.
    pub fn done_through(&self) -> u64 {
        if self.slot >= Self::LAST {
            self.seq
        } else {
            self.seq.saturating_sub(1)
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.seq, self.slot)
    }
}

/// Not `<seq>.<slot>` in decimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadCursor;

impl FromStr for Cursor {
    type Err = BadCursor;

    /// `<seq>.<slot>`, both in decimal digits. A slot beyond the last one known is read as
    /// the last (every frame of that `seq`), so a later kind of frame keeps old positions
    /// meaningful.
    fn from_str(text: &str) -> Result<Self, BadCursor> {
        let (seq, slot) = text.split_once('.').ok_or(BadCursor)?;
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(seq) || !digits(slot) {
            return Err(BadCursor);
        }
        let seq = seq.parse().map_err(|_| BadCursor)?;
        let slot = slot.parse::<u64>().map_err(|_| BadCursor)?;
        Ok(Self::new(seq, slot.min(u64::from(Self::LAST)) as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_print_parse_and_order() {
        let change = Cursor::new(7, Cursor::CHANGE);
        let told = Cursor::new(7, Cursor::NOTIFICATION);
        assert_eq!(change.to_string(), "7.0");
        assert_eq!(told.to_string(), "7.1");
        assert_eq!("7.0".parse(), Ok(change));
        assert_eq!("7.1".parse(), Ok(told));
        assert_eq!(
            "7.9".parse(),
            Ok(Cursor::end_of(7)),
            "a later slot: all of 7"
        );
        assert!(change < told && told < Cursor::new(8, Cursor::CHANGE));
        assert_eq!(change.done_through(), 6);
        assert_eq!(told.done_through(), 7);
        assert_eq!(Cursor::new(0, 0).done_through(), 0);
        for bad in [
            "",
            "7",
            "7.",
            ".1",
            "a.1",
            "7.-1",
            "+7.1",
            "7.1.2",
            " 7.1",
            "99999999999999999999.0",
        ] {
            assert_eq!(bad.parse::<Cursor>(), Err(BadCursor), "{bad:?}");
        }
    }
}
