use std::collections::HashSet;
use std::path::Path;

use rusqlite::Connection;

use super::*;
use crate::fixture::{FixtureAsset, write};

fn asset(dir: &str, name: &str) -> FixtureAsset {
    FixtureAsset {
        directory: dir.into(),
        filename: name.into(),
        uuid: format!("U-{name}"),
        original_filename: Some(name.into()),
        created_unix: 1_689_350_591, // 2023-07-14T16:03:11Z
        ..FixtureAsset::default()
    }
}

fn sample_assets() -> Vec<FixtureAsset> {
    vec![
        FixtureAsset {
            favorite: true,
            albums: vec!["Holidays".into(), "Family".into()],
            subtype: 2,
            ..asset("DCIM/100APPLE", "IMG_0001.HEIC")
        },
        FixtureAsset {
            adjusted: true,
            ..asset("DCIM/100APPLE", "IMG_0002.JPG")
        },
        FixtureAsset {
            trashed: true,
            ..asset("DCIM/100APPLE", "IMG_0003.HEIC")
        },
        FixtureAsset {
            cloud_only: true,
            albums: vec!["Holidays".into()],
            ..asset("DCIM/100APPLE", "IMG_0004.HEIC")
        },
        FixtureAsset {
            burst: Some("B-1".into()),
            hidden: true,
            ..asset("DCIM/101APPLE", "IMG_0005.JPG")
        },
        FixtureAsset {
            video: true,
            subtype: 100,
            ..asset("PhotoData/CPLAssets/group7", "0A1B.MOV")
        },
    ]
}

fn stored(paths: &[&str]) -> HashSet<String> {
    paths.iter().map(|p| p.to_string()).collect()
}

#[test]
fn newer_schema_zasset() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("Photos.sqlite");
    write(&db, Generation::Asset, &sample_assets(), false).unwrap();
    let lib = read_copy_of(&db).unwrap();
    assert_eq!(lib.generation, Generation::Asset);
    assert_eq!(lib.assets.len(), 6);
    let a = &lib.assets[0];
    assert_eq!(a.path(), "DCIM/100APPLE/IMG_0001.HEIC");
    assert_eq!(a.favorite, Some(true));
    assert_eq!(a.subtype, Some(2));
    assert_eq!(a.kind, AssetKind::Photo);
    assert_eq!(a.created_unix(), Some(1_689_350_591));
    assert_eq!(a.original, Availability::Local);
    let mut albums = a.albums.clone();
    albums.sort();
    assert_eq!(albums, ["Family", "Holidays"]);
    assert_eq!(lib.assets[2].trashed, Some(true));
    assert_eq!(lib.assets[3].original, Availability::CloudOnly);
    assert_eq!(lib.assets[4].burst.as_deref(), Some("B-1"));
    assert_eq!(lib.assets[4].hidden, Some(true));
    assert_eq!(lib.assets[5].kind, AssetKind::Video);
    assert_eq!(lib.assets[5].path(), "PhotoData/CPLAssets/group7/0A1B.MOV");
    assert!(lib.unknowns.is_empty(), "{:?}", lib.unknowns);

    let on_phone = stored(&[
        "DCIM/100APPLE/IMG_0001.HEIC",
        "DCIM/100APPLE/IMG_0002.JPG",
        "DCIM/100APPLE/IMG_0003.HEIC",
        "DCIM/101APPLE/IMG_0005.JPG",
        "PhotoData/CPLAssets/group7/0A1B.MOV",
        "PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments/FullSizeRender.jpg",
        "PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments/Adjustments.plist",
    ]);
    let acc = account(&lib, &on_phone);
    assert_eq!(
        acc,
        Account {
            assets: 6,
            backed_up: 5,
            icloud_only: 1,
            not_read: 0,
            recently_deleted: Some(1),
            edited: Some(1),
            edits_backed_up: 1,
            availability_known: true,
        }
    );
}

#[test]
fn older_schema_zgenericasset() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("Photos.sqlite");
    write(&db, Generation::GenericAsset, &sample_assets(), false).unwrap();
    let lib = read_copy_of(&db).unwrap();
    assert_eq!(lib.generation, Generation::GenericAsset);
    assert_eq!(lib.assets.len(), 6);
    // Albums through Z_26ASSETS(Z_26ALBUMS, Z_34ASSETS).
    assert_eq!(lib.assets[3].albums, ["Holidays"]);
    // No resource table in this generation's fixture: availability is unknown, and the
    // account says so instead of calling the missing file iCloud-only.
    assert!(
        lib.assets
            .iter()
            .all(|a| a.original == Availability::Unknown)
    );
    assert!(lib.unknowns.iter().any(|u| u.contains("ZINTERNALRESOURCE")));
    let acc = account(
        &lib,
        &stored(&[
            "DCIM/100APPLE/IMG_0001.HEIC",
            "DCIM/100APPLE/IMG_0002.JPG",
            "DCIM/100APPLE/IMG_0003.HEIC",
            "DCIM/101APPLE/IMG_0005.JPG",
            "PhotoData/CPLAssets/group7/0A1B.MOV",
        ]),
    );
    assert_eq!(acc.icloud_only, 0);
    assert_eq!(acc.not_read, 1);
    assert!(!acc.availability_known);
    assert_eq!(acc.recently_deleted, Some(1));
}

#[test]
fn the_log_holds_half_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("Photos.sqlite");
    let assets: Vec<FixtureAsset> = (0..40)
        .map(|i| asset("DCIM/100APPLE", &format!("IMG_{i:04}.HEIC")))
        .collect();
    write(&db, Generation::Asset, &assets, true).unwrap();
    let wal = dir.path().join("Photos.sqlite-wal");
    assert!(wal.metadata().unwrap().len() > 0);
    let before: Vec<Vec<u8>> = [&db, &wal]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(read_copy_of(&db).unwrap().assets.len(), 40);
    // The original files are untouched by the read (it used a copy).
    let after: Vec<Vec<u8>> = [&db, &wal]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(before, after);
    // Without its log the database is missing the second half.
    let alone = tempfile::tempdir().unwrap();
    std::fs::copy(&db, alone.path().join("Photos.sqlite")).unwrap();
    assert_eq!(
        read_copy_of(&alone.path().join("Photos.sqlite"))
            .unwrap()
            .assets
            .len(),
        20
    );
}

fn raw_db(path: &Path, sql: &str) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(sql).unwrap();
}

#[test]
fn unknown_schemas_are_errors_not_guesses() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.sqlite");
    raw_db(
        &db,
        "CREATE TABLE ZPHOTO(Z_PK INTEGER PRIMARY KEY, ZPATH TEXT);",
    );
    let e = read_copy_of(&db).unwrap_err();
    assert!(matches!(e, LibraryError::UnknownSchema(_)), "{e}");
    assert!(e.to_string().contains("ZASSET"), "{e}");

    let db = dir.path().join("b.sqlite");
    raw_db(
        &db,
        "CREATE TABLE ZASSET(Z_PK INTEGER PRIMARY KEY, ZFILENAME TEXT);",
    );
    let e = read_copy_of(&db).unwrap_err();
    assert!(e.to_string().contains("ZDIRECTORY"), "{e}");

    let db = dir.path().join("c.sqlite");
    std::fs::write(&db, b"not a database at all, just bytes that go on and on").unwrap();
    assert!(read_copy_of(&db).is_err());
}

#[test]
fn odd_values_are_unknown_and_hostile_paths_are_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("Photos.sqlite");
    raw_db(
        &db,
        "CREATE TABLE ZASSET(Z_PK INTEGER PRIMARY KEY, ZDIRECTORY, ZFILENAME, ZTRASHEDSTATE,
             ZFAVORITE, ZKIND, ZDATECREATED);
         INSERT INTO ZASSET VALUES (1, 'DCIM/100APPLE', 'IMG_0001.HEIC', 7, 'yes', 5, 'soon');
         INSERT INTO ZASSET VALUES (2, '../../etc', 'passwd', 0, 0, 0, 1.0e300);
         INSERT INTO ZASSET VALUES (3, 'DCIM/100APPLE', 'a/b', 0, 0, 0, 0);
         INSERT INTO ZASSET VALUES (4, NULL, NULL, 0, 0, 0, 0);
         INSERT INTO ZASSET VALUES (5, 'DCIM/100APPLE', X'FF41FE', 1, 1, 1, 0);",
    );
    let lib = read_copy_of(&db).unwrap();
    let paths: Vec<String> = lib.assets.iter().map(Asset::path).collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    let a = &lib.assets[0];
    assert_eq!(a.trashed, None);
    assert_eq!(a.favorite, None);
    assert_eq!(a.kind, AssetKind::Unknown);
    assert_eq!(a.created_unix(), None);
    assert_eq!(lib.assets[1].trashed, Some(true));
    // A column this iOS lacks makes the fact unknown, and the account says so.
    let acc = account(&lib, &HashSet::new());
    assert_eq!(acc.recently_deleted, None);
    assert_eq!(acc.edited, None);
}

#[test]
fn edit_paths() {
    assert_eq!(
        adjustments_dir("DCIM/100APPLE/IMG_0001.HEIC"),
        "PhotoData/Mutations/DCIM/100APPLE/IMG_0001/Adjustments"
    );
    assert_eq!(
        edit_of("PhotoData/Mutations/DCIM/100APPLE/IMG_0001/Adjustments/FullSizeRender.jpg"),
        Some(("DCIM/100APPLE", "IMG_0001", true))
    );
    assert_eq!(
        edit_of("PhotoData/Mutations/PhotoData/CPLAssets/g1/ABC/Adjustments/Adjustments.plist"),
        Some(("PhotoData/CPLAssets/g1", "ABC", false))
    );
    assert_eq!(edit_of("DCIM/100APPLE/IMG_0001.HEIC"), None);
    assert_eq!(
        edit_of("PhotoData/Mutations/DCIM/x/Adjustments/sub/FullSizeRender.jpg"),
        None
    );
}

#[test]
fn sample_phone_library_matches_its_database() {
    let dir = tempfile::tempdir().unwrap();
    let lib = sample::phone_library(dir.path(), 12, 5).unwrap();
    for want in [
        "PhotoData/Photos.sqlite",
        "PhotoData/Photos.sqlite-wal",
        "PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments/FullSizeRender.jpg",
        "PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments/Adjustments.plist",
        "DCIM/100APPLE/IMG_0002.AAE",
        "DCIM/100APPLE/IMG_0013.JPG",
        "DCIM/100APPLE/IMG_0015.JPG",
    ] {
        assert!(
            lib.files.iter().any(|f| f == want),
            "{want} missing: {:?}",
            lib.files
        );
    }
    assert!(
        lib.files
            .iter()
            .any(|f| f.starts_with("PhotoData/CPLAssets/group1/"))
    );
    let db = read_copy_of(&dir.path().join(DATABASE)).unwrap();
    assert_eq!(db.assets.len(), lib.assets.len());
    let on_disk: HashSet<String> = lib.files.iter().cloned().collect();
    let acc = account(&db, &on_disk);
    assert_eq!(acc.icloud_only, 3);
    assert_eq!(acc.not_read, 0);
    assert_eq!(acc.backed_up, acc.assets - 3);
    assert_eq!(acc.recently_deleted, Some(2));
    // Every edit is backed up: a render in Mutations, or Apple's IMG_E rendition in DCIM.
    assert_eq!(acc.edited, Some(acc.edits_backed_up));
    assert!(acc.edits_backed_up >= 3, "{acc:?}");
    let bursts = db.assets.iter().filter(|a| a.burst.is_some()).count();
    assert_eq!(bursts, 3);
    assert_eq!(lib.icloud_only().len(), 3);
    assert!(!lib.edited().is_empty());
}
