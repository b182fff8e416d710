//! What the browse server knows: the repository (read-only), its index, the photo catalog,
//! the snapshot selection, and the two filters (vanished from the phone, damaged). Every
//! answer comes from the catalog; the repository is read only for a photo's bytes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result, anyhow};
use snapvault_catalog::{Catalog, DateRange, Holder, PhotoQuery, PhotoRow, StoredContent};
use snapvault_repo::index::Index;
use snapvault_repo::{BlobId, Id, PackId, Repository, SnapshotId};

use crate::library::gone::{Gone, Left};

/// Which photos a page lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Filter {
    #[default]
    All,
    /// No longer on the phone (or in the source folder): only the backups hold them.
    Vanished,
    /// A chunk of it has no intact copy in the repository (from `check`'s damage list).
    Damaged,
}

impl Filter {
    pub fn parse(s: &str) -> Option<Filter> {
        match s {
            "" | "all" => Some(Filter::All),
            "vanished" => Some(Filter::Vanished),
            "damaged" => Some(Filter::Damaged),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Filter::All => "all",
            Filter::Vanished => "vanished",
            Filter::Damaged => "damaged",
        }
    }
}

/// A month of capture dates, or the photos without one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Month {
    Ym(u16, u8),
    Undated,
}

impl Month {
    /// `2023-07` or `undated`.
    pub fn parse(s: &str) -> Option<Month> {
        if s == "undated" {
            return Some(Month::Undated);
        }
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let (y, m): (u16, u8) = (y.parse().ok()?, m.parse().ok()?);
        ((1..=9999).contains(&y) && (1..=12).contains(&m)).then_some(Month::Ym(y, m))
    }

    /// The month a capture time (`YYYY-MM-DDT…`) falls in, as the camera recorded it.
    pub fn of(taken: Option<&str>) -> Month {
        taken
            .and_then(|t| t.get(..7))
            .and_then(Month::parse)
            .unwrap_or(Month::Undated)
    }

    pub fn key(self) -> String {
        match self {
            Month::Ym(y, m) => format!("{y:04}-{m:02}"),
            Month::Undated => "undated".into(),
        }
    }
}

/// Photo, video and Live Photo counts of one month.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub photos: u32,
    pub videos: u32,
    pub live: u32,
}

impl Counts {
    pub fn total(&self) -> u64 {
        u64::from(self.photos) + u64::from(self.videos)
    }

    fn add(&mut self, r: &PhotoRow) {
        match r.kind.as_str() {
            "video" => self.videos += 1,
            _ => {
                self.photos += 1;
                self.live += u32::from(r.live);
            }
        }
    }
}

/// Months with their counts, per filter (computed once per view of the repository; a new
/// view is made when its snapshots change, see `live.rs`).
#[derive(Debug, Default)]
pub struct Timeline {
    pub all: BTreeMap<Month, Counts>,
    pub vanished: BTreeMap<Month, Counts>,
    pub damaged: BTreeMap<Month, Counts>,
    /// Live Photo videos: shown on their still's page, not as videos of their own.
    motion: HashSet<String>,
    /// The files of edits (`PhotoData/Mutations`, `IMG_E1234` renditions): shown on their
    /// original's page, not as photos of their own.
    edit_files: HashSet<String>,
    /// Original → its rendered edit (content keys).
    edits: HashMap<String, String>,
    /// Photos with a piece that has no intact copy (a Live Photo also when its video has).
    damaged_keys: HashSet<String>,
}

impl Timeline {
    pub fn get(&self, f: Filter) -> &BTreeMap<Month, Counts> {
        match f {
            Filter::All => &self.all,
            Filter::Vanished => &self.vanished,
            Filter::Damaged => &self.damaged,
        }
    }
}

/// One photo's page.
pub struct PhotoInfo {
    pub row: PhotoRow,
    /// Snapshots of the selection holding it, oldest first.
    pub holders: Vec<Holder>,
    /// Its Live Photo video, if it is a Live Photo.
    pub motion: Option<PhotoRow>,
    /// Its rendered edit (content key), if it was edited in Photos.
    pub edit: Option<String>,
    pub vanished: bool,
    /// No longer on the phone because its original is only in iCloud (not deleted).
    pub icloud_only: bool,
    pub damaged: bool,
    /// The photos before and after it in its month (for the arrows).
    pub prev: Option<String>,
    pub next: Option<String>,
}

pub struct Library {
    pub repo: Arc<Repository>,
    pub index: Index,
    catalog: Mutex<Catalog>,
    /// `--snapshot`: only this one; `None`: all of them.
    snapshots: Option<Vec<SnapshotId>>,
    /// Only meaningful across all snapshots (as in `snapvault photos`).
    gone: Option<Gone>,
    /// Stored copies `check` found damaged, and packs damaged as a whole (the damage
    /// list, against this index).
    bad_copies: HashSet<(BlobId, PackId)>,
    bad_packs: HashSet<PackId>,
    timeline: OnceLock<Timeline>,
}

impl Library {
    pub fn new(
        repo: Arc<Repository>,
        index: Index,
        catalog: Catalog,
        snapshots: Option<Vec<SnapshotId>>,
    ) -> Result<Library> {
        let gone = match snapshots {
            Some(_) => None,
            None => Some(Gone::new(&repo, &catalog)?),
        };
        let mut damage = crate::damage::DamageList::load(&repo.config().id);
        damage.normalize(&index);
        let bad_copies = damage.copies().into_iter().collect();
        let bad_packs = damage.packs().into_iter().collect();
        Ok(Library {
            repo,
            index,
            catalog: Mutex::new(catalog),
            snapshots,
            gone,
            bad_copies,
            bad_packs,
            timeline: OnceLock::new(),
        })
    }

    /// Whether the "vanished" filter means anything (it needs every snapshot).
    pub fn knows_vanished(&self) -> bool {
        self.gone.is_some()
    }

    fn query(&self, dates: Option<DateRange>) -> PhotoQuery {
        PhotoQuery {
            dates,
            kind: None,
            snapshots: self.snapshots.clone(),
            source_key: None,
        }
    }

    fn ask<T>(&self, f: impl Fn(&Catalog) -> snapvault_catalog::Result<T>) -> Result<T> {
        let mut cat = self
            .catalog
            .lock()
            .map_err(|_| anyhow!("the photo catalog is unusable after an earlier failure"))?;
        Ok(cat.retry_on_damage(&self.repo, &self.index, f)?)
    }

    /// Deleted or moved away on the phone (or in the folder): only the backups hold it. A
    /// photo whose original went to iCloud ("Optimize iPhone Storage") is not.
    pub fn is_vanished(&self, r: &PhotoRow) -> bool {
        self.gone.as_ref().is_some_and(|g| g.vanished(r))
    }

    /// No longer on the phone because its original is only in iCloud now.
    pub fn is_icloud_only(&self, r: &PhotoRow) -> bool {
        self.gone
            .as_ref()
            .and_then(|g| g.last_in(r))
            .is_some_and(|(why, _, _)| why == Left::ICloud)
    }

    /// Is a piece of this file without any intact copy?
    fn content_damaged(&self, r: &PhotoRow) -> bool {
        if self.bad_copies.is_empty() && self.bad_packs.is_empty() {
            return false;
        }
        r.content.iter().any(|b| {
            let locs = self.index.locations(b);
            !locs.is_empty()
                && locs.iter().all(|l| {
                    let p = self.index.pack_of(l);
                    self.bad_packs.contains(&p) || self.bad_copies.contains(&(*b, p))
                })
        })
    }

    pub fn is_damaged(&self, r: &PhotoRow) -> bool {
        self.timeline()
            .is_ok_and(|t| t.damaged_keys.contains(&r.content_key))
    }

    fn passes(&self, f: Filter, r: &PhotoRow) -> bool {
        match f {
            Filter::All => true,
            Filter::Vanished => self.is_vanished(r),
            Filter::Damaged => self.is_damaged(r),
        }
    }

    /// Months and counts (computed on first use, then kept).
    pub fn timeline(&self) -> Result<&Timeline> {
        if let Some(t) = self.timeline.get() {
            return Ok(t);
        }
        let t = self.build_timeline()?;
        Ok(self.timeline.get_or_init(|| t))
    }

    pub fn build_timeline(&self) -> Result<Timeline> {
        let q = self.query(None);
        let rows = self
            .ask(|c| c.photos_unordered(&q))
            .context("listing the photos")?;
        let mut t = Timeline::default();
        // A Live Photo's video: same folder and pairing key as a still marked live.
        let place = |r: &PhotoRow| -> Option<(String, String)> {
            let dir = r.latest_path.rsplit_once('/').map_or("", |(d, _)| d);
            Some((dir.to_string(), r.pair.clone()?))
        };
        let live: HashSet<(String, String)> = rows
            .iter()
            .filter(|r| r.live && r.kind == "photo")
            .filter_map(place)
            .collect();
        edits_of(&rows, &mut t);
        let mut motion_damaged = HashSet::new();
        for r in &rows {
            if r.kind == "video"
                && let Some(p) = place(r).filter(|p| live.contains(p))
            {
                t.motion.insert(r.content_key.clone());
                if self.content_damaged(r) {
                    motion_damaged.insert(p);
                }
            }
        }
        for r in &rows {
            if t.motion.contains(&r.content_key) || t.edit_files.contains(&r.content_key) {
                continue;
            }
            let damaged = self.content_damaged(r)
                || (r.live && place(r).is_some_and(|p| motion_damaged.contains(&p)));
            if damaged {
                t.damaged_keys.insert(r.content_key.clone());
            }
            let m = Month::of(r.taken.as_deref());
            t.all.entry(m).or_default().add(r);
            if self.is_vanished(r) {
                t.vanished.entry(m).or_default().add(r);
            }
            if damaged {
                t.damaged.entry(m).or_default().add(r);
            }
        }
        Ok(t)
    }

    /// The rendered edit of an original (content key), if it has one.
    pub fn edit_of(&self, r: &PhotoRow) -> Option<&str> {
        let t = self.timeline().ok()?;
        t.edits.get(&r.content_key).map(String::as_str)
    }

    /// The photos and videos of a month, in capture order (a Live Photo once, as its still;
    /// an edited photo once, as its original).
    pub fn month(&self, m: Month, f: Filter) -> Result<Vec<PhotoRow>> {
        let t = self.timeline()?;
        let (motion, edit_files) = (&t.motion, &t.edit_files);
        let mut rows = match m {
            Month::Ym(..) => {
                let range: DateRange = m.key().parse()?;
                let q = self.query(Some(range));
                self.ask(|c| c.photos(&q))?
            }
            Month::Undated => {
                let q = self.query(None);
                let mut rows = self.ask(|c| c.photos(&q))?;
                rows.retain(|r| Month::of(r.taken.as_deref()) == Month::Undated);
                rows
            }
        };
        rows.retain(|r| {
            !motion.contains(&r.content_key)
                && !edit_files.contains(&r.content_key)
                && self.passes(f, r)
        });
        Ok(rows)
    }

    /// One photo of a month, by identity, with what its page shows.
    pub fn photo(&self, m: Month, key: &str) -> Result<Option<PhotoInfo>> {
        let Ok(id) = key.parse::<Id>() else {
            return Ok(None);
        };
        let mut rows = self.month(m, Filter::All)?;
        let Some(at) = rows.iter().position(|r| r.content_key == key) else {
            return Ok(None);
        };
        let prev = at
            .checked_sub(1)
            .and_then(|i| rows.get(i))
            .map(|r| r.content_key.clone());
        let next = rows.get(at + 1).map(|r| r.content_key.clone());
        let row = rows.swap_remove(at);
        let q = self.query(None);
        let (holders, companions) = self.ask(|c| {
            Ok((
                c.holders(&id)?,
                c.companions(&q, std::slice::from_ref(&row))?,
            ))
        })?;
        let holders = self.selected(holders);
        let motion = row
            .live
            .then(|| companions.into_iter().find(|c| c.kind == "video"))
            .flatten();
        Ok(Some(PhotoInfo {
            edit: self.edit_of(&row).map(str::to_string),
            vanished: self.is_vanished(&row),
            icloud_only: self.is_icloud_only(&row),
            damaged: self.is_damaged(&row),
            row,
            holders,
            motion,
            prev,
            next,
        }))
    }

    fn selected(&self, mut holders: Vec<Holder>) -> Vec<Holder> {
        if let Some(s) = &self.snapshots {
            holders.retain(|h| s.contains(&h.snapshot));
        }
        holders
    }

    /// A stored file by identity, and its name, if a selected snapshot holds it (nothing
    /// else is served, whatever key is asked for).
    pub fn stored(&self, key: &str) -> Result<Option<(StoredContent, String)>> {
        let Ok(id) = key.parse::<Id>() else {
            return Ok(None);
        };
        let (content, holders) = self.ask(|c| Ok((c.content(&id)?, c.holders(&id)?)))?;
        let Some(content) = content else {
            return Ok(None);
        };
        let Some(last) = self.selected(holders).pop() else {
            return Ok(None);
        };
        let name = last
            .path
            .rsplit('/')
            .next()
            .unwrap_or(&last.path)
            .to_string();
        Ok(Some((content, name)))
    }
}

/// `IMG_E1234.JPG`: the edited rendition Apple and Image Capture put beside an original.
fn is_e_rendition(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    stem.rsplit_once('_').is_some_and(|(_, n)| {
        n.len() > 1 && n.starts_with('E') && n.bytes().skip(1).all(|b| b.is_ascii_digit())
    })
}

/// Find the edits among `rows` (as `restore` and `photos` do): every file of
/// `PhotoData/Mutations/<folder>/<name>/Adjustments/` belongs to the original
/// `<folder>/<name>.*`, and its `FullSizeRender.*` is the edit shown; an `IMG_E1234`
/// rendition beside an `IMG_1234` original is an edit too.
fn edits_of(rows: &[PhotoRow], t: &mut Timeline) {
    let mut renders: HashMap<String, String> = HashMap::new();
    for r in rows {
        let Some((original, render)) = crate::library::edit_in(&r.latest_path) else {
            continue;
        };
        t.edit_files.insert(r.content_key.clone());
        // A Live Photo's edit has a FullSizeRender.mov beside the picture: the picture is
        // the edit shown.
        if render {
            let e = renders.entry(original);
            if r.kind == "video" {
                e.or_insert_with(|| r.content_key.clone());
            } else {
                e.insert_entry(r.content_key.clone());
            }
        }
    }
    let stem = |r: &PhotoRow| crate::library::stem_key(&r.latest_path);
    // (Most libraries have no IMG_E renditions: then no name is folded at all.)
    let e_renditions: Vec<&PhotoRow> = rows
        .iter()
        .filter(|r| r.kind == "photo" && is_e_rendition(&r.latest_path))
        .collect();
    if !e_renditions.is_empty() {
        let originals: HashSet<String> = rows
            .iter()
            .filter(|r| !t.edit_files.contains(&r.content_key) && !is_e_rendition(&r.latest_path))
            .map(stem)
            .collect();
        for r in e_renditions {
            if originals.contains(&stem(r)) {
                t.edit_files.insert(r.content_key.clone());
                renders
                    .entry(stem(r))
                    .or_insert_with(|| r.content_key.clone());
            }
        }
    }
    if renders.is_empty() {
        return;
    }
    for r in rows {
        if t.edit_files.contains(&r.content_key) || r.kind == "video" {
            continue;
        }
        if let Some(render) = renders.get(&stem(r)) {
            t.edits.insert(r.content_key.clone(), render.clone());
        }
    }
}
