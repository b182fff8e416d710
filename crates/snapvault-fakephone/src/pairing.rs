//! Pairing material in the shape real pairings leave it (libimobiledevice's `userpref.c`,
//! pymobiledevice3's `ca.py`): RSA-2048 keys in PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`), X.509
//! v3 certificates with empty names, a root CA that signs the host's and the device's
//! certificates. The device's own key pair stays on the "phone": its public half is
//! `DevicePublicKey`, from which a pairing host makes the device certificate.
//!
//! Generated once per process: RSA key generation dominates start-up.

use std::sync::{Arc, OnceLock};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_RSA_SHA256, PublicKeyData, SerialNumber, SignatureAlgorithm,
};
use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey, LineEnding};
use rsa::pkcs8::EncodePrivateKey;
use rsa::{RsaPrivateKey, RsaPublicKey};
use rustls::pki_types::PrivatePkcs8KeyDer;

/// Host identity strings written into the generated pair record (fixed, like a real host's).
pub(crate) const HOST_ID: &str = "5F1C7B2E-9C3D-4A8B-B7E6-1D2C3B4A5F60";
pub(crate) const SYSTEM_BUID: &str = "A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF";
pub(crate) const WIFI_MAC: &str = "02:00:00:00:00:01";

/// What an earlier pairing left on the host: the pair record's certificates and keys (PEM).
pub(crate) struct HostRecord {
    pub root_cert_pem: String,
    pub root_key_pem: String,
    pub host_cert_pem: String,
    pub host_key_pem: String,
    pub device_cert_pem: String,
    pub root_cert_der: Vec<u8>,
}

/// Keys and certificates shared by every fake phone in the process.
pub(crate) struct Material {
    /// The device's key (PKCS#8 DER, for its TLS server).
    pub device_key_pkcs8: Vec<u8>,
    /// `DevicePublicKey`: the device's public key, PKCS#1 PEM (`BEGIN RSA PUBLIC KEY`).
    pub device_public_pem: String,
    /// A certificate for the device's key, used as the TLS server certificate.
    pub device_cert_der: Vec<u8>,
    /// The pairing the phone and usbmuxd start out with (unless unpaired).
    pub record: HostRecord,
    /// The escrow bag the phone handed out with that pairing.
    pub escrow_bag: Vec<u8>,
}

static MATERIAL: OnceLock<Result<Arc<Material>, String>> = OnceLock::new();

pub(crate) fn material() -> std::io::Result<Arc<Material>> {
    MATERIAL
        .get_or_init(|| generate().map(Arc::new))
        .clone()
        .map_err(std::io::Error::other)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// An RSA-2048 key pair: the `rsa` key (for PEM export) and an rcgen signer.
fn rsa_key() -> Result<(RsaPrivateKey, KeyPair), String> {
    let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(err)?;
    let pkcs8 = key.to_pkcs8_der().map_err(err)?;
    let signer = KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(pkcs8.as_bytes()),
        &PKCS_RSA_SHA256,
    )
    .map_err(err)?;
    Ok((key, signer))
}

fn pkcs1_pem(key: &RsaPrivateKey) -> Result<String, String> {
    Ok(key.to_pkcs1_pem(LineEnding::LF).map_err(err)?.to_string())
}

/// Certificate parameters as pairing makes them: empty subject, serial 1, v3.
fn params(ca: bool) -> CertificateParams {
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

fn generate() -> Result<Material, String> {
    let (device_key, device_signer) = rsa_key()?;
    let device_public = RsaPublicKey::from(&device_key);
    let device_public_pem = device_public.to_pkcs1_pem(LineEnding::LF).map_err(err)?;
    let device_public_der = device_public.to_pkcs1_der().map_err(err)?;
    let device_self = params(false).self_signed(&device_signer).map_err(err)?;

    // The host side of an earlier pairing, as a pairing host makes it.
    let (root_key, root_signer) = rsa_key()?;
    let (host_key, host_signer) = rsa_key()?;
    let root_params = params(true);
    let root_cert = root_params.self_signed(&root_signer).map_err(err)?;
    let issuer = Issuer::new(root_params, root_signer);
    let host_cert = params(false)
        .signed_by(&host_signer, &issuer)
        .map_err(err)?;
    let device_cert = params(false)
        .signed_by(&RsaPublic(device_public_der.as_bytes().to_vec()), &issuer)
        .map_err(err)?;

    Ok(Material {
        device_key_pkcs8: device_key.to_pkcs8_der().map_err(err)?.as_bytes().to_vec(),
        device_public_pem,
        device_cert_der: device_self.der().to_vec(),
        record: HostRecord {
            root_cert_pem: root_cert.pem(),
            root_key_pem: pkcs1_pem(&root_key)?,
            host_cert_pem: host_cert.pem(),
            host_key_pem: pkcs1_pem(&host_key)?,
            device_cert_pem: device_cert.pem(),
            root_cert_der: root_cert.der().to_vec(),
        },
        escrow_bag: (0u8..32).map(|i| i.wrapping_mul(37) ^ 0x5a).collect(),
    })
}

/// The pair record usbmuxd hands out for `udid` (XML plist bytes), with the keys the host
/// keeps (`HostPrivateKey`, `RootPrivateKey`) and the phone's escrow bag.
pub(crate) fn pair_record(m: &Material, udid: &str) -> Vec<u8> {
    let r = &m.record;
    let mut d = plist::Dictionary::new();
    let data = |s: &str| plist::Value::Data(s.as_bytes().to_vec());
    d.insert("DeviceCertificate".into(), data(&r.device_cert_pem));
    d.insert("HostCertificate".into(), data(&r.host_cert_pem));
    d.insert("HostPrivateKey".into(), data(&r.host_key_pem));
    d.insert("RootCertificate".into(), data(&r.root_cert_pem));
    d.insert("RootPrivateKey".into(), data(&r.root_key_pem));
    d.insert("SystemBUID".into(), SYSTEM_BUID.into());
    d.insert("HostID".into(), HOST_ID.into());
    d.insert("WiFiMACAddress".into(), WIFI_MAC.into());
    d.insert("EscrowBag".into(), plist::Value::Data(m.escrow_bag.clone()));
    d.insert("UDID".into(), udid.into());
    snapvault_phonewire::xml(&d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    /// Records in Apple's format: RSA keys in PKCS#1 PEM, certificates that chain to the root.
    #[test]
    fn records_are_rsa_pkcs1_and_chain_to_the_root() {
        let m = material().unwrap();
        let r = &m.record;
        for k in [&r.host_key_pem, &r.root_key_pem] {
            assert!(k.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "{k}");
        }
        assert!(
            m.device_public_pem
                .starts_with("-----BEGIN RSA PUBLIC KEY-----")
        );
        for c in [&r.host_cert_pem, &r.device_cert_pem] {
            let der = rustls::pki_types::CertificateDer::from_pem_slice(c.as_bytes()).unwrap();
            crate::tls::chains_to(&der, &r.root_cert_der).unwrap();
        }
    }
}
