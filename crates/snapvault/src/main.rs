//! The `snapvault` command line.

mod cache;
mod catalog;
mod cli;
mod cmd;
mod config;
mod exclude;
mod exit;
mod fmt;
mod iphone;
mod media;
mod password;
mod photoset;
mod progress;

use clap::{CommandFactory, FromArgMatches};

/// SFTP runs `ssh` as a child process over pipes: if the server dies, writing to those pipes
/// must be an error we report, not a SIGPIPE that kills us silently. Output to a closed
/// stdout (`snapvault ls | head`) then ends the process quietly instead.
pub fn survive_broken_pipes() {
    // SAFETY: changing a signal disposition; no handler code runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() {
    // Restore default SIGPIPE so `snapvault ls | head` ends quietly.
    // SAFETY: setting a signal disposition at startup, before any threads exist.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
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
    // Remote backends are dropped by now; close their sessions before exiting.
    snapvault_remote::shutdown();
    std::process::exit(code);
}
