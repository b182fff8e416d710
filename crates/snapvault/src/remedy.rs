//! The commands that mend what the core finds. The core names a step ([`Remedy`]); the
//! command names live here, so the library knows none of them (error.rs rule 3 of
//! snapvault-repo).

use snapvault_repo::Remedy;
use snapvault_repo::open::OpenWarning;

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

/// A warning of prune's, with what to do about it.
pub fn prune_warning(w: &snapvault_repo::prune::PruneWarning) -> String {
    match w {
        snapvault_repo::prune::PruneWarning::DamagedPackKept { .. } => {
            format!("{} (run `snapvault check --read-data`)", w.describe())
        }
    }
}

/// A warning from opening the repository, with what to do about it.
pub fn open_warning(w: &OpenWarning) -> String {
    match w {
        OpenWarning::ConfigFromCopy(_) => format!(
            "{}. `snapvault repair --apply` rewrites the config from it",
            w.describe()
        ),
        OpenWarning::KeyNotTried { key, .. } => format!(
            "{}. If you did not add it, `snapvault check` tells whether it is damaged and \
             `snapvault key remove {key}` removes it; to try it, name it: --key {key}",
            w.describe()
        ),
    }
}

#[cfg(test)]
mod tests {
    use snapvault_repo::keyfile::KdfParams;
    use snapvault_repo::open::ConfigDamage;

    use super::*;

    #[test]
    fn a_damaged_pack_prune_keeps_is_for_check_to_read() {
        let pack = snapvault_repo::PackId(snapvault_repo::Id([0xab; 32]));
        let blob = snapvault_repo::BlobId(snapvault_repo::Id([0xcd; 32]));
        let w = snapvault_repo::prune::PruneWarning::DamagedPackKept { pack, blob };
        assert!(!w.describe().contains('`'));
        assert_eq!(
            prune_warning(&w),
            format!(
                "pack {} holds a damaged blob ({}); left as it is (run `snapvault check \
                 --read-data`)",
                "ab".repeat(32),
                blob.short()
            )
        );
    }

    /// The core states the facts, with no command in them; the advice added here makes the
    /// same warnings as when the core wrote them whole.
    #[test]
    fn open_warnings_get_their_advice_here() {
        let key = OpenWarning::KeyNotTried {
            key: "ab12cd34".into(),
            asks: KdfParams {
                m_kib: 1 << 20,
                t: 16,
                p: 16,
            },
            usual: KdfParams {
                m_kib: 64 << 10,
                t: 3,
                p: 1,
            },
        };
        let config = OpenWarning::ConfigFromCopy(ConfigDamage {
            file: "/r/config".into(),
            reason: "it is missing".into(),
            copy_in: "77aa0011ffee".into(),
        });
        for w in [&key, &config] {
            assert!(!w.describe().contains('`'), "{}", w.describe());
        }
        assert_eq!(
            open_warning(&key),
            "key file ab12cd34 asks for 1024 MiB and 16 pass(es) of Argon2id, far more than this \
             repository's keys use (64 MiB and 3 pass(es)); it was not tried. If you did not add \
             it, `snapvault check` tells whether it is damaged and `snapvault key remove \
             ab12cd34` removes it; to try it, name it: --key ab12cd34"
        );
        assert_eq!(
            open_warning(&config),
            "the repository's config file /r/config is damaged (it is missing); using the copy \
             kept in key file 77aa0011. `snapvault repair --apply` rewrites the config from it"
        );
    }
}
