//! lockdownd, with a real phone's rules: a small public set of values before a session; a
//! TLS session only for the host the phone trusts, which must present a client certificate
//! chaining to the paired root ([`crate::tls`]); `Pair` answered through the Trust prompt;
//! services (AFC) started only inside a session, and on a locked phone only with the pair
//! record's escrow bag.

use std::io;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use snapvault_phonewire::lockdown as wire;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::phone::{Answer, Trusted};
use crate::{Sock, State};

/// lockdownd's port on the device.
pub(crate) const PORT: u16 = 62078;
pub(crate) const AFC_SERVICE: &str = "com.apple.afc";

/// Keys of the default domain that a phone gives to anyone, before a session (what
/// `ideviceinfo -s` shows, plus the public key a pairing host needs).
const PUBLIC_KEYS: &[&str] = &[
    "BasebandVersion",
    "BoardId",
    "BuildVersion",
    "CPUArchitecture",
    "ChipID",
    "DeviceClass",
    "DeviceColor",
    "DeviceName",
    "DevicePublicKey",
    "HardwareModel",
    "ProductName",
    "ProductType",
    "ProductVersion",
    "ProtocolVersion",
    "TelephonyCapability",
    "UniqueChipID",
    "UniqueDeviceID",
    "WiFiAddress",
];

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

pub(crate) async fn serve(mut s: Sock, st: Arc<State>, index: usize) -> io::Result<()> {
    let Some(root_der) = session_loop(&mut s, &st, index, false).await? else {
        return Ok(());
    };
    let cfg = crate::tls::server_config(&st.material, &root_der).map_err(invalid)?;
    // A host without the paired certificate fails here, like on a phone.
    let mut tls = tokio_rustls::TlsAcceptor::from(cfg).accept(s).await?;
    session_loop(&mut tls, &st, index, true).await?;
    let _ = tls.shutdown().await;
    Ok(())
}

async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<Option<plist::Dictionary>> {
    let mut len = [0u8; 4];
    match s.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = wire::decode_len(len).map_err(invalid)?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    wire::decode_body(&body).map(Some).map_err(invalid)
}

async fn write_frame<S: AsyncWrite + Unpin>(s: &mut S, d: &plist::Dictionary) -> io::Result<()> {
    s.write_all(&wire::encode_frame(d)).await?;
    s.flush().await
}

/// The default domain: everything the phone tells a paired host.
fn values(st: &State, index: usize) -> plist::Dictionary {
    let c = &st.cfg;
    let mut d = plist::Dictionary::new();
    let mut put = |k: &str, v: plist::Value| {
        d.insert(k.into(), v);
    };
    put("DeviceName", c.device_name(index).into());
    put("ProductType", c.model.clone().into());
    put("ProductVersion", c.ios_version.clone().into());
    put("UniqueDeviceID", c.device_udid(index).into());
    put("DeviceClass", "iPhone".into());
    put("DeviceColor", "1".into());
    put("ProductName", "iPhone OS".into());
    put("BuildVersion", "21F90".into());
    put("BasebandVersion", "3.50.04".into());
    put("BoardId", 12u64.into());
    put("ChipID", 33056u64.into());
    put(
        "UniqueChipID",
        (0x001A_2B3C_4D5E_0000u64 + index as u64).into(),
    );
    put("CPUArchitecture", "arm64e".into());
    put("HardwareModel", "D73AP".into());
    put("ProtocolVersion", "2".into());
    put("TelephonyCapability", true.into());
    put("WiFiAddress", crate::pairing::WIFI_MAC.into());
    put(
        "DevicePublicKey",
        plist::Value::Data(st.material.device_public_pem.as_bytes().to_vec()),
    );
    put("SerialNumber", "F2LFAKE0PHONE".into());
    put("ActivationState", "Activated".into());
    put("PasswordProtected", c.locked.into());
    put("TimeZone", "Europe/Berlin".into());
    d
}

/// The values of a named domain (inside a session only).
fn domain(name: &str) -> Option<plist::Dictionary> {
    let mut d = plist::Dictionary::new();
    match name {
        "com.apple.disk_usage" => {
            let total: u64 = 128 << 30;
            d.insert("TotalDiskCapacity".into(), total.into());
            d.insert("TotalDataCapacity".into(), (total - (12 << 30)).into());
            d.insert("TotalDataAvailable".into(), (32u64 << 30).into());
            d.insert("AmountDataAvailable".into(), (32u64 << 30).into());
            d.insert("AmountDataReserved".into(), (1u64 << 30).into());
        }
        "com.apple.mobile.battery" => {
            d.insert("BatteryCurrentCapacity".into(), 87u64.into());
            d.insert("BatteryIsCharging".into(), true.into());
            d.insert("ExternalConnected".into(), true.into());
        }
        _ => return None,
    }
    Some(d)
}

fn get_value(
    st: &State,
    index: usize,
    req: &plist::Dictionary,
    session: bool,
    reply: &mut plist::Dictionary,
) {
    let key = req.get("Key").and_then(|v| v.as_string());
    let dom = req
        .get("Domain")
        .and_then(|v| v.as_string())
        .filter(|d| !d.is_empty());
    let all = match dom {
        None => {
            let mut v = values(st, index);
            if !session {
                v.retain(|k, _| PUBLIC_KEYS.contains(&k.as_str()));
            }
            Some(v)
        }
        Some(d) if session => domain(d),
        Some(_) => None,
    };
    if let Some(d) = dom {
        reply.insert("Domain".into(), d.into());
    }
    match (all, key) {
        (Some(all), None) => {
            reply.insert("Value".into(), plist::Value::Dictionary(all));
        }
        (Some(all), Some(k)) if all.contains_key(k) => {
            reply.insert("Key".into(), k.into());
            if let Some(v) = all.get(k) {
                reply.insert("Value".into(), v.clone());
            }
        }
        (_, k) => {
            if let Some(k) = k {
                reply.insert("Key".into(), k.into());
            }
            reply.insert("Error".into(), "MissingValue".into());
        }
    }
}

fn pem_der(record: &plist::Dictionary, key: &str) -> Option<Vec<u8>> {
    let bytes = match record.get(key)? {
        plist::Value::Data(d) => d.clone(),
        plist::Value::String(s) => s.as_bytes().to_vec(),
        _ => return None,
    };
    CertificateDer::from_pem_slice(&bytes)
        .ok()
        .map(|c| c.as_ref().to_vec())
}

/// `Pair`: checks the host's record (its host and device certificates must chain to its
/// root), then asks the user through the Trust prompt.
fn pair(st: &State, index: usize, req: &plist::Dictionary, reply: &mut plist::Dictionary) {
    if st.cfg.locked {
        reply.insert("Error".into(), "PasswordProtected".into());
        return;
    }
    let Some(record) = req.get("PairRecord").and_then(|v| v.as_dictionary()) else {
        reply.insert("Error".into(), "InvalidPairRecord".into());
        return;
    };
    let host_id = record.get("HostID").and_then(|v| v.as_string());
    let root = pem_der(record, "RootCertificate");
    let host = pem_der(record, "HostCertificate");
    let device = pem_der(record, "DeviceCertificate");
    let (Some(host_id), Some(root), Some(host), Some(device)) = (host_id, root, host, device)
    else {
        reply.insert("Error".into(), "InvalidPairRecord".into());
        return;
    };
    // Both certificates the host made must be signed by the root it hands over.
    if crate::tls::chains_to(&host, &root).is_err()
        || crate::tls::chains_to(&device, &root).is_err()
    {
        reply.insert("Error".into(), "InvalidPairRecord".into());
        return;
    }
    let mut phone = st.phone(index);
    let again = phone.trusted.as_ref().is_some_and(|t| t.host_id == host_id);
    let answer = if again {
        Answer::Trust
    } else {
        phone.prompt(&st.cfg)
    };
    match answer {
        Answer::Pending => {
            reply.insert("Error".into(), "PairingDialogResponsePending".into());
        }
        Answer::Deny => {
            reply.insert("Error".into(), "UserDeniedPairing".into());
        }
        Answer::Trust => {
            let escrow_bag = st.material.escrow_bag.clone();
            reply.insert("EscrowBag".into(), plist::Value::Data(escrow_bag.clone()));
            phone.pair(Trusted {
                host_id: host_id.to_string(),
                root_der: root,
                escrow_bag,
            });
        }
    }
}

/// Serves requests until the client leaves (`None`) or a session starts (`Some(root)`:
/// the trusted host's root certificate, for the TLS handshake that follows).
async fn session_loop<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    st: &State,
    index: usize,
    in_session: bool,
) -> io::Result<Option<Vec<u8>>> {
    loop {
        let Some(req) = read_frame(s).await? else {
            return Ok(None);
        };
        let name = req
            .get("Request")
            .and_then(|v| v.as_string())
            .unwrap_or("")
            .to_string();
        let mut reply = plist::Dictionary::new();
        reply.insert("Request".into(), name.clone().into());
        let mut start_tls = None;
        match name.as_str() {
            "QueryType" => {
                reply.insert("Type".into(), "com.apple.mobile.lockdown".into());
            }
            "GetValue" => get_value(st, index, &req, in_session, &mut reply),
            "Pair" => pair(st, index, &req, &mut reply),
            "StartSession" if in_session => {
                reply.insert("Error".into(), "SessionActive".into());
            }
            "ValidatePair" | "StartSession" => {
                let host_id = req
                    .get("HostID")
                    .or_else(|| {
                        req.get("PairRecord")
                            .and_then(|r| r.as_dictionary())
                            .and_then(|r| r.get("HostID"))
                    })
                    .and_then(|v| v.as_string());
                let trusted = st.phone(index).trusted.clone();
                match trusted {
                    Some(t) if Some(t.host_id.as_str()) == host_id => {
                        if name == "StartSession" {
                            reply.insert("EnableSessionSSL".into(), true.into());
                            reply.insert(
                                "SessionID".into(),
                                "9D3C1C2B-0000-4000-8000-FA4E5E551011".into(),
                            );
                            start_tls = Some(t.root_der);
                        }
                    }
                    _ => {
                        reply.insert("Error".into(), "InvalidHostID".into());
                    }
                }
            }
            "Unpair" => {
                let mut phone = st.phone(index);
                phone.trusted = None;
            }
            "StartService" if !in_session => {
                reply.insert("Error".into(), "SessionInactive".into());
            }
            "StartService" => {
                let service = req
                    .get("Service")
                    .and_then(|v| v.as_string())
                    .unwrap_or("")
                    .to_string();
                reply.insert("Service".into(), service.clone().into());
                let mut phone = st.phone(index);
                let bag = req.get("EscrowBag").and_then(|v| v.as_data());
                let unlocked_by_bag = phone
                    .trusted
                    .as_ref()
                    .is_some_and(|t| bag == Some(t.escrow_bag.as_slice()));
                if st.cfg.locked && !unlocked_by_bag {
                    reply.insert("Error".into(), "PasswordProtected".into());
                } else if service == AFC_SERVICE {
                    // Over USB AFC is plain: no EnableServiceSSL.
                    reply.insert("Port".into(), u64::from(phone.open_service_port()).into());
                } else {
                    reply.insert("Error".into(), "InvalidService".into());
                }
            }
            "StopSession" | "Goodbye" => {
                write_frame(s, &reply).await?;
                return Ok(None);
            }
            _ => {
                reply.insert("Error".into(), "UnknownRequest".into());
            }
        }
        write_frame(s, &reply).await?;
        if start_tls.is_some() {
            // TLS starts right after the StartSession reply, on the same socket.
            return Ok(start_tls);
        }
    }
}
