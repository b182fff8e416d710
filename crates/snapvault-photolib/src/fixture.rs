//! Photos.sqlite files in the shape of real ones, for tests, the benchmark and the sample
//! library: the tables and columns [`crate::read`] relies on (and a few neighbours), in two
//! schema generations. Table and column names follow the public Photos.sqlite parsers (see
//! `docs/iphone.md`); everything else a real database holds is left out.

use std::path::Path;

use rusqlite::{Connection, params};

use crate::{CORE_DATA_EPOCH, Generation, LibraryError};

/// One asset to write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FixtureAsset {
    pub directory: String,
    pub filename: String,
    pub uuid: String,
    pub original_filename: Option<String>,
    /// Capture instant, Unix seconds.
    pub created_unix: i64,
    /// Seconds east of UTC where it was taken.
    pub tz_offset: Option<i64>,
    pub video: bool,
    /// `ZKINDSUBTYPE` (2 Live Photo, 10 screenshot, 100 video, …).
    pub subtype: i64,
    pub trashed: bool,
    pub hidden: bool,
    pub favorite: bool,
    /// `ZAVALANCHEUUID` of a burst.
    pub burst: Option<String>,
    pub adjusted: bool,
    /// The original is only in iCloud (`ZLOCALAVAILABILITY = -1`).
    pub cloud_only: bool,
    pub albums: Vec<String>,
}

/// Core Data entity numbers of the generation: (asset, album) and the album join table.
struct Shape {
    asset_ent: i64,
    album_ent: i64,
    join: &'static str,
    join_album: &'static str,
    join_asset: &'static str,
    /// iOS 13 libraries: no resource table is written (availability is then unknown).
    resources: bool,
}

fn shape(g: Generation) -> Shape {
    match g {
        // iOS 13 / Photos 5: ZGENERICASSET, Z_26ASSETS(Z_26ALBUMS, Z_34ASSETS).
        Generation::GenericAsset => Shape {
            asset_ent: 34,
            album_ent: 26,
            join: "Z_26ASSETS",
            join_album: "Z_26ALBUMS",
            join_asset: "Z_34ASSETS",
            resources: false,
        },
        // iOS 17: ZASSET (entity 3), Z_30ASSETS(Z_30ALBUMS, Z_3ASSETS).
        Generation::Asset => Shape {
            asset_ent: 3,
            album_ent: 30,
            join: "Z_30ASSETS",
            join_album: "Z_30ALBUMS",
            join_asset: "Z_3ASSETS",
            resources: true,
        },
    }
}

fn schema(g: Generation, s: &Shape) -> String {
    let asset = g.table();
    let resources = if s.resources {
        "CREATE TABLE ZINTERNALRESOURCE (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER,
            ZDATASTORESUBTYPE INTEGER, ZLOCALAVAILABILITY INTEGER, ZREMOTEAVAILABILITY INTEGER,
            ZRESOURCETYPE INTEGER, ZTRASHEDSTATE INTEGER, ZASSET INTEGER, ZDATALENGTH INTEGER,
            ZFINGERPRINT VARCHAR);
         CREATE INDEX ZINTERNALRESOURCE_ZASSET_INDEX ON ZINTERNALRESOURCE (ZASSET);"
    } else {
        ""
    };
    format!(
        "CREATE TABLE Z_PRIMARYKEY (Z_ENT INTEGER PRIMARY KEY, Z_NAME VARCHAR, Z_SUPER INTEGER, Z_MAX INTEGER);
         CREATE TABLE Z_METADATA (Z_VERSION INTEGER PRIMARY KEY, Z_UUID VARCHAR(255), Z_PLIST BLOB);
         CREATE TABLE {asset} (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER,
            ZAVALANCHEPICKTYPE INTEGER, ZCLOUDLOCALSTATE INTEGER, ZFAVORITE INTEGER,
            ZHASADJUSTMENTS INTEGER, ZHIDDEN INTEGER, ZKIND INTEGER, ZKINDSUBTYPE INTEGER,
            ZTRASHEDSTATE INTEGER, ZVISIBILITYSTATE INTEGER, ZADDITIONALATTRIBUTES INTEGER,
            ZADDEDDATE TIMESTAMP, ZDATECREATED TIMESTAMP, ZMODIFICATIONDATE TIMESTAMP,
            ZTRASHEDDATE TIMESTAMP, ZAVALANCHEUUID VARCHAR, ZDIRECTORY VARCHAR, ZFILENAME VARCHAR,
            ZMEDIAGROUPUUID VARCHAR, ZUUID VARCHAR);
         CREATE INDEX {asset}_ZDATECREATED ON {asset} (ZDATECREATED);
         CREATE TABLE ZADDITIONALASSETATTRIBUTES (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER,
            Z_OPT INTEGER, ZASSET INTEGER, ZORIGINALFILESIZE INTEGER, ZTIMEZONEOFFSET INTEGER,
            ZORIGINALFILENAME VARCHAR, ZTIMEZONENAME VARCHAR);
         {resources}
         CREATE TABLE ZGENERICALBUM (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER,
            ZKIND INTEGER, ZTRASHEDSTATE INTEGER, ZCREATIONDATE TIMESTAMP, ZTITLE VARCHAR,
            ZUUID VARCHAR);
         CREATE TABLE {join} ({album} INTEGER, {asset_col} INTEGER, Z_FOK_{asset_short} INTEGER,
            PRIMARY KEY ({album}, {asset_col}));",
        join = s.join,
        album = s.join_album,
        asset_col = s.join_asset,
        asset_short = s.join_asset.trim_start_matches("Z_"),
    )
}

/// Write a database of `generation` holding `assets` at `path` (and, with `keep_wal`,
/// with the second half of the assets still in `path-wal` as a phone leaves it: a reader
/// that takes the main file without its log misses them).
pub fn write(
    path: &Path,
    generation: Generation,
    assets: &[FixtureAsset],
    keep_wal: bool,
) -> Result<(), LibraryError> {
    let dir = tempfile::Builder::new()
        .prefix("snapvault-fixture-")
        .tempdir()?;
    let work = dir.path().join("Photos.sqlite");
    let conn = Connection::open(&work)?;
    let s = shape(generation);
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if mode != "wal" {
        return Err(LibraryError::UnknownSchema(format!(
            "SQLite refused WAL mode ({mode})"
        )));
    }
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
    conn.execute_batch(&schema(generation, &s))?;
    let half = if keep_wal {
        assets.len() / 2
    } else {
        assets.len()
    };
    insert(&conn, generation, &s, assets, 0..half)?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    insert(&conn, generation, &s, assets, half..assets.len())?;
    if !keep_wal {
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    }
    // Copy while the connection is open: closing would fold the log into the main file.
    let with = |p: &Path, suffix: &str| {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        std::path::PathBuf::from(s)
    };
    std::fs::copy(&work, path)?;
    for suffix in ["-wal", "-shm"] {
        let from = with(&work, suffix);
        let to = with(path, suffix);
        if keep_wal && from.exists() {
            std::fs::copy(&from, &to)?;
        } else if to.exists() {
            std::fs::remove_file(&to)?;
        }
    }
    drop(conn);
    Ok(())
}

fn insert(
    conn: &Connection,
    g: Generation,
    s: &Shape,
    assets: &[FixtureAsset],
    range: std::ops::Range<usize>,
) -> Result<(), LibraryError> {
    let tx = conn.unchecked_transaction()?;
    let table = g.table();
    if range.start == 0 {
        tx.execute(
            "INSERT INTO Z_PRIMARYKEY (Z_ENT, Z_NAME, Z_SUPER, Z_MAX) VALUES (?1, 'Asset', 0, ?2), (?3, 'GenericAlbum', 0, 0)",
            params![s.asset_ent, assets.len() as i64, s.album_ent],
        )?;
    }
    let mut add_asset = tx.prepare(&format!(
        "INSERT INTO {table} (Z_PK, Z_ENT, Z_OPT, ZAVALANCHEPICKTYPE, ZCLOUDLOCALSTATE, ZFAVORITE,
            ZHASADJUSTMENTS, ZHIDDEN, ZKIND, ZKINDSUBTYPE, ZTRASHEDSTATE, ZVISIBILITYSTATE,
            ZADDITIONALATTRIBUTES, ZADDEDDATE, ZDATECREATED, ZMODIFICATIONDATE, ZTRASHEDDATE,
            ZAVALANCHEUUID, ZDIRECTORY, ZFILENAME, ZMEDIAGROUPUUID, ZUUID)
         VALUES (?1, ?2, 1, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?1, ?10, ?10, ?10, ?11, ?12, ?13,
            ?14, NULL, ?15)"
    ))?;
    let mut add_attrs = tx.prepare(
        "INSERT INTO ZADDITIONALASSETATTRIBUTES (Z_PK, Z_ENT, Z_OPT, ZASSET, ZORIGINALFILENAME, ZTIMEZONEOFFSET)
         VALUES (?1, 1, 1, ?1, ?2, ?3)",
    )?;
    let mut add_resource = if s.resources {
        Some(tx.prepare(
            "INSERT INTO ZINTERNALRESOURCE (Z_ENT, Z_OPT, ZDATASTORESUBTYPE, ZLOCALAVAILABILITY,
                ZREMOTEAVAILABILITY, ZRESOURCETYPE, ZTRASHEDSTATE, ZASSET)
             VALUES (20, 1, ?1, ?2, 1, ?3, 0, ?4)",
        )?)
    } else {
        None
    };
    let mut find_album = tx.prepare("SELECT Z_PK FROM ZGENERICALBUM WHERE ZTITLE = ?1")?;
    let mut add_album = tx.prepare(
        "INSERT INTO ZGENERICALBUM (Z_ENT, Z_OPT, ZKIND, ZTRASHEDSTATE, ZTITLE, ZUUID) VALUES (?1, 1, 2, 0, ?2, ?2)",
    )?;
    let mut add_member = tx.prepare(&format!(
        "INSERT OR IGNORE INTO {} ({}, {}) VALUES (?1, ?2)",
        s.join, s.join_album, s.join_asset
    ))?;
    for i in range {
        let a = &assets[i];
        let pk = i as i64 + 1;
        let created = (a.created_unix - CORE_DATA_EPOCH) as f64 + 0.25;
        add_asset.execute(params![
            pk,
            s.asset_ent,
            if a.burst.is_some() { 2 } else { 0 },
            a.favorite,
            a.adjusted,
            a.hidden,
            i64::from(a.video),
            a.subtype,
            a.trashed,
            created,
            a.trashed.then_some(created + 86_400.0),
            a.burst,
            a.directory,
            a.filename,
            a.uuid,
        ])?;
        add_attrs.execute(params![pk, a.original_filename, a.tz_offset])?;
        if let Some(res) = add_resource.as_mut() {
            let local = if a.cloud_only { -1 } else { 1 };
            // The original (subtype 1), and a large thumbnail that is always local.
            res.execute(params![1, local, i64::from(a.video), pk])?;
            res.execute(params![3, 1, 0, pk])?;
        }
        for title in &a.albums {
            let album: i64 = match find_album.query_row([title], |r| r.get(0)) {
                Ok(id) => id,
                Err(rusqlite::Error::QueryReturnedNoRows) => {
                    add_album.execute(params![s.album_ent, title])?;
                    tx.last_insert_rowid()
                }
                Err(e) => return Err(e.into()),
            };
            add_member.execute(params![album, pk])?;
        }
    }
    drop((
        add_asset,
        add_attrs,
        add_resource,
        find_album,
        add_album,
        add_member,
    ));
    tx.commit()?;
    Ok(())
}
