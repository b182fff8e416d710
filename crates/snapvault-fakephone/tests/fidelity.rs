//! The fake phone as the *unmodified* idevice client sees it: its own usbmuxd client, its own
//! `AfcClient::connect` (pair record, lockdown, TLS session, StartService, second usbmux
//! connection), its typed parsers (which reject replies with missing attributes), and the
//! binary's command line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use idevice::IdeviceService;
use idevice::afc::AfcClient;
use idevice::afc::opcode::AfcFopenMode;
use idevice::lockdown::LockdownClient;
use idevice::usbmuxd::{Connection, UsbmuxdAddr};
use snapvault_fakephone::{FakePhone, FakePhoneConfig};

fn library(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fakephone-{test}-{}", std::process::id()));
    let p = dir.join("DCIM/100APPLE");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("IMG_0001.HEIC"), vec![7u8; 300_000]).unwrap();
    std::fs::write(p.join("IMG_0002.MOV"), b"moov").unwrap();
    dir
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn unmodified_idevice_client_reads_the_camera_roll() {
    let lib = library("idevice");
    let mut cfg = FakePhoneConfig::new(&lib);
    cfg.name = "Fidelity".into();
    let phone = FakePhone::start(cfg.clone()).unwrap();
    let addr: SocketAddr = phone.usbmuxd_address().parse().unwrap();
    rt().block_on(async {
        let mux = UsbmuxdAddr::TcpSocket(addr);
        let mut conn = mux.connect(1).await.unwrap();
        let devs = conn.get_devices().await.unwrap();
        assert_eq!(devs.len(), 1);
        assert_eq!(devs[0].udid, cfg.udid);
        assert_eq!(devs[0].connection_type, Connection::Usb);
        let pairing = conn.get_pair_record(&cfg.udid).await.unwrap();
        assert_eq!(pairing.udid.as_deref(), Some(cfg.udid.as_str()));
        assert_eq!(conn.get_buid().await.unwrap().len(), 36);
        let provider = devs[0].to_provider(mux.clone(), "fidelity");

        // Lockdown: values before and inside the TLS session.
        let mut ld = LockdownClient::connect(&provider).await.unwrap();
        let name = ld.get_value(Some("DeviceName"), None).await.unwrap();
        assert_eq!(name.as_string(), Some("Fidelity"));
        ld.start_session(&pairing).await.unwrap();
        let v = ld.get_value(Some("ProductVersion"), None).await.unwrap();
        assert_eq!(v.as_string(), Some(cfg.ios_version.as_str()));
        assert!(ld.get_value(Some("NoSuchKey"), None).await.is_err());
        assert!(ld.start_service("com.apple.nope").await.is_err());

        // AFC through idevice's own high-level connect.
        let mut afc = AfcClient::connect(&provider).await.unwrap();
        let mut names = afc.list_dir("/DCIM/100APPLE").await.unwrap();
        names.sort();
        assert_eq!(names, [".", "..", "IMG_0001.HEIC", "IMG_0002.MOV"]);
        let info = afc
            .get_file_info("/DCIM/100APPLE/IMG_0001.HEIC")
            .await
            .unwrap();
        assert_eq!(info.size, 300_000);
        assert_eq!(info.st_ifmt, "S_IFREG");
        let dir = afc.get_file_info("/DCIM").await.unwrap();
        assert_eq!(dir.st_ifmt, "S_IFDIR");
        let dev = afc.get_device_info().await.unwrap();
        assert_eq!(dev.model, cfg.model);
        assert!(afc.get_file_info("/DCIM/nope").await.is_err());

        let mut fd = afc
            .open("/DCIM/100APPLE/IMG_0001.HEIC", AfcFopenMode::RdOnly)
            .await
            .unwrap();
        let all = fd.read_entire().await.unwrap();
        assert_eq!(all, vec![7u8; 300_000]);
        fd.close().await.unwrap();
        // Read-only: writes are refused, not crashes.
        assert!(
            afc.open("/DCIM/new.JPG", AfcFopenMode::WrOnly)
                .await
                .is_err()
        );
        assert!(
            afc.open("/../etc/passwd", AfcFopenMode::RdOnly)
                .await
                .is_err()
        );
    });
    assert_eq!(phone.afc_bytes_served(), 300_000);
    assert_eq!(phone.open_handles(), 0);
    phone.stop();
    let _ = std::fs::remove_dir_all(lib);
}

#[test]
fn binary_prints_the_address_and_serves() {
    let lib = library("binary");
    let mut child = Command::new(env!("CARGO_BIN_EXE_snapvault-fakephone"))
        .arg("--library")
        .arg(&lib)
        .args(["--name", "From CLI", "--devices", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let value = line
        .trim()
        .strip_prefix("USBMUXD_SOCKET_ADDRESS=")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    let addr: SocketAddr = value.parse().unwrap();
    let devs = rt().block_on(async {
        let mut conn = UsbmuxdAddr::TcpSocket(addr).connect(1).await.unwrap();
        conn.get_devices().await.unwrap()
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(devs.len(), 2);

    let bad = Command::new(env!("CARGO_BIN_EXE_snapvault-fakephone"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(lib);
}

/// The binary usbmuxd protocol (version 0, what older clients speak) gets answers in kind,
/// like usbmuxd gives them: `Listen` → Result 0 and a binary `DeviceAdd`, `Connect` to
/// lockdownd → Result 0 and a working pipe, an unknown version → BADVERSION. Never a closed
/// socket.
#[test]
fn binary_usbmuxd_protocol_gets_answers() {
    use std::io::{Read, Write};
    let lib = library("binary-proto");
    let phone = FakePhone::start(FakePhoneConfig::new(&lib)).unwrap();
    let open = || {
        let s = std::net::TcpStream::connect(phone.usbmuxd_address()).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        s
    };
    let header = |size: u32, version: u32, message: u32, tag: u32| -> Vec<u8> {
        [size, version, message, tag]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    };
    let read_result = |s: &mut std::net::TcpStream| -> (u32, u32, u32) {
        let mut r = [0u8; 20];
        s.read_exact(&mut r).unwrap();
        let w = |i: usize| u32::from_le_bytes(r[i..i + 4].try_into().unwrap());
        (w(4), w(8), w(16)) // version, message, result number
    };

    let mut s = open();
    s.write_all(&header(16, 0, 3, 1)).unwrap();
    assert_eq!(read_result(&mut s), (0, 1, 0));
    let mut add = [0u8; 16 + 268];
    s.read_exact(&mut add).unwrap();
    assert_eq!(u32::from_le_bytes(add[8..12].try_into().unwrap()), 4);
    let serial = &add[22..22 + 256];
    let end = serial.iter().position(|&b| b == 0).unwrap();
    assert_eq!(&serial[..end], b"00008110-001A2B3C4D5E801E");

    let mut s = open();
    let mut connect = header(24, 0, 2, 2);
    connect.extend_from_slice(&1u32.to_le_bytes());
    connect.extend_from_slice(&62078u16.to_be_bytes());
    connect.extend_from_slice(&[0, 0]);
    s.write_all(&connect).unwrap();
    assert_eq!(read_result(&mut s), (0, 1, 0));
    // The socket is now lockdownd's.
    let body = b"<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>Request</key><string>QueryType</string></dict></plist>";
    s.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut reply).unwrap();
    assert!(String::from_utf8_lossy(&reply).contains("com.apple.mobile.lockdown"));

    let mut s = open();
    s.write_all(&header(16, 7, 8, 3)).unwrap();
    assert_eq!(read_result(&mut s).2, 6);
    let mut s = open();
    s.write_all(&header(16, 0, 5, 4)).unwrap();
    assert_eq!(read_result(&mut s).2, 1);
    phone.stop();
    let _ = std::fs::remove_dir_all(lib);
}

/// FileRefSeek and FileRefTell move and report the handle's position as afcd's do (from
/// the start, the current position and the end), reads continue from it, and a seek
/// before the start is refused (no client of ours seeks; ifuse and other tools do).
#[test]
fn seek_and_tell_move_the_handle_reads_follow() {
    use tokio::io::{AsyncSeekExt, SeekFrom};
    let lib = library("seek");
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(lib.join("DCIM/100APPLE/IMG_0003.JPG"), &bytes).unwrap();
    let cfg = FakePhoneConfig::new(&lib);
    let phone = FakePhone::start(cfg.clone()).unwrap();
    let addr: SocketAddr = phone.usbmuxd_address().parse().unwrap();
    rt().block_on(async {
        let mux = UsbmuxdAddr::TcpSocket(addr);
        let devs = mux.connect(1).await.unwrap().get_devices().await.unwrap();
        let provider = devs[0].to_provider(mux.clone(), "fidelity");
        let mut afc = AfcClient::connect(&provider).await.unwrap();
        let mut fd = afc
            .open("/DCIM/100APPLE/IMG_0003.JPG", AfcFopenMode::RdOnly)
            .await
            .unwrap();
        assert_eq!(fd.read_n(10).await.unwrap(), bytes[..10]);
        assert_eq!(fd.seek(SeekFrom::Current(-5)).await.unwrap(), 5);
        assert_eq!(fd.read_n(5).await.unwrap(), bytes[5..10]);
        assert_eq!(fd.seek_tell().await.unwrap(), 10);
        assert_eq!(fd.seek(SeekFrom::Start(70_000)).await.unwrap(), 70_000);
        assert_eq!(fd.read_n(4).await.unwrap(), bytes[70_000..70_004]);
        assert_eq!(fd.seek(SeekFrom::End(-3)).await.unwrap(), 99_997);
        assert_eq!(fd.read_entire().await.unwrap(), bytes[99_997..]);
        // At the end a read gets nothing; before the start is refused.
        assert!(fd.read_n(10).await.unwrap().is_empty());
        assert!(fd.seek(SeekFrom::Current(-200_000)).await.is_err());
        fd.close().await.unwrap();
    });
    assert_eq!(phone.open_handles(), 0);
    phone.stop();
    let _ = std::fs::remove_dir_all(lib);
}
