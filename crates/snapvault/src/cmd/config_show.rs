//! `snapvault config show`: the effective settings and where each came from.

use anyhow::Result;

use super::Ctx;
use crate::config::{self, Origin};

pub fn run(ctx: &Ctx, json: bool) -> Result<i32> {
    let eff = config::effective();
    if json {
        println!("{}", serde_json::to_string_pretty(&eff)?);
        return Ok(0);
    }
    let width = eff
        .settings
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(10)
        .max("excludes".len());
    for s in &eff.settings {
        let mut value = s.value.clone().unwrap_or_else(|| "(not set)".into());
        if s.name == "config_file" && s.value.is_some() && !eff.config_file_loaded {
            value.push_str(" (not found)");
        }
        println!("{:<width$}  {:<40}  {}", s.name, value, s.origin);
    }
    let mut last: Option<&Origin> = None;
    for (i, e) in eff.excludes.iter().enumerate() {
        let name = if i == 0 { "excludes" } else { "" };
        let v = match e.name {
            "exclude_file" => format!("file {}", e.value.as_deref().unwrap_or_default()),
            _ => e.value.clone().unwrap_or_default(),
        };
        // The origin once per run of equal origins, to keep the list readable.
        let origin = if last == Some(&e.origin) {
            String::new()
        } else {
            e.origin.to_string()
        };
        last = Some(&e.origin);
        let line = format!("{name:<width$}  {v:<40}  {origin}");
        println!("{}", line.trim_end());
    }
    if eff.excludes.is_empty() {
        println!("{:<width$}  {:<40}  default", "excludes", "(none)");
    }
    if !eff.profiles.is_empty() {
        ctx.say(format!("profiles in the file: {}", eff.profiles.join(", ")));
    }
    Ok(0)
}
