//! `snapvault browse`: look at the backup by month in a web browser, read-only.
//!
//! A local HTTP server (hyper on tokio) answers only requests that carry its random
//! token; pages come from the photo catalog, pictures and originals are read from the
//! repository as restore reads them, thumbnails are kept in the cache folder. Nothing is
//! written to the repository but the shared lock every reading command takes (none with
//! `--no-lock` or on a read-only drive). A snapshot taken while it runs shows on the next
//! page (`live.rs`). It serves until Ctrl-C.

mod auth;
mod heif;
mod library;
mod live;
mod media;
mod pages;
mod serve;
mod thumbs;
mod tojpeg;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use super::Ctx;
use crate::cli::BrowseArgs;
use live::Live;

/// `--listen`: `IP:PORT`, `IP` (a free port), `localhost[:PORT]`; default 127.0.0.1 with a
/// free port. An address other machines can reach needs `--allow-remote`.
pub fn listen_addr(listen: Option<&str>, allow_remote: bool) -> Result<SocketAddr> {
    let addr = match listen {
        None => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        Some(s) => {
            let s = s.trim();
            let local = s
                .strip_prefix("localhost")
                .filter(|r| r.is_empty() || r.starts_with(':'));
            if let Some(rest) = local {
                let port = match rest.strip_prefix(':') {
                    Some(p) => p.parse().with_context(|| {
                        format!("--listen {s:?}: {p:?} is not a port number (0-65535)")
                    })?,
                    None => 0,
                };
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
            } else if let Ok(a) = s.parse::<SocketAddr>() {
                a
            } else if let Ok(ip) = s.trim_matches(['[', ']']).parse::<IpAddr>() {
                SocketAddr::new(ip, 0)
            } else {
                bail!(
                    "--listen {s:?} is not an address: use IP:PORT (127.0.0.1:8080), an IP, or localhost:PORT"
                )
            }
        }
    };
    if !addr.ip().is_loopback() && !allow_remote {
        bail!(
            "--listen {addr} can be reached from other machines; refusing without --allow-remote \
             (with it, anyone who has the printed address, token included, can see and download \
             every photo in the backup, over unencrypted HTTP)"
        );
    }
    Ok(addr)
}

pub fn run(ctx: &Ctx, a: BrowseArgs) -> Result<i32> {
    let addr = listen_addr(a.listen.as_deref(), a.allow_remote)?;
    let repo = ctx.open()?;
    let lock = crate::readonly::shared_lock(ctx, &repo, "browse")?;
    let index = repo.load_index()?.index;
    let catalog = crate::catalog::open_synced(&repo, &index, ctx.global.verbose > 0)?;
    let (snapshots, scope) = match &a.snapshot {
        Some(s) => {
            let (id, _) = repo.find_snapshot(s)?;
            (Some(vec![id]), format!("snapshot {}", id.short()))
        }
        None => (None, "all snapshots".to_string()),
    };
    let thumbs = thumbs::cache_dir(&repo.config().id);
    // The months and counts before the address is printed: the first page is then quick,
    // and a catalog that cannot answer fails here rather than as a 500.
    let live = Live::start(
        Arc::new(repo),
        index,
        catalog,
        snapshots,
        ctx.global.verbose > 0,
    )?;

    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let access = auth::Access::new(bound.port(), bound.ip().is_loopback())?;
    let url = format!("http://{bound}/?token={}", access.token());
    crate::interrupt::first_note("stopping the server");
    let stop = crate::interrupt::catch();
    if let Some(l) = &lock {
        crate::interrupt::guard_lock(l.handle());
    }
    let state = Arc::new(serve::State {
        live,
        access,
        scope,
        thumbs,
        makers: tokio::sync::Semaphore::new(thumbs::MAKERS),
    });

    println!("{url}");
    if !bound.ip().is_loopback() {
        eprintln!(
            "warning: serving on {bound}, reachable from other machines: anyone who has the \
             address above (token included) can see and download every photo and video in \
             this backup. The connection is plain HTTP: the token and the photos cross the \
             network unencrypted. Use it only on a network you trust, and stop it with Ctrl-C."
        );
    }
    if !a.no_open {
        open_browser(&url);
    }
    if !ctx.global.quiet {
        if heif::decoder().is_none() {
            eprintln!(
                "note: no HEIC decoder found, so HEIC photos show a placeholder: {}",
                heif::INSTALL_HINT
            );
        }
        eprintln!("serving the backup read-only; press Ctrl-C to stop");
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(super::io_threads().max(4))
        .enable_io()
        .enable_time()
        .build()
        .context("starting the web server's runtime")?;
    let signal = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let stop = stop_signal(stop);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                sig = &mut stop => return Ok::<i32, anyhow::Error>(sig),
                accepted = listener.accept() => {
                    let (stream, _) = match accepted {
                        Ok(x) => x,
                        // Out of file descriptors, a connection reset before accept: go on.
                        Err(_) => continue,
                    };
                    let state = state.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| serve::handle(state.clone(), req));
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            }
        }
    })?;
    // Connections still open are dropped with the runtime.
    runtime.shutdown_background();
    drop(lock);
    eprintln!("{}: stopped serving", crate::interrupt::describe(signal));
    Ok(crate::interrupt::exit_code(signal))
}

/// The first of Ctrl-C (SIGINT) or SIGTERM, from the binary's signal watcher (which also
/// removes the lock and ends the process at a second one).
async fn stop_signal(stop: Arc<snapvault_repo::stop::Stop>) -> i32 {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        tick.tick().await;
        if stop.reason().is_some() {
            return crate::interrupt::received().unwrap_or(libc::SIGINT);
        }
    }
}

/// Ask the desktop to open `url`; failing to is a note, not an error.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let url = url.to_string();
    let _ = std::thread::Builder::new()
        .name("open-browser".into())
        .spawn(move || {
            let done = std::process::Command::new(opener)
                .arg(&url)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            match done {
                Ok(s) if s.success() => {}
                Ok(s) => eprintln!(
                    "note: {opener} could not open a browser ({s}); open the address above yourself"
                ),
                Err(e) => eprintln!(
                    "note: could not run {opener} to open a browser ({e}); open the address above yourself"
                ),
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        let d = listen_addr(None, false).unwrap();
        assert!(d.ip().is_loopback() && d.port() == 0);
        assert_eq!(
            listen_addr(Some("127.0.0.1:8080"), false).unwrap().port(),
            8080
        );
        assert_eq!(listen_addr(Some("localhost:81"), false).unwrap().port(), 81);
        assert!(listen_addr(Some("[::1]:81"), false).is_ok());
        assert!(listen_addr(Some("::1"), false).is_ok());
        let e = listen_addr(Some("0.0.0.0:8080"), false).unwrap_err();
        assert!(e.to_string().contains("--allow-remote"), "{e}");
        assert!(listen_addr(Some("0.0.0.0:8080"), true).is_ok());
        assert!(listen_addr(Some("192.168.1.2"), false).is_err());
        let e = listen_addr(Some("nonsense"), false).unwrap_err();
        assert!(e.to_string().contains("not an address"), "{e}");
        assert!(listen_addr(Some("localhost:99999"), false).is_err());
    }
}
