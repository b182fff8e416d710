//! Reading the assets out of a Photos.sqlite of either schema generation.
//!
//! Only tables and columns that exist are asked for: the query is put together from what
//! `pragma_table_info` reports, so a column a given iOS lacks makes that fact unknown
//! instead of failing the whole read.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::{Asset, AssetKind, Availability, Generation, Library, LibraryError};

/// Most assets read from one database (real libraries hold up to a few hundred thousand).
pub const MAX_ASSETS: usize = 5_000_000;
/// Longest text kept from one cell (names, folders, titles).
const MAX_TEXT: usize = 1024;

/// Copy `db` and its `-wal` and `-shm` (when present) into a private temporary folder and
/// read the copy. `db` itself is never opened, so it is never written.
pub fn read_copy_of(db: &Path) -> Result<Library, LibraryError> {
    let dir = tempfile::Builder::new()
        .prefix("snapvault-photos-")
        .tempdir()?;
    let copy = dir.path().join("Photos.sqlite");
    std::fs::copy(db, &copy)?;
    for suffix in ["-wal", "-shm"] {
        let mut from = db.as_os_str().to_owned();
        from.push(suffix);
        let from = std::path::PathBuf::from(from);
        if from.exists() {
            let mut to = copy.as_os_str().to_owned();
            to.push(suffix);
            std::fs::copy(&from, std::path::PathBuf::from(to))?;
        }
    }
    read(&copy)
}

/// Read the library from a database file that may be changed (a private copy: SQLite may
/// replay its write-ahead log into it).
pub fn read(path: &Path) -> Result<Library, LibraryError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA query_only = 1;")?;
    read_conn(&conn)
}

fn tables(conn: &Connection) -> Result<HashSet<String>, LibraryError> {
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(names)
}

fn columns(conn: &Connection, table: &str) -> Result<HashSet<String>, LibraryError> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt
        .query_map([table], |r| r.get::<_, String>(0))?
        .map(|n| n.map(|n| n.to_ascii_uppercase()))
        .collect::<rusqlite::Result<_>>()?;
    Ok(names)
}

fn text(v: ValueRef<'_>) -> Option<String> {
    let b = match v {
        ValueRef::Text(b) | ValueRef::Blob(b) => b,
        ValueRef::Integer(i) => return Some(i.to_string()),
        _ => return None,
    };
    let b = b.get(..MAX_TEXT).unwrap_or(b);
    Some(String::from_utf8_lossy(b).into_owned())
}

fn int(v: ValueRef<'_>) -> Option<i64> {
    match v {
        ValueRef::Integer(i) => Some(i),
        ValueRef::Real(f) if f.is_finite() && f.abs() < 9e15 => Some(f as i64),
        _ => None,
    }
}

fn real(v: ValueRef<'_>) -> Option<f64> {
    match v {
        ValueRef::Integer(i) => Some(i as f64),
        ValueRef::Real(f) if f.is_finite() => Some(f),
        _ => None,
    }
}

fn flag(v: ValueRef<'_>) -> Option<bool> {
    match int(v)? {
        0 => Some(false),
        1 => Some(true),
        _ => None, // a value no public reference describes
    }
}

pub(crate) fn read_conn(conn: &Connection) -> Result<Library, LibraryError> {
    let tables = tables(conn)?;
    let generation = if tables.contains("ZASSET") {
        Generation::Asset
    } else if tables.contains("ZGENERICASSET") {
        Generation::GenericAsset
    } else {
        return Err(LibraryError::UnknownSchema(
            "neither a ZASSET nor a ZGENERICASSET table".into(),
        ));
    };
    let table = generation.table();
    let cols = columns(conn, table)?;
    for need in ["Z_PK", "ZDIRECTORY", "ZFILENAME"] {
        if !cols.contains(need) {
            return Err(LibraryError::UnknownSchema(format!(
                "{table} has no {need} column"
            )));
        }
    }
    let mut unknowns = Vec::new();
    // Optional asset columns, in query order.
    const OPTIONAL: [&str; 9] = [
        "ZUUID",
        "ZDATECREATED",
        "ZKIND",
        "ZKINDSUBTYPE",
        "ZTRASHEDSTATE",
        "ZHIDDEN",
        "ZFAVORITE",
        "ZAVALANCHEUUID",
        "ZHASADJUSTMENTS",
    ];
    let mut select = vec!["a.Z_PK", "a.ZDIRECTORY", "a.ZFILENAME"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    for c in OPTIONAL {
        if cols.contains(c) {
            select.push(format!("a.{c}"));
        } else {
            select.push("NULL".into());
            unknowns.push(format!("{table}.{c}"));
        }
    }
    let attr_cols = if tables.contains("ZADDITIONALASSETATTRIBUTES")
        && cols.contains("ZADDITIONALATTRIBUTES")
    {
        columns(conn, "ZADDITIONALASSETATTRIBUTES")?
    } else {
        HashSet::new()
    };
    for c in ["ZORIGINALFILENAME", "ZTIMEZONEOFFSET"] {
        if attr_cols.contains(c) {
            select.push(format!("x.{c}"));
        } else {
            select.push("NULL".into());
            unknowns.push(format!("ZADDITIONALASSETATTRIBUTES.{c}"));
        }
    }
    let join = if attr_cols.is_empty() {
        ""
    } else {
        " LEFT JOIN ZADDITIONALASSETATTRIBUTES x ON x.Z_PK = a.ZADDITIONALATTRIBUTES"
    };
    let sql = format!(
        "SELECT {} FROM {table} a{join} ORDER BY a.Z_PK",
        select.join(", ")
    );
    let availability = availability(conn, &tables, &mut unknowns)?;
    let albums = albums(conn, &tables, &mut unknowns)?;
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    let mut assets = Vec::new();
    while let Some(r) = rows.next()? {
        if assets.len() >= MAX_ASSETS {
            return Err(LibraryError::TooLarge(MAX_ASSETS));
        }
        let Some(pk) = int(r.get_ref(0)?) else {
            continue;
        };
        let (Some(directory), Some(filename)) = (text(r.get_ref(1)?), text(r.get_ref(2)?)) else {
            continue; // not a file asset (cloud shared placeholders have none)
        };
        if filename.is_empty()
            || filename.contains(['/', '\0'])
            || directory.contains('\0')
            || directory.split('/').any(|c| c == "..")
        {
            continue;
        }
        let kind = match int(r.get_ref(5)?) {
            Some(0) => AssetKind::Photo,
            Some(1) => AssetKind::Video,
            _ => AssetKind::Unknown,
        };
        assets.push(Asset {
            pk,
            uuid: text(r.get_ref(3)?),
            directory,
            filename,
            original_filename: text(r.get_ref(12)?),
            created: real(r.get_ref(4)?),
            tz_offset: int(r.get_ref(13)?),
            kind,
            subtype: int(r.get_ref(6)?),
            trashed: flag(r.get_ref(7)?),
            hidden: flag(r.get_ref(8)?),
            favorite: flag(r.get_ref(9)?),
            burst: text(r.get_ref(10)?).filter(|s| !s.is_empty()),
            adjusted: flag(r.get_ref(11)?),
            original: availability.as_ref().map_or(Availability::Unknown, |m| {
                m.get(&pk).copied().unwrap_or(Availability::Unknown)
            }),
            albums: albums.get(&pk).cloned().unwrap_or_default(),
        });
    }
    Ok(Library {
        generation,
        assets,
        unknowns,
    })
}

/// Per asset: is its original on the phone? From `ZINTERNALRESOURCE` rows of the original
/// (`ZDATASTORESUBTYPE = 1`); of several, the primary resource (lowest `ZRESOURCETYPE`:
/// 0 photo, 1 video) decides. `None`: the table or its columns are missing.
fn availability(
    conn: &Connection,
    tables: &HashSet<String>,
    unknowns: &mut Vec<String>,
) -> Result<Option<HashMap<i64, Availability>>, LibraryError> {
    if !tables.contains("ZINTERNALRESOURCE") {
        unknowns.push("ZINTERNALRESOURCE (iCloud-only originals)".into());
        return Ok(None);
    }
    let cols = columns(conn, "ZINTERNALRESOURCE")?;
    if !["ZASSET", "ZLOCALAVAILABILITY", "ZDATASTORESUBTYPE"]
        .iter()
        .all(|c| cols.contains(*c))
    {
        unknowns.push("ZINTERNALRESOURCE columns (iCloud-only originals)".into());
        return Ok(None);
    }
    let rtype = if cols.contains("ZRESOURCETYPE") {
        "ZRESOURCETYPE"
    } else {
        "0"
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT ZASSET, ZLOCALAVAILABILITY, {rtype} FROM ZINTERNALRESOURCE
         WHERE ZDATASTORESUBTYPE = 1 AND ZASSET IS NOT NULL"
    ))?;
    let mut rows = stmt.query([])?;
    let mut best: HashMap<i64, (i64, Availability)> = HashMap::new();
    while let Some(r) = rows.next()? {
        let Some(asset) = int(r.get_ref(0)?) else {
            continue;
        };
        let avail = match int(r.get_ref(1)?) {
            Some(1) => Availability::Local,
            Some(-1) => Availability::CloudOnly,
            _ => Availability::Unknown,
        };
        let t = int(r.get_ref(2)?).unwrap_or(i64::MAX);
        match best.get(&asset) {
            Some((bt, _)) if *bt <= t => {}
            _ => {
                if best.len() >= MAX_ASSETS {
                    return Err(LibraryError::TooLarge(MAX_ASSETS));
                }
                best.insert(asset, (t, avail));
            }
        }
    }
    Ok(Some(best.into_iter().map(|(k, (_, a))| (k, a)).collect()))
}

/// Per asset: titles of the user albums holding it. The join table's name carries Core
/// Data entity numbers that change between iOS versions (`Z_26ASSETS` with `Z_26ALBUMS` and
/// `Z_34ASSETS` on iOS 13, `Z_26ASSETS`/`Z_28ASSETS`/`Z_30ASSETS` with `Z_3ASSETS` later), so
/// it is found by shape: a table `Z_<n>ASSETS` with a `Z_<n>ALBUMS` column and one other
/// `Z_<m>ASSETS` column.
fn albums(
    conn: &Connection,
    tables: &HashSet<String>,
    unknowns: &mut Vec<String>,
) -> Result<HashMap<i64, Vec<String>>, LibraryError> {
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    if !tables.contains("ZGENERICALBUM") {
        unknowns.push("ZGENERICALBUM (albums)".into());
        return Ok(out);
    }
    let album_cols = columns(conn, "ZGENERICALBUM")?;
    if !album_cols.contains("ZTITLE") {
        unknowns.push("ZGENERICALBUM.ZTITLE (albums)".into());
        return Ok(out);
    }
    let mut join = None;
    let mut names: Vec<&String> = tables.iter().collect();
    names.sort();
    for t in names {
        let Some(n) = t
            .strip_prefix("Z_")
            .and_then(|s| s.strip_suffix("ASSETS"))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let cols = columns(conn, t)?;
        let album_col = format!("Z_{n}ALBUMS");
        if !cols.contains(&album_col) {
            continue;
        }
        let asset_col = cols.iter().find(|c| {
            c.strip_prefix("Z_")
                .and_then(|s| s.strip_suffix("ASSETS"))
                .is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
        });
        if let Some(asset_col) = asset_col {
            join = Some((t.clone(), album_col, asset_col.clone()));
            break;
        }
    }
    let Some((jt, album_col, asset_col)) = join else {
        unknowns.push("the album membership table (albums)".into());
        return Ok(out);
    };
    let user_only = if album_cols.contains("ZKIND") {
        "AND g.ZKIND = 2"
    } else {
        ""
    };
    let trashed = if album_cols.contains("ZTRASHEDSTATE") {
        "AND (g.ZTRASHEDSTATE IS NULL OR g.ZTRASHEDSTATE = 0)"
    } else {
        ""
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT j.{asset_col}, g.ZTITLE FROM {jt} j JOIN ZGENERICALBUM g ON g.Z_PK = j.{album_col}
         WHERE g.ZTITLE IS NOT NULL {user_only} {trashed} ORDER BY g.ZTITLE"
    ))?;
    let mut rows = stmt.query([])?;
    let mut count = 0usize;
    while let Some(r) = rows.next()? {
        count += 1;
        if count > MAX_ASSETS * 4 {
            return Err(LibraryError::TooLarge(MAX_ASSETS));
        }
        if let (Some(a), Some(title)) = (int(r.get_ref(0)?), text(r.get_ref(1)?)) {
            let list = out.entry(a).or_default();
            if !list.contains(&title) {
                list.push(title);
            }
        }
    }
    Ok(out)
}
