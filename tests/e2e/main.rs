//! End-to-end tests: they run the real `snapvault` binary on generated data.

mod common;

mod check;
mod concurrency;
mod copy;
mod dedup;
mod demo;
mod durability;
mod errors;
mod everyday;
mod find;
mod firstweek;
mod help;
mod hostile;
mod incremental;
mod interrupt;
mod iphone;
mod json;
mod keys;
mod kill;
mod layout;
mod network;
mod options;
mod photos;
mod prune;
mod reading;
mod remote;
mod repair;
mod restore;
mod roundtrip;
mod security;
mod snapshot_options;
mod unreadable;
mod vanished;
mod verify_device;
