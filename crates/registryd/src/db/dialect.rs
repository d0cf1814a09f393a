//! The two SQL dialects, and the few snippets they word differently. Everything else is one
//! text for both: `$1`-style parameters (SQLite reads them too), `ON CONFLICT … DO`,
//! `RETURNING`, `CAST(… AS BIGINT)` for sums (PostgreSQL's `sum` of a `BIGINT` is `NUMERIC`), and
//! text that compares byte by byte on both (PostgreSQL's columns are `COLLATE "C"`).

use sqlx::AnyConnection;

/// Which database runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// One machine: a file in the data directory.
    Sqlite,
    /// Replicas sharing one server.
    Postgres,
}

impl Dialect {
    /// The dialect of an open connection.
    #[must_use]
    pub fn of(conn: &AnyConnection) -> Self {
        if conn.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME {
            Self::Postgres
        } else {
            Self::Sqlite
        }
    }

    /// A table of the strings of the JSON array bound as parameter `$n`, in a column named
    /// `value`.
    #[must_use]
    pub fn json_values(self, n: u8) -> String {
        match self {
            Self::Sqlite => format!("json_each(${n})"),
            Self::Postgres => format!("jsonb_array_elements_text(CAST(${n} AS jsonb))"),
        }
    }
}
