//! usbmuxd and lockdownd.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use idevice::usbmuxd::server::{UsbmuxdServerRequest, UsbmuxdServerResponse};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::State;
use crate::wire::{self, USBMUXD_HEADER_LEN};

/// lockdownd's port on the device.
pub(crate) const LOCKDOWN_PORT: u16 = 62078;

/// usbmuxd result codes.
const RESULT_OK: u32 = 0;
const RESULT_BADCOMMAND: u32 = 1;
const RESULT_BADDEV: u32 = 2;
const RESULT_CONNREFUSED: u32 = 3;

pub(crate) async fn serve(listener: TcpListener, st: Arc<State>) {
    let mut shutdown = st.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            acc = listener.accept() => match acc {
                Ok((sock, _)) => {
                    st.connections.fetch_add(1, Ordering::SeqCst);
                    let _ = sock.set_nodelay(true);
                    let st = st.clone();
                    tokio::spawn(async move {
                        // Errors end one connection; the phone keeps serving.
                        let _ = mux_conn(sock, st).await;
                    });
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
        }
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Index of the attached device with `udid`.
fn device_by_udid(st: &State, udid: &str) -> Option<usize> {
    if st.unplugged.load(Ordering::SeqCst) {
        return None;
    }
    (0..st.cfg.devices).find(|&i| st.cfg.device_udid(i) == udid)
}

/// Index of the attached device with usbmuxd `DeviceID` `id` (ids are 1-based).
fn device_by_id(st: &State, id: u64) -> Option<usize> {
    if st.unplugged.load(Ordering::SeqCst) || id == 0 || id > st.cfg.devices as u64 {
        return None;
    }
    Some(id as usize - 1)
}

fn attached(st: &State, index: usize) -> plist::Dictionary {
    let id = index as u64 + 1;
    let mut props = plist::Dictionary::new();
    props.insert("ConnectionType".into(), "USB".into());
    props.insert("DeviceID".into(), id.into());
    props.insert("SerialNumber".into(), st.cfg.device_udid(index).into());
    props.insert("LocationID".into(), (0x1410_0000u64 + id).into());
    props.insert("ProductID".into(), 0x12a8u64.into());
    props.insert("ConnectionSpeed".into(), 480_000_000u64.into());
    props.insert("USBSerialNumber".into(), st.cfg.device_udid(index).into());
    let mut d = plist::Dictionary::new();
    d.insert("DeviceID".into(), id.into());
    d.insert("MessageType".into(), "Attached".into());
    d.insert("Properties".into(), plist::Value::Dictionary(props));
    d
}

async fn send_mux(s: &mut TcpStream, resp: UsbmuxdServerResponse, tag: u32) -> io::Result<()> {
    let bytes: Vec<u8> = resp.into_packet(tag).into();
    s.write_all(&bytes).await
}

async fn mux_conn(mut s: TcpStream, st: Arc<State>) -> io::Result<()> {
    loop {
        let mut hdr = [0u8; USBMUXD_HEADER_LEN];
        match s.read_exact(&mut hdr).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let h = wire::decode_usbmuxd_header(&hdr).map_err(invalid)?;
        // Bounded by decode_usbmuxd_header.
        let mut body = vec![0u8; h.body_len()];
        s.read_exact(&mut body).await?;
        let req = match wire::decode_usbmuxd_body(&h, &body) {
            Ok(r) => r,
            Err(_) => {
                send_mux(
                    &mut s,
                    UsbmuxdServerResponse::Result(RESULT_BADCOMMAND),
                    h.tag,
                )
                .await?;
                continue;
            }
        };
        match req {
            UsbmuxdServerRequest::ListDevices => {
                let list = if st.unplugged.load(Ordering::SeqCst) {
                    Vec::new()
                } else {
                    (0..st.cfg.devices)
                        .map(|i| plist::Value::Dictionary(attached(&st, i)))
                        .collect()
                };
                send_mux(&mut s, UsbmuxdServerResponse::DeviceList(list), h.tag).await?;
            }
            UsbmuxdServerRequest::Listen => {
                send_mux(&mut s, UsbmuxdServerResponse::Result(RESULT_OK), h.tag).await?;
                if !st.unplugged.load(Ordering::SeqCst) {
                    for i in 0..st.cfg.devices {
                        send_mux(&mut s, UsbmuxdServerResponse::Attached(attached(&st, i)), 0)
                            .await?;
                    }
                }
                // Hold the subscription until the client goes away.
                let mut sink = [0u8; 256];
                while s.read(&mut sink).await? > 0 {}
                return Ok(());
            }
            UsbmuxdServerRequest::ReadBuid => {
                let buid = crate::pairing::SYSTEM_BUID.to_string();
                send_mux(&mut s, UsbmuxdServerResponse::Buid(buid), h.tag).await?;
            }
            UsbmuxdServerRequest::ReadPairRecord { pair_record_id } => {
                let resp = match device_by_udid(&st, &pair_record_id) {
                    Some(_) if st.cfg.paired => UsbmuxdServerResponse::PairRecord(
                        crate::pairing::pair_record(&st.material, &pair_record_id),
                    ),
                    _ => UsbmuxdServerResponse::Result(RESULT_BADDEV),
                };
                send_mux(&mut s, resp, h.tag).await?;
            }
            UsbmuxdServerRequest::SavePairRecord { .. } => {
                send_mux(&mut s, UsbmuxdServerResponse::Result(RESULT_OK), h.tag).await?;
            }
            UsbmuxdServerRequest::Connect { device_id, port } => {
                let Some(index) = device_by_id(&st, device_id) else {
                    send_mux(&mut s, UsbmuxdServerResponse::Result(RESULT_BADDEV), h.tag).await?;
                    continue;
                };
                if port == LOCKDOWN_PORT {
                    send_mux(&mut s, UsbmuxdServerResponse::Result(RESULT_OK), h.tag).await?;
                    // From here on the socket is a raw pipe to lockdownd.
                    return lockdown(s, st, index).await;
                } else if port == crate::afc::AFC_PORT {
                    send_mux(&mut s, UsbmuxdServerResponse::Result(RESULT_OK), h.tag).await?;
                    return crate::afc::serve(s, st).await;
                } else {
                    send_mux(
                        &mut s,
                        UsbmuxdServerResponse::Result(RESULT_CONNREFUSED),
                        h.tag,
                    )
                    .await?;
                }
            }
        }
    }
}

// ---------------------------------------------------------------- lockdownd

#[derive(PartialEq, Eq)]
enum Next {
    Closed,
    StartTls,
}

async fn lockdown(mut s: TcpStream, st: Arc<State>, index: usize) -> io::Result<()> {
    if lockdown_loop(&mut s, &st, index, false).await? == Next::StartTls {
        let acceptor = tokio_rustls::TlsAcceptor::from(st.material.tls.clone());
        let mut tls = acceptor.accept(s).await?;
        lockdown_loop(&mut tls, &st, index, true).await?;
        let _ = tls.shutdown().await;
    }
    Ok(())
}

async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<Option<plist::Dictionary>> {
    let mut len = [0u8; 4];
    match s.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = wire::decode_lockdown_len(len).map_err(invalid)?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    wire::decode_lockdown_body(&body).map(Some).map_err(invalid)
}

async fn write_frame<S: AsyncWrite + Unpin>(s: &mut S, d: &plist::Dictionary) -> io::Result<()> {
    s.write_all(&wire::encode_lockdown_frame(d)).await?;
    s.flush().await
}

fn values(st: &State, index: usize) -> plist::Dictionary {
    let c = &st.cfg;
    let mut d = plist::Dictionary::new();
    d.insert("DeviceName".into(), c.device_name(index).into());
    d.insert("ProductType".into(), c.model.clone().into());
    d.insert("ProductVersion".into(), c.ios_version.clone().into());
    d.insert("UniqueDeviceID".into(), c.device_udid(index).into());
    d.insert("DeviceClass".into(), "iPhone".into());
    d.insert("ProductName".into(), "iPhone OS".into());
    d.insert("BuildVersion".into(), "21F90".into());
    d.insert("CPUArchitecture".into(), "arm64e".into());
    d.insert("HardwareModel".into(), "D73AP".into());
    d.insert("SerialNumber".into(), "F2LFAKE0PHONE".into());
    d.insert("ActivationState".into(), "Activated".into());
    d.insert("PasswordProtected".into(), c.locked.into());
    d.insert("TimeZone".into(), "Europe/Berlin".into());
    d
}

async fn lockdown_loop<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    st: &State,
    index: usize,
    in_session: bool,
) -> io::Result<Next> {
    loop {
        let Some(req) = read_frame(s).await? else {
            return Ok(Next::Closed);
        };
        let name = req
            .get("Request")
            .and_then(|v| v.as_string())
            .unwrap_or("")
            .to_string();
        let mut reply = plist::Dictionary::new();
        reply.insert("Request".into(), name.clone().into());
        let mut next = None;
        match name.as_str() {
            "QueryType" => {
                reply.insert("Type".into(), "com.apple.mobile.lockdown".into());
            }
            "GetValue" => {
                let key = req.get("Key").and_then(|v| v.as_string());
                let domain = req.get("Domain").and_then(|v| v.as_string());
                let all = values(st, index);
                match (domain, key) {
                    (None, None) => {
                        reply.insert("Value".into(), plist::Value::Dictionary(all));
                    }
                    (None, Some(k)) if all.contains_key(k) => {
                        reply.insert("Key".into(), k.into());
                        if let Some(v) = all.get(k) {
                            reply.insert("Value".into(), v.clone());
                        }
                    }
                    _ => {
                        reply.insert("Error".into(), "MissingValue".into());
                    }
                }
            }
            "StartSession" if in_session => {
                reply.insert("Error".into(), "SessionActive".into());
            }
            "StartSession" => {
                let host_ok =
                    req.get("HostID").and_then(|v| v.as_string()) == Some(crate::pairing::HOST_ID);
                if !st.cfg.paired || st.cfg.trust_revoked || !host_ok {
                    reply.insert("Error".into(), "InvalidHostID".into());
                } else {
                    reply.insert("EnableSessionSSL".into(), true.into());
                    reply.insert(
                        "SessionID".into(),
                        "9D3C1C2B-0000-4000-8000-FA4E5E551011".into(),
                    );
                    next = Some(Next::StartTls);
                }
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
                if st.cfg.locked {
                    reply.insert("Error".into(), "PasswordProtected".into());
                } else if service == "com.apple.afc" {
                    // Over USB AFC is plain: no EnableServiceSSL.
                    reply.insert("Port".into(), u64::from(crate::afc::AFC_PORT).into());
                } else {
                    reply.insert("Error".into(), "InvalidService".into());
                }
            }
            "StopSession" | "Goodbye" => {
                write_frame(s, &reply).await?;
                return Ok(Next::Closed);
            }
            _ => {
                reply.insert("Error".into(), "UnknownRequest".into());
            }
        }
        write_frame(s, &reply).await?;
        if let Some(n) = next {
            // TLS starts right after the StartSession reply, on the same socket.
            return Ok(n);
        }
    }
}
