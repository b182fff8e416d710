//! lockdownd's TLS session, strict like a phone's: the host must present a client
//! certificate that chains to the `RootCertificate` of the pairing the phone remembers, and
//! prove it holds the key. Anything else ends the session during the handshake.
//!
//! The chain check is our own (x509-parser + ring), not webpki's: pairing hosts sign with
//! SHA-1 (libimobiledevice) or SHA-256 (pymobiledevice3), use serial 0 or 1 and empty names,
//! which a web PKI verifier refuses.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use x509_parser::prelude::{ASN1Time, FromDer, X509Certificate};

/// Why a client certificate was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CertError {
    #[error("not an X.509 certificate: {0}")]
    Parse(String),
    #[error("issued by another root than the paired host's")]
    Issuer,
    #[error("signature does not verify with the paired root's key")]
    Signature,
    #[error("outside its validity period")]
    Expired,
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, CertError> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| CertError::Parse(e.to_string()))
}

/// Checks that `leaf` is signed by the key of `root_der` and names it as issuer.
pub(crate) fn chains_to(leaf: &[u8], root_der: &[u8]) -> Result<(), CertError> {
    let leaf = parse(leaf)?;
    let root = parse(root_der)?;
    if leaf.issuer().as_raw() != root.subject().as_raw() {
        return Err(CertError::Issuer);
    }
    leaf.verify_signature(Some(root.public_key()))
        .map_err(|_| CertError::Signature)?;
    let now = ASN1Time::now();
    if !leaf.validity().is_valid_at(now) {
        return Err(CertError::Expired);
    }
    Ok(())
}

/// Requires a client certificate chaining to the paired host's root.
#[derive(Debug)]
struct PairedHost {
    root_der: Vec<u8>,
}

const SCHEMES: [SignatureScheme; 8] = [
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
];

fn ring_alg(s: SignatureScheme) -> Option<&'static dyn ring::signature::VerificationAlgorithm> {
    use ring::signature as sig;
    Some(match s {
        SignatureScheme::RSA_PKCS1_SHA256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        SignatureScheme::RSA_PKCS1_SHA384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        SignatureScheme::RSA_PKCS1_SHA512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        SignatureScheme::RSA_PSS_SHA256 => &sig::RSA_PSS_2048_8192_SHA256,
        SignatureScheme::RSA_PSS_SHA384 => &sig::RSA_PSS_2048_8192_SHA384,
        SignatureScheme::RSA_PSS_SHA512 => &sig::RSA_PSS_2048_8192_SHA512,
        SignatureScheme::ECDSA_NISTP256_SHA256 => &sig::ECDSA_P256_SHA256_ASN1,
        SignatureScheme::ECDSA_NISTP384_SHA384 => &sig::ECDSA_P384_SHA384_ASN1,
        _ => return None,
    })
}

fn bad_cert(e: CertError) -> rustls::Error {
    rustls::Error::InvalidCertificate(match e {
        CertError::Issuer => CertificateError::UnknownIssuer,
        CertError::Signature => CertificateError::BadSignature,
        CertError::Expired => CertificateError::Expired,
        CertError::Parse(_) => CertificateError::BadEncoding,
    })
}

impl PairedHost {
    /// The handshake signature, checked with the client certificate's public key.
    fn verify_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let alg = ring_alg(dss.scheme).ok_or(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::NoSignatureSchemesInCommon,
        ))?;
        let c = parse(cert).map_err(bad_cert)?;
        let key = &c.public_key().subject_public_key.data;
        ring::signature::UnparsedPublicKey::new(alg, key)
            .verify(message, dss.signature())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))?;
        Ok(HandshakeSignatureValid::assertion())
    }
}

impl ClientCertVerifier for PairedHost {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        chains_to(end_entity, &self.root_der).map_err(bad_cert)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

/// The TLS server of a session with the host paired through `root_der`: TLS 1.2 (what
/// lockdownd speaks), the device's certificate, a mandatory client certificate.
pub(crate) fn server_config(
    m: &crate::pairing::Material,
    root_der: &[u8],
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    // Explicit provider: idevice installs a process-default provider on first client use, and
    // a server built on the default would depend on who ran first.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])?
        .with_client_cert_verifier(Arc::new(PairedHost {
            root_der: root_der.to_vec(),
        }))
        .with_single_cert(
            vec![CertificateDer::from(m.device_cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(m.device_key_pkcs8.clone())),
        )?;
    Ok(Arc::new(cfg))
}
