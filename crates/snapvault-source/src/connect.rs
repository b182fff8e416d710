//! Connecting: finding the phone through usbmuxd, its pair record (pairing first when the
//! phone does not trust this computer), the lockdown session and the AFC connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use idevice::lockdown::LockdownClient;
use idevice::pairing_file::PairingFile;
use idevice::{Idevice, IdeviceError};

use crate::afc::AfcConn;
use crate::error::{SourceError, from_device_io, from_idevice};
use crate::guard::FrameGuard;
use crate::mux::{self, timed};
use crate::runtime::Runtime;
use crate::wire::usbmuxd::MuxDevice;
use crate::{DeviceInfo, DeviceOptions, PairingEvent, UsbmuxdAddress};

pub(crate) const LOCKDOWN_PORT: u16 = 62078;
const AFC_SERVICE: &str = "com.apple.afc";

fn pick(devs: Vec<MuxDevice>, udid: Option<&str>) -> Result<MuxDevice, SourceError> {
    match udid {
        Some(u) => devs
            .into_iter()
            .find(|d| d.udid.eq_ignore_ascii_case(u))
            .ok_or_else(|| SourceError::UnknownDevice { udid: u.into() }),
        None => {
            let mut devs = devs;
            match devs.len() {
                0 => Err(SourceError::NoDevice),
                1 => Ok(devs.remove(0)),
                _ => Err(SourceError::SeveralDevices {
                    udids: devs.into_iter().map(|d| d.udid).collect(),
                }),
            }
        }
    }
}

/// A value lockdownd may refuse (`Ok(None)`); transport failures are errors.
async fn get_str(ld: &mut LockdownClient, key: &str) -> Result<Option<String>, SourceError> {
    match ld.get_value(Some(key), None).await {
        Ok(v) => Ok(v.as_string().map(str::to_owned)),
        Err(IdeviceError::Socket(e)) => Err(from_device_io(e)),
        Err(IdeviceError::NoEstablishedConnection) => Err(SourceError::Disconnected),
        Err(_) => Ok(None),
    }
}

/// Talks to lockdownd: reads name/model/version, then (with a pairing record) opens a TLS
/// session and, if asked, starts AFC. Returns the info and AFC's `(port, ssl)`.
async fn lockdown(
    addr: &UsbmuxdAddress,
    dev: &MuxDevice,
    pairing: Option<&PairingFile>,
    label: &str,
    start_afc: bool,
    info: &mut DeviceInfo,
) -> Result<Option<(u16, bool)>, SourceError> {
    let sock = mux::connect(addr, dev.device_id, LOCKDOWN_PORT).await?;
    let tls = Arc::new(AtomicBool::new(false));
    let guarded = FrameGuard::lockdown(sock, tls.clone());
    let mut ld = LockdownClient::new(Idevice::new(Box::new(guarded), label));
    // Readable without a session, like `ideviceinfo -s`.
    info.name = get_str(&mut ld, "DeviceName").await?.unwrap_or_default();
    info.model = get_str(&mut ld, "ProductType").await?.unwrap_or_default();
    info.ios_version = get_str(&mut ld, "ProductVersion")
        .await?
        .unwrap_or_default();
    let Some(pairing) = pairing else {
        return Err(SourceError::NotTrusted);
    };
    tls.store(true, Ordering::SeqCst);
    ld.start_session(pairing).await.map_err(from_idevice)?;
    info.paired = true;
    if !start_afc {
        return Ok(None);
    }
    // With the pair record's escrow bag, as Finder and iTunes send it
    // (`AMDeviceSecureStartService`): a locked phone that was unlocked once since it started
    // still starts the service. Without a bag a locked phone refuses (`Locked`: unlock it).
    let svc = ld
        .start_service_with_escrow(AFC_SERVICE, pairing.escrow_bag.clone())
        .await
        .map_err(from_idevice)?;
    Ok(Some(svc))
}

fn parse_pairing(record: Option<Vec<u8>>) -> Option<PairingFile> {
    record.and_then(|r| PairingFile::from_bytes(&r).ok())
}

/// Pairs with `dev` if `opts` allow it, else fails with `otherwise` (what the phone's state
/// is without pairing).
async fn pair_or(
    addr: &UsbmuxdAddress,
    dev: &MuxDevice,
    opts: &DeviceOptions,
    otherwise: SourceError,
) -> Result<PairingFile, SourceError> {
    let Some(pairing) = &opts.pairing else {
        return Err(otherwise);
    };
    let record = crate::pair::pair(addr, dev, opts, pairing).await?;
    PairingFile::from_bytes(&record)
        .map_err(|e| SourceError::Protocol(format!("the new pairing record: {e}")))
}

fn blank_info(dev: &MuxDevice) -> DeviceInfo {
    DeviceInfo {
        udid: dev.udid.clone(),
        name: String::new(),
        model: String::new(),
        ios_version: String::new(),
        paired: false,
        locked: false,
    }
}

pub(crate) async fn connect_async(
    addr: UsbmuxdAddress,
    udid: Option<String>,
    opts: DeviceOptions,
) -> Result<(DeviceInfo, Arc<AfcConn>), SourceError> {
    let t = opts.timeout;
    let devs = timed(t, "listing devices", mux::list(&addr)).await?;
    let dev = pick(devs, udid.as_deref())?;
    let record = timed(
        t,
        "reading the pairing record",
        mux::pair_record(&addr, &dev.udid),
    )
    .await?;
    // No record, or one we cannot use: the host has to be trusted (again).
    let mut pairing = match parse_pairing(record) {
        Some(p) => p,
        None => pair_or(&addr, &dev, &opts, SourceError::NotTrusted).await?,
    };
    let mut info = blank_info(&dev);
    let mut svc = timed(
        t,
        "starting a lockdown session",
        lockdown(&addr, &dev, Some(&pairing), &opts.label, true, &mut info),
    )
    .await;
    if matches!(svc, Err(SourceError::TrustRevoked)) && opts.pairing.is_some() {
        // The phone forgot this computer: pair again, then use the new record.
        pairing = pair_or(&addr, &dev, &opts, SourceError::TrustRevoked).await?;
        svc = timed(
            t,
            "starting a lockdown session",
            lockdown(&addr, &dev, Some(&pairing), &opts.label, true, &mut info),
        )
        .await;
    }
    let (port, ssl) = svc?.ok_or_else(|| SourceError::Protocol("AFC was not started".into()))?;
    let sock = timed(
        t,
        "connecting to AFC",
        mux::connect(&addr, dev.device_id, port),
    )
    .await?;
    let sock = if ssl {
        // Only seen over Wi-Fi: AFC inside TLS (records bounded by rustls).
        let mut idev = Idevice::new(sock, opts.label.as_str());
        timed(t, "starting TLS for AFC", async {
            idev.start_session(&pairing, false)
                .await
                .map_err(from_idevice)
        })
        .await?;
        idev.get_socket()
            .ok_or_else(|| SourceError::Protocol("AFC over TLS has no connection".into()))?
    } else {
        sock
    };
    Ok((info, AfcConn::start(sock, t)))
}

async fn list_async(
    addr: UsbmuxdAddress,
    opts: DeviceOptions,
) -> Result<Vec<DeviceInfo>, SourceError> {
    let timeout = opts.timeout;
    let devs = timed(timeout, "listing devices", mux::list(&addr)).await?;
    let mut out = Vec::with_capacity(devs.len());
    for dev in devs {
        let mut info = blank_info(&dev);
        let record = timed(
            timeout,
            "reading the pairing record",
            mux::pair_record(&addr, &dev.udid),
        )
        .await?;
        let mut pairing = parse_pairing(record);
        // A device that refuses us (untrusted, trust revoked, unplugged meanwhile) is still
        // listed, with what it told us. Starting the file service (not using it) is what
        // tells a locked phone from a ready one.
        let mut tries = 0;
        let started = loop {
            tries += 1;
            let started = timed(
                timeout,
                "asking the iPhone for its name",
                lockdown(&addr, &dev, pairing.as_ref(), &opts.label, true, &mut info),
            )
            .await;
            let untrusted = match &started {
                Err(SourceError::NotTrusted) => SourceError::NotTrusted,
                Err(SourceError::TrustRevoked) => SourceError::TrustRevoked,
                _ => break started,
            };
            if tries > 1 || opts.pairing.is_none() {
                break started;
            }
            match pair_or(&addr, &dev, &opts, untrusted).await {
                Ok(p) => pairing = Some(p),
                Err(e) => {
                    if let Some(p) = &opts.pairing {
                        (p.notify)(&PairingEvent::Failed {
                            udid: &dev.udid,
                            name: &info.name,
                            error: &e,
                        });
                    }
                    break started;
                }
            }
        };
        info.locked = info.paired && matches!(started, Err(SourceError::Locked));
        out.push(info);
    }
    Ok(out)
}

/// Lists the iPhones attached over USB, with name, model, iOS version and whether this
/// computer is trusted (a lockdown session can be opened). 30 s timeout per step.
pub fn list_devices(addr: &UsbmuxdAddress) -> Result<Vec<DeviceInfo>, SourceError> {
    list_devices_with_timeout(addr, DeviceOptions::default().timeout)
}

/// [`list_devices`] with a chosen per-step timeout.
pub fn list_devices_with_timeout(
    addr: &UsbmuxdAddress,
    timeout: Duration,
) -> Result<Vec<DeviceInfo>, SourceError> {
    list_devices_with(
        addr,
        &DeviceOptions {
            timeout,
            ..DeviceOptions::default()
        },
    )
}

/// [`list_devices`] with `opts`' timeout and label; with [`DeviceOptions::pairing`], a phone
/// that does not trust this computer is paired through its Trust prompt first (a pairing
/// that fails leaves it listed as not paired and is told as [`PairingEvent::Failed`]).
pub fn list_devices_with(
    addr: &UsbmuxdAddress,
    opts: &DeviceOptions,
) -> Result<Vec<DeviceInfo>, SourceError> {
    let rt = Runtime::start()?;
    rt.run(list_async(addr.clone(), opts.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picking_devices() {
        let d = |u: &str| MuxDevice {
            device_id: 1,
            udid: u.into(),
            usb: true,
        };
        assert!(matches!(pick(vec![], None), Err(SourceError::NoDevice)));
        assert!(matches!(
            pick(vec![d("a"), d("b")], None),
            Err(SourceError::SeveralDevices { udids }) if udids == ["a", "b"]
        ));
        assert_eq!(pick(vec![d("a"), d("b")], Some("b")).unwrap().udid, "b");
        assert!(matches!(
            pick(vec![d("a")], Some("z")),
            Err(SourceError::UnknownDevice { .. })
        ));
    }
}
