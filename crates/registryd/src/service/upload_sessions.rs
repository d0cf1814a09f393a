//! The upload sessions that are open: each one's lock and hash state, its repository and
//! subject, whether its row may still be uncommitted, and the counts per repository and per
//! subject that the caps (`storage.uploadlimits`) are checked against. A session takes its
//! slot when it starts and frees it however it ends (finished, cancelled, refused, purged).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use uuid::Uuid;

use crate::config::UploadLimits;
use crate::error::Error;
use crate::storage::UploadHash;

/// Hash state of one session: the sha256 of its bytes so far (and so their count).
#[derive(Debug, Clone, Default)]
pub(super) struct HashState {
    pub(super) hasher: UploadHash,
}

impl HashState {
    /// Bytes the session holds.
    pub(super) fn size(&self) -> u64 {
        self.hasher.len()
    }
}

/// One lock per session, held while a chunk is written, so chunks of one session never interleave.
pub(super) type Slot = Arc<tokio::sync::Mutex<Option<HashState>>>;

/// Every open session, behind a std mutex: it is never held across an await.
#[derive(Debug, Default)]
pub struct UploadSessions(Mutex<Sessions>);

#[derive(Debug, Default)]
struct Sessions {
    /// Locks and hash states of the sessions seen since start.
    slots: HashMap<Uuid, Slot>,
    /// Every open session, including those found in the database at start.
    open: HashMap<Uuid, Open>,
    /// Open sessions per repository.
    per_repo: HashMap<String, usize>,
    /// Open sessions per token subject (`""` for anonymous and open registries).
    per_subject: HashMap<String, usize>,
    /// The caps.
    limits: UploadLimits,
}

/// An open session.
#[derive(Debug)]
struct Open {
    repo: String,
    subject: String,
    /// Whether its row may not be committed yet (its insert is queued without waiting).
    row_pending: bool,
}

fn count(map: &mut HashMap<String, usize>, key: &str, up: bool) {
    if up {
        *map.entry(key.to_owned()).or_default() += 1;
    } else if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Sessions {
    fn add(&mut self, uuid: Uuid, repo: &str, subject: &str, row_pending: bool) {
        let open = Open {
            repo: repo.to_owned(),
            subject: subject.to_owned(),
            row_pending,
        };
        if self.open.insert(uuid, open).is_none() {
            count(&mut self.per_repo, repo, true);
            count(&mut self.per_subject, subject, true);
        }
    }
}

impl UploadSessions {
    fn lock(&self) -> MutexGuard<'_, Sessions> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the caps.
    pub fn set_limits(&self, limits: UploadLimits) {
        self.lock().limits = limits;
    }

    /// Records the sessions found in the database at start, so they count against the caps.
    pub fn load(&self, sessions: impl IntoIterator<Item = (Uuid, String, String)>) {
        let mut s = self.lock();
        for (uuid, repo, subject) in sessions {
            s.add(uuid, &repo, &subject, false);
        }
    }

    /// Opens session `uuid` of `repo` for `subject`, with the hash state of its empty file (so
    /// its first chunk need not re-read the file), unless a cap is reached. Checked and counted
    /// under one lock, so a burst of concurrent starts cannot pass a cap.
    ///
    /// # Errors
    /// `TooManyUploads` when `repo` or `subject` already has its cap of open sessions.
    pub(super) fn reserve(&self, uuid: Uuid, repo: &str, subject: &str) -> Result<(), Error> {
        let mut s = self.lock();
        let in_repo = s.per_repo.get(repo).copied().unwrap_or(0);
        let of_subject = s.per_subject.get(subject).copied().unwrap_or(0);
        if in_repo >= s.limits.perrepository {
            return Err(Error::TooManyUploads(format!(
                "{repo} has {in_repo} upload sessions open; finish or cancel one first"
            )));
        }
        if of_subject >= s.limits.persubject {
            return Err(Error::TooManyUploads(format!(
                "{of_subject} upload sessions are open for this account; finish or cancel one first"
            )));
        }
        s.add(uuid, repo, subject, true);
        s.slots.insert(
            uuid,
            Arc::new(tokio::sync::Mutex::new(Some(HashState::default()))),
        );
        Ok(())
    }

    /// The lock (and hash state) of a session.
    pub(super) fn slot(&self, uuid: Uuid) -> Slot {
        self.lock().slots.entry(uuid).or_default().clone()
    }

    /// The repository of an open session, `None` when this process does not know it.
    pub(super) fn owner(&self, uuid: &Uuid) -> Option<String> {
        self.lock().open.get(uuid).map(|o| o.repo.clone())
    }

    /// Whether the session's row may not be committed yet.
    pub(super) fn row_pending(&self, uuid: &Uuid) -> bool {
        self.lock().open.get(uuid).is_some_and(|o| o.row_pending)
    }

    pub(super) fn row_committed(&self, uuid: &Uuid) {
        if let Some(open) = self.lock().open.get_mut(uuid) {
            open.row_pending = false;
        }
    }

    /// Ends a session: its slot is free again.
    pub(super) fn forget(&self, uuid: &Uuid) {
        let mut s = self.lock();
        s.slots.remove(uuid);
        if let Some(open) = s.open.remove(uuid) {
            count(&mut s.per_repo, &open.repo, false);
            count(&mut s.per_subject, &open.subject, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(perrepository: usize, persubject: usize) -> UploadSessions {
        let s = UploadSessions::default();
        s.set_limits(UploadLimits {
            perrepository,
            persubject,
        });
        s
    }

    #[test]
    fn caps_per_repository_and_per_subject_and_ending_frees_a_slot() {
        let s = sessions(2, 3);
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        s.reserve(a, "r1", "dave").unwrap();
        s.reserve(b, "r1", "dave").unwrap();
        let full = s.reserve(c, "r1", "dave").unwrap_err();
        assert_eq!(
            (full.code(), full.status().as_u16()),
            ("TOOMANYREQUESTS", 429)
        );
        s.reserve(c, "r1", "erin").unwrap_err();
        s.reserve(c, "r2", "dave").unwrap();
        let d = Uuid::new_v4();
        assert_eq!(
            s.reserve(d, "r3", "dave").unwrap_err().code(),
            "TOOMANYREQUESTS"
        );
        s.reserve(d, "r3", "erin").unwrap();
        s.forget(&a);
        s.forget(&a);
        s.reserve(Uuid::new_v4(), "r1", "dave").unwrap();
        assert!(s.reserve(Uuid::new_v4(), "r1", "erin").is_err());
    }

    #[test]
    fn sessions_found_at_start_count() {
        let s = sessions(1, 10);
        let old = Uuid::new_v4();
        s.load([(old, "r".to_owned(), String::new())]);
        assert_eq!(s.owner(&old).as_deref(), Some("r"));
        assert!(!s.row_pending(&old));
        assert!(s.reserve(Uuid::new_v4(), "r", "").is_err());
        s.forget(&old);
        s.reserve(Uuid::new_v4(), "r", "").unwrap();
    }
}
