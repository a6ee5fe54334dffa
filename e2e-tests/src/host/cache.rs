//! A time-bound cache of successful results with single-flight: while one caller
//! computes a key, identical callers wait for it instead of repeating the work.
//! Errors are never stored, as on the real host (a failed verification is retried
//! by the next request).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Slot<V> = Arc<tokio::sync::Mutex<Option<(Instant, V)>>>;

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Computed,
    Cached,
}

pub(crate) struct TtlCache<V> {
    ttl: Duration,
    slots: Mutex<HashMap<String, Slot<V>>>,
}

impl<V: Clone> TtlCache<V> {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the fresh cached value for `key`, or runs `compute` and caches an `Ok`.
    pub(crate) async fn get_or_try_insert<E, F, Fut>(
        &self,
        key: String,
        compute: F,
    ) -> Result<(V, Origin), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            // Drop expired entries nobody is working on, so the map follows the load.
            let ttl = self.ttl;
            slots.retain(|_, s| {
                Arc::strong_count(s) > 1
                    || s.try_lock()
                        .map(|v| v.as_ref().is_some_and(|(t, _)| t.elapsed() < ttl))
                        .unwrap_or(true)
            });
            slots.entry(key).or_default().clone()
        };
        let mut entry = slot.lock().await;
        if let Some((stored, value)) = entry.as_ref() {
            if stored.elapsed() < self.ttl {
                return Ok((value.clone(), Origin::Cached));
            }
        }
        let value = compute().await?;
        *entry = Some((Instant::now(), value.clone()));
        Ok((value, Origin::Computed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_identical_keys_compute_once() {
        let cache = Arc::new(TtlCache::<u32>::new(Duration::from_secs(60)));
        let runs = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (cache, runs) = (cache.clone(), runs.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_try_insert("k".into(), || async {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok::<_, ()>(7)
                        })
                        .await
                })
            })
            .collect();
        let mut computed = 0;
        for t in tasks {
            let (v, origin) = t.await.unwrap().unwrap();
            assert_eq!(v, 7);
            computed += usize::from(origin == Origin::Computed);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(computed, 1);
    }

    #[tokio::test]
    async fn errors_are_not_cached_and_entries_expire() {
        let cache = TtlCache::<u32>::new(Duration::from_millis(30));
        let err = cache
            .get_or_try_insert("k".into(), || async { Err::<u32, _>("boom") })
            .await;
        assert_eq!(err, Err("boom"));
        let (v, origin) = cache
            .get_or_try_insert("k".into(), || async { Ok::<_, ()>(1) })
            .await
            .unwrap();
        assert_eq!((v, origin), (1, Origin::Computed));
        let (_, origin) = cache
            .get_or_try_insert("k".into(), || async { Ok::<_, ()>(2) })
            .await
            .unwrap();
        assert_eq!(origin, Origin::Cached);
        tokio::time::sleep(Duration::from_millis(40)).await;
        let (v, origin) = cache
            .get_or_try_insert("k".into(), || async { Ok::<_, ()>(3) })
            .await
            .unwrap();
        assert_eq!((v, origin), (3, Origin::Computed));
    }
}
