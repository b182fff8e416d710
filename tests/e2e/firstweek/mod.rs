//! Issue 24: a photo owner's first week — frictions that make people give up or make a
//! dangerous mistake. One file per area.

mod cli;
