//! Pair records in the shape real pairing hosts make them (libimobiledevice's `userpref.c`,
//! pymobiledevice3's `ca.py`), for both ends: snapvault pairs with a phone through them, and
//! the fake phone starts out with one.
//!
//! A pairing host makes RSA-2048 keys for a root CA and for itself, and X.509 v3
//! certificates with empty names and serial 1: the root (self-signed), the host's
//! certificate and the device's certificate, both signed by the root. The device's
//! certificate certifies the phone's own public key (`DevicePublicKey`, PKCS#1 PEM). Keys are
//! kept in PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`), which OpenSSL's `PEM_read_bio_RSAPrivateKey`
//! (libimobiledevice) requires.
//!
//! Behind the cargo feature `pairing` (RSA key generation and certificates are not needed by
//! the frame codecs and their fuzz targets).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_RSA_SHA256, PublicKeyData, SerialNumber, SignatureAlgorithm,
};
use rsa::pkcs1::{DecodeRsaPublicKey, EncodeRsaPrivateKey, EncodeRsaPublicKey, LineEnding};
use rsa::pkcs8::{DecodePublicKey, EncodePrivateKey};
use rsa::rand_core::{OsRng, RngCore};
use rsa::{RsaPrivateKey, RsaPublicKey};
use rustls_pki_types::PrivatePkcs8KeyDer;

/// RSA key size of pair records.
const KEY_BITS: usize = 2048;

/// Making or reading pairing material failed.
#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    #[error("the iPhone's public key (DevicePublicKey) is not an RSA public key in PEM")]
    DevicePublicKey,
    #[error("cannot make the pairing keys and certificates: {0}")]
    Crypto(String),
}

fn crypto(e: impl std::fmt::Display) -> PairingError {
    PairingError::Crypto(e.to_string())
}

/// A fresh RSA-2048 key pair: the key itself (for PEM export) and a signer for rcgen.
pub fn rsa_key() -> Result<(RsaPrivateKey, KeyPair), PairingError> {
    let key = RsaPrivateKey::new(&mut OsRng, KEY_BITS).map_err(crypto)?;
    let signer = signer(&key)?;
    Ok((key, signer))
}

fn signer(key: &RsaPrivateKey) -> Result<KeyPair, PairingError> {
    let pkcs8 = key.to_pkcs8_der().map_err(crypto)?;
    KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(pkcs8.as_bytes()),
        &PKCS_RSA_SHA256,
    )
    .map_err(crypto)
}

/// A private key in PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`).
pub fn pkcs1_pem(key: &RsaPrivateKey) -> Result<String, PairingError> {
    Ok(key
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(crypto)?
        .to_string())
}

/// The private key in PKCS#8 DER (what a TLS library loads).
pub fn pkcs8_der(key: &RsaPrivateKey) -> Result<Vec<u8>, PairingError> {
    Ok(key.to_pkcs8_der().map_err(crypto)?.as_bytes().to_vec())
}

/// Certificate parameters as pairing makes them: empty subject, serial 1, v3.
pub fn params(ca: bool) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.serial_number = Some(SerialNumber::from(1u64));
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    } else {
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
    }
    p
}

/// An RSA public key given as PKCS#1 DER, for rcgen to certify.
struct RsaPublic(Vec<u8>);

impl PublicKeyData for RsaPublic {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_RSA_SHA256
    }
}

/// Reads `DevicePublicKey`: PKCS#1 PEM (`BEGIN RSA PUBLIC KEY`, what phones send) or
/// SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`).
pub fn parse_device_public_key(pem: &[u8]) -> Result<RsaPublicKey, PairingError> {
    let text = std::str::from_utf8(pem).map_err(|_| PairingError::DevicePublicKey)?;
    RsaPublicKey::from_pkcs1_pem(text.trim())
        .or_else(|_| RsaPublicKey::from_public_key_pem(text.trim()))
        .map_err(|_| PairingError::DevicePublicKey)
}

/// A public key in PKCS#1 PEM (`BEGIN RSA PUBLIC KEY`), as a phone hands out its own.
pub fn public_pkcs1_pem(key: &RsaPublicKey) -> Result<String, PairingError> {
    key.to_pkcs1_pem(LineEnding::LF).map_err(crypto)
}

/// The host's side of a pairing: its root CA, its own certificate and the certificate it made
/// for the phone's key. PEM strings, as the pair record holds them.
#[derive(Clone)]
pub struct HostCertificates {
    pub root_cert_pem: String,
    pub root_key_pem: String,
    pub host_cert_pem: String,
    pub host_key_pem: String,
    pub device_cert_pem: String,
    /// The root certificate in DER (what a TLS peer checks the host certificate against).
    pub root_cert_der: Vec<u8>,
}

impl std::fmt::Debug for HostCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print private keys.
        f.debug_struct("HostCertificates").finish_non_exhaustive()
    }
}

impl HostCertificates {
    /// New keys for the root and the host, and the three certificates, for the phone whose
    /// public key is `device_public` (two RSA-2048 key generations: up to a second or two).
    pub fn generate(device_public: &RsaPublicKey) -> Result<HostCertificates, PairingError> {
        let (root_key, root_signer) = rsa_key()?;
        let (host_key, host_signer) = rsa_key()?;
        let root_params = params(true);
        let root_cert = root_params.self_signed(&root_signer).map_err(crypto)?;
        let issuer = Issuer::new(root_params, root_signer);
        let host_cert = params(false)
            .signed_by(&host_signer, &issuer)
            .map_err(crypto)?;
        let device_der = device_public.to_pkcs1_der().map_err(crypto)?;
        let device_cert = params(false)
            .signed_by(&RsaPublic(device_der.as_bytes().to_vec()), &issuer)
            .map_err(crypto)?;
        Ok(HostCertificates {
            root_cert_pem: root_cert.pem(),
            root_key_pem: pkcs1_pem(&root_key)?,
            host_cert_pem: host_cert.pem(),
            host_key_pem: pkcs1_pem(&host_key)?,
            device_cert_pem: device_cert.pem(),
            root_cert_der: root_cert.der().to_vec(),
        })
    }
}

/// A self-signed certificate for `key` (a phone's TLS server certificate).
pub fn self_signed(key: &RsaPrivateKey) -> Result<Vec<u8>, PairingError> {
    let cert = params(false).self_signed(&signer(key)?).map_err(crypto)?;
    Ok(cert.der().to_vec())
}

/// A random identifier in the form pairing hosts use for `HostID` (an upper-case UUID v4).
pub fn new_host_id() -> String {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02X}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A pair record: what the host keeps (usbmuxd stores it as `UDID.plist`) and, without its
/// private keys, what it sends to the phone with `Pair`.
#[derive(Debug, Clone)]
pub struct PairRecord {
    pub certs: HostCertificates,
    pub host_id: String,
    /// usbmuxd's `BUID` (`ReadBUID`): the same for every record of this host.
    pub system_buid: String,
    /// The phone's `WiFiAddress`.
    pub wifi_mac: String,
    /// Handed out by the phone when it accepted the pairing; lets a host start services on a
    /// locked phone.
    pub escrow_bag: Option<Vec<u8>>,
    pub udid: Option<String>,
}

fn data(s: &str) -> plist::Value {
    plist::Value::Data(s.as_bytes().to_vec())
}

impl PairRecord {
    /// The `PairRecord` of a `Pair` request: certificates and identities, no private keys.
    pub fn for_phone(&self) -> plist::Dictionary {
        let c = &self.certs;
        let mut d = plist::Dictionary::new();
        d.insert("DeviceCertificate".into(), data(&c.device_cert_pem));
        d.insert("HostCertificate".into(), data(&c.host_cert_pem));
        d.insert("RootCertificate".into(), data(&c.root_cert_pem));
        d.insert("HostID".into(), self.host_id.clone().into());
        d.insert("SystemBUID".into(), self.system_buid.clone().into());
        d
    }

    /// The whole record as the host keeps it, with the private keys (XML plist bytes).
    pub fn to_plist(&self) -> Vec<u8> {
        let c = &self.certs;
        let mut d = self.for_phone();
        d.insert("HostPrivateKey".into(), data(&c.host_key_pem));
        d.insert("RootPrivateKey".into(), data(&c.root_key_pem));
        d.insert("WiFiMACAddress".into(), self.wifi_mac.clone().into());
        if let Some(bag) = &self.escrow_bag {
            d.insert("EscrowBag".into(), plist::Value::Data(bag.clone()));
        }
        if let Some(u) = &self.udid {
            d.insert("UDID".into(), u.clone().into());
        }
        crate::xml(&d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_hold_pkcs1_keys_and_the_phone_gets_no_private_key() {
        let (phone, _) = rsa_key().unwrap();
        let pem = public_pkcs1_pem(&RsaPublicKey::from(&phone)).unwrap();
        assert!(pem.starts_with("-----BEGIN RSA PUBLIC KEY-----"));
        let public = parse_device_public_key(pem.as_bytes()).unwrap();
        let certs = HostCertificates::generate(&public).unwrap();
        for k in [&certs.host_key_pem, &certs.root_key_pem] {
            assert!(k.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "{k}");
        }
        let rec = PairRecord {
            certs,
            host_id: new_host_id(),
            system_buid: "A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF".into(),
            wifi_mac: "02:00:00:00:00:01".into(),
            escrow_bag: Some(vec![1, 2, 3]),
            udid: Some("u".into()),
        };
        let sent = rec.for_phone();
        assert!(!sent.contains_key("HostPrivateKey") && !sent.contains_key("RootPrivateKey"));
        let kept = crate::dict_from(&rec.to_plist()).unwrap();
        for k in [
            "DeviceCertificate",
            "HostCertificate",
            "HostPrivateKey",
            "RootCertificate",
            "RootPrivateKey",
            "SystemBUID",
            "HostID",
            "WiFiMACAddress",
            "EscrowBag",
            "UDID",
        ] {
            assert!(kept.contains_key(k), "{k} missing");
        }
        assert!(parse_device_public_key(b"-----BEGIN RSA PUBLIC KEY-----\nAAAA").is_err());
        assert!(parse_device_public_key(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn host_ids_look_like_uuids() {
        let a = new_host_id();
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert_ne!(a, new_host_id());
    }
}
