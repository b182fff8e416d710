//! HTTP: hyper's HTTP/1 server on tokio, one task per connection; routing, the token
//! check, and the answers. Work that reads the catalog or the repository runs on tokio's
//! blocking threads; thumbnails are made at most [`thumbs::MAKERS`] at a time.

use std::convert::Infallible;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::{Semaphore, mpsc};

use super::auth::{Access, Verdict, without_token};
use super::library::{Filter, Library, Month};
use super::live::Live;
use super::{media, pages, thumbs};

pub type Out = Response<BoxBody<Bytes, io::Error>>;

pub struct State {
    pub live: Live,
    pub access: Access,
    /// "all snapshots" or "snapshot 1a2b3c4d", shown in the header.
    pub scope: String,
    pub thumbs: Option<PathBuf>,
    pub makers: Semaphore,
}

/// A body fed chunk by chunk from a blocking reader thread.
struct Streamed(mpsc::Receiver<io::Result<Bytes>>);

impl Body for Streamed {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.0.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

fn full(b: impl Into<Bytes>) -> BoxBody<Bytes, io::Error> {
    Full::new(b.into())
        .map_err(|e: Infallible| match e {})
        .boxed()
}

fn respond(status: StatusCode, ctype: &str, body: impl Into<Bytes>) -> Out {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    set(&mut r, header::CONTENT_TYPE, ctype);
    r
}

fn set(r: &mut Out, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

fn text(status: StatusCode, msg: &str) -> Out {
    respond(status, "text/plain; charset=utf-8", format!("{msg}\n"))
}

fn html(s: String) -> Out {
    let mut r = respond(StatusCode::OK, "text/html; charset=utf-8", s);
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

/// Headers on every answer: the page may load nothing from anywhere but this server.
fn harden(r: &mut Out) {
    set(
        r,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'self'; \
         script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    set(r, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(r, header::REFERRER_POLICY, "no-referrer");
    set(r, header::X_FRAME_OPTIONS, "DENY");
}

pub async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Out, Infallible> {
    let mut r = route(&state, req).await;
    harden(&mut r);
    Ok(r)
}

fn forbidden() -> Out {
    text(
        StatusCode::FORBIDDEN,
        "403 Forbidden: open the address `snapvault browse` printed, with its ?token=…",
    )
}

async fn route(state: &Arc<State>, req: Request<Incoming>) -> Out {
    // Everything needed from the request, owned, before anything is awaited.
    let (verdict, path, params, range, method_ok) = {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok());
        let cookies: Vec<&str> = req
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let query = req.uri().query();
        (
            state.access.judge(host, &cookies, query),
            req.uri().path().to_string(),
            without_token(query),
            req.headers()
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            req.method() == Method::GET || req.method() == Method::HEAD,
        )
    };
    drop(req);
    if verdict == Verdict::Forbidden {
        return forbidden();
    }
    if !method_ok {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "405: this server only reads",
        );
    }
    let is_page = path == "/" || path.starts_with("/month/") || path.starts_with("/photo/");
    if verdict == Verdict::Query && is_page {
        // Keep the token in a cookie and take it out of the address bar and history.
        let mut r = text(StatusCode::SEE_OTHER, "see other");
        set(&mut r, header::LOCATION, &format!("{path}{params}"));
        set(&mut r, header::SET_COOKIE, &state.access.set_cookie());
        return r;
    }
    let filter = match param(&params, "f").map_or(Some(Filter::All), Filter::parse) {
        Some(f) => f,
        None => {
            return text(
                StatusCode::BAD_REQUEST,
                "400: unknown filter (f=vanished or f=damaged)",
            );
        }
    };
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [] => page(state, move |lib, scope| pages::timeline(lib, scope, filter)).await,
        ["month", m] => match Month::parse(m) {
            Some(m) => page(state, move |lib, scope| pages::month(lib, scope, m, filter)).await,
            None => not_found(),
        },
        ["photo", m, key] => match Month::parse(m) {
            Some(m) => photo(state, m, key.to_string()).await,
            None => not_found(),
        },
        ["thumb", key] => picture(state, key.to_string(), thumbs::thumb).await,
        ["screen", key] => picture(state, key.to_string(), thumbs::screen).await,
        ["original", key] => {
            let download = param(&params, "download").is_some();
            original(state, key.to_string(), range, download).await
        }
        ["assets", "style.css"] => {
            asset("text/css; charset=utf-8", include_str!("assets/style.css"))
        }
        ["assets", "app.js"] => asset(
            "text/javascript; charset=utf-8",
            include_str!("assets/app.js"),
        ),
        _ => not_found(),
    }
}

fn param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| match kv.split_once('=') {
            Some((k, v)) if k == name => Some(v),
            None if kv == name => Some(""),
            _ => None,
        })
}

fn not_found() -> Out {
    text(StatusCode::NOT_FOUND, "404: no such page or photo")
}

fn asset(ctype: &str, body: &'static str) -> Out {
    let mut r = respond(StatusCode::OK, ctype, body);
    set(&mut r, header::CACHE_CONTROL, "private, max-age=3600");
    r
}

fn failed(e: &anyhow::Error) -> Out {
    let msg = crate::exit::message(e);
    eprintln!("browse: {msg}");
    text(StatusCode::INTERNAL_SERVER_ERROR, &format!("500: {msg}"))
}

/// Render a page on a blocking thread, from the current view of the repository.
async fn page(
    state: &Arc<State>,
    f: impl FnOnce(&Library, &str) -> anyhow::Result<String> + Send + 'static,
) -> Out {
    let s = state.clone();
    match tokio::task::spawn_blocking(move || {
        let lib = s.live.fresh()?;
        f(&lib, &s.scope)
    })
    .await
    {
        Ok(Ok(body)) => html(body),
        Ok(Err(e)) => failed(&e),
        Err(e) => failed(&anyhow::anyhow!("rendering the page failed: {e}")),
    }
}

async fn photo(state: &Arc<State>, m: Month, key: String) -> Out {
    let s = state.clone();
    let made = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<String>> {
        let lib = s.live.fresh()?;
        let Some(info) = lib.photo(m, &key)? else {
            return Ok(None);
        };
        // The camera is in the EXIF block at the start of the file.
        let camera = match (info.row.kind.as_str(), lib.stored(&key)?) {
            ("photo", Some((content, _))) => media::head(&lib, &content)
                .ok()
                .and_then(|h| snapvault_media::preview(&h).camera),
            _ => None,
        };
        Ok(Some(pages::photo(
            &lib,
            &s.scope,
            m,
            &info,
            camera.as_deref(),
        )))
    })
    .await;
    match made {
        Ok(Ok(Some(body))) => html(body),
        Ok(Ok(None)) => not_found(),
        Ok(Err(e)) => failed(&e),
        Err(e) => failed(&anyhow::anyhow!("rendering the page failed: {e}")),
    }
}

/// How a picture of a stored file is made (`thumbs::thumb`, `thumbs::screen`).
type Maker = fn(
    &Library,
    Option<&PathBuf>,
    &str,
    &snapvault_catalog::StoredContent,
    &str,
) -> io::Result<thumbs::Thumb>;

/// A thumbnail or a photo page's picture: made at most [`thumbs::MAKERS`] at a time.
async fn picture(state: &Arc<State>, key: String, make: Maker) -> Out {
    let Ok(_permit) = state.makers.acquire().await else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "503: shutting down");
    };
    let s = state.clone();
    let again = key.clone();
    let made = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<thumbs::Thumb>> {
        let lib = s.live.get()?;
        let Some((content, name)) = lib.stored(&key)? else {
            return Ok(None);
        };
        if !media::matches_key(&key, &content.blobs) {
            anyhow::bail!("the photo catalog disagrees with the repository about {key}");
        }
        Ok(Some(make(&lib, s.thumbs.as_ref(), &key, &content, &name)?))
    })
    .await;
    let mut r = match made {
        Ok(Ok(Some(thumbs::Thumb::Image(b, mime)))) => respond(StatusCode::OK, mime, b),
        Ok(Ok(Some(thumbs::Thumb::Placeholder(p)))) => {
            let mut r = respond(StatusCode::OK, "image/svg+xml", p.svg());
            set(
                &mut r,
                header::HeaderName::from_static("x-snapvault-placeholder"),
                "1",
            );
            r
        }
        Ok(Ok(Some(thumbs::Thumb::Original))) => return original(state, again, None, false).await,
        Ok(Ok(None)) => return not_found(),
        Ok(Err(e)) => return failed(&e),
        Err(e) => return failed(&anyhow::anyhow!("making the picture failed: {e}")),
    };
    set(&mut r, header::CACHE_CONTROL, "private, max-age=86400");
    r
}

async fn original(state: &Arc<State>, key: String, range: Option<String>, download: bool) -> Out {
    let s = state.clone();
    let k = key.clone();
    let found = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let lib = s.live.get()?;
        Ok(lib.stored(&k)?.map(|x| (x, lib)))
    })
    .await;
    let ((content, name), lib) = match found {
        Ok(Ok(Some(x))) => x,
        Ok(Ok(None)) => return not_found(),
        Ok(Err(e)) => return failed(&e),
        Err(e) => return failed(&anyhow::anyhow!("looking up the photo failed: {e}")),
    };
    if !media::matches_key(&key, &content.blobs) {
        return failed(&anyhow::anyhow!(
            "the photo catalog disagrees with the repository about {key}"
        ));
    }
    let size = content.size;
    let (status, span) = match media::parse_range(range.as_deref(), size) {
        Ok(Some(r)) => (StatusCode::PARTIAL_CONTENT, r),
        Ok(None) => (StatusCode::OK, 0..size),
        Err(()) => {
            let mut r = text(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "416: range not satisfiable",
            );
            set(&mut r, header::CONTENT_RANGE, &format!("bytes */{size}"));
            return r;
        }
    };
    let (tx, rx) = mpsc::channel(2);
    let want = span.clone();
    tokio::task::spawn_blocking(move || media::stream(&lib, &content, want, tx));
    let mut r = Response::new(Streamed(rx).boxed());
    *r.status_mut() = status;
    set(&mut r, header::CONTENT_TYPE, media::content_type(&name));
    set(
        &mut r,
        header::CONTENT_LENGTH,
        &(span.end - span.start).to_string(),
    );
    set(&mut r, header::ACCEPT_RANGES, "bytes");
    set(&mut r, header::CACHE_CONTROL, "private, max-age=86400");
    set(&mut r, header::ETAG, &format!("\"{key}\""));
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            &mut r,
            header::CONTENT_RANGE,
            &format!("bytes {}-{}/{size}", span.start, span.end.saturating_sub(1)),
        );
    }
    if download {
        // The name as the phone had it, ASCII-safe; RFC 5987 form for the rest.
        let ascii: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() && c != '"' && c != '\\' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let encoded: String = name
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        set(
            &mut r,
            header::CONTENT_DISPOSITION,
            &format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"),
        );
    }
    r
}
