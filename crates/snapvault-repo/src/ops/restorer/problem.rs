//! Why an item was not restored, as a kind: the binary adds the advice (which option
//! replaces what is in the way, which command reports damage) without reading the text,
//! and the core's messages name no command or option (error.rs, rule 3).

use std::fmt;

/// Why one item of a restore was left alone.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    /// A folder is where a file (`file`) or a symlink, FIFO or device file belongs:
    /// folders are never replaced, whatever the options.
    FolderInTheWay { file: bool },
    /// A symlink is where a file belongs; left untouched (replaced only when asked to).
    SymlinkInTheWay,
    /// A different file is where a file belongs; left untouched (replaced only when asked).
    DifferentFile,
    /// Something else is where a symlink, FIFO or device file belongs; left untouched
    /// (replaced only when asked to).
    SomethingInTheWay,
    /// A symlink (`symlink_to`, its target) or a file is where a folder belongs: it was
    /// not followed, and the `below` items under the folder were not restored (replaced
    /// by a folder only when asked to).
    InTheWayOfFolder {
        symlink_to: Option<String>,
        below: usize,
    },
    /// The stored content's size is not the size the snapshot gives the file: the
    /// snapshot is damaged or was crafted.
    SizeMismatch { said: u64, stored: u64 },
    /// Anything else (a name the target cannot hold, a blob that cannot be read, a folder
    /// that cannot be synced): what went wrong.
    Failed(String),
}

impl Problem {
    /// Would restoring with `overwrite` replace what is in the way?
    pub fn overwrite_replaces(&self) -> bool {
        matches!(
            self,
            Problem::SymlinkInTheWay
                | Problem::DifferentFile
                | Problem::SomethingInTheWay
                | Problem::InTheWayOfFolder { .. }
        )
    }

    /// This problem of a folder, with the `n` items under it that were not restored.
    pub(crate) fn with_items_below(self, n: usize) -> Problem {
        match self {
            _ if n == 0 => self,
            Problem::InTheWayOfFolder { symlink_to, .. } => Problem::InTheWayOfFolder {
                symlink_to,
                below: n,
            },
            other => Problem::Failed(format!("{other}; {n} item(s) under it not restored")),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::FolderInTheWay { file: true } => {
                f.write_str("a folder is in the way; snapvault does not replace folders with files")
            }
            Problem::FolderInTheWay { file: false } => {
                f.write_str("a folder is in the way; snapvault does not replace folders")
            }
            Problem::SymlinkInTheWay => {
                f.write_str("a symlink is in the way; it was not followed and is left untouched")
            }
            Problem::DifferentFile => {
                f.write_str("a different file exists at this path; left untouched")
            }
            Problem::SomethingInTheWay => {
                f.write_str("something else exists at this path; left untouched")
            }
            Problem::InTheWayOfFolder { symlink_to, below } => {
                match symlink_to {
                    Some(to) => write!(
                        f,
                        "a symlink (to {to}) is in the way of this folder; it was not followed \
                         and nothing under it was restored"
                    )?,
                    None => f.write_str(
                        "a file is in the way of this folder; nothing under it was restored",
                    )?,
                }
                match below {
                    0 => Ok(()),
                    n => write!(f, "; {n} item(s) under it not restored"),
                }
            }
            Problem::SizeMismatch { said, stored } => write!(
                f,
                "the snapshot says this file has {said} bytes, but its stored content holds \
                 {stored}: the snapshot is damaged or was crafted; not restored"
            ),
            Problem::Failed(why) => f.write_str(why),
        }
    }
}

impl From<&str> for Problem {
    fn from(why: &str) -> Problem {
        Problem::Failed(why.to_string())
    }
}

impl From<String> for Problem {
    fn from(why: String) -> Problem {
        Problem::Failed(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind's message, for the rule that it names no command and no option.
    #[test]
    fn problems_name_no_command_and_no_option() {
        let all = [
            Problem::FolderInTheWay { file: true },
            Problem::FolderInTheWay { file: false },
            Problem::SymlinkInTheWay,
            Problem::DifferentFile,
            Problem::SomethingInTheWay,
            Problem::SizeMismatch { said: 3, stored: 4 },
        ];
        for p in all {
            let m = p.to_string();
            assert!(!m.contains('`') && !m.contains("--"), "{p:?}: {m}");
        }
    }
}
