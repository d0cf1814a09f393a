//! Opening the database: SQLite's file with its pragmas and two pools, or a PostgreSQL server
//! with one pool that checks each connection before handing it out (so registryd reconnects by
//! itself after the server restarts); then the dialect's migrations.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor, PgPool};

use super::writes::Writes;
use super::{writer, Dialect};
use crate::config::database::{Database, SslMode};
use crate::error::Error;

/// Run on every SQLite connection: wait for the write lock rather than fail, write-ahead log,
/// fsync at every commit, foreign keys enforced, temporary data (statement journals of writes
/// carrying inline blobs, sorts) in memory: a container's root and `/tmp` may be read-only.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;";
/// PostgreSQL connections open at most.
const PG_CONNECTIONS: u32 = 16;
/// How long a request waits for a PostgreSQL connection (the server may be away) before it is
/// answered 503.
const PG_ACQUIRE: Duration = Duration::from_secs(5);

/// Which database holds the metadata.
#[derive(Debug, Clone)]
pub enum Backend {
    /// This SQLite file (created if missing).
    Sqlite(PathBuf),
    /// The PostgreSQL server and database of the `database` section.
    Postgres(Database),
}

impl Backend {
    /// The `database` section when it is enabled, else SQLite's `file` (in the data directory,
    /// which the configuration must then name: `None` when it does not).
    #[must_use]
    pub fn from_config(database: Option<&Database>, file: Option<PathBuf>) -> Option<Self> {
        match database.filter(|d| d.enabled) {
            Some(d) => Some(Self::Postgres(d.clone())),
            None => file.map(Self::Sqlite),
        }
    }

    /// Which dialect it speaks.
    #[must_use]
    pub fn dialect(&self) -> Dialect {
        match self {
            Self::Sqlite(_) => Dialect::Sqlite,
            Self::Postgres(_) => Dialect::Postgres,
        }
    }
}

/// What [`open`] connected.
pub(super) struct Opened {
    pub writer: Writes,
    pub reader: AnyPool,
    pub listen: Option<PgPool>,
}

/// Connects to `backend` and migrates it.
pub(super) async fn open(backend: &Backend) -> Result<Opened, Error> {
    sqlx::any::install_default_drivers();
    match backend {
        Backend::Sqlite(file) => sqlite(file.clone()).await,
        Backend::Postgres(cfg) => postgres(cfg).await,
    }
}

async fn sqlite(file: PathBuf) -> Result<Opened, Error> {
    let base = SqliteConnectOptions::new().filename(file);
    let pool = |max: u32| {
        AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(|c, _| {
                Box::pin(async move { c.execute(SQLITE_PRAGMAS).await.map(drop) })
            })
    };
    let any = |o: SqliteConnectOptions| AnyConnectOptions::from_url(&o.to_url_lossy());
    let writer = pool(1)
        .connect_with(any(base.clone().create_if_missing(true))?)
        .await?;
    sqlx::migrate!("../../migrations/sqlite")
        .run(&writer)
        .await?;
    let reader = pool(4).connect_with(any(base.read_only(true))?).await?;
    let writer = Writes::Grouped(writer::Writer::spawn(writer.acquire().await?));
    Ok(Opened {
        writer,
        reader,
        listen: None,
    })
}

async fn postgres(cfg: &Database) -> Result<Opened, Error> {
    let pg = pg_options(cfg);
    let any = AnyConnectOptions::from_url(&pg.to_url_lossy())?;
    // One connection first, so that a server that cannot be reached is named with its cause
    // (the pool would only say that it timed out).
    AnyConnection::connect_with(&any)
        .await
        .map_err(|e| {
            Error::Unavailable(format!(
                "cannot connect to PostgreSQL at {} (database {}, user {}): {e}",
                cfg.server(),
                cfg.dbname,
                cfg.user
            ))
        })?
        .close()
        .await?;
    let pool = AnyPoolOptions::new()
        .max_connections(PG_CONNECTIONS)
        .acquire_timeout(PG_ACQUIRE)
        .test_before_acquire(true)
        .connect_lazy_with(any);
    sqlx::migrate!("../../migrations/postgres")
        .run(&pool)
        .await?;
    let listen = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(PG_ACQUIRE)
        .connect_lazy_with(pg);
    Ok(Opened {
        writer: Writes::Pooled(pool.clone()),
        reader: pool,
        listen: Some(listen),
    })
}

/// The connection options of the `database` section.
fn pg_options(cfg: &Database) -> PgConnectOptions {
    let options = PgConnectOptions::new_without_pgpass()
        .host(&cfg.host)
        .port(cfg.port)
        .username(&cfg.user)
        .database(&cfg.dbname)
        .application_name("registryd")
        .ssl_mode(match cfg.sslmode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Allow => PgSslMode::Allow,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require => PgSslMode::Require,
            SslMode::VerifyCa => PgSslMode::VerifyCa,
            SslMode::VerifyFull => PgSslMode::VerifyFull,
        });
    match &cfg.password {
        Some(p) => options.password(p),
        None => options,
    }
}
