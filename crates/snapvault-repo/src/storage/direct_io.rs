//! Writing large files past the page cache (`O_DIRECT` on Linux, `F_NOCACHE` on macOS).
//!
//! Packs and restored photos are written once and not read again soon. Through the page
//! cache every byte is copied by the kernel into freshly allocated cache pages, which was
//! half of all CPU time of a first snapshot on our test machines (a virtual machine whose
//! host backs guest memory lazily makes that copy especially slow), and a large backup
//! evicts everything else the user had cached. `O_DIRECT` lets the device read straight
//! from one small, reused, aligned buffer.
//!
//! Direct I/O needs the buffer, the file offset and the length aligned to the device's
//! block size; we align everything to [`ALIGN`] and write the last block zero-padded, then
//! cut the file back to its real length. Where the filesystem refuses `O_DIRECT` (tmpfs,
//! some FUSE and network filesystems) the writer silently falls back to ordinary writes:
//! the bytes on disk are the same either way. macOS's `F_NOCACHE` asks for no alignment
//! but skips the cache only for aligned writes, so the same staging serves it; on other
//! systems every write is an ordinary one.
use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

/// Alignment of buffer, offsets and lengths: covers 512-byte and 4 KiB block devices.
pub const ALIGN: usize = 4096;
/// Bytes staged before each direct write: large enough for full device throughput
/// (measured: 1 MiB writes 1.3 GB/s, 4 MiB 2.3 GB/s), small enough to keep per thread.
pub(crate) const STAGE: usize = 4 << 20;
/// Files smaller than this are written the ordinary way: nothing to gain.
pub(crate) const MIN_DIRECT: u64 = 256 << 10;

thread_local! {
    /// Each thread keeps its staging buffer between files, so its pages stay mapped.
    static SPARE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Sequential writer of one whole file; call [`DirectWriter::finish`] to complete it.
pub(crate) struct DirectWriter {
    file: File,
    /// Backing allocation; the aligned window is `buf[start..start + STAGE]`.
    buf: Vec<u8>,
    start: usize,
    fill: usize,
    len: u64,
    /// Where the bytes actually written end (past `len` after a padded direct block, before
    /// it after a trailing hole): the file needs its length set unless the two agree.
    end: u64,
    direct: bool,
}

impl DirectWriter {
    /// Take over `file` (opened for writing, empty, position 0) that will receive about
    /// `expected_len` bytes. Files of at least [`MIN_DIRECT`] switch to direct I/O if their
    /// filesystem allows; smaller ones are written the ordinary way (staging a 20 KiB
    /// sidecar through 4 MiB gains nothing) and need no staging buffer.
    pub fn new(file: File, expected_len: u64) -> Self {
        let direct = expected_len >= MIN_DIRECT && set_direct(&file, true).is_ok();
        Self::at(file, 0, direct)
    }

    /// Take over `file` to write one stretch of it starting at `offset`, a multiple of
    /// [`ALIGN`]; other writers may fill other stretches at the same time, each through its
    /// own handle on the same open file. `direct` says whether that file was switched to
    /// direct I/O ([`try_direct`], once, by whoever opened it: a writer switching it while
    /// another writes unaligned bytes would make those fail). End with
    /// [`DirectWriter::flush`]; give the file its length and sync it once every stretch
    /// is written.
    pub fn at(file: File, offset: u64, direct: bool) -> Self {
        let buf = if direct {
            SPARE
                .with(|s| s.borrow_mut().take())
                .unwrap_or_else(|| vec![0u8; STAGE + ALIGN])
        } else {
            Vec::new()
        };
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        DirectWriter {
            file,
            buf,
            start,
            fill: 0,
            len: offset,
            end: offset,
            direct,
        }
    }

    pub fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        // Nothing written is not "written up to here" (a hole before it stays a hole to
        // give a length to at the end).
        if data.is_empty() {
            return Ok(());
        }
        if !self.direct {
            self.file.write_all_at(data, self.len)?;
            self.len += data.len() as u64;
            self.end = self.end.max(self.len);
            return Ok(());
        }
        // Bytes that are already aligned in memory and in the file go straight to the disk
        // (a pack built on a 4 KiB boundary): no staging copy.
        if self.fill == 0
            && self.len.is_multiple_of(ALIGN as u64)
            && data.as_ptr().align_offset(ALIGN) == 0
        {
            let bulk = data.len() - data.len() % ALIGN;
            if bulk > 0 {
                match self.file.write_all_at(&data[..bulk], self.len) {
                    Ok(()) => {
                        self.len += bulk as u64;
                        self.end = self.end.max(self.len);
                        data = &data[bulk..];
                    }
                    // Refused: the staged path below finds out and falls back.
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        while !data.is_empty() {
            let n = (STAGE - self.fill).min(data.len());
            let at = self.start + self.fill;
            self.buf[at..at + n].copy_from_slice(&data[..n]);
            self.fill += n;
            self.len += n as u64;
            data = &data[n..];
            if self.fill == STAGE {
                self.flush_stage(STAGE)?;
            }
        }
        Ok(())
    }

    /// Write `data`, leaving each run of whole zero blocks (aligned in the file) as a hole
    /// (see [`DirectWriter::write_zeros`]). The rest goes out in as few writes as before:
    /// photos, whose blocks are never all zero, cost one byte compared per block.
    pub(crate) fn write_sparse(&mut self, data: &[u8]) -> io::Result<()> {
        let is_zero = |b: &[u8]| b.iter().all(|&x| x == 0);
        // A hole needs whole blocks: the piece up to the file's next block boundary is data.
        let lead = ((ALIGN as u64 - self.len % ALIGN as u64) % ALIGN as u64) as usize;
        let mut start = 0;
        let mut pos = lead.min(data.len());
        while let Some(block) = data.get(pos..pos + ALIGN) {
            if !is_zero(block) {
                pos += ALIGN;
                continue;
            }
            let mut end = pos + ALIGN;
            while data.get(end..end + ALIGN).is_some_and(is_zero) {
                end += ALIGN;
            }
            self.write_all(&data[start..pos])?;
            self.write_zeros((end - pos) as u64)?;
            start = end;
            pos = end;
        }
        self.write_all(&data[start..])
    }

    /// `n` zero bytes. Whole aligned blocks of them are skipped, not written, and stay a
    /// hole (the file gets its length in [`DirectWriter::finish`]), so an all-zero stretch
    /// of a file — a sparse disk image, a pre-allocated recording — takes no disk space.
    pub(crate) fn write_zeros(&mut self, mut n: u64) -> io::Result<()> {
        const ZEROS: [u8; ALIGN] = [0; ALIGN];
        let align = ALIGN as u64;
        // Up to a block boundary as data (the staged bytes then end on it too: the stage
        // always starts on a boundary).
        let head = ((align - self.len % align) % align).min(n);
        self.write_all(&ZEROS[..head as usize])?;
        n -= head;
        let blocks = n - n % align;
        if blocks > 0 {
            if self.fill > 0 {
                self.flush_stage(self.fill)?;
            }
            self.len += blocks;
        }
        self.write_all(&ZEROS[..(n - blocks) as usize])
    }

    /// Write the staged bytes, `padded_len` of them (a multiple of [`ALIGN`]), at the
    /// offset where they belong (so a refused direct write can simply be redone).
    fn flush_stage(&mut self, padded_len: usize) -> io::Result<()> {
        let offset = self.len - self.fill as u64;
        if self.direct {
            let window = &self.buf[self.start..self.start + padded_len];
            match self.file.write_all_at(window, offset) {
                Ok(()) => {
                    self.end = self.end.max(offset + padded_len as u64);
                    self.fill = 0;
                    return Ok(());
                }
                // Refused by the filesystem: go on without O_DIRECT, from the same offset.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    self.direct = false;
                    set_direct(&self.file, false)?;
                }
                Err(e) => return Err(e),
            }
        }
        let staged = &self.buf[self.start..self.start + self.fill];
        self.file.write_all_at(staged, offset)?;
        self.end = self.end.max(offset + self.fill as u64);
        self.fill = 0;
        Ok(())
    }

    /// Write what is staged (zero-padded to a whole block past the end: the file's length is
    /// set once all its stretches are written), without syncing: for [`DirectWriter::at`].
    /// Returns the offset just past the last byte written.
    pub fn flush(mut self) -> io::Result<u64> {
        self.flush_padded()?;
        let DirectWriter { buf, len, .. } = self;
        if !buf.is_empty() {
            SPARE.with(|s| *s.borrow_mut() = Some(buf));
        }
        Ok(len)
    }

    fn flush_padded(&mut self) -> io::Result<()> {
        if self.fill > 0 {
            let padded = self.fill.next_multiple_of(ALIGN);
            let at = self.start + self.fill;
            self.buf[at..self.start + padded].fill(0);
            self.flush_stage(padded)?;
        }
        Ok(())
    }

    /// Write what is staged at the end of a whole file of this writer's own: its whole
    /// blocks past the page cache, the last partial block through it, so no zero padding
    /// is left to cut. Cutting a block written past the cache makes the file system read
    /// it back from the disk first (ext4: ~0.7 ms per file on a cold restore).
    fn flush_tail(&mut self) -> io::Result<()> {
        let part = self.fill % ALIGN;
        if !self.direct || part == 0 {
            return self.flush_padded();
        }
        let offset = self.len - self.fill as u64;
        let whole = self.fill - part;
        let mut done = 0;
        if whole > 0 {
            match self
                .file
                .write_all_at(&self.buf[self.start..self.start + whole], offset)
            {
                Ok(()) => done = whole,
                // Refused: everything through the page cache below.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                Err(e) => return Err(e),
            }
        }
        self.direct = false;
        set_direct(&self.file, false)?;
        let rest = &self.buf[self.start + done..self.start + self.fill];
        self.file.write_all_at(rest, offset + done as u64)?;
        self.end = self.end.max(self.len);
        self.fill = 0;
        Ok(())
    }

    /// Write what is staged, give the file its exact length and make it durable
    /// ([`crate::storage::durable::sync_data`]: `fdatasync`, `F_FULLFSYNC` on macOS). Returns the file and the number of bytes written.
    pub fn finish(mut self) -> io::Result<(File, u64)> {
        self.flush_padded()?;
        // Cut the zero padding of a last direct block (and any tail of an earlier use).
        self.file.set_len(self.len)?;
        crate::storage::durable::sync_data(&self.file)?;
        let DirectWriter { file, buf, len, .. } = self;
        if !buf.is_empty() {
            SPARE.with(|s| *s.borrow_mut() = Some(buf));
        }
        Ok((file, len))
    }

    /// Write what is staged and give the file its exact length, without syncing: for a
    /// file created empty whose durability the caller takes care of (restore's batches).
    /// Its length is only set when the bytes written do not end where the file does.
    /// Returns the file and the number of bytes written.
    pub fn finish_unsynced(mut self) -> io::Result<(File, u64)> {
        self.flush_tail()?;
        if self.end != self.len {
            self.file.set_len(self.len)?;
        }
        let DirectWriter { file, buf, len, .. } = self;
        if !buf.is_empty() {
            SPARE.with(|s| *s.borrow_mut() = Some(buf));
        }
        Ok((file, len))
    }
}

/// Switch `file` to direct I/O if its filesystem allows; returns whether it did.
pub(crate) fn try_direct(file: &File) -> bool {
    set_direct(file, true).is_ok()
}

/// Switch the page-cache bypass of `file` on or off (`O_DIRECT`).
#[cfg(target_os = "linux")]
pub(crate) fn set_direct(file: &File, on: bool) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a file descriptor we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let new = if on {
        flags | libc::O_DIRECT
    } else {
        flags & !libc::O_DIRECT
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, new) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Switch the page-cache bypass of `file` on or off (`F_NOCACHE`, macOS's `O_DIRECT`).
#[cfg(target_vendor = "apple")]
pub(crate) fn set_direct(file: &File, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a file descriptor we own, with integer arguments only.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_NOCACHE, libc::c_int::from(on)) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Elsewhere there is no bypass: every file is written the ordinary way.
#[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
pub(crate) fn set_direct(_file: &File, on: bool) -> io::Result<()> {
    if on {
        Err(io::ErrorKind::Unsupported.into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 4099) as u8).collect()
    }

    /// Whatever the sizes of the pieces, the file holds exactly the bytes given, on a
    /// filesystem with O_DIRECT (the temp folder is normally on one) or without.
    #[test]
    fn round_trips_odd_sizes() {
        let dir = tempfile::tempdir().unwrap();
        for (total, piece) in [
            (0usize, 1usize),
            (1, 1),
            (ALIGN - 1, 100),
            (ALIGN, ALIGN),
            (STAGE, 1 << 20),
            (STAGE + 1, 333_333),
            (3 * STAGE + 12_345, 1_000_003),
        ] {
            let data = pattern(total);
            let p = dir.path().join(format!("f{total}"));
            let mut w = DirectWriter::new(fs::File::create(&p).unwrap(), u64::MAX);
            for c in data.chunks(piece.max(1)) {
                w.write_all(c).unwrap();
            }
            let (_, n) = w.finish().unwrap();
            assert_eq!(n, total as u64);
            assert_eq!(fs::read(&p).unwrap(), data, "size {total}");
        }
    }

    /// Data that starts on an aligned address (a pack built on a 4 KiB boundary) is written
    /// without staging; an unaligned tail and later pieces still land where they belong.
    #[test]
    fn aligned_data_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        for total in [ALIGN, 5 * ALIGN + 17, STAGE + 3 * ALIGN + 1] {
            let mut backing = vec![0u8; total + ALIGN];
            let at = backing.as_ptr().align_offset(ALIGN);
            let data = pattern(total);
            backing[at..at + total].copy_from_slice(&data);
            let p = dir.path().join(format!("a{total}"));
            let mut w = DirectWriter::new(fs::File::create(&p).unwrap(), u64::MAX);
            w.write_all(&backing[at..at + total]).unwrap();
            w.write_all(b"more").unwrap();
            let (_, n) = w.finish().unwrap();
            assert_eq!(n, total as u64 + 4);
            let mut want = data.clone();
            want.extend_from_slice(b"more");
            assert_eq!(fs::read(&p).unwrap(), want, "size {total}");
        }
    }

    /// Zeros written with `write_zeros` read back as zeros, and whole blocks of them take no
    /// space, with direct I/O or without.
    #[test]
    fn zeros_become_holes() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        for direct in [true, false] {
            let p = dir.path().join(format!("z{direct}"));
            let mut w = DirectWriter::new(fs::File::create(&p).unwrap(), u64::MAX);
            if !direct {
                w.direct = false;
                let _ = set_direct(&w.file, false);
            }
            let head = pattern(10_000);
            w.write_all(&head).unwrap();
            w.write_zeros(32 << 20).unwrap();
            w.write_all(b"middle").unwrap();
            w.write_zeros(16 << 20).unwrap();
            // Zero blocks inside data become holes too.
            let mut mixed = vec![0u8; 8 << 20];
            mixed[..3].copy_from_slice(b"abc");
            w.write_sparse(&mixed).unwrap();
            let (_, n) = w.finish().unwrap();
            let len = 10_000 + (56 << 20) + 6;
            assert_eq!(n, len as u64);
            let back = fs::read(&p).unwrap();
            assert_eq!(back.len(), len);
            assert_eq!(&back[..10_000], &head[..]);
            assert!(back[10_000..10_000 + (32 << 20)].iter().all(|&b| b == 0));
            assert_eq!(&back[10_000 + (32 << 20)..10_006 + (32 << 20)], b"middle");
            let tail = &back[10_006 + (32 << 20)..];
            assert!(tail[..16 << 20].iter().all(|&b| b == 0));
            assert_eq!(&tail[16 << 20..(16 << 20) + 3], b"abc");
            assert!(tail[(16 << 20) + 3..].iter().all(|&b| b == 0));
            let allocated = fs::metadata(&p).unwrap().blocks() * 512;
            assert!(
                allocated < 4 << 20,
                "direct {direct}: {allocated} bytes allocated"
            );
        }
    }

    /// After a fallback to ordinary writes (as on a filesystem that refuses O_DIRECT) the
    /// file still gets every byte.
    #[test]
    fn falls_back_to_buffered_writes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut w = DirectWriter::new(fs::File::create(&p).unwrap(), u64::MAX);
        w.direct = false;
        set_direct(&w.file, false).unwrap();
        let data = pattern(STAGE + 5);
        w.write_all(&data).unwrap();
        w.finish().unwrap();
        assert_eq!(fs::read(&p).unwrap(), data);
    }

    /// Without its sync, a finished file still has exactly its length: cut after a padded
    /// direct block, extended over a trailing hole, and left alone (no `ftruncate`) when the
    /// bytes written end where it does.
    #[test]
    fn finish_unsynced_gives_the_exact_length() {
        let dir = tempfile::tempdir().unwrap();
        for (name, expected, tail_zeros) in [
            ("small", 300u64, 0u64),
            ("direct", u64::MAX, 0),
            ("hole", 300, 64 << 10),
            ("direct-hole", u64::MAX, 64 << 10),
        ] {
            let p = dir.path().join(name);
            let mut w = DirectWriter::new(fs::File::create(&p).unwrap(), expected);
            let data = pattern(ALIGN + 300);
            w.write_all(&data).unwrap();
            w.write_zeros(tail_zeros).unwrap();
            let (_, n) = w.finish_unsynced().unwrap();
            let len = data.len() as u64 + tail_zeros;
            assert_eq!(n, len, "{name}");
            let back = fs::read(&p).unwrap();
            assert_eq!(back.len() as u64, len, "{name}");
            assert_eq!(&back[..data.len()], &data[..], "{name}");
            assert!(back[data.len()..].iter().all(|&b| b == 0), "{name}");
        }
    }

    /// A hole of whole blocks after data ending on a block boundary (an SQLite `-shm` file:
    /// seven blocks of data, one of zeros) still gives the file its whole length: the empty
    /// writes around the hole must not count as bytes written up to its end.
    #[test]
    fn finish_unsynced_keeps_a_trailing_hole_of_whole_blocks() {
        let dir = tempfile::tempdir().unwrap();
        for (name, expected) in [("small", 32u64 << 10), ("direct", u64::MAX)] {
            let p = dir.path().join(name);
            let mut w = DirectWriter::new(fs::File::create(&p).unwrap(), expected);
            let data = pattern(7 * ALIGN);
            w.write_all(&data).unwrap();
            w.write_zeros(ALIGN as u64).unwrap();
            let (_, n) = w.finish_unsynced().unwrap();
            assert_eq!(n, 8 * ALIGN as u64, "{name}");
            let back = fs::read(&p).unwrap();
            assert_eq!(back.len(), 8 * ALIGN, "{name}");
            assert_eq!(&back[..data.len()], &data[..], "{name}");
            assert!(back[data.len()..].iter().all(|&b| b == 0), "{name}");
        }
    }
}
