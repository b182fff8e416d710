//! Reads, uploads and listings over SFTP, each resuming over a new connection where the
//! last one broke off (see the module docs of [`super`]).

use openssh_sftp_client::file::File;
use snapvault_repo::backend::{Backend, FileInfo, FileKind};
use snapvault_repo::{RemoteError, RepoError};
use tokio::io::AsyncSeekExt;

use super::{Problem, ProblemKind, REQUEST, Session, SftpBackend, TEMP_PREFIX, problem};
use crate::errors::what;
use crate::retry::Failure;

impl SftpBackend {
    /// Read `len` bytes at `offset` (all of the file with `None`), resuming after a broken
    /// connection at the last byte received.
    pub(super) fn read_at(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: Option<usize>,
    ) -> Result<Vec<u8>, RepoError> {
        let path = self.full(&kind.path_of(name)?);
        let what = what(kind, name);
        let mut got: Vec<u8> = Vec::with_capacity(len.unwrap_or(0));
        let buf = &mut got;
        self.run("reading", &what, async |s, progressed| {
            let mut f = self.req(s, s.sftp.open(&path)).await?;
            loop {
                let at = offset + buf.len() as u64;
                let want = match len {
                    Some(l) if buf.len() >= l => break,
                    Some(l) => (l - buf.len()).min(REQUEST),
                    None => REQUEST,
                };
                f.seek(std::io::SeekFrom::Start(at))
                    .await
                    .map_err(|e| Problem::net(Failure::Transient, e.to_string()))?;
                let got = self
                    .req(s, f.read(want as u32, bytes::BytesMut::new()))
                    .await?;
                match got {
                    Some(b) if !b.is_empty() => {
                        buf.extend_from_slice(&b);
                        *progressed = true;
                    }
                    _ => break,
                }
            }
            let _ = self.req(s, f.close()).await;
            Ok(())
        })?;
        if let Some(l) = len
            && got.len() != l
        {
            return Err(RepoError::corrupt(
                what,
                format!("file ends before byte {}", offset + l as u64),
            ));
        }
        Ok(got)
    }

    /// Upload `data` to a temp name and link it into place; resumes at the confirmed offset.
    pub(super) fn upload(
        &self,
        kind: FileKind,
        name: &str,
        path: &str,
        data: &[u8],
    ) -> Result<(), RepoError> {
        let what = what(kind, name);
        let (dir, _) = path.rsplit_once('/').unwrap_or(("", path));
        // (temp path, bytes the server confirmed)
        let mut state: (Option<String>, u64) = (None, 0);
        let st = &mut state;
        let linked = self.run("uploading", &what, async |s, progressed| {
            if self.stat(s, path).await?.is_some() {
                // Ours from an attempt whose reply was lost, or someone else's: compared below.
                return Ok(false);
            }
            let mut file = match &st.0 {
                Some(tmp) if st.1 > 0 => {
                    let mut o = s.sftp.options();
                    o.write(true);
                    match self.req(s, o.open(tmp)).await {
                        Ok(f) => Some(f),
                        Err(p) if p.kind == ProblemKind::NotFound => None,
                        Err(p) => return Err(p),
                    }
                }
                _ => None,
            };
            if file.is_none() {
                let tmp_name = format!("{TEMP_PREFIX}{}", hex::encode(rand::random::<[u8; 8]>()));
                let tmp = if dir.is_empty() {
                    tmp_name
                } else {
                    format!("{dir}/{tmp_name}")
                };
                let mut o = s.sftp.options();
                o.write(true).create_new(true);
                let created = match self.req(s, o.open(&tmp)).await {
                    // The first pack in its `data/xx` folder: make the folder.
                    Err(p) if p.kind == ProblemKind::NotFound && !dir.is_empty() => {
                        self.mkdir(s, dir).await?;
                        self.req(s, o.open(&tmp)).await?
                    }
                    r => r?,
                };
                file = Some(created);
                *st = (Some(tmp), 0);
            }
            let (Some(mut f), Some(tmp)) = (file, st.0.clone()) else {
                return Err(Problem::net(Failure::Permanent, "no temp file"));
            };
            self.write_from(s, &mut f, data, &mut st.1, progressed)
                .await?;
            if s.sftp.support_fsync() {
                self.req(s, f.sync_all()).await?;
            }
            self.req(s, f.close()).await?;
            match self.stat(s, &tmp).await? {
                Some((size, _)) if size == data.len() as u64 => {}
                other => {
                    let size = other.map_or(0, |o| o.0);
                    let _ = self.req(s, s.sftp.fs().remove_file(&tmp)).await;
                    *st = (None, 0);
                    return Err(Problem::net(
                        Failure::Transient,
                        format!(
                            "the upload is incomplete: the server has {size} of {} bytes",
                            data.len()
                        ),
                    ));
                }
            }
            if s.sftp.support_hardlink() {
                match self.req(s, s.sftp.fs().hard_link(&tmp, path)).await {
                    Ok(()) => {
                        let _ = self.req(s, s.sftp.fs().remove_file(&tmp)).await;
                        *st = (None, 0);
                        return Ok(true);
                    }
                    // Already there (linked by an attempt whose reply was lost, or by
                    // another writer): compared below. Else links are not allowed there.
                    Err(p) if p.kind == ProblemKind::Refused => {
                        if self.stat(s, path).await?.is_some() {
                            return Ok(false);
                        }
                    }
                    Err(p) => return Err(p),
                }
            }
            // No hard links: a rename, which may replace a file of the same name — only ever
            // one with the same content, as names are content hashes or random.
            self.req(s, s.sftp.fs().rename(&tmp, path)).await?;
            *st = (None, 0);
            Ok(true)
        });
        // A temp file from an attempt that did not link it (best effort: `prune` removes
        // old temp files anyway).
        if let Some(tmp) = state.0.take() {
            let _ = self.run("removing", "a temp file", async |s, _| {
                self.req(s, s.sftp.fs().remove_file(&tmp)).await
            });
        }
        match linked? {
            true => self.verify_size(kind, name, data.len()),
            false => self.already_there(kind, name, data),
        }
    }

    /// Write `data[*acked..]` at its offsets, moving `acked` as the server confirms.
    async fn write_from(
        &self,
        s: &Session,
        f: &mut File,
        data: &[u8],
        acked: &mut u64,
        progressed: &mut bool,
    ) -> Result<(), Problem> {
        while (*acked as usize) < data.len() {
            let at = *acked as usize;
            let end = (at + REQUEST).min(data.len());
            f.seek(std::io::SeekFrom::Start(at as u64))
                .await
                .map_err(|e| Problem::net(Failure::Transient, e.to_string()))?;
            let n = self.req(s, f.write(&data[at..end])).await?;
            *acked += n as u64;
            *progressed = true;
        }
        Ok(())
    }

    pub(super) fn create_lock(
        &self,
        kind: FileKind,
        name: &str,
        path: &str,
        data: &[u8],
    ) -> Result<(), RepoError> {
        let what = what(kind, name);
        let created = self.run("uploading", &what, async |s, _| {
            let mut o = s.sftp.options();
            o.write(true).create_new(true);
            let mut f = match self.req(s, o.open(path)).await {
                Ok(f) => f,
                Err(p) if p.kind == ProblemKind::Refused => return Ok(false),
                Err(p) => return Err(p),
            };
            let mut acked = 0;
            let mut moved = false;
            self.write_from(s, &mut f, data, &mut acked, &mut moved)
                .await?;
            self.req(s, f.close()).await?;
            Ok(true)
        })?;
        if created {
            self.verify_size(kind, name, data.len())
        } else {
            self.already_there(kind, name, data)
        }
    }

    pub(super) fn verify_size(
        &self,
        kind: FileKind,
        name: &str,
        want: usize,
    ) -> Result<(), RepoError> {
        let got = self.size(kind, name)?;
        if got != want as u64 {
            return Err(RemoteError::UploadIncomplete {
                location: self.location.clone(),
                what: what(kind, name),
                got,
                want: want as u64,
            }
            .into());
        }
        Ok(())
    }

    /// After "already exists": ours (a retried create whose reply was lost) or someone else's?
    pub(super) fn already_there(
        &self,
        kind: FileKind,
        name: &str,
        data: &[u8],
    ) -> Result<(), RepoError> {
        match self.read(kind, name) {
            Ok(existing) if existing == data => Ok(()),
            _ => Err(RepoError::FileExists(format!("{} {name}", kind.name()))),
        }
    }

    /// Files (name, size, path) in `dir`, and in its subfolders with `recursive`.
    pub(super) fn list_dir(
        &self,
        dir: &str,
        recursive: bool,
    ) -> Result<Vec<(String, FileInfo)>, RepoError> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_string()];
        while let Some(d) = todo.pop() {
            let full = self.full(&d);
            let entries = self.run("listing", &d, async |s, _| {
                let dir = match self.req(s, s.sftp.fs().open_dir(&full)).await {
                    Ok(dir) => dir,
                    Err(p) if p.kind == ProblemKind::NotFound => return Ok(Vec::new()),
                    Err(p) => return Err(p),
                };
                let mut rd = Box::pin(dir.read_dir());
                let mut v = Vec::new();
                loop {
                    match tokio::time::timeout(self.stall, futures::StreamExt::next(&mut rd)).await
                    {
                        Ok(Some(Ok(e))) => v.push(e),
                        Ok(Some(Err(e))) => return Err(problem(e, s)),
                        Ok(None) => break,
                        Err(_) => {
                            return Err(Problem::net(
                                Failure::Stalled,
                                format!("no data moved for {} s", self.stall.as_secs()),
                            ));
                        }
                    }
                }
                Ok(v)
            })?;
            for e in entries {
                let name = e.filename().to_string_lossy().into_owned();
                if name == "." || name == ".." {
                    continue;
                }
                let ft = e.file_type();
                let rel = format!("{d}/{name}");
                if ft.is_some_and(|t| t.is_dir()) {
                    if recursive {
                        todo.push(rel);
                    }
                } else if ft.is_some_and(|t| t.is_file()) {
                    let size = e.metadata().len().unwrap_or(0);
                    out.push((rel, FileInfo { name, size }));
                }
            }
        }
        Ok(out)
    }
}
