//! The store of `--store s3`: one three-node Garage cluster (replication factor 3) that both
//! registries keep their blobs in, each under a root folder of its own, and a PostgreSQL
//! cluster of Berth's own for its metadata. Both are the test suite's (real Garage and
//! PostgreSQL processes); blobs are streamed through the registries, never redirected, so the
//! benchmark's client measures the registries and not Garage alone. Dropped after the
//! registries, it stops both.

use berth_tests::garage::Garage;
use berth_tests::postgres::Private;
use serde_json::{json, Value};

pub struct ScaledStore {
    garage: Garage,
    postgres: Private,
}

impl ScaledStore {
    /// Starts PostgreSQL (initdb + pg_ctl as the `postgres` user) and the Garage cluster.
    pub async fn start() -> ScaledStore {
        let postgres = tokio::task::spawn_blocking(Private::start)
            .await
            .unwrap_or_else(|e| panic!("starting PostgreSQL: {e}"));
        let garage = Garage::start().await;
        ScaledStore { garage, postgres }
    }

    /// Moves Berth's registry.yaml onto the store: a database of its own, blobs in the bucket
    /// under `berth` (its `storage.filesystem` folder stays, and stays empty).
    pub fn berth(&self, config: &mut Value) {
        config["database"] = self.postgres.server.fresh_database();
        config["storage"]["s3"] = self.garage.storage_s3(0, "berth");
        config["storage"]["redirect"] = json!({"disable": true});
    }

    /// Moves registry:2's configuration onto the store: blobs and metadata in the bucket under
    /// `registry2`, with the same keys (Berth's `storage.s3` uses registry:2's names) in place
    /// of its `filesystem` driver (registry:2 takes one driver).
    pub fn registry2(&self, config: &mut Value) {
        if let Some(storage) = config["storage"].as_object_mut() {
            storage.remove("filesystem");
            storage.insert("s3".into(), self.garage.storage_s3(0, "registry2"));
            storage.insert("redirect".into(), json!({"disable": true}));
        }
    }
}
