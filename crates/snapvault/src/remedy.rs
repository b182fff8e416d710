//! The commands that mend what the core finds. The core names a step ([`Remedy`]); the
//! command names live here, so the library knows none of them (error.rs rule 3 of
//! snapvault-repo).

use snapvault_repo::Remedy;

/// What to append to a finding's message for its remedy.
pub fn suffix(r: Remedy) -> &'static str {
    match r {
        Remedy::RebuildIndex => " (run `snapvault repair index`)",
        Remedy::PruneOrAdopt => {
            "; prune removes it once it is older than --unindexed-grace, `snapvault repair \
             index` adopts it"
        }
        Remedy::DropDamagedCopy => ", `repair --apply` drops the damaged one",
        Remedy::RepairOrReread => {
            " (`snapvault repair` shows what to do; `check --read-data` reads it again)"
        }
        Remedy::RewriteConfig => ": `snapvault repair --apply` rewrites the config from it",
        Remedy::RemoveKey => ": remove it with `snapvault key remove`",
        Remedy::ResealConfigCopy => {
            "; the key still opens the repository; `snapvault repair --apply` seals the config \
             in use into it"
        }
        Remedy::WriteKeyWithCopy => {
            ": `snapvault key passwd` writes a key file that holds one (the same password may \
             be given again)"
        }
    }
}

/// `message` with its remedy, if any.
pub fn with(message: &str, r: Option<Remedy>) -> String {
    match r {
        Some(r) => format!("{message}{}", suffix(r)),
        None => message.to_string(),
    }
}
