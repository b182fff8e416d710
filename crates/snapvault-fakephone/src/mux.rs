//! usbmuxd: device list, pair records, and connections to the phone's ports.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use snapvault_phonewire::usbmuxd::{self, Request, result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Listener, Sock, State};

/// USB product id reported for the device (an iPhone).
const PRODUCT_ID: u16 = 0x12a8;

pub(crate) async fn serve(listener: Listener, st: Arc<State>) {
    let mut shutdown = st.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            acc = listener.accept() => match acc {
                Ok(sock) => {
                    st.connections.fetch_add(1, Ordering::SeqCst);
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
    s: Sock,
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

async fn mux_conn(s: Sock, st: Arc<State>) -> io::Result<()> {
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
            Request::ReadPairRecord { id } => {
                let rec = st.records().get(&id).cloned();
                match rec {
                    Some(rec) => {
                        let mut d = plist::Dictionary::new();
                        d.insert("PairRecordData".into(), plist::Value::Data(rec));
                        m.send(d).await?;
                    }
                    // usbmuxd answers ENOENT.
                    None => m.result(result::BADDEV).await?,
                }
            }
            Request::SavePairRecord { id, data } => {
                st.records().insert(id, data);
                m.result(result::OK).await?;
            }
            Request::DeletePairRecord { id } => {
                st.records().remove(&id);
                m.result(result::OK).await?;
            }
            Request::Connect { device_id, port } => {
                let Some(index) = device_by_id(&st, device_id) else {
                    m.result(result::BADDEV).await?;
                    continue;
                };
                if port == crate::lockdownd::PORT {
                    m.result(result::OK).await?;
                    // From here on the socket is a raw pipe to lockdownd.
                    return crate::lockdownd::serve(m.s, st, index).await;
                } else if st.phone(index).take_service_port(port) {
                    // A port handed out by StartService: one connection to it.
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
