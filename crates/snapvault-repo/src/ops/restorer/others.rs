//! What restore makes after the files: hard links between them, symlinks, FIFOs and
//! device files (sockets are recorded but not recreated). Each works through the folder
//! handles of [`super::dirs`], so a planted symlink is never followed.

use std::collections::BTreeSet;
use std::io;

use rustix::fs::FileType;

use crate::error::{RepoError, Result};
use crate::format::tree::{Node, NodeKind};

use super::dirs::{self, Dir, Entry};
use super::file::{self, Outcome};
use super::folders::Folders;
use super::problem::Problem;
use super::{RestoreItem, RestoreStats, Run, shown, split};

/// Why something was left alone (a problem), or that it was fine.
type Made = std::result::Result<Done, Problem>;

enum Done {
    Created,
    AlreadyRight,
    /// Not recreated on purpose (a socket): a note, not a problem.
    Noted(String),
}

const FOLDER_IN_THE_WAY: Problem = Problem::FolderInTheWay { file: false };
const SOMETHING_IN_THE_WAY: Problem = Problem::SomethingInTheWay;

/// The folders of consecutive items, opened along a chain.
struct Here<'a> {
    chain: dirs::Chain<'a>,
}

impl Here<'_> {
    fn open(&mut self, path: &[u8]) -> io::Result<&Dir> {
        self.chain.get(path)
    }
}

/// Files that were hard links of one file in the snapshot (same device and inode numbers)
/// and land in this restore: the first of each group is restored as a file, the others are
/// linked to it afterwards. Returns (files to write, (link, file it links to)).
pub(crate) fn split_link_groups(
    files: Vec<&RestoreItem>,
) -> (Vec<&RestoreItem>, Vec<(&RestoreItem, usize)>) {
    let mut first: std::collections::HashMap<(u64, u64), usize> = Default::default();
    let mut leaders = Vec::with_capacity(files.len());
    let mut links = Vec::new();
    for f in files {
        let key = f.node.dev.zip(f.node.ino);
        match key.and_then(|k| first.get(&k)) {
            Some(&i) => links.push((f, i)),
            None => {
                if let Some(k) = key {
                    first.insert(k, leaders.len());
                }
                leaders.push(f);
            }
        }
    }
    (leaders, links)
}

/// Link each of `links` to its file (`leaders[i]`, restored if `leader_ok[i]`). Where the
/// file could not be restored, or the target cannot hold hard links (FAT, exFAT), the
/// link is restored as a file of its own.
pub fn link(
    run: &Run,
    leaders: &[&RestoreItem],
    leader_ok: &[bool],
    links: &[(&RestoreItem, usize)],
    stats: &mut RestoreStats,
    dirty: &mut BTreeSet<Vec<u8>>,
) -> Result<()> {
    let mut here = Here {
        chain: dirs::Chain::new(run.root),
    };
    let mut buf = Vec::new();
    for (item, i) in links {
        let dir_path = split(&item.path).0;
        let shown_path = shown(&item.path);
        let Some(leader) = leaders.get(*i).filter(|_| leader_ok.get(*i) == Some(&true)) else {
            copy(run, &mut here, item, &mut buf, stats, dirty)?;
            continue;
        };
        let (lp, lname) = split(&leader.path);
        let made = run.root.open_path(lp).and_then(|ldir| {
            let dir = here.open(dir_path)?;
            link_one(run, &ldir, lname, dir, &item.path, &item.node)
        });
        match made {
            Ok(Ok(Done::Created)) => {
                stats.hardlinks += 1;
                dirty.insert(dir_path.to_vec());
                run.observer.file_restored(&item.path, 0);
            }
            Ok(Ok(_)) => {
                stats.files_already_right += 1;
                run.observer.file_restored(&item.path, 0);
            }
            Ok(Err(why)) => stats.problems.push((shown_path, why)),
            Err(e) if file::disk_trouble(&e) => {
                return Err(RepoError::io(format!("linking {shown_path}"), e));
            }
            // No hard links here (FAT, exFAT; EPERM on some), or the file to link to is
            // gone: a file of its own instead.
            Err(_) => copy(run, &mut here, item, &mut buf, stats, dirty)?,
        }
    }
    Ok(())
}

/// Link `path`'s name in `dir` (its folder) to `lname` in `ldir`.
fn link_one(
    run: &Run,
    ldir: &Dir,
    lname: &[u8],
    dir: &Dir,
    path: &[u8],
    node: &Node,
) -> io::Result<Made> {
    let name = split(path).1;
    let Entry::File { dev, ino, .. } = ldir.entry(lname)? else {
        return Err(io::Error::other("the file to link to is not there"));
    };
    match dir.entry(name)? {
        Entry::Missing => {}
        Entry::File { dev: d, ino: i, .. } if (d, i) == (dev, ino) => {
            return Ok(Ok(Done::AlreadyRight));
        }
        Entry::Dir => return Ok(Err(FOLDER_IN_THE_WAY)),
        // The same content as a file of its own (restored by an older snapvault, say, or
        // a hard link of a file elsewhere): linked as in the snapshot, which loses nothing
        // and changes no other name of that file.
        Entry::File { .. }
            if file::already_right(run.chunker, run.repo, node, dir, name)
                .is_ok_and(|f| f != file::Found::Different) =>
        {
            return replace_with_link(run, ldir, lname, dir, path);
        }
        _ if !run.opts.overwrite => return Ok(Err(SOMETHING_IN_THE_WAY)),
        _ => return replace_with_link(run, ldir, lname, dir, path),
    }
    dir.hard_link(ldir, lname, name)?;
    Ok(Ok(Done::Created))
}

/// Link `path`'s name in `dir` to `lname` in `ldir` in place of what is there: linked
/// under a temporary name, then renamed over it.
fn replace_with_link(
    run: &Run,
    ldir: &Dir,
    lname: &[u8],
    dir: &Dir,
    path: &[u8],
) -> io::Result<Made> {
    let name = split(path).1;
    let tmp = run.temps.for_path(path);
    dir.remove_if_there(&tmp)?;
    dir.hard_link(ldir, lname, &tmp)?;
    if let Err(e) = dir.rename(&tmp, name) {
        let _ = dir.remove_file(&tmp);
        return Err(e);
    }
    Ok(Ok(Done::Created))
}

/// Restore `item` as a file of its own.
fn copy(
    run: &Run,
    here: &mut Here,
    item: &RestoreItem,
    buf: &mut Vec<u8>,
    stats: &mut RestoreStats,
    dirty: &mut BTreeSet<Vec<u8>>,
) -> Result<()> {
    let (dir_path, name) = split(&item.path);
    let shown_path = shown(&item.path);
    let result = here
        .open(dir_path)
        .map_err(|e| RepoError::io(format!("opening the folder of {shown_path}"), e))
        .and_then(|dir| {
            file::restore(
                run.repo,
                run.index,
                run.chunker,
                dir,
                name,
                run.temps.for_path(&item.path),
                &shown_path,
                &item.node,
                run.opts.overwrite,
                buf,
            )
        });
    match result {
        Ok(Outcome::Written(n)) => {
            stats.files_restored += 1;
            stats.bytes_written += n;
            dirty.insert(dir_path.to_vec());
            run.observer.file_restored(&item.path, n);
        }
        Ok(Outcome::AlreadyRight) => {
            stats.files_already_right += 1;
            run.observer.file_restored(&item.path, 0);
        }
        Ok(Outcome::Refused(why)) => stats.problems.push((shown_path, why)),
        Err(RepoError::Io { context, source }) if file::disk_trouble(&source) => {
            return Err(RepoError::Io { context, source });
        }
        Err(e) => stats.problems.push((shown_path, e.to_string().into())),
    }
    Ok(())
}

/// Symlinks, FIFOs, devices and sockets among `items`, outside failed folders.
pub fn make(
    run: &Run,
    items: &[RestoreItem],
    folders: &Folders,
    stats: &mut RestoreStats,
    dirty: &mut BTreeSet<Vec<u8>>,
) -> Result<()> {
    let mut here = Here {
        chain: dirs::Chain::new(run.root),
    };
    let others = items
        .iter()
        .filter(|i| i.node.kind == NodeKind::Symlink || i.node.kind.is_special());
    for it in others {
        let (dir_path, name) = split(&it.path);
        if folders.blocked(dir_path).is_some() {
            continue;
        }
        let made = here.open(dir_path).and_then(|dir| {
            if it.node.kind == NodeKind::Symlink {
                symlink(dir, name, &it.node, run.opts.overwrite)
            } else {
                let tmp = run.temps.for_path(&it.path);
                special(dir, name, &tmp, &it.node, run.opts.overwrite)
            }
        });
        match made {
            Ok(Ok(Done::Created)) => {
                dirty.insert(dir_path.to_vec());
                count(stats, it.node.kind);
            }
            Ok(Ok(Done::AlreadyRight)) => count(stats, it.node.kind),
            Ok(Ok(Done::Noted(why))) => stats.notes.push((shown(&it.path), why)),
            Ok(Err(why)) => stats.problems.push((shown(&it.path), why)),
            Err(e) if file::disk_trouble(&e) => {
                return Err(RepoError::io(format!("creating {}", shown(&it.path)), e));
            }
            Err(e) => stats.problems.push((shown(&it.path), e.to_string().into())),
        }
    }
    Ok(())
}

fn count(stats: &mut RestoreStats, kind: NodeKind) {
    if kind == NodeKind::Symlink {
        stats.symlinks += 1;
    } else {
        stats.specials += 1;
    }
}

/// Make the symlink `name` in `dir`.
fn symlink(dir: &Dir, name: &[u8], node: &Node, overwrite: bool) -> io::Result<Made> {
    let target = node
        .target
        .as_ref()
        .map(|t| t.0.as_slice())
        .unwrap_or_default();
    match dir.entry(name)? {
        Entry::Missing => {}
        Entry::Symlink if dir.read_link(name)? == target => {
            let _ = dir.set_link_times(name, node.mtime);
            return Ok(Ok(Done::AlreadyRight));
        }
        Entry::Dir => return Ok(Err(FOLDER_IN_THE_WAY)),
        _ if !overwrite => return Ok(Err(SOMETHING_IN_THE_WAY)),
        _ => dir.remove_file(name)?,
    }
    dir.symlink(target, name)?;
    let _ = dir.set_link_times(name, node.mtime);
    Ok(Ok(Done::Created))
}

/// Has the entry `md` other names (hard links), and a mode or time other than `node`'s?
/// Then giving it `node`'s would change those names too (perhaps outside the target).
fn shared_elsewhere(md: dirs::Status, node: &Node) -> bool {
    md.nlink > 1 && (md.mode & 0o7777 != node.mode & 0o7777 || md.mtime_ns != node.mtime as i128)
}

/// Make the FIFO or device `name` in `dir` (a device through the temporary name `tmp`
/// when one sharing its inode is there); a socket is only noted.
fn special(dir: &Dir, name: &[u8], tmp: &[u8], node: &Node, overwrite: bool) -> io::Result<Made> {
    let rdev = node.rdev.unwrap_or(0);
    let (ft, same) = match node.kind {
        NodeKind::Fifo => (FileType::Fifo, Entry::Fifo),
        NodeKind::CharDevice => (
            FileType::CharacterDevice,
            Entry::Device { char: true, rdev },
        ),
        NodeKind::BlockDevice => (FileType::BlockDevice, Entry::Device { char: false, rdev }),
        _ => {
            return Ok(Ok(Done::Noted(
                "a socket: recorded in the snapshot but not recreated (a socket belongs to the \
                 program that made it, which makes it anew)"
                    .into(),
            )));
        }
    };
    let there = dir.entry(name)?;
    if there == Entry::Dir {
        return Ok(Err(FOLDER_IN_THE_WAY));
    }
    if there != same {
        if there != Entry::Missing {
            if !overwrite {
                return Ok(Err(SOMETHING_IN_THE_WAY));
            }
            dir.remove_file(name)?;
        }
        match dir.mknod(name, ft, node.mode, rdev) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && node.kind != NodeKind::Fifo => {
                return Ok(Err(
                    "a device file: only root may create one; run the restore as root to get it back"
                        .into(),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    // Mode and times through a descriptor for a FIFO (opening one without blocking is
    // harmless); a device is not opened (that can act on the device), so only its times.
    if node.kind == NodeKind::Fifo {
        if let Ok(f) = dir.open_fifo(name) {
            if there == same && shared_elsewhere(dirs::Status::of(&f.metadata()?), node) {
                // Another name shares this FIFO (a hard link, perhaps outside the target):
                // setting mode and time on it would change that name too. A FIFO holds
                // nothing, so the name gets one of its own (as a regular file gets a copy).
                drop(f);
                dir.remove_file(name)?;
                dir.mknod(name, ft, node.mode, rdev)?;
                if let Ok(f) = dir.open_fifo(name) {
                    dirs::set_meta(&f, node.mode, node.mtime);
                }
                return Ok(Ok(Done::Created));
            }
            dirs::set_meta(&f, node.mode, node.mtime);
        }
    } else if there == same && shared_elsewhere(dir.status(name)?, node) {
        // Another name shares this device file: its time is left alone and the name gets
        // a device of its own, made beside it and renamed over it (never opened: opening
        // a device can act on it). Where that is not allowed, the shared one stays as is.
        dir.remove_if_there(tmp)?;
        match dir.mknod(tmp, ft, node.mode, rdev) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                return Ok(Ok(Done::Noted(
                    "a device file sharing its inode with another name: left as it is (only \
                     root may make one of its own), its time not set"
                        .into(),
                )));
            }
            Err(e) => return Err(e),
        }
        let _ = dir.set_link_times(tmp, node.mtime);
        if let Err(e) = dir.rename(tmp, name) {
            let _ = dir.remove_file(tmp);
            return Err(e);
        }
        return Ok(Ok(Done::Created));
    } else {
        let _ = dir.set_link_times(name, node.mtime);
    }
    Ok(Ok(if there == same {
        Done::AlreadyRight
    } else {
        Done::Created
    }))
}
