//! A chunk's `Content-Range` (`start-end`, inclusive), parsed so that no offset or length
//! computed from it can overflow.

use crate::error::Error;

/// A chunk's `Content-Range`: first and last byte offsets, inclusive, `start <= end`, and short
/// enough that its length and end fit what a blob's size may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRange {
    /// Offset of the first byte.
    start: u64,
    /// Offset of the last byte.
    end: u64,
}

/// One past the largest offset a blob may have: sizes are stored as SQLite integers (`i64`).
pub(super) const MAX_BLOB_SIZE: u64 = i64::MAX as u64;

impl ChunkRange {
    /// Parses `start-end`, also in the `bytes start-end/total` form.
    ///
    /// # Errors
    /// `ContentRangeInvalid` (416) when it is neither, when `end < start`, or when the range
    /// ends past the largest blob size (so no length or offset computed from it overflows).
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = || Error::ContentRangeInvalid(format!("{s:?}"));
        let s = s
            .trim()
            .trim_start_matches("bytes")
            .trim_start_matches([' ', '=']);
        let s = s.split_once('/').map_or(s, |(r, _)| r);
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let offset = |t: &str| {
            let t = t.trim();
            let digits = !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
            digits
                .then(|| t.parse::<u64>().ok())
                .flatten()
                .ok_or_else(bad)
        };
        let (start, end) = (offset(a)?, offset(b)?);
        if end < start || end >= MAX_BLOB_SIZE {
            return Err(bad());
        }
        Ok(Self { start, end })
    }

    /// Offset of the first byte.
    #[must_use]
    pub fn start(&self) -> u64 {
        self.start
    }

    /// How many bytes the range covers.
    #[must_use]
    pub fn length(&self) -> u64 {
        // `parse` keeps `start <= end < i64::MAX`: neither step overflows.
        (self.end - self.start) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse_in_both_forms() {
        assert_eq!(
            ChunkRange::parse("0-99").unwrap(),
            ChunkRange { start: 0, end: 99 }
        );
        assert_eq!(
            ChunkRange::parse("bytes 100-199/*").unwrap(),
            ChunkRange {
                start: 100,
                end: 199
            }
        );
        assert_eq!(ChunkRange::parse("7-7").unwrap().length(), 1);
        for bad in [
            "",
            "5",
            "9-1",
            "a-b",
            "-3",
            "0-18446744073709551615",
            "0-18446744073709551616",
            "9223372036854775807-9223372036854775807",
            "18446744073709551615-18446744073709551615",
            "-1-5",
            "1 - 2 - 3",
            "+1-2",
        ] {
            let err = ChunkRange::parse(bad).unwrap_err();
            assert_eq!(
                (err.code(), err.status().as_u16()),
                ("RANGE_INVALID", 416),
                "{bad}"
            );
        }
    }
}
