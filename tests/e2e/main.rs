//! End-to-end tests: they run the real `snapvault` binary on generated data.
