//! One upstream fetch per miss: a lock per key (a blob's digest, a tag), taken by whoever
//! fetches it. Requests for the same key wait for the lock, then find the content cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Keys tracked before dead entries are swept.
const SWEEP_AT: usize = 1024;

/// The locks of the fetches in progress.
#[derive(Debug, Default)]
pub struct Flights {
    locks: Mutex<HashMap<String, Weak<AsyncMutex<()>>>>,
}

/// Held while fetching one key; others wait for it to drop.
pub type Flight = OwnedMutexGuard<()>;

impl Flights {
    /// Waits until nobody else fetches `key`, then holds it.
    pub async fn enter(&self, key: String) -> Flight {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            if locks.len() >= SWEEP_AT {
                locks.retain(|_, w| w.strong_count() > 0);
            }
            match locks.get(&key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(AsyncMutex::new(()));
                    locks.insert(key, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_holder_per_key() {
        let flights = Arc::new(Flights::default());
        let held = flights.enter("a".into()).await;
        let other = flights.enter("b".into()).await;
        let waiter = {
            let flights = flights.clone();
            tokio::spawn(async move { drop(flights.enter("a".into()).await) })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "a second holder of the same key");
        drop(held);
        waiter.await.unwrap();
        drop(other);
        for i in 0..SWEEP_AT + 10 {
            drop(flights.enter(i.to_string()).await);
        }
        assert!(flights.locks.lock().unwrap().len() <= SWEEP_AT + 1);
    }
}
