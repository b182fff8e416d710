//! Where a repository's bytes live. A backend stores named, immutable files in a few kinds
//! (folders); everything above it is backend-agnostic. Remote backends (S3, SFTP) implement
//! the same trait in the `snapvault-remote` crate.

pub use super::local::LocalBackend;

use crate::error::Result;

/// A finished pack's bytes in the buffer it was built in (from `start` on), handed to
/// [`Backend::write_pack`]. Dropped, the buffer goes back to `back` (the packer's pool),
/// when there is one and it has room.
pub struct PackBuffer {
    buf: Vec<u8>,
    start: usize,
    back: Option<crossbeam_channel::Sender<Vec<u8>>>,
}

impl PackBuffer {
    /// `buf[start..]`, returned to `back` when dropped.
    pub fn new(
        buf: Vec<u8>,
        start: usize,
        back: Option<crossbeam_channel::Sender<Vec<u8>>>,
    ) -> Self {
        PackBuffer {
            start: start.min(buf.len()),
            buf,
            back,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }
}

/// A remote backend sends the pack from the buffer itself (`bytes::Bytes::from_owner`): no
/// copy, and the buffer goes back to its pool when the upload lets go of it.
impl AsRef<[u8]> for PackBuffer {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

impl Drop for PackBuffer {
    fn drop(&mut self) {
        if let Some(back) = self.back.take() {
            let _ = back.try_send(std::mem::take(&mut self.buf));
        }
    }
}

/// A pack being written piece by piece ([`Backend::begin_pack`]).
pub trait PackSink: Send {
    /// Append the pack's next bytes (whole 4 KiB-aligned segments from aligned buffers
    /// while it fills, so a local disk writes them with direct I/O without a copy).
    fn append(&mut self, bytes: &[u8]) -> Result<()>;
    /// Every byte appended: make the pack durable and give it `name`, as
    /// [`Backend::write`] does for a whole file (`FileExists` when the name is taken).
    fn commit(self: Box<Self>, name: &str) -> Result<()>;
}

/// [`Backend::begin_pack`]'s default: the pack collected in memory, written whole.
struct Collect<'a, B: ?Sized> {
    backend: &'a B,
    bytes: Vec<u8>,
}

impl<B: Backend + ?Sized> PackSink for Collect<'_, B> {
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }
    fn commit(self: Box<Self>, name: &str) -> Result<()> {
        self.backend.write(FileKind::Pack, name, &self.bytes)
    }
}

/// Packs between index checkpoints on a local disk: the default of
/// [`Backend::checkpoint_packs`].
pub(crate) const CHECKPOINT_PACKS: usize = 32;

/// The kinds of files in a repository, each its own folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    Config,
    Key,
    Lock,
    Snapshot,
    Index,
    Pack,
    /// Reed-Solomon parity of groups of the other files (format.md §15).
    Parity,
}

impl FileKind {
    pub fn dir(self) -> &'static str {
        match self {
            FileKind::Config => "",
            FileKind::Key => "keys",
            FileKind::Lock => "locks",
            FileKind::Snapshot => "snapshots",
            FileKind::Index => "index",
            FileKind::Pack => "data",
            FileKind::Parity => "parity",
        }
    }

    /// Where a file of this kind lives, relative to the repository's root: packs are spread
    /// over 256 folders by their first two hex digits. Refuses names that could escape
    /// their folder or hide as temp files. Every backend lays files out through this.
    pub fn path_of(self, name: &str) -> crate::error::Result<String> {
        if name.is_empty()
            || name.contains('/')
            || name.starts_with('.')
            || (self == FileKind::Config && name != "config")
        {
            return Err(crate::RepoError::BadFileName {
                kind: self.name(),
                name: name.to_string(),
            });
        }
        Ok(match self {
            FileKind::Config => name.to_string(),
            FileKind::Pack => format!("data/{}/{name}", name.get(..2).unwrap_or("00")),
            _ => format!("{}/{name}", self.dir()),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FileKind::Config => "config",
            FileKind::Key => "key",
            FileKind::Lock => "lock",
            FileKind::Snapshot => "snapshot",
            FileKind::Index => "index",
            FileKind::Pack => "pack",
            FileKind::Parity => "parity",
        }
    }
}

/// A file as listed by a backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    pub name: String,
    pub size: u64,
}

/// Storage for immutable files. Implementations must make `write` atomic (a reader sees the
/// whole file or none of it) and durable when it returns, and must refuse to replace an
/// existing file with [`crate::RepoError::AlreadyExists`] semantics reported as an error.
pub trait Backend: Send + Sync {
    /// A human-readable location, for messages.
    fn location(&self) -> String;
    /// Does the repository (its config file) exist?
    fn exists(&self, kind: FileKind, name: &str) -> Result<bool>;
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>>;
    /// `len` bytes at `offset` of `name` into `buf` (left holding exactly those bytes), so a
    /// caller reading many ranges reuses one allocation instead of faulting in a new one. A
    /// file that ends before `offset + len` is corrupt ("file ends before byte …").
    fn read_range_into(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: usize,
        buf: &mut Vec<u8>,
    ) -> Result<()>;
    /// [`Backend::read_range_into`] into a new buffer.
    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.read_range_into(kind, name, offset, len, &mut buf)?;
        Ok(buf)
    }
    /// All `len` bytes of `name`, read once to be verified (`check --read-data`): returns
    /// where in `buf` they are. The default is one [`Backend::read_range_into`] (one
    /// request remotely); a local disk reads a file that is not in the page cache past it,
    /// into an aligned place in `buf` (`storage/direct_read.rs`).
    fn read_whole_into<'b>(
        &self,
        kind: FileKind,
        name: &str,
        len: usize,
        buf: &'b mut Vec<u8>,
    ) -> Result<&'b mut [u8]> {
        self.read_range_into(kind, name, 0, len, buf)?;
        Ok(&mut buf[..])
    }
    /// A hint that `len` bytes at `offset` of `name` will be read soon: a local disk can
    /// fetch them while the caller works on what it has; a remote backend with
    /// [`Backend::read_ahead`] fetches them in the background.
    fn prefetch(&self, _kind: FileKind, _name: &str, _offset: u64, _len: u64) {}
    /// [`Backend::prefetch`] of several ranges of `kind` (name, offset, length), in the
    /// order they will be read: a remote backend merges neighbours knowing all of them.
    fn prefetch_many(&self, kind: FileKind, ranges: &[(String, u64, u64)]) {
        for (name, offset, len) in ranges {
            self.prefetch(kind, name, *offset, *len);
        }
    }
    /// How many bytes of pack ranges a caller should announce with [`Backend::prefetch`]
    /// ahead of its reads, in the order it will read them, a batch at a time: a remote
    /// backend merges announced neighbours into one request and keeps several in flight.
    /// 0 (a local disk): announce just the next piece of work.
    fn read_ahead(&self) -> u64 {
        0
    }
    /// Create `name` with `data`. Fails with [`crate::RepoError::FileExists`] if it exists
    /// with other bytes (`create_new` semantics); the same bytes again may succeed (a remote
    /// backend's retried upload). The whole contract: `crate::testing::backend` (feature
    /// `testing`), which every backend's tests run.
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()>;
    /// [`Backend::write`] of pack `name` from a buffer the caller hands over: a backend
    /// that needs the bytes after the write (the parity guard, for its parity thread)
    /// keeps the buffer instead of copying it; the buffer goes back to its pool when
    /// dropped.
    fn write_pack(&self, name: &str, pack: PackBuffer) -> Result<()> {
        self.write(FileKind::Pack, name, pack.bytes())
    }
    /// Whether packs are better handed over as they fill ([`Backend::begin_pack`]) than
    /// whole ([`Backend::write_pack`]): a local folder writes each piece at once, so the
    /// packer keeps a few 4 MiB segments instead of whole packs in memory. A remote
    /// backend uploads a pack in one request from its buffer, and the parity guard folds
    /// whole packs: they keep the default (`repository/pack_stream.rs`).
    fn streams_packs(&self) -> bool {
        false
    }
    /// Start writing a pack whose name is known only once its last byte is (its hash):
    /// bytes are appended in order ([`PackSink::append`]), and [`PackSink::commit`] makes
    /// the whole file durable and gives it its name, with the promise of
    /// [`Backend::write`]: atomic, never replacing a file. A sink dropped before its
    /// commit leaves no pack (at worst a temporary file after a crash). `expected_len`:
    /// about how long the pack will be. This default collects the bytes and writes them
    /// whole at the commit; the packer asks for it only when [`Backend::streams_packs`].
    fn begin_pack(&self, expected_len: u64) -> Result<Box<dyn PackSink + '_>> {
        Ok(Box::new(Collect {
            backend: self,
            bytes: Vec::with_capacity(expected_len.min(64 << 20) as usize),
        }))
    }
    /// How many buffers handed to [`Backend::write_pack`] this backend may keep at once
    /// after their writes returned (the packer keeps that many more in circulation).
    fn keeps_packs(&self) -> usize {
        0
    }
    /// The command writes no more packs: every one it wrote is durable. A hint for a
    /// backend that works on packs beside the command (the parity guard writes the parity
    /// of the last ones now, while the command writes its index and snapshot, instead of
    /// after it); a pack written later is still handled, only not early.
    fn packs_done(&self) {}
    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>>;
    /// Put `data` in place of `name`, which may exist: the one exception to "written once",
    /// used only to rewrite a damaged config from a key file's copy (`repair --apply`).
    /// This default removes, then writes; a crash between the two leaves no config, and the
    /// next open falls back to the key files' copies again. Backends that can replace a file
    /// atomically do so.
    fn replace(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.remove(kind, name)?;
        self.write(kind, name, data)
    }
    fn size(&self, kind: FileKind, name: &str) -> Result<u64>;
    fn remove(&self, kind: FileKind, name: &str) -> Result<()>;
    /// Seconds since the file was last modified, when the backend knows (prune deletes
    /// packs that no index names only once they are older than a safety margin).
    fn age_secs(&self, _kind: FileKind, _name: &str) -> Result<Option<u64>> {
        Ok(None)
    }
    /// Packs between index checkpoints while writing. Each checkpoint is one more index file
    /// (a request on a remote backend; merged by prune). A run that fails or is stopped
    /// indexes its written packs at once, so a checkpoint only counts when that is
    /// impossible (the process killed, the machine off, the storage gone for good): the
    /// next run writes again at most this many packs.
    fn checkpoint_packs(&self) -> usize {
        CHECKPOINT_PACKS
    }
    /// Prepare an empty repository's folders (called by `init`).
    fn create_layout(&self) -> Result<()>;
    /// Temporary files left behind by interrupted writes: (path, size).
    fn leftover_temp_files(&self) -> Result<Vec<FileInfo>> {
        Ok(Vec::new())
    }
    /// Remove temporary files older than `min_age_secs` left by crashed processes.
    fn remove_leftover_temp_files(&self, _min_age_secs: u64) -> Result<usize> {
        Ok(0)
    }
}
