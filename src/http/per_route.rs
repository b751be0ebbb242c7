//! Values worked out once per route template (and a second key) and kept.
//!
//! Route templates are a closed set, so what is kept is bounded by the
//! routes times the second key's values. Kept by template first, so a
//! lookup borrows the template instead of copying it.

use std::{
    borrow::Borrow,
    collections::HashMap,
    hash::Hash,
    sync::{OnceLock, PoisonError, RwLock},
};

pub struct PerRoute<K, V>(OnceLock<RwLock<HashMap<String, HashMap<K, V>>>>);

impl<K: Hash + Eq, V: Clone> Default for PerRoute<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq, V: Clone> PerRoute<K, V> {
    pub const fn new() -> Self {
        PerRoute(OnceLock::new())
    }

    /// The value kept for `route` and `key`, made by `make` the first time.
    pub fn get<Q>(&self, route: &str, key: &Q, make: impl FnOnce() -> V) -> V
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let kept = self.0.get_or_init(Default::default);
        let known = kept
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(route)
            .and_then(|by_key| by_key.get(key))
            .cloned();
        known.unwrap_or_else(|| {
            let value = make();
            kept.write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(route.to_owned())
                .or_default()
                .entry(key.to_owned())
                .or_insert(value)
                .clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_made_once_per_route_and_key() {
        let kept: PerRoute<String, usize> = PerRoute::new();
        let mut made = 0;
        for _ in 0..2 {
            for (route, key) in [("/a", "GET"), ("/a", "POST"), ("/b", "GET")] {
                kept.get(route, key, || {
                    made += 1;
                    made
                });
            }
        }
        assert_eq!(made, 3);
        assert_eq!(kept.get("/a", "POST", || 0), 2);
        assert_eq!(kept.get("/b", "GET", || 0), 3);
    }
}
