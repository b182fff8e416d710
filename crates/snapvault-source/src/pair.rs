//! Pairing: making this computer trusted by a phone that does not trust it yet (no pair
//! record in usbmuxd, or the phone forgot us), the way pairing hosts do it.
//!
//! 1. usbmuxd's `ReadBUID` gives the `SystemBUID`; lockdownd (no session needed) gives the
//!    phone's `DevicePublicKey` and `WiFiAddress`.
//! 2. A new pair record: RSA-2048 root CA and host keys, the root's, the host's and the
//!    device's certificates (`snapvault_phonewire::pairing`, the same code the fake phone
//!    makes its records with), a fresh `HostID`.
//! 3. lockdown `Pair` with the record (no private keys). While the phone shows "Trust This
//!    Computer?" it answers `PairingDialogResponsePending`: the caller is told once, and the
//!    request is repeated every second until the user answers or [`Pairing::wait`] ends.
//!    `UserDeniedPairing` and `PasswordProtected` end it with what to do.
//! 4. On success the phone hands out its `EscrowBag`; the whole record goes to usbmuxd
//!    (`SavePairRecord`), which keeps it for every later connection.

use std::time::{Duration, Instant};

use snapvault_phonewire::pairing::{self as records, HostCertificates, PairRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::connect::LOCKDOWN_PORT;
use crate::error::{SourceError, from_device_io};
use crate::mux::{self, Socket, timed};
use crate::wire::lockdown as wire;
use crate::wire::usbmuxd::MuxDevice;
use crate::{DeviceOptions, Pairing, PairingEvent, UsbmuxdAddress};

/// How often `Pair` is asked again while the Trust prompt is up.
const RETRY: Duration = Duration::from_secs(1);

/// A lockdown connection before any session: plain frames (bounded by the shared codec).
struct Plain {
    s: Socket,
    timeout: Duration,
}

impl Plain {
    async fn connect(
        addr: &UsbmuxdAddress,
        dev: &MuxDevice,
        timeout: Duration,
    ) -> Result<Plain, SourceError> {
        let s = timed(
            timeout,
            "connecting to lockdown",
            mux::connect(addr, dev.device_id, LOCKDOWN_PORT),
        )
        .await?;
        Ok(Plain { s, timeout })
    }

    async fn request(
        &mut self,
        what: &str,
        d: &plist::Dictionary,
    ) -> Result<plist::Dictionary, SourceError> {
        let s = &mut self.s;
        let frame = wire::encode_frame(d);
        timed(self.timeout, what, async move {
            s.write_all(&frame).await.map_err(from_device_io)?;
            s.flush().await.map_err(from_device_io)?;
            let mut len = [0u8; 4];
            s.read_exact(&mut len).await.map_err(from_device_io)?;
            let len = wire::decode_len(len).map_err(|e| protocol(&e))?;
            let mut body = vec![0u8; len];
            s.read_exact(&mut body).await.map_err(from_device_io)?;
            wire::decode_body(&body).map_err(|e| protocol(&e))
        })
        .await
    }

    /// A value of the default domain that the phone gives before a session.
    async fn value(&mut self, key: &str) -> Result<Option<plist::Value>, SourceError> {
        let mut d = plist::Dictionary::new();
        d.insert("Label".into(), "snapvault".into());
        d.insert("Request".into(), "GetValue".into());
        d.insert("Key".into(), key.into());
        let reply = self.request(&format!("asking for {key}"), &d).await?;
        Ok(reply.get("Value").cloned())
    }
}

fn protocol(e: &dyn std::fmt::Display) -> SourceError {
    SourceError::Protocol(format!("lockdown: {e}"))
}

fn pair_request(record: &PairRecord, label: &str) -> plist::Dictionary {
    let mut options = plist::Dictionary::new();
    options.insert("ExtendedPairingErrors".into(), true.into());
    let mut d = plist::Dictionary::new();
    d.insert("Label".into(), label.into());
    d.insert("Request".into(), "Pair".into());
    d.insert(
        "PairRecord".into(),
        plist::Value::Dictionary(record.for_phone()),
    );
    d.insert("PairingOptions".into(), plist::Value::Dictionary(options));
    d.insert("ProtocolVersion".into(), "2".into());
    d
}

/// Pairs with `dev` through its Trust prompt and has usbmuxd keep the record. Returns the
/// record (plist bytes, as `ReadPairRecord` would give it).
pub(crate) async fn pair(
    addr: &UsbmuxdAddress,
    dev: &MuxDevice,
    opts: &DeviceOptions,
    pairing: &Pairing,
) -> Result<Vec<u8>, SourceError> {
    let t = opts.timeout;
    let system_buid = timed(t, "asking usbmuxd for its BUID", mux::read_buid(addr)).await?;
    let mut ld = Plain::connect(addr, dev, t).await?;
    let name = match ld.value("DeviceName").await? {
        Some(plist::Value::String(n)) => n,
        _ => String::new(),
    };
    let key = match ld.value("DevicePublicKey").await? {
        Some(plist::Value::Data(k)) => k,
        _ => {
            return Err(SourceError::Protocol(
                "the iPhone did not give its public key (DevicePublicKey) for pairing".into(),
            ));
        }
    };
    let wifi_mac = match ld.value("WiFiAddress").await? {
        Some(plist::Value::String(m)) => m,
        _ => String::new(),
    };
    drop(ld);
    let public =
        records::parse_device_public_key(&key).map_err(|e| SourceError::Protocol(e.to_string()))?;
    // Two RSA key generations: off the runtime thread.
    let certs = tokio::task::spawn_blocking(move || HostCertificates::generate(&public))
        .await
        .map_err(|e| SourceError::Protocol(format!("making the pairing keys: {e}")))?
        .map_err(|e| SourceError::Protocol(e.to_string()))?;
    let mut record = PairRecord {
        certs,
        host_id: records::new_host_id(),
        system_buid,
        wifi_mac,
        escrow_bag: None,
        udid: Some(dev.udid.clone()),
    };
    let request = pair_request(&record, &opts.label);

    let started = Instant::now();
    let mut prompted = false;
    let reply = loop {
        // A fresh connection for each try, as a tool run again would use.
        let mut ld = Plain::connect(addr, dev, t).await?;
        let reply = ld.request("pairing", &request).await?;
        match wire::error_of(&reply) {
            None => break reply,
            Some("PairingDialogResponsePending") => {
                if !prompted {
                    prompted = true;
                    (pairing.notify)(&PairingEvent::WaitingForTrust {
                        udid: &dev.udid,
                        name: &name,
                    });
                }
                let waited = started.elapsed();
                if waited >= pairing.wait {
                    return Err(SourceError::TrustTimeout {
                        secs: pairing.wait.as_secs().max(1),
                        name,
                        udid: dev.udid.clone(),
                    });
                }
                tokio::time::sleep(RETRY.min(pairing.wait - waited)).await;
            }
            Some("UserDeniedPairing") => return Err(SourceError::TrustDenied),
            Some("PasswordProtected") => return Err(SourceError::LockedForPairing),
            Some(other) => {
                return Err(SourceError::Protocol(format!(
                    "the iPhone refused to pair: {other}"
                )));
            }
        }
    };
    record.escrow_bag = match reply.get("EscrowBag") {
        Some(plist::Value::Data(b)) => Some(b.clone()),
        _ => None,
    };
    let bytes = record.to_plist();
    timed(
        t,
        "saving the pairing record",
        mux::save_pair_record(addr, &dev.udid, dev.device_id, bytes.clone()),
    )
    .await?;
    (pairing.notify)(&PairingEvent::Paired {
        udid: &dev.udid,
        name: &name,
    });
    Ok(bytes)
}
