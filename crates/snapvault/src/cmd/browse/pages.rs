//! The three pages (timeline, month, photo) as HTML, rendered on the server into the one
//! template in `assets/page.html`. Every value from the repository is escaped.

use std::fmt::Write;

use anyhow::Result;

use super::library::{Counts, Filter, Library, Month, PhotoInfo};
use crate::fmt;

const PAGE: &str = include_str!("assets/page.html");

/// Text for HTML (element content and quoted attributes).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// `?f=…` for links, empty for "all".
fn fq(f: Filter) -> String {
    match f {
        Filter::All => String::new(),
        f => format!("?f={}", f.as_str()),
    }
}

fn layout(lib: &Library, scope: &str, title: &str, f: Filter, body: &str) -> String {
    let mut nav = String::new();
    let mut filters = vec![(Filter::All, "All photos")];
    if lib.knows_vanished() {
        filters.push((Filter::Vanished, "Vanished from the phone"));
    }
    filters.push((Filter::Damaged, "Damaged"));
    for (x, label) in filters {
        let on = if x == f { " class=\"on\"" } else { "" };
        let _ = write!(nav, "<a href=\"/{}\"{on}>{label}</a>", fq(x));
    }
    fill(
        PAGE,
        &[
            ("title", &esc(title)),
            ("nav", &nav),
            ("scope", &esc(scope)),
            ("body", body),
        ],
    )
}

/// The template with each `{{name}}` replaced by its value, in one pass: a value that
/// holds `{{body}}` (a photo named so) stays as it is, not filled in its turn.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let found = after.find("}}").and_then(|end| {
            let name = &after[..end];
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v, end + 2))
        });
        match found {
            Some((value, used)) => {
                out.push_str(value);
                rest = &after[used..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn counts_text(c: &Counts) -> String {
    let mut parts = vec![format!(
        "{} photo{}",
        c.photos,
        if c.photos == 1 { "" } else { "s" }
    )];
    if c.live > 0 {
        parts[0].push_str(&format!(" ({} Live)", c.live));
    }
    if c.videos > 0 {
        parts.push(format!(
            "{} video{}",
            c.videos,
            if c.videos == 1 { "" } else { "s" }
        ));
    }
    parts.join(" · ")
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

pub fn month_name(m: Month) -> String {
    match m {
        Month::Ym(y, mo) => format!(
            "{} {y}",
            MONTHS
                .get(usize::from(mo).saturating_sub(1))
                .unwrap_or(&"?")
        ),
        Month::Undated => "Without a capture date".into(),
    }
}

/// Years and months with their counts.
pub fn timeline(lib: &Library, scope: &str, f: Filter) -> Result<String> {
    let t = lib.timeline()?;
    let months = t.get(f);
    let mut body = String::new();
    let total = months.values().fold(Counts::default(), |mut a, c| {
        a.photos += c.photos;
        a.videos += c.videos;
        a.live += c.live;
        a
    });
    let heading = match f {
        Filter::All => "Timeline",
        Filter::Vanished => "Vanished from the phone",
        Filter::Damaged => "Damaged",
    };
    let _ = write!(
        body,
        "<h1>{heading}</h1><p class=\"muted\" id=\"total\">{} in {} month{}</p>",
        counts_text(&total),
        months.len(),
        if months.len() == 1 { "" } else { "s" }
    );
    if months.is_empty() {
        let why = match f {
            Filter::All => "No photos or videos in the repository yet.",
            Filter::Vanished => {
                "Every photo in the backups is still on the phone (as of its newest complete snapshot)."
            }
            Filter::Damaged => "No photo is touched by damage that `snapvault check` found.",
        };
        let _ = write!(body, "<p>{why}</p>");
    }
    let mut year: Option<Option<u16>> = None;
    for (m, c) in months.iter().rev() {
        let y = match m {
            Month::Ym(y, _) => Some(*y),
            Month::Undated => None,
        };
        if year != Some(y) {
            if year.is_some() {
                body.push_str("</div>");
            }
            let label = y.map_or("Undated".to_string(), |y| y.to_string());
            let _ = write!(body, "<h2>{label}</h2><div class=\"months\">");
            year = Some(y);
        }
        let _ = write!(
            body,
            "<a class=\"month\" data-month=\"{k}\" href=\"/month/{k}{q}\"><b>{name}</b><span>{counts}</span></a>",
            k = m.key(),
            q = fq(f),
            name = esc(&month_name(*m)),
            counts = counts_text(c),
        );
    }
    if year.is_some() {
        body.push_str("</div>");
    }
    Ok(layout(lib, scope, heading, f, &body))
}

/// A month's thumbnail grid, in capture order.
pub fn month(lib: &Library, scope: &str, m: Month, f: Filter) -> Result<String> {
    let rows = lib.month(m, f)?;
    let mut body = String::with_capacity(200 + rows.len() * 260);
    let _ = write!(
        body,
        "<h1>{}</h1><p class=\"muted\">{} item{}</p><div class=\"grid\">",
        esc(&month_name(m)),
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
    for r in &rows {
        let badge = if r.kind == "video" {
            "<span class=\"badge\">VIDEO</span>"
        } else if r.live {
            "<span class=\"badge\">LIVE</span>"
        } else {
            ""
        };
        let edited = if lib.edit_of(r).is_some() {
            "<span class=\"badge e\">EDITED</span>"
        } else {
            ""
        };
        let damaged = if lib.is_damaged(r) {
            "<span class=\"badge r\">DAMAGED</span>"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<a class=\"cell\" href=\"/photo/{mk}/{k}\" title=\"{t}\"><img src=\"/thumb/{k}\" alt=\"{t}\" loading=\"lazy\" decoding=\"async\" width=\"160\" height=\"160\">{badge}{edited}{damaged}</a>",
            mk = m.key(),
            k = r.content_key,
            t = esc(&format!(
                "{} {}",
                r.latest_path.rsplit('/').next().unwrap_or(""),
                r.taken.as_deref().unwrap_or("")
            )),
        );
    }
    body.push_str("</div>");
    Ok(layout(lib, scope, &month_name(m), f, &body))
}

/// `2023-07-14T18:03:11+02:00` as `2023-07-14 18:03:11 (UTC+02:00)`.
pub fn taken_text(t: &str) -> String {
    let (local, offset) = match t.get(19..) {
        Some(o) if !o.is_empty() => (t.get(..19).unwrap_or(t), Some(o)),
        _ => (t, None),
    };
    let local = local.replacen('T', " ", 1);
    match offset {
        Some("Z") => format!("{local} (UTC)"),
        Some(o) => format!("{local} (UTC{o})"),
        None => format!("{local} (no time zone recorded)"),
    }
}

/// One photo: the picture, its facts, where it is kept.
pub fn photo(lib: &Library, scope: &str, m: Month, p: &PhotoInfo, camera: Option<&str>) -> String {
    let r = &p.row;
    let name = r.latest_path.rsplit('/').next().unwrap_or(&r.latest_path);
    let k = &r.content_key;
    let mut body = String::new();
    let link = |key: &Option<String>, rel: &str, label: &str| match key {
        Some(x) => format!(
            "<a rel=\"{rel}\" href=\"/photo/{}/{x}\">{label}</a>",
            m.key()
        ),
        None => "<span></span>".into(),
    };
    let _ = write!(
        body,
        "<div class=\"pager\">{}<a href=\"/month/{mk}\">{month}</a>{}</div>",
        link(&p.prev, "prev", "← previous"),
        link(&p.next, "next", "next →"),
        mk = m.key(),
        month = esc(&month_name(m)),
    );
    let view = if r.kind == "video" {
        format!("<video id=\"media\" controls preload=\"metadata\" src=\"/original/{k}\"></video>")
    } else if super::media::browser_shows(name) {
        format!(
            "<img id=\"media\" src=\"/original/{k}\" alt=\"{}\">",
            esc(name)
        )
    } else if super::media::is_heif(name) {
        // A browser that shows HEIC (Safari) takes the original; the others a JPEG of it
        // at screen size, decoded on this computer.
        format!(
            "<picture><source srcset=\"/original/{k}\" type=\"{}\"><img id=\"media\" src=\"/screen/{k}\" alt=\"{}\"></picture>",
            super::media::content_type(name),
            esc(name)
        )
    } else {
        // Raw and TIFF files: most browsers cannot show them; the thumbnail stands in.
        format!(
            "<img id=\"media\" src=\"/thumb/{k}\" alt=\"{}\"><p class=\"muted\">This browser cannot show {} files; download the original to view it.</p>",
            esc(name),
            esc(name.rsplit('.').next().unwrap_or("these"))
        )
    };
    let motion = match &p.motion {
        Some(v) => format!(
            "<h2>Live Photo motion</h2><video id=\"motion\" controls loop playsinline preload=\"metadata\" src=\"/original/{}\"></video>",
            v.content_key
        ),
        None => String::new(),
    };
    let edit = match &p.edit {
        Some(e) => format!(
            "<h2>Edited version</h2><img id=\"edit\" src=\"/original/{e}\" alt=\"the edit made in Photos\"><p><a href=\"/original/{e}?download=1\">Download the edit</a></p>"
        ),
        None => String::new(),
    };
    let _ = write!(
        body,
        "<div class=\"photo\"><div class=\"view\">{view}{motion}{edit}</div><div class=\"facts\"><h1>{}</h1><dl>",
        esc(name)
    );
    let mut fact = |label: &str, value: String| {
        let _ = write!(body, "<dt>{label}</dt><dd>{value}</dd>");
    };
    fact(
        "Taken",
        format!(
            "<span id=\"taken\">{}</span>",
            esc(&r
                .taken
                .as_deref()
                .map_or("no capture date".into(), taken_text))
        ),
    );
    if let Some(src) = &r.date_source {
        fact("Date from", esc(src));
    }
    fact(
        "Kind",
        esc(if r.live {
            "Live Photo"
        } else {
            r.kind.as_str()
        }),
    );
    fact("Camera", esc(camera.unwrap_or("not recorded")));
    if p.edit.is_some() {
        fact(
            "Edited",
            "yes, in Photos: the edit is shown below the original".into(),
        );
    }
    fact("Size", format!("{} ({} bytes)", fmt::size(r.size), r.size));
    fact("Path on the phone", esc(&r.latest_path));
    if p.vanished {
        fact(
            "On the phone",
            "<span class=\"warn\">no longer: only the backups hold it</span>".into(),
        );
    }
    if p.icloud_only {
        fact(
            "On the phone",
            "<span id=\"icloud\">only in iCloud now (Optimize iPhone Storage): not deleted; the backups hold the original</span>".into(),
        );
    }
    if p.damaged {
        fact(
            "Damage",
            "<span class=\"warn\">part of it has no intact copy (see <code>snapvault check</code>)</span>".into(),
        );
    }
    if let (Some(first), Some(last)) = (p.holders.first(), p.holders.last()) {
        fact("First seen", esc(&fmt::time_ns(first.time)));
        fact("Last seen", esc(&fmt::time_ns(last.time)));
    }
    body.push_str("</dl>");
    let _ = write!(
        body,
        "<a class=\"btn\" id=\"download\" href=\"/original/{k}?download=1\">Download original</a>"
    );
    let _ = write!(
        body,
        "<h2>Snapshots holding it ({})</h2><table><tr><th>snapshot</th><th>time</th><th>path</th></tr>",
        p.holders.len()
    );
    for h in &p.holders {
        let _ = write!(
            body,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            h.snapshot.short(),
            esc(&fmt::time_ns(h.time)),
            esc(&h.path)
        );
    }
    body.push_str("</table></div></div>");
    layout(lib, scope, name, Filter::All, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_dates() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(
            taken_text("2023-07-14T18:03:11+02:00"),
            "2023-07-14 18:03:11 (UTC+02:00)"
        );
        assert_eq!(
            taken_text("2023-07-14T18:03:11"),
            "2023-07-14 18:03:11 (no time zone recorded)"
        );
        assert_eq!(month_name(Month::Ym(2023, 7)), "July 2023");
    }

    /// A photo named `{{body}}{{nav}}.JPG` is the photo page's title. Filled one value
    /// after another, the title took the whole page body and the navigation.
    #[test]
    fn a_value_that_looks_like_a_placeholder_is_not_filled_in() {
        let title = esc("{{body}}{{nav}}\".JPG");
        let page = fill(
            PAGE,
            &[
                ("title", &title),
                ("nav", "<a>NAV</a>"),
                ("scope", "all snapshots"),
                ("body", "<p>BODY</p>"),
            ],
        );
        assert!(
            page.contains("<title>{{body}}{{nav}}&quot;.JPG · snapvault</title>"),
            "{page}"
        );
        assert_eq!(page.matches("BODY").count(), 1, "{page}");
        assert_eq!(page.matches("NAV").count(), 1, "{page}");
    }
}
