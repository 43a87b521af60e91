//! The store's one error type. It keeps what kind of failure it was, from
//! sled's own kinds and the system's error number, because callers act on
//! the kind: a disk that refuses is waited out (503 and a retry), a record
//! that does not decode is a fault to report.

use std::fmt;

/// What kind of storage failure, as far as a caller can act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The disk refused (full, over quota, read-only, failing): time may
    /// mend it.
    Disk,
    /// The database is not open (it could not be opened yet, or is being
    /// opened again after a disk error).
    Closed,
    /// A record, a sealed mail or sled's own files do not decode.
    Corrupt,
    /// kagi's own files are unsafe or unusable (the key file, say).
    Refused,
    /// Another failure of the system or of sled.
    Other,
}

/// A storage failure.
#[derive(Debug)]
pub struct StoreError {
    kind: ErrorKind,
    message: String,
    /// The system's error number, when the disk gave one.
    pub(super) errno: Option<i32>,
}

impl StoreError {
    fn of(kind: ErrorKind, message: impl Into<String>, errno: Option<i32>) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
            errno,
        }
    }

    /// kagi's own files are unsafe or unusable.
    pub(super) fn refused(message: impl Into<String>) -> StoreError {
        StoreError::of(ErrorKind::Refused, message, None)
    }

    /// A failure of no kind a caller acts on.
    pub(super) fn other(message: impl Into<String>) -> StoreError {
        StoreError::of(ErrorKind::Other, message, None)
    }

    /// Something stored does not decode.
    pub(super) fn corrupt(message: impl Into<String>) -> StoreError {
        StoreError::of(ErrorKind::Corrupt, message, None)
    }

    /// A failure that waiting may mend: the disk's, when `errno` says which,
    /// or else the database being closed.
    pub(super) fn waiting(message: impl Into<String>, errno: Option<i32>) -> StoreError {
        let kind = if errno.is_some() {
            ErrorKind::Disk
        } else {
            ErrorKind::Closed
        };
        StoreError::of(kind, message, errno)
    }

    pub(super) fn from_io(what: &str, e: &std::io::Error) -> StoreError {
        StoreError::of(io_kind(e), format!("{what}: {e}"), errno_of(e))
    }

    /// A sled transaction that failed: its storage error, or an abort.
    pub(super) fn from_transaction(e: sled::transaction::TransactionError<()>) -> StoreError {
        match e {
            sled::transaction::TransactionError::Storage(e) => e.into(),
            other => StoreError::of(ErrorKind::Other, format!("{other:?}"), None),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What is wrong, in a few words that name no path: for anyone who asks.
    pub fn in_short(&self) -> &'static str {
        match self.errno {
            Some(libc::ENOSPC) => "no space left on the database's disk",
            Some(libc::EDQUOT) => "the disk quota of the database is used up",
            Some(libc::EROFS) => "the database's disk is read-only",
            Some(libc::EIO) => "the database's disk fails",
            Some(libc::EFBIG) => "a file-size limit refuses the database's writes",
            _ => "the database cannot be opened",
        }
    }

    /// Whether the disk refused or the database is closed, rather than
    /// kagi's own files being wrong: a server waits this out instead of
    /// stopping.
    pub fn is_disk_trouble(&self) -> bool {
        matches!(self.kind, ErrorKind::Disk | ErrorKind::Closed)
    }
}

/// The system's error number of `e`, or the one its kind stands for (sled
/// passes some errors on with their kind only).
pub(super) fn errno_of(e: &std::io::Error) -> Option<i32> {
    use std::io::ErrorKind as Io;
    e.raw_os_error().or(match e.kind() {
        Io::StorageFull => Some(libc::ENOSPC),
        Io::QuotaExceeded => Some(libc::EDQUOT),
        Io::ReadOnlyFilesystem => Some(libc::EROFS),
        Io::FileTooLarge => Some(libc::EFBIG),
        _ => None,
    })
}

/// `Disk` for the errors a full, read-only or failing disk gives.
fn io_kind(e: &std::io::Error) -> ErrorKind {
    match errno_of(e) {
        Some(libc::ENOSPC | libc::EDQUOT | libc::EIO | libc::EROFS | libc::EFBIG) => {
            ErrorKind::Disk
        }
        _ => ErrorKind::Other,
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage: {}", self.message)
    }
}

impl std::error::Error for StoreError {}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> StoreError {
        let (kind, errno) = match &e {
            sled::Error::Io(io) => (io_kind(io), errno_of(io)),
            sled::Error::Corruption { .. } => (ErrorKind::Corrupt, None),
            _ => (ErrorKind::Other, None),
        };
        StoreError::of(kind, e.to_string(), errno)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> StoreError {
        StoreError::corrupt(format!("record does not decode: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_waited_out_and_a_bad_record_is_not() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let e = StoreError::from(sled::Error::Io(full));
        assert_eq!(e.kind(), ErrorKind::Disk);
        assert!(e.is_disk_trouble());
        assert_eq!(e.in_short(), "no space left on the database's disk");
        let bad = StoreError::from(serde_json::from_str::<u8>("x").unwrap_err());
        assert_eq!(bad.kind(), ErrorKind::Corrupt);
        assert!(!bad.is_disk_trouble());
        let denied = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(
            StoreError::from_io("open", &denied).kind(),
            ErrorKind::Other
        );
        assert_eq!(
            StoreError::waiting("closed", None).kind(),
            ErrorKind::Closed
        );
    }
}
