//! The configuration in force, swappable while Lookout runs: a hot reload
//! replaces it whole, and each reader takes the current one per operation,
//! so no task ever mixes two versions within one decision.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::Config;

#[derive(Clone)]
pub struct Live(Arc<ArcSwap<Config>>);

impl Live {
    pub fn new(config: Config) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(config)))
    }

    /// The configuration in force now.
    pub fn get(&self) -> Arc<Config> {
        self.0.load_full()
    }

    pub fn set(&self, config: Arc<Config>) {
        self.0.store(config);
    }
}

impl From<Config> for Live {
    fn from(config: Config) -> Self {
        Self::new(config)
    }
}
