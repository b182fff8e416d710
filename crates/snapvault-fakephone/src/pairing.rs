//! Pairing material: a root CA, a host certificate (given to the host in the pair record) and a
//! device certificate (used by the fake lockdownd's TLS server). ECDSA P-256, generated once
//! per process (key generation dominates start-up in debug builds).

use std::sync::{Arc, OnceLock};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// Certificates and keys shared by every fake phone in the process.
pub(crate) struct Material {
    pub root_cert_pem: String,
    pub root_key_pem: String,
    pub host_cert_pem: String,
    pub host_key_pem: String,
    pub device_cert_pem: String,
    pub tls: Arc<rustls::ServerConfig>,
}

/// Host identity strings written into the pair record (fixed, like a real host's).
pub(crate) const HOST_ID: &str = "5F1C7B2E-9C3D-4A8B-B7E6-1D2C3B4A5F60";
pub(crate) const SYSTEM_BUID: &str = "A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF";

static MATERIAL: OnceLock<Result<Arc<Material>, String>> = OnceLock::new();

pub(crate) fn material() -> std::io::Result<Arc<Material>> {
    MATERIAL
        .get_or_init(|| generate().map(Arc::new))
        .clone()
        .map_err(std::io::Error::other)
}

fn params(cn: &str, ca: bool) -> Result<CertificateParams, String> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    p.distinguished_name.push(DnType::CommonName, cn);
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
    } else {
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
    }
    Ok(p)
}

fn generate() -> Result<Material, String> {
    let e = |e: rcgen::Error| e.to_string();
    let root_key = KeyPair::generate().map_err(e)?;
    let root_params = params("snapvault fake root", true)?;
    let root_cert = root_params.self_signed(&root_key).map_err(e)?;
    let root_key_pem = root_key.serialize_pem();
    let issuer = Issuer::new(root_params, root_key);

    let host_key = KeyPair::generate().map_err(e)?;
    let host_cert = params("snapvault host", false)?
        .signed_by(&host_key, &issuer)
        .map_err(e)?;
    let device_key = KeyPair::generate().map_err(e)?;
    let device_cert = params("Device", false)?
        .signed_by(&device_key, &issuer)
        .map_err(e)?;

    // Explicit provider: idevice installs a process-default provider on first client use, and
    // a server built on the default would depend on who ran first.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        // lockdownd speaks TLS 1.2; mirror it.
        .with_protocol_versions(&[&rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(
            vec![device_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(device_key.serialize_der())),
        )
        .map_err(|e| e.to_string())?;

    Ok(Material {
        root_cert_pem: root_cert.pem(),
        root_key_pem,
        host_cert_pem: host_cert.pem(),
        host_key_pem: host_key.serialize_pem(),
        device_cert_pem: device_cert.pem(),
        tls: Arc::new(tls),
    })
}

/// The pair record usbmuxd would hand out for `udid` (XML plist bytes), in the shape
/// `idevice::pairing_file::PairingFile::from_bytes` expects.
pub(crate) fn pair_record(m: &Material, udid: &str) -> Vec<u8> {
    let mut d = plist::Dictionary::new();
    let data = |s: &str| plist::Value::Data(s.as_bytes().to_vec());
    d.insert("DeviceCertificate".into(), data(&m.device_cert_pem));
    d.insert("HostCertificate".into(), data(&m.host_cert_pem));
    d.insert("HostPrivateKey".into(), data(&m.host_key_pem));
    d.insert("RootCertificate".into(), data(&m.root_cert_pem));
    d.insert("RootPrivateKey".into(), data(&m.root_key_pem));
    d.insert("SystemBUID".into(), SYSTEM_BUID.into());
    d.insert("HostID".into(), HOST_ID.into());
    d.insert("WiFiMACAddress".into(), "02:00:00:00:00:01".into());
    d.insert("EscrowBag".into(), plist::Value::Data(vec![0u8; 32]));
    d.insert("UDID".into(), udid.into());
    let mut out = Vec::new();
    if plist::to_writer_xml(&mut out, &d).is_err() {
        out.clear();
    }
    out
}
