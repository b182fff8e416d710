//! usbmuxd and lockdownd.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use snapvault_phonewire::lockdown as ld_wire;
use snapvault_phonewire::usbmuxd::{self, Request, result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::State;

/// lockdownd's port on the device.
pub(crate) const LOCKDOWN_PORT: u16 = 62078;
/// USB product id reported for the device (an iPhone).
const PRODUCT_ID: u16 = 0x12a8;

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
fn device_by_id(st: &State, id: u32) -> Option<usize> {
    if st.unplugged.load(Ordering::SeqCst) || id == 0 || id as usize > st.cfg.devices {
        return None;
    }
    Some(id as usize - 1)
}

fn location(index: usize) -> u32 {
    0x1410_0000 + index as u32 + 1
}

fn attached(st: &State, index: usize) -> plist::Dictionary {
    let id = index as u64 + 1;
    let mut props = plist::Dictionary::new();
    props.insert("ConnectionType".into(), "USB".into());
    props.insert("DeviceID".into(), id.into());
    props.insert("SerialNumber".into(), st.cfg.device_udid(index).into());
    props.insert("LocationID".into(), u64::from(location(index)).into());
    props.insert("ProductID".into(), u64::from(PRODUCT_ID).into());
    props.insert("ConnectionSpeed".into(), 480_000_000u64.into());
    props.insert("USBSerialNumber".into(), st.cfg.device_udid(index).into());
    let mut d = plist::Dictionary::new();
    d.insert("DeviceID".into(), id.into());
    d.insert("MessageType".into(), "Attached".into());
    d.insert("Properties".into(), plist::Value::Dictionary(props));
    d
}

fn result_dict(number: u64) -> plist::Dictionary {
    let mut d = plist::Dictionary::new();
    d.insert("MessageType".into(), "Result".into());
    d.insert("Number".into(), number.into());
    d
}

/// One usbmuxd client; replies in the protocol version it asked in.
struct Mux {
    s: TcpStream,
    tag: u32,
    binary: bool,
}

impl Mux {
    async fn send(&mut self, d: plist::Dictionary) -> io::Result<()> {
        let tag = self.tag;
        self.s.write_all(&usbmuxd::encode_plist(&d, tag)).await
    }

    async fn result(&mut self, number: u64) -> io::Result<()> {
        if self.binary {
            let tag = self.tag;
            self.s
                .write_all(&usbmuxd::encode_result_v0(tag, number as u32))
                .await
        } else {
            self.send(result_dict(number)).await
        }
    }
}

async fn mux_conn(s: TcpStream, st: Arc<State>) -> io::Result<()> {
    let mut m = Mux {
        s,
        tag: 0,
        binary: false,
    };
    loop {
        let mut hdr = [0u8; usbmuxd::HEADER_LEN];
        match m.s.read_exact(&mut hdr).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let h = usbmuxd::decode_header(&hdr).map_err(invalid)?;
        // Bounded by decode_header.
        let mut body = vec![0u8; h.body_len()];
        m.s.read_exact(&mut body).await?;
        m.tag = h.tag;
        m.binary = h.version == usbmuxd::VERSION_BINARY;
        if h.version > usbmuxd::VERSION_PLIST {
            // Like usbmuxd: an unknown protocol version gets an answer, in the binary form.
            m.binary = true;
            m.result(result::BADVERSION).await?;
            continue;
        }
        let req = match usbmuxd::decode_request(&h, &body) {
            Ok(Request::Other(_)) | Err(_) => {
                m.result(result::BADCOMMAND).await?;
                continue;
            }
            Ok(r) => r,
        };
        match req {
            Request::ListDevices => {
                let list: Vec<plist::Value> = if st.unplugged.load(Ordering::SeqCst) {
                    Vec::new()
                } else {
                    (0..st.cfg.devices)
                        .map(|i| plist::Value::Dictionary(attached(&st, i)))
                        .collect()
                };
                let mut d = plist::Dictionary::new();
                d.insert("DeviceList".into(), plist::Value::Array(list));
                m.send(d).await?;
            }
            Request::ListListeners => {
                let mut d = plist::Dictionary::new();
                d.insert("ListenerList".into(), plist::Value::Array(Vec::new()));
                m.send(d).await?;
            }
            Request::Listen => {
                m.result(result::OK).await?;
                if !st.unplugged.load(Ordering::SeqCst) {
                    for i in 0..st.cfg.devices {
                        if m.binary {
                            let udid = st.cfg.device_udid(i);
                            let rec = usbmuxd::encode_device_add_v0(
                                i as u32 + 1,
                                PRODUCT_ID,
                                &udid,
                                location(i),
                            );
                            m.s.write_all(&rec).await?;
                        } else {
                            m.tag = 0;
                            m.send(attached(&st, i)).await?;
                        }
                    }
                }
                // Hold the subscription until the client goes away.
                let mut sink = [0u8; 256];
                while m.s.read(&mut sink).await? > 0 {}
                return Ok(());
            }
            Request::ReadBuid => {
                let mut d = plist::Dictionary::new();
                d.insert("BUID".into(), crate::pairing::SYSTEM_BUID.into());
                m.send(d).await?;
            }
            Request::ReadPairRecord { id } => match device_by_udid(&st, &id) {
                Some(_) if st.cfg.paired => {
                    let mut d = plist::Dictionary::new();
                    let rec = crate::pairing::pair_record(&st.material, &id);
                    d.insert("PairRecordData".into(), plist::Value::Data(rec));
                    m.send(d).await?;
                }
                _ => m.result(result::BADDEV).await?,
            },
            Request::SavePairRecord { .. } | Request::DeletePairRecord { .. } => {
                m.result(result::OK).await?;
            }
            Request::Connect { device_id, port } => {
                let Some(index) = device_by_id(&st, device_id) else {
                    m.result(result::BADDEV).await?;
                    continue;
                };
                if port == LOCKDOWN_PORT {
                    m.result(result::OK).await?;
                    // From here on the socket is a raw pipe to lockdownd.
                    return lockdown(m.s, st, index).await;
                } else if port == crate::afc::AFC_PORT {
                    m.result(result::OK).await?;
                    return crate::afc::serve(m.s, st).await;
                } else {
                    m.result(result::CONNREFUSED).await?;
                }
            }
            Request::Other(_) => m.result(result::BADCOMMAND).await?,
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
    let len = ld_wire::decode_len(len).map_err(invalid)?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    ld_wire::decode_body(&body).map(Some).map_err(invalid)
}

async fn write_frame<S: AsyncWrite + Unpin>(s: &mut S, d: &plist::Dictionary) -> io::Result<()> {
    s.write_all(&ld_wire::encode_frame(d)).await?;
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
