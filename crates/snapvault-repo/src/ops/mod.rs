//! The operations layer: what users do with a repository. Taking a snapshot (the archiver
//! and its sources), restoring, checking, reading back, pruning, forgetting, repairing and
//! healing, surveying packs, copying between repositories.

pub mod archiver;
pub mod checker;
pub mod copy;
pub mod forget;
pub mod fs_source;
pub mod heal;
pub mod observe;
// check --read-data with parity reads each pack once: a test across ops/ and parity/, so it
// sits in the higher layer (layers.rs).
#[cfg(test)]
mod parity_read_once;
pub mod prune;
pub mod readback;
pub mod repair;
pub mod restorer;
pub mod revalidate;
pub mod stop;
pub mod survey;
#[cfg(test)]
pub(crate) mod test_support;
