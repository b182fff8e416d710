//! The fake phone is as strict as a real one. These tests talk to it with a small client of
//! their own (the shared frame codecs, tokio-rustls), not through idevice, so what they
//! check does not depend on the client snapvault uses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use snapvault_fakephone::{FakePhone, FakePhoneConfig};
use snapvault_phonewire::{lockdown, usbmuxd};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

fn library(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fakephone-strict-{test}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("DCIM/100APPLE")).unwrap();
    std::fs::write(dir.join("DCIM/100APPLE/IMG_0001.HEIC"), b"heic").unwrap();
    dir
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn dict(pairs: &[(&str, plist::Value)]) -> plist::Dictionary {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

async fn mux(addr: &str, d: plist::Dictionary) -> (TcpStream, plist::Dictionary) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&usbmuxd::encode_plist(&d, 1)).await.unwrap();
    let mut h = [0u8; 16];
    s.read_exact(&mut h).await.unwrap();
    let h = usbmuxd::decode_header(&h).unwrap();
    let mut body = vec![0u8; h.body_len()];
    s.read_exact(&mut body).await.unwrap();
    (s, usbmuxd::decode_body(&body).unwrap())
}

/// usbmuxd `Connect` to `port` of device 1: the socket, or the refusal's number.
async fn connect(addr: &str, port: u16) -> Result<TcpStream, u64> {
    let (s, r) = mux(
        addr,
        dict(&[
            ("MessageType", "Connect".into()),
            ("DeviceID", 1u64.into()),
            ("PortNumber", u64::from(port.to_be()).into()),
        ]),
    )
    .await;
    match usbmuxd::result_number(&r) {
        Some(0) => Ok(s),
        n => Err(n.unwrap_or(u64::MAX)),
    }
}

async fn pair_record(addr: &str, udid: &str) -> Option<plist::Dictionary> {
    let (_, r) = mux(
        addr,
        dict(&[
            ("MessageType", "ReadPairRecord".into()),
            ("PairRecordID", udid.into()),
        ]),
    )
    .await;
    let data = r.get("PairRecordData")?.as_data()?;
    Some(plist::from_bytes(data).unwrap())
}

async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    d: plist::Dictionary,
) -> plist::Dictionary {
    s.write_all(&lockdown::encode_frame(&d)).await.unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut body = vec![0u8; lockdown::decode_len(len).unwrap()];
    s.read_exact(&mut body).await.unwrap();
    lockdown::decode_body(&body).unwrap()
}

fn get(key: Option<&str>, domain: Option<&str>) -> plist::Dictionary {
    let mut d = dict(&[("Request", "GetValue".into())]);
    if let Some(k) = key {
        d.insert("Key".into(), k.into());
    }
    if let Some(dm) = domain {
        d.insert("Domain".into(), dm.into());
    }
    d
}

fn error(d: &plist::Dictionary) -> Option<&str> {
    lockdown::error_of(d)
}

#[derive(Debug)]
struct AnyServer;

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A host certificate and its key (DER), or none.
type Identity = Option<(Vec<u8>, Vec<u8>)>;

/// StartSession as `host_id`, then the TLS handshake presenting `identity`.
async fn session(
    addr: &str,
    host_id: &str,
    identity: Identity,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let mut s = connect(addr, 62078)
        .await
        .map_err(|n| format!("refused {n}"))?;
    let r = request(
        &mut s,
        dict(&[
            ("Request", "StartSession".into()),
            ("HostID", host_id.into()),
            ("SystemBUID", "A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF".into()),
        ]),
    )
    .await;
    if let Some(e) = error(&r) {
        return Err(e.to_string());
    }
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AnyServer));
    let cfg = match identity {
        Some((cert, key)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from(cert)],
                PrivateKeyDer::try_from(key).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("Device").unwrap(), s)
        .await
        .map_err(|e| e.to_string())
}

/// Whether a session with `identity` can read a value.
async fn session_works(addr: &str, host_id: &str, identity: Identity) -> bool {
    let Ok(mut tls) = session(addr, host_id, identity).await else {
        return false;
    };
    let d = get(Some("SerialNumber"), None);
    if tls.write_all(&lockdown::encode_frame(&d)).await.is_err() {
        return false;
    }
    let mut len = [0u8; 4];
    tls.read_exact(&mut len).await.is_ok()
}

/// A root CA and a host certificate it signed (EC keys: quick to make).
struct Host {
    root_pem: String,
    host_pem: String,
    host_der: Vec<u8>,
    key_der: Vec<u8>,
}

fn host() -> Host {
    let root_key = KeyPair::generate().unwrap();
    let mut rp = CertificateParams::new(Vec::<String>::new()).unwrap();
    rp.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root = rp.self_signed(&root_key).unwrap();
    let issuer = Issuer::new(rp, root_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    Host {
        root_pem: root.pem(),
        host_pem: cert.pem(),
        host_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    }
}

fn pem_der(d: &plist::Dictionary, key: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    let pem = d.get(key).unwrap().as_data().unwrap();
    match key {
        "HostPrivateKey" => PrivateKeyDer::from_pem_slice(pem)
            .unwrap()
            .secret_der()
            .to_vec(),
        _ => CertificateDer::from_pem_slice(pem).unwrap().to_vec(),
    }
}

#[test]
fn lockdown_requires_a_client_certificate_chaining_to_the_paired_root() {
    let lib = library("tls");
    let cfg = FakePhoneConfig::new(&lib);
    let phone = FakePhone::start(cfg.clone()).unwrap();
    let addr = phone.usbmuxd_address();
    rt().block_on(async {
        let rec = pair_record(&addr, &cfg.udid).await.unwrap();
        let host_id = rec.get("HostID").unwrap().as_string().unwrap().to_string();
        let own = Some((
            pem_der(&rec, "HostCertificate"),
            pem_der(&rec, "HostPrivateKey"),
        ));
        assert!(
            session_works(&addr, &host_id, own).await,
            "the paired host is refused"
        );
        assert!(
            !session_works(&addr, &host_id, None).await,
            "a host without certificate got in"
        );
        let stranger = host();
        let foreign = Some((stranger.host_der, stranger.key_der));
        assert!(
            !session_works(&addr, &host_id, foreign).await,
            "a certificate of another root got in"
        );
        assert_eq!(
            session(&addr, "00000000-0000-0000-0000-000000000000", None)
                .await
                .err()
                .as_deref(),
            Some("InvalidHostID")
        );
    });
    phone.stop();
    let _ = std::fs::remove_dir_all(lib);
}

/// The paired host's identity from usbmuxd's record: HostID, certificate, key.
async fn paired(addr: &str, udid: &str) -> (String, Identity, plist::Dictionary) {
    let rec = pair_record(addr, udid).await.unwrap();
    let host_id = rec.get("HostID").unwrap().as_string().unwrap().to_string();
    let id = Some((
        pem_der(&rec, "HostCertificate"),
        pem_der(&rec, "HostPrivateKey"),
    ));
    (host_id, id, rec)
}

#[test]
fn lockdown_values_follow_the_phone_rules() {
    let lib = library("values");
    let cfg = FakePhoneConfig::new(&lib);
    let phone = FakePhone::start(cfg.clone()).unwrap();
    let addr = phone.usbmuxd_address();
    rt().block_on(async {
        let mut s = connect(&addr, 62078).await.unwrap();
        // Before a session: the public set only.
        let r = request(&mut s, get(Some("DeviceName"), None)).await;
        assert_eq!(
            r.get("Value").and_then(|v| v.as_string()),
            Some("Test iPhone")
        );
        let r = request(&mut s, get(Some("DevicePublicKey"), None)).await;
        let key = r.get("Value").and_then(|v| v.as_data()).unwrap();
        assert!(key.starts_with(b"-----BEGIN RSA PUBLIC KEY-----"));
        let r = request(&mut s, get(Some("SerialNumber"), None)).await;
        assert_eq!(error(&r), Some("MissingValue"));
        let r = request(&mut s, get(None, None)).await;
        let all = r.get("Value").and_then(|v| v.as_dictionary()).unwrap();
        assert!(all.contains_key("ProductVersion") && !all.contains_key("SerialNumber"));
        let r = request(&mut s, get(None, Some("com.apple.disk_usage"))).await;
        assert_eq!(error(&r), Some("MissingValue"));
        let r = request(
            &mut s,
            dict(&[
                ("Request", "StartService".into()),
                ("Service", "com.apple.afc".into()),
            ]),
        )
        .await;
        assert_eq!(error(&r), Some("SessionInactive"));

        // Inside a session: everything, and domains.
        let (host_id, id, _) = paired(&addr, &cfg.udid).await;
        let mut tls = session(&addr, &host_id, id).await.unwrap();
        let r = request(&mut tls, get(Some("SerialNumber"), None)).await;
        assert!(
            r.get("Value").and_then(|v| v.as_string()).is_some(),
            "{r:?}"
        );
        let r = request(
            &mut tls,
            get(Some("TotalDiskCapacity"), Some("com.apple.disk_usage")),
        )
        .await;
        assert!(
            r.get("Value")
                .and_then(|v| v.as_unsigned_integer())
                .is_some(),
            "{r:?}"
        );
        let r = request(&mut tls, get(None, Some("com.apple.mobile.battery"))).await;
        assert!(
            r.get("Value").and_then(|v| v.as_dictionary()).is_some(),
            "{r:?}"
        );
        for (k, d) in [
            (Some("NoSuchKey"), None),
            (None, Some("com.apple.nope")),
            (Some("DeviceName"), Some("com.apple.disk_usage")),
        ] {
            let r = request(&mut tls, get(k, d)).await;
            assert_eq!(error(&r), Some("MissingValue"), "{k:?} {d:?}");
        }
    });
    phone.stop();
    let _ = std::fs::remove_dir_all(lib);
}

fn start_service(bag: Option<Vec<u8>>) -> plist::Dictionary {
    let mut d = dict(&[
        ("Request", "StartService".into()),
        ("Service", "com.apple.afc".into()),
    ]);
    if let Some(b) = bag {
        d.insert("EscrowBag".into(), plist::Value::Data(b));
    }
    d
}

#[test]
fn afc_is_reachable_only_on_a_port_start_service_handed_out() {
    let lib = library("ports");
    let mut cfg = FakePhoneConfig::new(&lib);
    cfg.locked = true;
    let phone = FakePhone::start(cfg.clone()).unwrap();
    let addr = phone.usbmuxd_address();
    rt().block_on(async {
        for port in [49152, 49153, 1] {
            assert_eq!(connect(&addr, port).await.err(), Some(3), "port {port}");
        }
        let (host_id, id, rec) = paired(&addr, &cfg.udid).await;
        let mut tls = session(&addr, &host_id, id).await.unwrap();
        // Locked: only with the pair record's escrow bag.
        let r = request(&mut tls, start_service(None)).await;
        assert_eq!(error(&r), Some("PasswordProtected"));
        let r = request(&mut tls, start_service(Some(vec![1, 2, 3]))).await;
        assert_eq!(error(&r), Some("PasswordProtected"));
        let bag = rec
            .get("EscrowBag")
            .and_then(|b| b.as_data())
            .unwrap()
            .to_vec();
        let r = request(&mut tls, start_service(Some(bag))).await;
        let port = r.get("Port").and_then(|p| p.as_unsigned_integer()).unwrap() as u16;
        assert!(r.get("EnableServiceSSL").is_none());
        let mut afc = connect(&addr, port).await.unwrap();
        // One connection per start.
        assert_eq!(connect(&addr, port).await.err(), Some(3));
        let req = snapvault_phonewire::afc::Request::GetDevInfo.encode(1);
        afc.write_all(&req).await.unwrap();
        let mut h = [0u8; 40];
        afc.read_exact(&mut h).await.unwrap();
        let h = snapvault_phonewire::afc::decode_header(&h, 1 << 20).unwrap();
        assert_eq!(h.opcode, snapvault_phonewire::afc::op::DATA);
    });
    phone.stop();
    let _ = std::fs::remove_dir_all(lib);
}

fn pair_request(h: &Host, host_id: &str) -> plist::Dictionary {
    let data = |s: &str| plist::Value::Data(s.as_bytes().to_vec());
    let record = dict(&[
        ("HostCertificate", data(&h.host_pem)),
        ("RootCertificate", data(&h.root_pem)),
        ("DeviceCertificate", data(&h.host_pem)),
        ("HostID", host_id.into()),
        ("SystemBUID", "A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF".into()),
    ]);
    dict(&[
        ("Request", "Pair".into()),
        ("PairRecord", plist::Value::Dictionary(record)),
        ("ProtocolVersion", "2".into()),
    ])
}

/// Sends `Pair` until the answer is not "pending" (the emulated user taps after a while).
async fn pair_until_answered(addr: &str, req: &plist::Dictionary) -> plist::Dictionary {
    let started = Instant::now();
    loop {
        let mut s = connect(addr, 62078).await.unwrap();
        let r = request(&mut s, req.clone()).await;
        if error(&r) != Some("PairingDialogResponsePending") || started.elapsed().as_secs() > 60 {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn pairing_goes_through_the_trust_prompt() {
    let lib = library("pair");
    let mut cfg = FakePhoneConfig::new(&lib);
    cfg.paired = false;
    cfg.trust_after = Some(Duration::from_millis(300));
    let phone = FakePhone::start(cfg.clone()).unwrap();
    let addr = phone.usbmuxd_address();
    let h = host();
    let host_id = "11111111-2222-4333-8444-555555555555";
    rt().block_on(async {
        assert!(pair_record(&addr, &cfg.udid).await.is_none());
        assert_eq!(
            session(&addr, host_id, None).await.err().as_deref(),
            Some("InvalidHostID")
        );
        // A record whose host certificate does not chain to its root is refused.
        let mut bad = pair_request(&h, host_id);
        if let Some(plist::Value::Dictionary(r)) = bad.get_mut("PairRecord") {
            r.insert(
                "RootCertificate".into(),
                plist::Value::Data(host().root_pem.into_bytes()),
            );
        }
        let mut s = connect(&addr, 62078).await.unwrap();
        assert_eq!(
            error(&request(&mut s, bad).await),
            Some("InvalidPairRecord")
        );
        // The prompt shows; the first answer is "pending", then the user taps Trust.
        let req = pair_request(&h, host_id);
        assert_eq!(
            error(&request(&mut s, req.clone()).await),
            Some("PairingDialogResponsePending")
        );
        let r = pair_until_answered(&addr, &req).await;
        assert_eq!(error(&r), None, "{r:?}");
        assert!(r.get("EscrowBag").and_then(|b| b.as_data()).is_some());
        let id = Some((h.host_der.clone(), h.key_der.clone()));
        assert!(session_works(&addr, host_id, id).await);
    });
    phone.stop();

    let mut cfg = FakePhoneConfig::new(&lib);
    cfg.paired = false;
    cfg.deny_trust = true;
    let phone = FakePhone::start(cfg).unwrap();
    let addr = phone.usbmuxd_address();
    rt().block_on(async {
        let r = pair_until_answered(&addr, &pair_request(&h, host_id)).await;
        assert_eq!(error(&r), Some("UserDeniedPairing"));
        assert_eq!(
            session(&addr, host_id, None).await.err().as_deref(),
            Some("InvalidHostID")
        );
    });
    phone.stop();

    let mut cfg = FakePhoneConfig::new(&lib);
    cfg.paired = false;
    cfg.locked = true;
    cfg.trust_after = Some(Duration::ZERO);
    let phone = FakePhone::start(cfg).unwrap();
    let addr = phone.usbmuxd_address();
    rt().block_on(async {
        let mut s = connect(&addr, 62078).await.unwrap();
        let r = request(&mut s, pair_request(&h, host_id)).await;
        assert_eq!(error(&r), Some("PasswordProtected"));
    });
    phone.stop();
    let _ = std::fs::remove_dir_all(lib);
}

/// Requests sent without waiting for replies (as a pipelining client does) are answered in
/// order, each with its own packet number, also on a slow link with a turnaround.
#[test]
fn afc_answers_pipelined_requests_in_order() {
    use snapvault_phonewire::afc::{self, Reply, Request};
    let lib = library("pipelined");
    std::fs::write(lib.join("DCIM/100APPLE/IMG_0002.MOV"), vec![5u8; 300_000]).unwrap();
    let mut cfg = FakePhoneConfig::new(&lib);
    cfg.latency = Some(Duration::from_millis(20));
    cfg.bytes_per_sec = Some(20_000_000);
    let phone = FakePhone::start(cfg.clone()).unwrap();
    let addr = phone.usbmuxd_address();
    rt().block_on(async {
        let (host_id, id, _) = paired(&addr, &cfg.udid).await;
        let mut tls = session(&addr, &host_id, id).await.unwrap();
        let r = request(&mut tls, start_service(None)).await;
        let port = r.get("Port").and_then(|p| p.as_unsigned_integer()).unwrap() as u16;
        let mut s = connect(&addr, port).await.unwrap();
        let read_reply = |h: [u8; 40], body: Vec<u8>| {
            let h = afc::decode_header(&h, 1 << 24).unwrap();
            (h.packet_num, afc::decode_reply(&h, body).unwrap())
        };
        async fn next(s: &mut TcpStream) -> ([u8; 40], Vec<u8>) {
            let mut h = [0u8; 40];
            s.read_exact(&mut h).await.unwrap();
            let len = afc::decode_header(&h, 1 << 24).unwrap().body_len() as usize;
            let mut body = vec![0u8; len];
            s.read_exact(&mut body).await.unwrap();
            (h, body)
        }
        let open = Request::Open {
            mode: afc::MODE_RDONLY,
            path: "/DCIM/100APPLE/IMG_0002.MOV".into(),
        };
        s.write_all(&open.encode(1)).await.unwrap();
        let (h, b) = next(&mut s).await;
        let (_, Reply::Opened(fd)) = read_reply(h, b) else {
            panic!("not opened")
        };
        // Four reads and a close in one go.
        let mut burst = Vec::new();
        for n in 2..6 {
            burst.extend(Request::Read { fd, len: 100_000 }.encode(n));
        }
        burst.extend(Request::Close { fd }.encode(6));
        s.write_all(&burst).await.unwrap();
        let mut got = Vec::new();
        for want in 2..7u64 {
            let (h, b) = next(&mut s).await;
            let (num, reply) = read_reply(h, b);
            assert_eq!(num, want);
            got.push(reply);
        }
        let sizes: Vec<usize> = got
            .iter()
            .map(|r| match r {
                Reply::Data(d) => d.len(),
                other => panic!("{other:?}"),
            })
            .take(4)
            .collect();
        assert_eq!(sizes, [100_000, 100_000, 100_000, 0]);
        assert_eq!(got[4], Reply::Status(0));
    });
    phone.stop();
    let _ = std::fs::remove_dir_all(lib);
}
