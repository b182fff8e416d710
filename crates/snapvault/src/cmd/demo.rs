//! `snapvault demo`: a guided run on a generated sample library, printing each step as a
//! user would type it. Each step runs this same executable, so what you see is real.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::Ctx;
use crate::cli::DemoArgs;

const MARKER: &str = ".snapvault-demo";
const PASSWORD: &str = "correct horse battery staple";

pub fn run(ctx: &Ctx, a: DemoArgs) -> Result<i32> {
    let dir = std::path::absolute(&a.dir).context("resolving the demo folder")?;
    if dir.exists() {
        if !dir.join(MARKER).exists() && std::fs::read_dir(&dir)?.next().is_some() {
            bail!(
                "{} exists and is not an earlier demo folder; choose another with --dir",
                dir.display()
            );
        }
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "made by `snapvault demo`; safe to delete\n",
    )?;
    let library = dir.join("iPhone");
    let files = snapvault_media::sample::library(&library, 24, 2026)
        .with_context(|| format!("writing the sample library to {}", library.display()))?;
    let repo = dir.join("repo");
    ctx.say(format!(
        "snapvault demo: a sample iPhone library of {} files in {}\n(repository {}, password {PASSWORD:?})\n",
        files.len(),
        library.display(),
        repo.display()
    ));
    let exe = std::env::current_exe().context("finding the snapvault executable")?;
    let step = |args: &[&str]| -> Result<()> {
        ctx.say(format!("$ snapvault {}", args.join(" ")));
        let status = Command::new(&exe)
            .args(args)
            .current_dir(&dir)
            .env("SNAPVAULT_REPOSITORY", &repo)
            .env("SNAPVAULT_PASSWORD", PASSWORD)
            .env_remove("SNAPVAULT_PASSWORD_FILE")
            .env_remove("SNAPVAULT_PASSWORD_COMMAND")
            .status()
            .with_context(|| format!("running snapvault {}", args[0]))?;
        ctx.say("");
        if !status.success() {
            bail!("demo step `snapvault {}` failed ({status})", args.join(" "));
        }
        Ok(())
    };
    step(&["init"])?;
    step(&["snapshot", "iPhone", "--tag", "demo"])?;
    step(&["snapshot", "iPhone", "--tag", "demo"])?;
    step(&["snapshots"])?;
    step(&["ls", "latest", "iPhone/DCIM/100APPLE"])?;
    step(&["restore", "latest", "--target", "restored"])?;
    same_tree(&library, &dir.join("restored").join("iPhone"))?;
    ctx.say("restored files are byte-for-byte identical to the originals\n");
    step(&["check", "--read-data"])?;
    ctx.say(format!("demo finished; everything is in {}", dir.display()));
    Ok(0)
}

/// Compare two folders byte for byte (the demo proves its own restore).
fn same_tree(a: &Path, b: &Path) -> Result<()> {
    for e in std::fs::read_dir(a)? {
        let e = e?;
        let (pa, pb) = (e.path(), b.join(e.file_name()));
        if e.file_type()?.is_dir() {
            same_tree(&pa, &pb)?;
        } else if std::fs::read(&pa)?
            != std::fs::read(&pb).with_context(|| format!("reading {}", pb.display()))?
        {
            bail!("{} differs after restore", pb.display());
        }
    }
    Ok(())
}
