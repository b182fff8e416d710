//! What a listing knows of an entry, from either `std`'s [`fs::Metadata`] (the roots, found
//! by path) or a `statx`/`fstatat` relative to an open folder (everything below them, see
//! `dirs`). [`super::entry_from_metadata`] reads both through [`Status`], so there is one
//! conversion into a `SourceEntry`; its method names are `std`'s, so that conversion reads
//! as it would on a `Metadata`.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The kind of an entry, as [`fs::FileType`] tells it.
pub(crate) trait Kind {
    fn is_dir(&self) -> bool;
    fn is_file(&self) -> bool;
    fn is_symlink(&self) -> bool;
    fn is_fifo(&self) -> bool;
    fn is_socket(&self) -> bool;
    fn is_char_device(&self) -> bool;
    fn is_block_device(&self) -> bool;
}

/// An entry's status, as [`fs::Metadata`] (with `MetadataExt`) tells it.
pub(crate) trait Status {
    type Kind: Kind;
    fn file_type(&self) -> Self::Kind;
    fn created(&self) -> io::Result<SystemTime>;
    fn len(&self) -> u64;
    fn mode(&self) -> u32;
    fn mtime(&self) -> i64;
    fn mtime_nsec(&self) -> i64;
    // For the listing's change time (asked of `entry_from_metadata` by the inode work).
    #[allow(dead_code)]
    fn ctime(&self) -> i64;
    #[allow(dead_code)]
    fn ctime_nsec(&self) -> i64;
    fn dev(&self) -> u64;
    fn ino(&self) -> u64;
    fn nlink(&self) -> u64;
    fn rdev(&self) -> u64;
}

impl Kind for fs::FileType {
    fn is_dir(&self) -> bool {
        fs::FileType::is_dir(self)
    }
    fn is_file(&self) -> bool {
        fs::FileType::is_file(self)
    }
    fn is_symlink(&self) -> bool {
        fs::FileType::is_symlink(self)
    }
    fn is_fifo(&self) -> bool {
        FileTypeExt::is_fifo(self)
    }
    fn is_socket(&self) -> bool {
        FileTypeExt::is_socket(self)
    }
    fn is_char_device(&self) -> bool {
        FileTypeExt::is_char_device(self)
    }
    fn is_block_device(&self) -> bool {
        FileTypeExt::is_block_device(self)
    }
}

impl Status for fs::Metadata {
    type Kind = fs::FileType;
    fn file_type(&self) -> fs::FileType {
        fs::Metadata::file_type(self)
    }
    fn created(&self) -> io::Result<SystemTime> {
        fs::Metadata::created(self)
    }
    fn len(&self) -> u64 {
        fs::Metadata::len(self)
    }
    fn mode(&self) -> u32 {
        MetadataExt::mode(self)
    }
    fn mtime(&self) -> i64 {
        MetadataExt::mtime(self)
    }
    fn mtime_nsec(&self) -> i64 {
        MetadataExt::mtime_nsec(self)
    }
    fn ctime(&self) -> i64 {
        MetadataExt::ctime(self)
    }
    fn ctime_nsec(&self) -> i64 {
        MetadataExt::ctime_nsec(self)
    }
    fn dev(&self) -> u64 {
        MetadataExt::dev(self)
    }
    fn ino(&self) -> u64 {
        MetadataExt::ino(self)
    }
    fn nlink(&self) -> u64 {
        MetadataExt::nlink(self)
    }
    fn rdev(&self) -> u64 {
        MetadataExt::rdev(self)
    }
}

/// The file type bits of a `st_mode`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mode(pub u32);

impl Mode {
    // `mode_t` is `u16` on Apple's systems: the casts are needed there.
    #[allow(clippy::unnecessary_cast)]
    fn is(&self, kind: libc::mode_t) -> bool {
        self.0 & libc::S_IFMT as u32 == kind as u32
    }
}

impl Kind for Mode {
    fn is_dir(&self) -> bool {
        self.is(libc::S_IFDIR)
    }
    fn is_file(&self) -> bool {
        self.is(libc::S_IFREG)
    }
    fn is_symlink(&self) -> bool {
        self.is(libc::S_IFLNK)
    }
    fn is_fifo(&self) -> bool {
        self.is(libc::S_IFIFO)
    }
    fn is_socket(&self) -> bool {
        self.is(libc::S_IFSOCK)
    }
    fn is_char_device(&self) -> bool {
        self.is(libc::S_IFCHR)
    }
    fn is_block_device(&self) -> bool {
        self.is(libc::S_IFBLK)
    }
}

/// An entry's status from a `statx`/`fstatat` relative to its folder, in `std`'s terms
/// (device numbers as `makedev` makes them, as `std` reports them: hard links found in
/// older snapshots keep matching).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stat {
    pub mode: u32,
    pub size: u64,
    pub mtime: (i64, i64),
    #[allow(dead_code)]
    pub ctime: (i64, i64),
    /// Birth time (seconds, nanoseconds), when the file system keeps one.
    pub btime: Option<(i64, u32)>,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub rdev: u64,
}

impl Status for Stat {
    type Kind = Mode;
    fn file_type(&self) -> Mode {
        Mode(self.mode)
    }
    fn created(&self) -> io::Result<SystemTime> {
        let (s, ns) = self.btime.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "no birth time on this file system",
            )
        })?;
        let since = Duration::new(s.unsigned_abs(), ns);
        let t = if s >= 0 {
            UNIX_EPOCH.checked_add(since)
        } else {
            UNIX_EPOCH.checked_sub(since)
        };
        t.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "birth time out of range"))
    }
    fn len(&self) -> u64 {
        self.size
    }
    fn mode(&self) -> u32 {
        self.mode
    }
    fn mtime(&self) -> i64 {
        self.mtime.0
    }
    fn mtime_nsec(&self) -> i64 {
        self.mtime.1
    }
    fn ctime(&self) -> i64 {
        self.ctime.0
    }
    fn ctime_nsec(&self) -> i64 {
        self.ctime.1
    }
    fn dev(&self) -> u64 {
        self.dev
    }
    fn ino(&self) -> u64 {
        self.ino
    }
    fn nlink(&self) -> u64 {
        self.nlink
    }
    fn rdev(&self) -> u64 {
        self.rdev
    }
}
