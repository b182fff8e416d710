//! `snapvault completions SHELL` and `snapvault manpage DIR`, generated from the clap
//! definitions so they never fall behind the real options.

use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use super::Ctx;
use crate::cli::{Cli, CompletionShell, CompletionsArgs, ManpageArgs};

pub fn completions(a: CompletionsArgs) -> Result<i32> {
    let shell = match a.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut cmd = Cli::command();
    // Into memory first: clap_complete panics on a write error, output.rs reports it.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "snapvault", &mut script);
    crate::output::stdout_bytes(&script);
    Ok(0)
}

/// One page per command: `snapvault.1`, `snapvault-snapshot.1`, `snapvault-key-add.1`, ….
pub fn write_manpages(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
    let mut pages: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "1")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("snapvault"))
        })
        .collect();
    pages.sort();
    Ok(pages)
}

pub fn manpage(ctx: &Ctx, a: ManpageArgs) -> Result<i32> {
    let pages = write_manpages(&a.dir)?;
    ctx.say(format!(
        "wrote {} man page(s) to {} (e.g. `man -l {}`)",
        pages.len(),
        a.dir.display(),
        a.dir.join("snapvault.1").display()
    ));
    Ok(0)
}
