//! Session 11: a source that changes under the snapshot in a hostile way.

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::*;

/// Files replaced by FIFOs between the walker's listing and their reading (anyone who
/// may write to the library can do it; a program making a named pipe where a file was
/// too). Found (fixed: storage/readahead.rs `open_regular`): the snapshot opened the FIFO to read it with a blocking `open`
/// (storage/readahead.rs, `AheadReader::open`/`open_ahead`: `File::open`), which waits
/// for a writer for ever — the snapshot hung, and SIGTERM (`timeout`) did not end it
/// either (the main thread sat in `openat`, wchan `wait_for_partner`). It must finish:
/// each swapped file skipped or reported, exit 0 or 3.
#[test]
fn a_file_swapped_for_a_fifo_during_the_snapshot_does_not_hang_it() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    let (dirs, files) = (10, 2000);
    for d in 0..dirs {
        for i in 0..files {
            write_file(&src.join(format!("d{d}/f{i}")), format!("x{i}").as_bytes());
        }
    }
    let sv = Sv::init(tmp.path().join("repo"), false);
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (src, stop) = (src.clone(), stop.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            // From the end, where the walker arrives last.
            for d in (0..dirs).rev() {
                for i in (0..files).rev() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let p = src.join(format!("d{d}/f{i}"));
                    let _ = fs::remove_file(&p);
                    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
                    // SAFETY: a valid NUL-terminated path.
                    unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
                }
            }
        })
    };
    let out = run_command(
        sv.command(&["snapshot", src.to_str().unwrap()]),
        Duration::from_secs(90),
    );
    stop.store(true, Ordering::Relaxed);
    let _ = swapper.join();
    assert!(matches!(out.code, Some(0) | Some(3)), "{out}");
}
