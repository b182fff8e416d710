//! The `snapvault` command line.

mod cache;
mod catalog;
mod cli;
mod cmd;
mod exit;
mod fmt;
mod iphone;
mod media;
mod password;
mod photoset;

use clap::Parser;

fn main() {
    // Restore default SIGPIPE so `snapvault ls | head` ends quietly.
    // SAFETY: setting a signal disposition at startup, before any threads exist.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = cli::Cli::parse();
    let code = match cmd::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", exit::message(&e));
            if let Some(hint) = exit::hint(&e) {
                eprintln!("hint: {hint}");
            }
            exit::code_for(&e)
        }
    };
    std::process::exit(code);
}
