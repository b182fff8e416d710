use anyhow::Result;
use snapvault_repo::text::escaped;
use snapvault_source::{UsbmuxdAddress, list_devices_with};

use super::Ctx;
use crate::cli::DevicesArgs;

pub fn run(ctx: &Ctx, a: DevicesArgs) -> Result<i32> {
    let addr = UsbmuxdAddress::from_env()?;
    // The list guides the user through pairing a phone that does not trust this computer;
    // `--json` (for scripts) only reports, it never waits for someone to tap Trust.
    let devices = list_devices_with(&addr, &crate::iphone::options(!a.json))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&devices)?);
        return Ok(0);
    }
    if devices.is_empty() {
        ctx.say("no iPhone or iPad found: connect it with a USB cable and unlock it");
        return Ok(0);
    }
    println!(
        "{:<26} {:<20} {:<12} {:<8} trusted",
        "udid", "name", "model", "iOS"
    );
    // What the phones say about themselves is shown escaped (`--json` carries it exactly).
    for d in &devices {
        println!(
            "{:<26} {:<20} {:<12} {:<8} {}",
            escaped(&d.udid),
            escaped(&d.name),
            escaped(&d.model),
            escaped(&d.ios_version),
            if d.locked {
                "yes, but locked (unlock it with its passcode)"
            } else if d.paired {
                "yes"
            } else {
                "no (unlock the phone and tap Trust)"
            }
        );
    }
    Ok(0)
}
