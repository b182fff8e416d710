//! The command line as a first-week user meets it: an unplugged drive (24.2), passwords
//! (24.7), progress (24.5), everyday words (24.8), and small confusions (24.11).

use crate::common::*;

/// With the drive's folder absent, snapvault names the missing drive folder instead of
/// suggesting `init`, and `init` does not create the missing path on the internal disk
/// unless asked (24.2).
#[test]
fn an_unplugged_drive_is_named_and_init_does_not_create_its_folder() {
    let tmp = tempdir();
    let media = tmp.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let t7 = media.join("T7");
    let sv = Sv::at(t7.join("photos"), Some(PASSWORD));
    let said = format!("{} does not exist — is the drive plugged in?", t7.display());

    let out = sv.run(&["snapshots"]);
    assert_eq!(out.code, Some(10), "{out}");
    assert_stderr_mentions(&out, &said);
    assert!(
        !out.stderr.contains("snapvault init"),
        "an unplugged drive must not lead to init:\n{out}"
    );

    // The off-site copy's drive, unplugged.
    let home = Sv::init(tmp.path().join("home-repo"), true);
    let dst = t7.join("offsite");
    let out = home.run_env(
        &["copy", "--all", "--to", dst.to_str().unwrap()],
        &[("SNAPVAULT_PASSWORD2", PASSWORD)],
    );
    assert_eq!(out.code, Some(10), "{out}");
    assert_stderr_mentions(&out, &said);

    let out = sv.run(&["init"]);
    assert_failed(&out);
    assert_stderr_mentions(&out, &said);
    assert_stderr_mentions(&out, "--create-parents");
    assert!(!t7.exists(), "init created the missing drive folder");

    let out = sv.run(&["init", "--create-parents"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(t7.join("photos/config").is_file());

    // Only the repository's own folder missing, its parent there: no drive question, and
    // init creates it as before.
    let out = Sv::at(media.join("photos"), Some(PASSWORD)).run(&["snapshots"]);
    assert_eq!(out.code, Some(10), "{out}");
    assert_stderr_mentions(&out, "there is no repository at");
    let out = Sv::at(media.join("photos"), Some(PASSWORD)).run(&["init"]);
    assert_eq!(out.code, Some(0), "{out}");
}

/// Run `cmd` on a terminal of its own (a pseudo-terminal, as when a person types), answering
/// each password prompt in turn with the next of `answers`. Returns the exit code and
/// everything the terminal showed.
fn on_terminal(cmd: std::process::Command, answers: &[&str]) -> (Option<i32>, String) {
    on_terminal_of(cmd, answers, 80)
}

/// [`on_terminal`] on a terminal `columns` wide.
fn on_terminal_of(
    mut cmd: std::process::Command,
    answers: &[&str],
    columns: u16,
) -> (Option<i32>, String) {
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    use std::sync::{Arc, Mutex};

    let (mut master, mut slave) = (0, 0);
    let mut size = libc::winsize {
        ws_row: 24,
        ws_col: columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two new descriptors into the given ints and reads `size`.
    // (Pointers to mutable data: macOS declares them `*mut`, Linux `*const`.)
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &raw mut size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned here alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    cmd.stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn on a terminal");
    drop(cmd); // closes our copies of the terminal's far end
    let mut writer = std::fs::File::from(master.try_clone().unwrap());
    let mut reader = std::fs::File::from(master);
    let shown = Arc::new(Mutex::new(Vec::new()));
    let sink = shown.clone();
    let pump = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Ends with EIO once the command has exited and the terminal has no one left.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let text = |s: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&s.lock().unwrap()).into_owned();
    let deadline = std::time::Instant::now() + DEFAULT_TIMEOUT;
    for (i, answer) in answers.iter().enumerate() {
        // Wait for the (i+1)-th prompt; every prompt starts with "enter ".
        while text(&shown).matches("enter ").count() <= i {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no prompt {} within {DEFAULT_TIMEOUT:?}:\n{}",
                i + 1,
                text(&shown)
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = writer.write_all(format!("{answer}\n").as_bytes());
    }
    let status = wait_with_timeout(&mut child, DEFAULT_TIMEOUT, "command on a terminal");
    drop(writer);
    pump.join().unwrap();
    (status.code(), text(&shown))
}

/// New passwords (24.7): trivially weak ones are refused (with an override), a prompt asks
/// twice and gives three tries, and `init` ends by suggesting a password manager and a
/// spare key.
#[test]
fn init_refuses_weak_passwords_and_suggests_a_manager_and_a_spare_key() {
    let tmp = tempdir();
    let weak = Sv::at(tmp.path().join("weak"), Some("x"));
    let out = weak.run(&["init"]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "too weak");
    assert_stderr_mentions(&out, "--allow-weak-password");
    assert!(
        !weak.repo.join("config").exists(),
        "a weak password made a repository"
    );
    let out = weak.run(&["init", "--allow-weak-password"]);
    assert_eq!(out.code, Some(0), "{out}");

    let sv = Sv::at(tmp.path().join("repo"), Some(PASSWORD));
    let out = sv.ok(&["init"]);
    assert!(
        out.stdout.contains("--password-command") && out.stdout.contains("snapvault key add"),
        "init should suggest a password manager and a spare key:\n{out}"
    );
    let out = sv.run_env(&["key", "add"], &[("SNAPVAULT_NEW_PASSWORD", "spare")]);
    assert_failed(&out);
    assert_stderr_mentions(&out, "too weak");

    // At a prompt: a weak one, then two that differ, then the same one twice.
    let fresh = tmp.path().join("typed");
    let mut c = base_command();
    c.env("SNAPVAULT_REPOSITORY", &fresh).arg("init");
    let (code, shown) = on_terminal(
        c,
        &[
            "abc",
            PASSWORD,
            "something else entirely",
            PASSWORD,
            PASSWORD,
        ],
    );
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown.contains("too weak") && shown.contains("differ"),
        "{shown}"
    );
    assert!(
        !shown.contains(PASSWORD),
        "the typed password was echoed:\n{shown}"
    );
    assert!(fresh.join("config").is_file());
}

/// A password typed at the prompt gets three tries, and after three wrong ones the hint
/// does not send the user to SNAPVAULT_PASSWORD (24.7).
#[test]
fn a_typed_password_gets_three_tries() {
    let tmp = tempdir();
    let sv = Sv::init(tmp.path().join("repo"), true);
    let prompt = |answers: &[&str]| {
        let mut c = base_command();
        c.env("SNAPVAULT_REPOSITORY", &sv.repo).arg("snapshots");
        on_terminal(c, answers)
    };
    let (code, shown) = prompt(&["wrong one", "wrong two", PASSWORD]);
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(shown.matches("try again").count(), 2, "{shown}");

    let (code, shown) = prompt(&["wrong one", "wrong two", "wrong three"]);
    assert_eq!(code, Some(12), "{shown}");
    assert!(shown.contains("wrong password"), "{shown}");
    assert!(
        !shown.contains("SNAPVAULT_PASSWORD") && !shown.contains("--password-file"),
        "the user typed the password; no hint about variables or files:\n{shown}"
    );
}

/// `devices` tells a locked phone from a ready one, instead of `trusted yes` for both (24.11).
#[test]
fn devices_shows_a_locked_phone_as_locked() {
    use snapvault_fakephone::{FakePhone, FakePhoneConfig};
    let tmp = tempdir();
    let lib = tmp.path().join("phone");
    std::fs::create_dir_all(lib.join("DCIM/100APPLE")).unwrap();
    for locked in [false, true] {
        let mut cfg = FakePhoneConfig::new(&lib);
        cfg.locked = locked;
        // With the record's escrow bag a locked phone still shares its files (iphone::locked).
        cfg.record_without_escrow_bag = locked;
        let phone = FakePhone::start(cfg).expect("fake iPhone");
        let run = |args: &[&str]| {
            let mut c = base_command();
            c.env("USBMUXD_SOCKET_ADDRESS", phone.usbmuxd_address())
                .args(args);
            let out = run_command(c, DEFAULT_TIMEOUT);
            assert_eq!(out.code, Some(0), "{out}");
            out
        };
        let out = run(&["devices"]);
        let row = out.stdout.lines().nth(1).unwrap_or_default().to_string();
        if locked {
            assert!(
                row.contains("locked") && row.contains("unlock"),
                "a locked phone should be shown as locked:\n{out}"
            );
        } else {
            assert!(row.contains("yes") && !row.contains("locked"), "{out}");
        }
        let v = run(&["devices", "--json"]).json();
        assert_eq!(v[0]["locked"], locked, "{v}");
    }
}

/// The demo ends with the steps to back up one's own phone (24.11).
#[test]
fn the_demo_ends_with_the_steps_for_ones_own_phone() {
    let tmp = tempdir();
    let mut c = base_command();
    c.args(["demo", "--dir"]).arg(tmp.path().join("demo"));
    let out = run_command(c, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{out}");
    let tail = out
        .stdout
        .split("demo finished")
        .nth(1)
        .unwrap_or_else(|| panic!("no end of the demo:\n{out}"));
    for step in [
        "back up your own phone",
        "snapvault devices",
        "snapvault init",
        "snapvault snapshot iphone",
        "snapvault verify-device",
    ] {
        assert!(
            tail.contains(step),
            "the demo's ending lacks {step:?}:\n{tail}"
        );
    }
}

/// Forget's refusal suggests restoring exactly the photos it lists, and the suggested
/// command does that (24.11).
#[test]
fn the_forget_refusal_suggests_restoring_the_listed_photos() {
    let tmp = tempdir();
    let lib = tmp.path().join("lib");
    snapvault_media::sample::library(&lib, 6, 24).expect("sample library");
    let sv = Sv::init(tmp.path().join("repo"), true);
    let first = sv.snapshot(&[&lib], &[]);
    let gone = lib.join("DCIM/100APPLE/IMG_0002.HEIC");
    assert!(gone.is_file(), "the sample library has no {gone:?}");
    let kept = std::fs::read(&gone).unwrap();
    std::fs::remove_file(&gone).unwrap();
    sv.snapshot(&[&lib], &[]);

    let out = sv.run(&["forget", first["id"].as_str().unwrap()]);
    assert_failed(&out);
    let cmd = out
        .stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("snapvault restore") && l.contains("--include"))
        .unwrap_or_else(|| panic!("no restore of the listed photos suggested:\n{out}"))
        .to_string();
    assert!(cmd.contains("IMG_0002.HEIC"), "{cmd}");

    // Run the suggestion as the user would paste it.
    let target = tmp.path().join("back");
    let line = cmd.replace("DIR", target.to_str().unwrap());
    let c = sv.command::<&str>(&[]);
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c").arg(line.replacen("snapvault", bin(), 1));
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let out = run_command(sh, DEFAULT_TIMEOUT);
    assert_eq!(out.code, Some(0), "{line}:\n{out}");
    let restored: Vec<_> = listing(&target)
        .into_keys()
        .filter(|k| k.ends_with(".HEIC"))
        .collect();
    assert_eq!(
        restored.len(),
        1,
        "only the listed photo comes back: {restored:?}"
    );
    assert_eq!(
        std::fs::read(target.join("lib/DCIM/100APPLE/IMG_0002.HEIC")).unwrap(),
        kept
    );
}

/// The progress line of an iPhone backup fits an 80-column terminal, with the time left and
/// the phone's transfer rate first, and its percentage agrees with the figures beside it
/// (24.5).
#[test]
fn progress_fits_80_columns_with_eta_and_usb_rate_first() {
    use snapvault_fakephone::{FakePhone, FakePhoneConfig};
    let tmp = tempdir();
    let lib = tmp.path().join("phone");
    snapvault_media::sample::library(&lib, 12, 5).expect("sample library");
    let files = listing(&lib).len();
    let mut cfg = FakePhoneConfig::new(&lib);
    // Slow enough for a few frames with a rate and a time left.
    cfg.bytes_per_sec = Some(1024 * 1024);
    let phone = FakePhone::start(cfg).expect("fake iPhone");
    let sv = Sv::init(tmp.path().join("repo"), true);
    let mut c = sv.command(&["snapshot", "iphone"]);
    c.env("USBMUXD_SOCKET_ADDRESS", phone.usbmuxd_address())
        .env("TERM", "xterm")
        .env_remove("SNAPVAULT_NO_PROGRESS");
    let (code, shown) = on_terminal_of(c, &[], 80);
    assert_eq!(code, Some(0), "{shown}");
    let frames: Vec<String> = shown
        .split(['\r', '\n'])
        .map(strip_ansi)
        .filter(|f| f.contains("ETA"))
        .collect();
    assert!(
        !frames.is_empty(),
        "no frame with a time left ({files} files):\n{shown}"
    );
    for f in &frames {
        assert!(f.chars().count() <= 80, "wider than 80 columns: {f:?}");
        let eta = f.find("ETA").unwrap();
        let usb = f
            .find("USB")
            .unwrap_or_else(|| panic!("no USB rate: {f:?}"));
        assert!(eta < usb, "the time left comes first: {f:?}");
        let rest = f.find('%').unwrap_or(usize::MAX);
        assert!(usb < rest, "then the USB rate: {f:?}");
        if let Some((pct, done, total)) = percent_and_bytes(f) {
            // The sizes are shown rounded to one decimal: allow for that, and for the
            // percentage being rounded down.
            let lo = (done.0 - done.1) / (total.0 + total.1) * 100.0 - 1.0;
            let hi = (done.0 + done.1) / (total.0 - total.1) * 100.0 + 1.0;
            assert!(
                (lo..=hi).contains(&pct),
                "{pct}% does not agree with {done:?} of {total:?}: {f:?}"
            );
        }
    }
}

/// A frame without its terminal escape sequences.
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// `54%` and `267.0 MiB/491.1 MiB` (same unit or not) from a frame: the percentage, and
/// each size in MiB with its rounding (half its last shown digit).
type Mib = (f64, f64);
fn percent_and_bytes(frame: &str) -> Option<(f64, Mib, Mib)> {
    let words: Vec<&str> = frame.split_whitespace().collect();
    let pct = words
        .iter()
        .find_map(|w| w.strip_suffix('%'))?
        .parse::<f64>()
        .ok()?;
    let mib = |n: &str, unit: &str| -> Option<Mib> {
        let half = if n.contains('.') { 0.05 } else { 0.5 };
        let n: f64 = n.parse().ok()?;
        let scale = match unit {
            "B" => 1.0 / 1048576.0,
            "KiB" => 1.0 / 1024.0,
            "MiB" => 1.0,
            "GiB" => 1024.0,
            _ => return None,
        };
        Some((n * scale, half * scale))
    };
    // "267.0 MiB/491.1 MiB": number, "UNIT/number", unit.
    for w in words.windows(3) {
        if let Some((u1, n2)) = w[1].split_once('/')
            && let (Some(a), Some(b)) = (mib(w[0], u1), mib(n2, w[2]))
            && b.0 > b.1
        {
            return Some((pct, a, b));
        }
    }
    None
}

/// Words of the storage format in `text`: blobs, packs, trees, index files.
fn internal_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| {
            let w = w.to_lowercase();
            [
                "blob", "blobs", "pack", "packs", "tree", "trees", "chunk", "chunks",
            ]
            .contains(&w.as_str())
        })
        .map(str::to_string)
        .collect()
}

/// Everyday output speaks of photos, files and bytes; the storage internals are for `-v`
/// (24.8). `snapshot --force` does not call every file "new" while adding nothing.
#[test]
fn everyday_output_speaks_of_files_and_bytes() {
    let tmp = tempdir();
    let lib = tmp.path().join("lib");
    for i in 0..3u64 {
        write_random(&lib.join(format!("IMG_{i:04}.JPG")), i, 200_000);
    }
    let sv = Sv::init(tmp.path().join("repo"), true);
    let plain = |args: &[&str]| {
        let out = sv.ok(args);
        let words = internal_words(&out.both());
        assert!(words.is_empty(), "{args:?} speaks of {words:?}:\n{out}");
        out
    };
    let l = lib.to_str().unwrap();
    plain(&["snapshot", l]);
    let out = plain(&["snapshot", l, "--force"]);
    assert!(
        !out.stdout.contains("3 new") && out.stdout.contains("read again"),
        "--force re-reads files, it does not find new ones:\n{out}"
    );
    let out = sv.ok(&["-v", "snapshot", l, "--force"]);
    assert!(
        !internal_words(&out.stdout).is_empty(),
        "-v keeps the internals:\n{out}"
    );
    plain(&["forget", "--keep-last", "1", "--prune"]);
    plain(&["prune"]);
    plain(&["check"]);
    plain(&["check", "--read-data"]);
    let r2 = tmp.path().join("offsite");
    Sv::init(&r2, true);
    let out = sv.run_env(
        &["copy", "--all", "--to", r2.to_str().unwrap()],
        &[("SNAPVAULT_PASSWORD2", PASSWORD)],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(internal_words(&out.both()).is_empty(), "copy:\n{out}");

    // Lost metadata: the error names what is missing without the format's words.
    for f in std::fs::read_dir(sv.repo.join("index")).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let out = sv.run(&["ls", "latest"]);
    assert_failed(&out);
    assert!(
        !out.stderr.contains("blob") && !out.stderr.contains("not in the index"),
        "{out}"
    );
}
