//! The examples at the end of each `--help` page. Kept apart from the option definitions so
//! cli.rs stays a list of options; each line is a command a user can copy.

pub const TOP: &str = "\
Examples:
  snapvault demo                                      # try it on a generated sample library
  snapvault -r /media/T7/photos init                  # a new repository on an external drive
  snapvault -r /media/T7/photos snapshot iphone       # back up the iPhone on USB
  snapvault -r /media/T7/photos verify-device         # is it safe to delete from the phone?
  snapvault -r /media/T7/photos restore latest --target ~/restored

`snapvault COMMAND --help` shows each command's options and examples.";

pub const INIT: &str = "\
Examples:
  snapvault -r /media/T7/photos init
  snapvault -r /media/T7/photos init --password-command 'pass show snapvault'
  snapvault -r sftp:me@nas:/backups/photos init";

pub const SNAPSHOT: &str = "\
Examples:
  snapvault snapshot iphone                           # the camera roll of the iPhone on USB
  snapvault snapshot iphone --device 00008110-001A2B3C4D5E6F70
  snapvault snapshot ~/Pictures --exclude '*.tmp' --tag laptop";

pub const SNAPSHOTS: &str = "\
Examples:
  snapvault snapshots
  snapvault snapshots --device \"Anna's iPhone\" --json";

pub const LS: &str = "\
Examples:
  snapvault ls latest
  snapvault ls 1a2b3c4d DCIM/100APPLE";

pub const RESTORE: &str = "\
Examples:
  snapvault restore latest --target ~/restored
  snapvault restore latest --target ~/restored --include 'DCIM/100APPLE/IMG_0102.JPG'
  snapvault restore --date 2023-07 --target ~/july --layout date
  snapvault restore latest --target ~/Pictures --overwrite -n   # what would be replaced";

pub const CHECK: &str = "\
Examples:
  snapvault check                                     # structure only, quick
  snapvault check --read-data                         # read and verify every byte
  snapvault check --budget 10m                        # a bit every night, all of it over time";

pub const FORGET: &str = "\
Examples:
  snapvault forget --keep-daily 7 --keep-monthly 12 -n   # preview: nothing is removed
  snapvault forget --keep-daily 7 --keep-monthly 12 --prune
  snapvault forget 1a2b3c4d";

pub const PRUNE: &str = "\
Examples:
  snapvault prune -n                                  # what would be freed
  snapvault prune";

pub const COPY: &str = "\
Examples:
  snapvault copy --all --to /media/offsite/photos
  SNAPVAULT_PASSWORD2=… snapvault copy latest --to s3:my-bucket/photos";

pub const KEY: &str = "\
Examples:
  snapvault key list
  snapvault key add                                   # a spare password
  snapvault key passwd";

pub const PARITY: &str = "\
Examples:
  snapvault parity set 5                              # 5 % Reed-Solomon parity
  snapvault parity set 0                              # remove it";

pub const PARITY_SET: &str = "\
Examples:
  snapvault parity set 5
  snapvault parity set 10 --quiet";

pub const KEY_ADD: &str = "\
Examples:
  snapvault key add
  snapvault key add --new-password-file ~/spare-password.txt";

pub const KEY_LIST: &str = "\
Examples:
  snapvault key list";

pub const KEY_REMOVE: &str = "\
Examples:
  snapvault key remove 3f2a1b4c -n                    # which key would go
  snapvault key remove 3f2a1b4c";

pub const KEY_PASSWD: &str = "\
Examples:
  snapvault key passwd";

pub const KEY_REMEMBER: &str = "\
Examples:
  snapvault key remember     # asks the password once; then `snapvault snapshot` needs none
  snapvault key forget       # back to asking (removes the file; the password still works)";

pub const UNLOCK: &str = "\
Examples:
  snapvault unlock -n                                 # which locks are stale
  snapvault unlock";

pub const REPAIR: &str = "\
Examples:
  snapvault repair                                    # the plan only: nothing changes
  snapvault repair --apply
  snapvault repair --from /media/me/offsite --apply     # heal from another repository
  snapvault repair snapshots --apply --forget-damaged";

pub const PHOTOS: &str = "\
Examples:
  snapvault photos --date 2023-07
  snapvault photos --date 2023-06..2023-08 --kind live";

pub const BROWSE: &str = "\
Examples:
  snapvault browse                          # prints http://127.0.0.1:PORT/?token=… and opens it
  snapvault browse --no-open --snapshot latest";

pub const FIND: &str = "\
Examples:
  snapvault find IMG_0102.JPG                         # which snapshots hold it, and when
  snapvault find 'IMG_01*.HEIC' --json
  snapvault find img_0102.jpg --ignore-case

Then restore one: snapvault restore 1a2b3c4d --include IMG_0102.JPG --target ~/restored";

pub const DIFF: &str = "\
Examples:
  snapvault diff latest~1 latest
  snapvault diff 1a2b3c4d latest --all";

pub const DEVICES: &str = "\
Examples:
  snapvault devices";

pub const VERIFY_DEVICE: &str = "\
Examples:
  snapvault verify-device                             # reads the stored copies back too
  snapvault verify-device --also /media/T5/offsite    # is each photo in both backups?
  snapvault verify-device --quick                     # index only, without reading back
  snapvault verify-device --device 00008110-001A2B3C4D5E6F70 --json";

pub const DEMO: &str = "\
Examples:
  snapvault demo
  snapvault demo --dir /tmp/snapvault-demo";

pub const STATS: &str = "\
Examples:
  snapvault stats
  snapvault stats --snapshot latest";

pub const CONFIG: &str = "\
Examples:
  snapvault config show
  snapvault --profile t7 config show";

pub const COMPLETIONS: &str = "\
Examples:
  snapvault completions bash > ~/.local/share/bash-completion/completions/snapvault
  snapvault completions zsh > ~/.zfunc/_snapvault";

pub const MANPAGE: &str = "\
Examples:
  snapvault manpage ~/.local/share/man/man1";
