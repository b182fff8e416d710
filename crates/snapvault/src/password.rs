//! Where the password comes from: SNAPVAULT_PASSWORD, --password-file, --password-command,
//! or a no-echo prompt on a terminal. Never hangs when stdin is not a terminal.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

#[derive(Clone, Debug, Default)]
pub struct PasswordSource {
    pub env_var: &'static str,
    pub file: Option<PathBuf>,
    pub command: Option<String>,
}

const MAX_PASSWORD: u64 = 64 * 1024;

/// How many times a prompt asks before giving up.
pub const TRIES: usize = 3;

/// Every password typed at the prompt was wrong. Its own error (exit 12 like any wrong
/// password) so the hint does not send someone who typed it to SNAPVAULT_PASSWORD.
#[derive(Debug)]
pub struct TypedWrong;

impl std::fmt::Display for TypedWrong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wrong password: none of the {TRIES} passwords typed opens this repository"
        )
    }
}

impl std::error::Error for TypedWrong {}

impl PasswordSource {
    /// Was a password given without prompting (file, command or environment)?
    pub fn is_configured(&self) -> bool {
        self.file.is_some() || self.command.is_some() || std::env::var_os(self.env_var).is_some()
    }

    /// Will `get` ask on the terminal (nothing configured, stdin a terminal)?
    pub fn will_prompt(&self) -> bool {
        !self.is_configured() && std::io::stdin().is_terminal()
    }

    /// A new password (`init`, `key add`, `key passwd`): typed twice at a prompt, up to
    /// [`TRIES`] times; trivially weak ones are refused unless `allow_weak`.
    pub fn get_new(&self, what: &str, allow_weak: bool) -> Result<Vec<u8>> {
        let check = |pw: &[u8]| match crate::strength::weakness(pw) {
            Some(why) if !allow_weak => Err(anyhow::anyhow!(
                "the password is too weak ({why}): it alone protects the photos on a lost \
                 drive. Choose a longer one (four random words, say), or pass \
                 --allow-weak-password to use it anyway"
            )),
            _ => Ok(()),
        };
        if !self.will_prompt() {
            let pw = self.get(what, false)?;
            check(&pw)?;
            return Ok(pw);
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= TRIES;
            let pw = rpassword::prompt_password(format!("enter password for {what}: "))
                .context("reading the password from the terminal")?;
            let problem = match non_empty(pw.as_bytes().to_vec(), "the password")
                .and_then(|p| check(&p).map(|()| p))
            {
                Err(e) => Some(crate::exit::message(&e)),
                Ok(_) => {
                    let again = rpassword::prompt_password("enter it again: ")
                        .context("reading the password from the terminal")?;
                    (pw != again).then(|| "the two passwords differ".to_string())
                }
            };
            match problem {
                None => return Ok(pw.into_bytes()),
                Some(p) if last => bail!("{p}; nothing was changed"),
                Some(p) => eprintln!("{p}; try again ({} left)", TRIES - attempt),
            }
        }
    }

    /// Get the password; `confirm` asks twice when prompting (new passwords).
    pub fn get(&self, what: &str, confirm: bool) -> Result<Vec<u8>> {
        if let Some(f) = &self.file {
            let md = std::fs::metadata(f)
                .with_context(|| format!("reading password file {}", f.display()))?;
            if md.len() > MAX_PASSWORD {
                bail!("password file {} is larger than 64 KiB", f.display());
            }
            let s = std::fs::read(f)
                .with_context(|| format!("reading password file {}", f.display()))?;
            return non_empty(first_line(s), &format!("password file {}", f.display()));
        }
        if let Some(cmd) = &self.command {
            let out = Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()
                .with_context(|| format!("running password command {cmd:?}"))?;
            if !out.status.success() {
                bail!("password command {cmd:?} failed with {}", out.status);
            }
            return non_empty(first_line(out.stdout), "the password command's output");
        }
        if let Ok(v) = std::env::var(self.env_var) {
            return non_empty(v.into_bytes(), self.env_var);
        }
        if !std::io::stdin().is_terminal() {
            bail!(
                "no password given for {what}: set {}, or use --password-file or --password-command (stdin is not a terminal, so snapvault cannot ask)",
                self.env_var
            );
        }
        let pw = rpassword::prompt_password(format!("enter password for {what}: "))
            .context("reading the password from the terminal")?;
        if confirm {
            let again = rpassword::prompt_password("enter it again: ")
                .context("reading the password from the terminal")?;
            if pw != again {
                bail!("the two passwords differ; nothing was changed");
            }
        }
        non_empty(pw.into_bytes(), "the password")
    }
}

/// The first line, without its `\n` or `\r\n`: password managers print the password first
/// and notes after it (`pass show` adds `user: …` lines), so only the first line counts.
fn first_line(mut v: Vec<u8>) -> Vec<u8> {
    if let Some(end) = v.iter().position(|&b| b == b'\n') {
        v.truncate(end);
    }
    if v.last() == Some(&b'\r') {
        v.pop();
    }
    v
}

fn non_empty(v: Vec<u8>, what: &str) -> Result<Vec<u8>> {
    if v.is_empty() {
        bail!("empty password from {what}; refusing to use an empty password");
    }
    Ok(v)
}
