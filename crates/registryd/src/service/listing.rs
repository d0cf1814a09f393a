//! Paginated listings: tags of a repository and the catalog (`n`/`last`).

use super::Registry;
use crate::error::Error;
use crate::names::RepoName;

/// Most entries one page may hold, whatever `n` asks for.
pub const MAX_PAGE: u32 = 10_000;

/// One page of a sorted list; `more` is true when entries follow the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T = String> {
    /// The entries, sorted.
    pub items: Vec<T>,
    /// Whether entries follow the last one (a `Link` is due).
    pub more: bool,
}

impl<T> Page<T> {
    pub(super) fn from_rows(mut rows: Vec<T>, n: u32) -> Self {
        let more = rows.len() > n as usize;
        rows.truncate(n as usize);
        Self { items: rows, more }
    }
}

impl Registry {
    /// Tags of `repo` after `last`, at most `n`.
    ///
    /// # Errors
    /// `NameUnknown` when nothing was ever pushed to the repository.
    pub async fn tags(&self, repo: &RepoName, n: u32, last: &str) -> Result<Page, Error> {
        let n = n.min(MAX_PAGE);
        let rows = self
            .db
            .tags(repo.as_str(), i64::from(n) + 1, last)
            .await?
            .ok_or_else(|| Error::NameUnknown(repo.to_string()))?;
        Ok(Page::from_rows(rows, n))
    }

    /// Repository names after `last`, at most `n`.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn catalog(&self, n: u32, last: &str) -> Result<Page, Error> {
        let n = n.min(MAX_PAGE);
        Ok(Page::from_rows(
            self.db.catalog(i64::from(n) + 1, last).await?,
            n,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_knows_whether_more_follow() {
        let rows = |k: usize| (0..k).map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Page::from_rows(rows(3), 2),
            Page {
                items: rows(2),
                more: true
            }
        );
        assert_eq!(
            Page::from_rows(rows(2), 2),
            Page {
                items: rows(2),
                more: false
            }
        );
        assert_eq!(
            Page::from_rows(rows(0), 0),
            Page {
                items: vec![],
                more: false
            }
        );
    }
}
