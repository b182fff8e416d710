//! `snapvault demo`: a guided run on a generated sample library (a phone's media root with
//! edits, iCloud downloads and its Photos database), printing each step as a user would
//! type it. Each step runs this same executable, so what you see is real.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use snapvault_fakephone::{FakePhone, FakePhoneConfig};

use super::Ctx;
use crate::cli::DemoArgs;

const MARKER: &str = ".snapvault-demo";
const PASSWORD: &str = "correct horse battery staple";

pub fn run(ctx: &Ctx, a: DemoArgs) -> Result<i32> {
    let dir = std::path::absolute(&a.dir).context("resolving the demo folder")?;
    if dir.exists() {
        if !dir.join(MARKER).exists() && std::fs::read_dir(&dir)?.next().is_some() {
            bail!(
                "{} exists and is not an earlier demo folder; choose another with --dir",
                dir.display()
            );
        }
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "made by `snapvault demo`; safe to delete\n",
    )?;
    let library = dir.join("iPhone");
    // A media root in a real phone's shape: DCIM, edits in PhotoData/Mutations, iCloud
    // downloads in CPLAssets, and Photos.sqlite listing it all (with iCloud-only photos).
    // Its stills are JPEG pictures, so `browse` shows them: a sample HEIC's image is noise
    // (no HEVC encoder is in the build), which no decoder reads.
    let mut phone_lib = snapvault_photolib::sample::phone_library_with(
        &library,
        24,
        2026,
        snapvault_media::sample::Stills::Pictures,
    )
    .with_context(|| format!("writing the sample library to {}", library.display()))?;
    let files = phone_lib.files.clone();
    // A loopback iPhone serving the sample library over the real usbmuxd/lockdown/AFC protocols.
    let phone =
        FakePhone::start(FakePhoneConfig::new(&library)).context("starting the demo iPhone")?;
    let repo = dir.join("repo");
    ctx.say(format!(
        "snapvault demo: an emulated iPhone on {} with {} sample files (from {})\n(repository {}, password {PASSWORD:?})\n",
        phone.usbmuxd_address(),
        files.len(),
        library.display(),
        repo.display()
    ));
    let exe = std::env::current_exe().context("finding the snapvault executable")?;
    let step = |args: &[&str]| -> Result<()> {
        ctx.say(format!("$ snapvault {}", args.join(" ")));
        let status = Command::new(&exe)
            .args(args)
            .current_dir(&dir)
            .env("SNAPVAULT_REPOSITORY", &repo)
            .env("SNAPVAULT_PASSWORD", PASSWORD)
            .env("USBMUXD_SOCKET_ADDRESS", phone.usbmuxd_address())
            .env_remove("SNAPVAULT_PASSWORD_FILE")
            .env_remove("SNAPVAULT_PASSWORD_COMMAND")
            // The user's config file (a default iPhone, excludes) must not steer the demo.
            .env("SNAPVAULT_CONFIG", "/dev/null")
            .env_remove("SNAPVAULT_PROFILE")
            .env_remove("SNAPVAULT_DEVICE")
            .status()
            .with_context(|| format!("running snapvault {}", args[0]))?;
        ctx.say("");
        if !status.success() {
            bail!("demo step `snapvault {}` failed ({status})", args.join(" "));
        }
        Ok(())
    };
    step(&["init"])?;
    step(&["devices"])?;
    step(&["snapshot", "iphone", "--tag", "demo"])?;
    // Someone deletes a Live Photo on the phone, and "Optimize iPhone Storage" sends
    // another one to iCloud; the next snapshot tells the two apart.
    let victim = library.join("DCIM/100APPLE/IMG_0003");
    for ext in ["JPG", "MOV", "AAE"] {
        let _ = std::fs::remove_file(victim.with_extension(ext));
    }
    for ext in ["JPG", "MOV"] {
        let _ = std::fs::remove_file(library.join("DCIM/100APPLE/IMG_0005").with_extension(ext));
    }
    phone_lib.assets.retain(|a| a.filename != "IMG_0003.JPG");
    for a in phone_lib
        .assets
        .iter_mut()
        .filter(|a| a.filename == "IMG_0005.JPG")
    {
        a.cloud_only = true;
    }
    phone_lib
        .write_database()
        .context("updating the demo phone's Photos.sqlite")?;
    ctx.say("(IMG_0003, a Live Photo, is deleted on the phone; IMG_0005 goes to iCloud to free space)\n");
    step(&["snapshot", "iphone", "--tag", "demo"])?;
    step(&["photos", "--icloud-only"])?;
    step(&["snapshots"])?;
    step(&["diff", "latest~1", "latest"])?;
    step(&["restore", "latest", "--target", "restored"])?;
    for part in ["DCIM", "PhotoData/Mutations", "PhotoData/CPLAssets"] {
        same_tree(&library.join(part), &dir.join("restored").join(part))?;
    }
    ctx.say("restored files are byte-for-byte identical to the phone's\n");
    step(&["photos", "--date", "2023-07"])?;
    step(&[
        "restore",
        "--date",
        "2023-07",
        "--target",
        "july-2023",
        "--layout",
        "date",
    ])?;
    // A photo edited on the phone comes back with its edit beside it.
    if let Some((month, folder, original, edit)) = edited_photo(&phone_lib) {
        step(&["photos", "--date", &month, "--edited"])?;
        let target = format!("edited-{month}");
        step(&[
            "restore", "--date", &month, "--target", &target, "--layout", "date",
        ])?;
        let beside = dir.join(&target).join(&folder);
        if !beside.join(&original).is_file() || !beside.join(&edit).is_file() {
            bail!("the edit of {original} was not restored beside it as {folder}/{edit}");
        }
        ctx.say(format!(
            "the edit of {original} is restored beside it as {target}/{folder}/{edit}\n"
        ));
    }
    step(&["verify-device"])?;
    step(&["check", "--read-data"])?;
    phone.stop();
    ctx.say(format!("demo finished; everything is in {}", dir.display()));
    ctx.say(format!(
        "\nLook at the demo backup in your browser (read-only; Ctrl-C stops it):\n  \
         SNAPVAULT_PASSWORD={PASSWORD:?} snapvault browse --repo {}",
        repo.display()
    ));
    ctx.say(NEXT_STEPS);
    Ok(0)
}

/// An edited photo of the sample library: (its month `YYYY-MM`, its date folder `YYYY/MM`,
/// its name, its edit's name beside it).
fn edited_photo(
    lib: &snapvault_photolib::sample::PhoneLibrary,
) -> Option<(String, String, String, String)> {
    let path = lib.edited().into_iter().find(|p| p.starts_with("DCIM/"))?;
    let asset = lib
        .assets
        .iter()
        .find(|a| format!("{}/{}", a.directory, a.filename) == path)?;
    let offset = asset.tz_offset.map(|o| (o / 60) as i16);
    let taken = snapvault_media::CaptureTime::from_unix(asset.created_unix, offset).to_string();
    let month = taken.get(..7)?.to_string();
    let stem = asset.filename.rsplit_once('.')?.0;
    let edit = format!("{}.JPG", stem.replacen("IMG_", "IMG_E", 1));
    Some((
        month.clone(),
        month.replace('-', "/"),
        asset.filename.clone(),
        edit,
    ))
}

/// What to do after the demo: the same steps on one's own phone and drive.
const NEXT_STEPS: &str = "
Now back up your own phone:
  1. Plug in the drive for the backups; connect the iPhone with a USB cable, unlock it and
     tap Trust when it asks.
  2. snapvault devices                          # is the phone there, and does it trust you?
  3. export SNAPVAULT_REPOSITORY=/media/$USER/DRIVE/photos   # your drive's folder
     snapvault init                             # choose a password; keep it safe
  4. snapvault snapshot iphone                  # the first backup (later ones are quick)
  5. snapvault verify-device                    # which photos are safely stored
Then now and then: snapvault check --read-data, and an off-site copy with snapvault copy.
`snapvault --help` and docs/user-guide.md say more.";

/// Compare two folders byte for byte (the demo proves its own restore).
fn same_tree(a: &Path, b: &Path) -> Result<()> {
    for e in std::fs::read_dir(a)? {
        let e = e?;
        let (pa, pb) = (e.path(), b.join(e.file_name()));
        if e.file_type()?.is_dir() {
            same_tree(&pa, &pb)?;
        } else if std::fs::read(&pa)?
            != std::fs::read(&pb).with_context(|| format!("reading {}", pb.display()))?
        {
            bail!("{} differs after restore", pb.display());
        }
    }
    Ok(())
}
