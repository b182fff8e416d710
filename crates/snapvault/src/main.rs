//! The `snapvault` command line.

// First, so its `println!`/`eprintln!` (which never panic) are the ones every module uses.
#[macro_use]
mod output;

mod cache;
mod catalog;
mod cli;
mod cmd;
mod config;
mod damage;
mod drive;
mod exclude;
mod exit;
mod fmt;
mod include;
mod interrupt;
mod iphone;
mod library;
mod media;
mod password;
mod photoset;
mod progress;
mod readonly;
mod remedy;
mod remembered;
mod strength;

use clap::{CommandFactory, FromArgMatches};

fn main() {
    // A closed pipe must never kill a backup half-way (nor an SFTP session's `ssh` dying
    // kill us): writes then fail with EPIPE, which output.rs and the backends report.
    // Children (ssh, the password command) get the default disposition back from std.
    // SAFETY: setting a signal disposition at startup, before any threads exist.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let matches = cli::Cli::command().get_matches();
    let mut args = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let json = exit::wants_json(&args.command);
    let verbose = args.global.verbose;
    // The config file and the environment fill in what no flag gave.
    let code = match config::resolve(&mut args, &matches).and_then(|()| cmd::run(args)) {
        Ok(code) => code,
        Err(e) => {
            exit::report(&e, json, verbose);
            exit::code_for(&e)
        }
    };
    let code = match output::finish() {
        None => code,
        Some(e) => {
            // The command's own error (if any) was reported and decides the exit code.
            if e.0.kind() != std::io::ErrorKind::BrokenPipe || verbose > 0 {
                exit::report(&anyhow::Error::new(e), json, verbose);
            }
            if code == exit::OK { exit::OUTPUT } else { code }
        }
    };
    // Remote backends are dropped by now; close their sessions before exiting.
    snapvault_remote::shutdown();
    std::process::exit(code);
}
