use anyhow::{Result, bail};
use snapvault_repo::checker::{self, CheckOptions, ReadData, Severity};

use super::{Ctx, threads};
use crate::cli::CheckArgs;
use crate::{exit, fmt};

pub fn parse_subset(s: &str) -> Result<ReadData> {
    if let Some(p) = s.strip_suffix('%') {
        let v: f64 = p.trim().parse().map_err(|_| {
            anyhow::anyhow!("invalid --read-data-subset {s:?}: expected like 10% or 3/7")
        })?;
        if !(0.0..=100.0).contains(&v) || v == 0.0 {
            bail!("invalid --read-data-subset {s:?}: percentage must be in (0, 100]");
        }
        return Ok(ReadData::Percent(v));
    }
    if let Some((n, m)) = s.split_once('/') {
        let (n, m): (u32, u32) = match (n.trim().parse(), m.trim().parse()) {
            (Ok(n), Ok(m)) => (n, m),
            _ => bail!("invalid --read-data-subset {s:?}: expected like 10% or 3/7"),
        };
        if m == 0 || n == 0 || n > m {
            bail!("invalid --read-data-subset {s:?}: need 1 <= n <= m");
        }
        return Ok(ReadData::Slice(n, m));
    }
    bail!("invalid --read-data-subset {s:?}: expected like 10% or 3/7")
}

pub fn run(ctx: &Ctx, a: CheckArgs) -> Result<i32> {
    let read_data = match (&a.read_data_subset, a.read_data) {
        (Some(s), _) => parse_subset(s)?,
        (None, true) => ReadData::All,
        (None, false) => ReadData::None,
    };
    let repo = ctx.open()?;
    let _lock = repo.lock(false, "check")?;
    let report = checker::check(
        &repo,
        &CheckOptions {
            read_data,
            threads: threads(),
        },
        &snapvault_repo::archiver::NoHooks,
    )?;
    let errors = report.errors();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "ok": errors == 0,
                "errors": errors,
                "report": report,
            }))?
        );
    } else {
        for p in &report.problems {
            let tag = match p.severity {
                Severity::Error => "error",
                Severity::Notice => "notice",
            };
            println!("{tag}: {} {}", p.object, p.message);
        }
        for d in &report.damaged_files {
            let taken = d
                .taken
                .as_ref()
                .map(|t| format!(" (taken {})", &t[..t.len().min(10)]))
                .unwrap_or_default();
            println!(
                "damaged: {}{taken} in {} snapshot(s)",
                d.path,
                d.snapshots.len()
            );
        }
        ctx.say(format!(
            "checked {} snapshot(s), {} pack(s), {} blob(s); read {} from {} pack(s)",
            report.snapshots,
            report.packs,
            report.blobs,
            fmt::size(report.bytes_read),
            report.packs_read
        ));
        if errors == 0 {
            ctx.say("no errors found");
        } else {
            println!("{errors} error(s) found");
        }
    }
    Ok(if errors == 0 { exit::OK } else { exit::DAMAGE })
}
