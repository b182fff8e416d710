//! Options of the commands around the backup: demo, stats, config, completions and
//! manpage.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::examples;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Folder for the demo (sample library, repository, restores)
    #[arg(long, default_value = "snapvault-demo", value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Only this snapshot (id prefix, `latest`); default: the whole repository
    #[arg(long, value_name = "ID|latest")]
    pub snapshot: Option<String>,
    /// Print the figures as JSON (fields: docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the effective settings: value and origin (default, file, env or flag)
    #[command(after_help = examples::CONFIG)]
    Show {
        /// Print the settings as JSON (fields: docs/json.md)
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Args, Debug)]
pub struct ManpageArgs {
    /// Folder to write snapvault.1 and snapvault-COMMAND.1 into (created if missing)
    pub dir: PathBuf,
}
