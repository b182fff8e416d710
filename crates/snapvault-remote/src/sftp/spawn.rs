//! Starting `ssh` so that it cannot outlive snapvault or learn its secrets.
//!
//! - Its environment is cleared down to what ssh needs to find the user's keys, agent and
//!   configuration: no `SNAPVAULT_PASSWORD`, no `AWS_SECRET_ACCESS_KEY`.
//! - On Linux it is killed by the kernel when snapvault ends, however it ends (SIGKILL
//!   included): `PR_SET_PDEATHSIG`. That signal follows the *thread* that started the child,
//!   so every ssh is started from one thread that lives as long as the process.
//! - Elsewhere it ends when its stdin closes, which happens when snapvault's end of the pipe
//!   goes with the process.
//! - It runs in its own process group, so a Ctrl-C in the terminal reaches snapvault (which
//!   decides how to stop) and not ssh directly.
//! - No `ControlMaster`: one plain ssh process per connection, snapvault's own child, killed
//!   when the connection is dropped. Nothing detaches, nothing is left in a state folder.

use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::mpsc;

use tokio::process::{Child, Command};

/// Variables ssh may need; everything else stays out of its environment.
const PASSED_ENV: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "PATH",
    "SHELL",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "SSH_AUTH_SOCK",
    "KRB5CCNAME",
];

type Job = Box<dyn FnOnce() + Send>;

fn spawner() -> &'static Mutex<mpsc::Sender<Job>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        // Never ends while the process lives (the sender is in a static): children started
        // here are only signalled when the process itself goes. If the thread cannot start,
        // jobs are dropped and `spawn` says so.
        let _ = std::thread::Builder::new()
            .name("snapvault-ssh-spawner".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            });
        Mutex::new(tx)
    })
}

/// Start `cmd` (an ssh command line) as described in the module docs.
pub(crate) async fn spawn(mut cmd: Command) -> std::io::Result<Child> {
    cmd.env_clear();
    for k in PASSED_ENV {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    cmd.kill_on_drop(true).process_group(0);
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id();
        // SAFETY: prctl and getppid are async-signal-safe; nothing is allocated.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // snapvault died between fork and prctl: go now.
                if libc::getppid() as u32 != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
    let handle = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _rt = handle.enter();
        let _ = tx.send(cmd.spawn());
    });
    let sent = spawner()
        .lock()
        .map_err(|_| std::io::Error::other("the ssh spawner failed earlier"))?
        .send(job);
    if sent.is_err() {
        return Err(std::io::Error::other("cannot start ssh: no spawner thread"));
    }
    rx.await
        .map_err(|_| std::io::Error::other("cannot start ssh: no spawner thread"))?
}
