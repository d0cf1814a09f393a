//! Replicas sharing one PostgreSQL learn of each other's writes: a write that changes a
//! repository's manifests or tags notifies the channel [`CHANNEL`] in its transaction (sent when
//! it commits), and [`Db::invalidations`] listens there. A listener that loses its connection
//! says so ([`Invalidation::Lost`]: notifications may be missed until it is back) and subscribes
//! again. On SQLite one process holds everything: nothing is sent.

use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{AnyConnection, PgPool};
use tokio::sync::mpsc;

use super::{Db, Dialect};
use crate::error::Error;

/// The notification channel; the payload is a repository name.
const CHANNEL: &str = "berth_manifests";
/// How long a lost listener waits before it subscribes again.
const RETRY: Duration = Duration::from_secs(1);

/// What a replica's caches must forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// This repository's manifests or tags changed.
    Repo(String),
    /// The listener is away: changes may go unseen, so nothing may be kept until it is back.
    Lost,
    /// The listener is (back) in place: keeping is safe again, from nothing.
    Subscribed,
}

/// Tells every replica, when this write commits, that `repo`'s manifests or tags changed.
pub(super) async fn changed(c: &mut AnyConnection, repo: &str) -> Result<(), Error> {
    if Dialect::of(c) == Dialect::Postgres {
        // `pg_notify` returns `void`, which no driver decodes: it is called in a subquery.
        sqlx::query("SELECT 1 FROM (SELECT pg_notify($1, $2)) AS n")
            .bind(CHANNEL)
            .bind(repo)
            .execute(c)
            .await?;
    }
    Ok(())
}

impl Db {
    /// PostgreSQL: the changes committed by any replica (this one included), as they come;
    /// the listening task ends when the receiver is dropped. `None` on SQLite.
    #[must_use]
    pub fn invalidations(&self) -> Option<mpsc::Receiver<Invalidation>> {
        let pool = self.listen.clone()?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(listen(pool, tx));
        Some(rx)
    }
}

/// Subscribes, forwards, and on any loss says so and subscribes again.
async fn listen(pool: PgPool, tx: mpsc::Sender<Invalidation>) {
    loop {
        match subscribe(&pool).await {
            Ok(mut listener) => {
                if tx.send(Invalidation::Subscribed).await.is_err() {
                    return;
                }
                loop {
                    let got = tokio::select! {
                        () = tx.closed() => return,
                        got = listener.try_recv() => got,
                    };
                    let next = match got {
                        Ok(Some(n)) => Invalidation::Repo(n.payload().to_owned()),
                        Ok(None) | Err(_) => break,
                    };
                    if tx.send(next).await.is_err() {
                        return;
                    }
                }
                tracing::warn!("lost the PostgreSQL listener: manifest cache off until it is back");
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for other replicas' writes"),
        }
        if tx.send(Invalidation::Lost).await.is_err() {
            return;
        }
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep(RETRY) => {}
        }
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
