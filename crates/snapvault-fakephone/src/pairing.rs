//! Pairing material in the shape real pairings leave it (libimobiledevice's `userpref.c`,
//! pymobiledevice3's `ca.py`): RSA-2048 keys in PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`), X.509
//! v3 certificates with empty names, a root CA that signs the host's and the device's
//! certificates. The device's own key pair stays on the "phone": its public half is
//! `DevicePublicKey`, from which a pairing host makes the device certificate.
//!
//! Generated once per process: RSA key generation dominates start-up.

use std::sync::{Arc, OnceLock};

use rsa::RsaPublicKey;
use snapvault_phonewire::pairing::{self as wire, HostCertificates, PairRecord};

/// Host identity strings written into the generated pair record (fixed, like a real host's).
pub(crate) const HOST_ID: &str = "5F1C7B2E-9C3D-4A8B-B7E6-1D2C3B4A5F60";
pub(crate) const SYSTEM_BUID: &str = "A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF";
pub(crate) const WIFI_MAC: &str = "02:00:00:00:00:01";

/// Keys and certificates shared by every fake phone in the process.
pub(crate) struct Material {
    /// The device's key (PKCS#8 DER, for its TLS server).
    pub device_key_pkcs8: Vec<u8>,
    /// `DevicePublicKey`: the device's public key, PKCS#1 PEM (`BEGIN RSA PUBLIC KEY`).
    pub device_public_pem: String,
    /// A certificate for the device's key, used as the TLS server certificate.
    pub device_cert_der: Vec<u8>,
    /// What an earlier pairing left on the host: the pairing the phone and usbmuxd start
    /// out with (unless unpaired). Made by the same code as snapvault's own pairing.
    pub record: HostCertificates,
    /// The escrow bag the phone handed out with that pairing.
    pub escrow_bag: Vec<u8>,
}

static MATERIAL: OnceLock<Result<Arc<Material>, String>> = OnceLock::new();

pub(crate) fn material() -> std::io::Result<Arc<Material>> {
    MATERIAL
        .get_or_init(|| generate().map(Arc::new).map_err(|e| e.to_string()))
        .clone()
        .map_err(std::io::Error::other)
}

fn generate() -> Result<Material, wire::PairingError> {
    let (device_key, _) = wire::rsa_key()?;
    let device_public = RsaPublicKey::from(&device_key);
    Ok(Material {
        device_key_pkcs8: wire::pkcs8_der(&device_key)?,
        device_public_pem: wire::public_pkcs1_pem(&device_public)?,
        device_cert_der: wire::self_signed(&device_key)?,
        // The host side of an earlier pairing, as a pairing host makes it.
        record: HostCertificates::generate(&device_public)?,
        escrow_bag: (0u8..32).map(|i| i.wrapping_mul(37) ^ 0x5a).collect(),
    })
}

/// The pair record usbmuxd hands out for `udid` (XML plist bytes), with the keys the host
/// keeps (`HostPrivateKey`, `RootPrivateKey`) and, `with_bag`, the phone's escrow bag.
pub(crate) fn pair_record(m: &Material, udid: &str, with_bag: bool) -> Vec<u8> {
    PairRecord {
        certs: m.record.clone(),
        host_id: HOST_ID.into(),
        system_buid: SYSTEM_BUID.into(),
        wifi_mac: WIFI_MAC.into(),
        escrow_bag: with_bag.then(|| m.escrow_bag.clone()),
        udid: Some(udid.into()),
    }
    .to_plist()
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
