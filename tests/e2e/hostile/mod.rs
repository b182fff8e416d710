//! Issue 16: everyday hostility — inputs real machines produce. One file per area.

mod cli;
mod names;
mod restore;
mod snapshot;
