//! Issue 16: everyday hostility — inputs real machines produce. One file per area.

mod batched;
mod cli;
mod config;
mod foreign;
mod full;
mod hints;
mod into_repo;
mod keys;
mod linked;
mod names;
mod parity;
mod restore;
mod reuse;
mod snapshot;
mod summaries;
mod swapped;
mod swapped_dirs;
mod terminal;
mod trees;
