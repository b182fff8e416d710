//! `snapvault-fakephone --library DIR [--port P] [switches…]`: serve a folder as a USB iPhone
//! on 127.0.0.1 until killed. Prints `USBMUXD_SOCKET_ADDRESS=127.0.0.1:P` first.

use std::io::Write;
use std::process::ExitCode;

use snapvault_fakephone::{FakePhone, FakePhoneConfig};

const USAGE: &str = "\
usage: snapvault-fakephone --library DIR [options]

Serves DIR as the media root of a fake USB iPhone (DIR/DCIM/100APPLE/... appears as
/DCIM/100APPLE/...) through usbmuxd on 127.0.0.1, then prints
USBMUXD_SOCKET_ADDRESS=127.0.0.1:PORT and serves until killed.

options:
  --port P                      usbmuxd TCP port (default: any free port)
  --socket PATH                 usbmuxd on a Unix socket at PATH instead (as the system's)
  --udid U  --name N  --model M --ios V
  --devices N                   attach N devices (0 = none; default 1)
  --unpaired                    no pair record: the host is not trusted
  --trust-revoked               the phone forgot this host (InvalidHostID)
  --trust-after SECONDS         on a Pair request the phone shows the Trust prompt; the user
                                taps Trust this many seconds later (default: never)
  --deny-trust                  the user taps Don't Trust instead (UserDeniedPairing)
  --locked                      passcode locked (StartService: PasswordProtected unless
                                the pair record's EscrowBag comes with it)
  --record-without-escrow-bag   usbmuxd's pair record holds no EscrowBag
  --disconnect-after-bytes N    unplug after serving N file bytes
  --stall                       never answer file reads
  --bytes-per-sec N             the link's bandwidth (all connections share it)
  --latency-ms MS               turnaround per AFC reply (pipelined requests overlap it)
  --icloud-only PATH            PATH (e.g. DCIM/100APPLE/IMG_0003.HEIC) fails to open; repeatable
  --max-open-files N            afcd's open file limit
  --report                      when an AFC connection ends, print on stderr the file bytes
                                it served and the time from the first to the last of them
";

/// Where usbmuxd listens.
enum Listen {
    Tcp(u16),
    Unix(std::path::PathBuf),
}

fn parse(args: &[String]) -> Result<(FakePhoneConfig, Listen), String> {
    let mut cfg = FakePhoneConfig::new("");
    let mut port = 0u16;
    let mut socket = None;
    let mut library = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let num = |name: &str, v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{name}: not a number: {v}"))
        };
        match a.as_str() {
            "--library" => library = Some(val(a)?),
            "--port" => port = u16::try_from(num(a, val(a)?)?).map_err(|_| "--port: too large")?,
            "--socket" => socket = Some(std::path::PathBuf::from(val(a)?)),
            "--udid" => cfg.udid = val(a)?,
            "--name" => cfg.name = val(a)?,
            "--model" => cfg.model = val(a)?,
            "--ios" => cfg.ios_version = val(a)?,
            "--devices" => cfg.devices = num(a, val(a)?)? as usize,
            "--unpaired" => cfg.paired = false,
            "--trust-revoked" => cfg.trust_revoked = true,
            "--trust-after" => {
                let v = val(a)?;
                let secs = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| format!("--trust-after: not a number of seconds: {v}"))?;
                cfg.trust_after = Some(std::time::Duration::from_secs_f64(secs));
            }
            "--deny-trust" => cfg.deny_trust = true,
            "--locked" => cfg.locked = true,
            "--record-without-escrow-bag" => cfg.record_without_escrow_bag = true,
            "--disconnect-after-bytes" => cfg.disconnect_after_bytes = Some(num(a, val(a)?)?),
            "--stall" => cfg.stall = true,
            "--bytes-per-sec" => cfg.bytes_per_sec = Some(num(a, val(a)?)?),
            "--latency-ms" => {
                let v = val(a)?;
                let ms = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && (0.0..=60_000.0).contains(s))
                    .ok_or_else(|| format!("--latency-ms: not a number of milliseconds: {v}"))?;
                cfg.latency = Some(std::time::Duration::from_secs_f64(ms / 1000.0));
            }
            "--icloud-only" => cfg.icloud_only.push(val(a)?),
            "--max-open-files" => cfg.max_open_files = Some(num(a, val(a)?)? as usize),
            "--report" => cfg.report = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    cfg.library = library.ok_or("--library DIR is required")?.into();
    let listen = match socket {
        Some(_) if port != 0 => return Err("--port and --socket do not go together".into()),
        Some(p) => Listen::Unix(p),
        None => Listen::Tcp(port),
    };
    Ok((cfg, listen))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cfg, listen) = match parse(&args) {
        Ok(c) => c,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("snapvault-fakephone: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let started = match listen {
        Listen::Tcp(port) => FakePhone::start_on(cfg, port),
        #[cfg(unix)]
        Listen::Unix(path) => FakePhone::start_unix(cfg, &path),
        #[cfg(not(unix))]
        Listen::Unix(path) => Err(std::io::Error::other(format!(
            "--socket {}: this system has no Unix sockets; use --port",
            path.display()
        ))),
    };
    let phone = match started {
        Ok(p) => p,
        Err(e) => {
            eprintln!("snapvault-fakephone: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("USBMUXD_SOCKET_ADDRESS={}", phone.usbmuxd_address());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_switches() {
        let a: Vec<String> = [
            "--library",
            "/tmp/x",
            "--port",
            "27100",
            "--locked",
            "--icloud-only",
            "DCIM/100APPLE/IMG_0003.HEIC",
            "--devices",
            "2",
            "--latency-ms",
            "1.5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (c, listen) = parse(&a).unwrap();
        assert!(matches!(listen, super::Listen::Tcp(27100)));
        assert!(c.locked && c.paired);
        assert_eq!(c.devices, 2);
        assert_eq!(c.icloud_only.len(), 1);
        assert_eq!(c.latency, Some(std::time::Duration::from_micros(1500)));
        let bad: Vec<String> = ["--library", "/x", "--latency-ms", "-1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(parse(&bad).is_err());
        assert!(parse(&["--bogus".to_string()]).is_err());
        assert!(parse(&[]).is_err());
    }
}
