//! Grouping snapshots before the policy is applied to each group (restic's
//! `snapshot_group`).

use std::str::FromStr;

use crate::format::snapshot::Snapshot;

/// How snapshots are grouped before the policy is applied to each group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupBy {
    pub source: bool,
    pub host: bool,
    pub paths: bool,
    pub tags: bool,
}

impl Default for GroupBy {
    /// By source: the device (UDID) for iPhone snapshots, host + paths for folders.
    fn default() -> Self {
        GroupBy {
            source: true,
            host: false,
            paths: false,
            tags: false,
        }
    }
}

impl FromStr for GroupBy {
    type Err = String;
    /// `source` (default), `host`, `paths`, `tags`, comma-separated; `''` for one group.
    fn from_str(s: &str) -> std::result::Result<GroupBy, String> {
        let mut g = GroupBy {
            source: false,
            host: false,
            paths: false,
            tags: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "source" => g.source = true,
                "host" => g.host = true,
                "paths" => g.paths = true,
                "tags" => g.tags = true,
                other => {
                    return Err(format!(
                        "unknown grouping {other:?}: use source, host, paths, tags (comma-separated) or ''"
                    ));
                }
            }
        }
        Ok(g)
    }
}

/// Parse a grouping (the binary's option parser calls it).
pub fn parse_group_by(s: &str) -> std::result::Result<GroupBy, String> {
    s.parse()
}

impl GroupBy {
    /// The group a snapshot belongs to, as a readable key.
    pub fn key(&self, s: &Snapshot) -> String {
        let mut parts = Vec::new();
        if self.source {
            parts.push(format!("source {}", s.source.describe()));
            if s.source.device.is_none() {
                parts.push(format!("host {}", s.hostname));
            }
        }
        if self.host && !(self.source && s.source.device.is_none()) {
            parts.push(format!("host {}", s.hostname));
        }
        if self.paths && !self.source {
            parts.push(format!("paths {}", s.source.describe()));
        }
        if self.tags {
            let mut t = s.tags.clone();
            t.sort();
            parts.push(format!("tags [{}]", t.join(",")));
        }
        if parts.is_empty() {
            "all snapshots".into()
        } else {
            parts.join(", ")
        }
    }
}
