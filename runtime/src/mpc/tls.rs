//! TLS 1.3 between parties, with mutual authentication by pinned certificates.
//!
//! Each party has an [`Identity`]: an ECDSA P-256 key and a self-signed certificate
//! (`secc party-keygen`). The parties file pins each party's certificate by its SHA-256
//! ([`Pin`]). There is no certificate authority and no name check: a peer is who it
//! claims only if it presents exactly the pinned certificate and proves it holds the
//! key (the TLS 1.3 handshake signature, checked with ring).

use super::MpcError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;

/// The SHA-256 of a certificate (DER), written `sha256:<64 hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Pin(pub [u8; 32]);

impl Pin {
    /// The pin of `cert`.
    pub fn of(cert: &CertificateDer<'_>) -> Pin {
        Pin(Sha256::digest(cert.as_ref()).into())
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Pin {
    type Err = String;

    fn from_str(s: &str) -> Result<Pin, String> {
        let bad = || format!("`{s}` is not a certificate pin (expected sha256: and 64 hex digits)");
        let hex = s.strip_prefix("sha256:").filter(|h| h.len() == 64 && h.is_ascii()).ok_or_else(bad)?;
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Pin(out))
    }
}

/// A party's key pair and self-signed certificate.
pub struct Identity {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    /// A fresh key pair and certificate.
    pub fn generate() -> Identity {
        let key = rcgen::KeyPair::generate().expect("ring generates P-256 keys");
        let params = rcgen::CertificateParams::new(vec!["secc-party".to_string()]).expect("a valid DNS name");
        let cert = params.self_signed(&key).expect("a self-signed certificate");
        Identity { cert: cert.der().clone(), key: PrivateKeyDer::Pkcs8(key.serialize_der().into()) }
    }

    /// The identity file: the private key (PKCS#8) then the certificate, both PEM.
    pub fn to_pem(&self) -> String {
        let key = rcgen::KeyPair::try_from(&self.key).expect("a key this module made");
        let cert = pem_block("CERTIFICATE", self.cert.as_ref());
        format!("{}{cert}", key.serialize_pem())
    }

    /// Reads an identity file written by [`Identity::to_pem`]; `path` names it in errors.
    pub fn from_pem(pem: &[u8], path: &str) -> Result<Identity, MpcError> {
        let bad = |what: &str| MpcError::Setup(format!("{path} is not a secc party key: {what}"));
        let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| bad(&format!("no private key ({e})")))?;
        let cert = CertificateDer::from_pem_slice(pem).map_err(|e| bad(&format!("no certificate ({e})")))?;
        let signer = provider().key_provider.load_private_key(key.clone_key()).map_err(|e| bad(&e.to_string()))?;
        rustls::sign::CertifiedKey::new(vec![cert.clone()], signer)
            .keys_match()
            .map_err(|_| bad("the certificate is not the key's"))?;
        Ok(Identity { cert, key })
    }

    /// The pin of this identity's certificate.
    pub fn pin(&self) -> Pin {
        Pin::of(&self.cert)
    }
}

fn pem_block(label: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(label, der))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A party's TLS settings: its identity and the three pins, in party order.
#[derive(Clone)]
pub struct Tls {
    id: usize,
    pins: [Pin; 3],
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

impl Tls {
    /// Settings for party `id`; its own pin must be its identity's.
    pub fn new(id: usize, identity: &Identity, pins: [Pin; 3]) -> Result<Tls, MpcError> {
        if identity.pin() != pins[id] {
            return Err(MpcError::Setup(format!(
                "this key's certificate is not the one the parties file pins for party {id} \
                 (`secc party-keygen` printed its pin when it wrote the key)"
            )));
        }
        let algorithms = provider().signature_verification_algorithms;
        let others = (0..3).filter(|&p| p != id).map(|p| pins[p]).collect();
        let peers = Arc::new(ClientPins { pins: others, whom: "any other party", algorithms });
        let server = server_config(identity, peers)?;
        let client = client_config(identity, Arc::new(Pinned { pins, algorithms }))?;
        Ok(Tls { id, pins, client, server })
    }

    /// A client connection to party `peer`; the name tells the verifier which pin to expect.
    pub fn client(&self, peer: usize) -> Result<ClientConnection, rustls::Error> {
        ClientConnection::new(self.client.clone(), server_name(peer))
    }

    /// A server connection for a peer's incoming link.
    pub fn server(&self) -> Result<rustls::ServerConnection, rustls::Error> {
        rustls::ServerConnection::new(self.server.clone())
    }

    /// The party whose pinned certificate `cert` is (never this party itself).
    pub fn party_of(&self, cert: &CertificateDer<'_>) -> Option<usize> {
        let pin = Pin::of(cert);
        (0..3).find(|&p| p != self.id && self.pins[p] == pin)
    }
}

/// TLS 1.3 only, presenting `identity`, checking clients with `verifier`.
fn server_config(identity: &Identity, verifier: Arc<dyn ClientCertVerifier>) -> Result<Arc<ServerConfig>, MpcError> {
    let mut server = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_setup)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![identity.cert.clone()], identity.key.clone_key())
        .map_err(tls_setup)?;
    // Each link carries one session; nothing is ever resumed.
    server.send_tls13_tickets = 0;
    Ok(Arc::new(server))
}

/// TLS 1.3 only, presenting `identity`, checking servers with `verifier`.
fn client_config(identity: &Identity, verifier: Arc<dyn ServerCertVerifier>) -> Result<Arc<ClientConfig>, MpcError> {
    let mut client = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_setup)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![identity.cert.clone()], identity.key.clone_key())
        .map_err(tls_setup)?;
    client.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(client))
}

fn tls_setup(e: rustls::Error) -> MpcError {
    MpcError::Setup(format!("TLS set-up failed: {e}"))
}

fn server_name(party: usize) -> ServerName<'static> {
    ServerName::try_from(format!("party{party}.secc")).expect("a valid DNS name")
}

/// Accepts exactly the pinned certificates: a server must present the pin of the party
/// dialled.
#[derive(Debug)]
struct Pinned {
    pins: [Pin; 3],
    algorithms: WebPkiSupportedAlgorithms,
}

/// A certificate that is not the pinned one.
#[derive(Debug, thiserror::Error)]
#[error("certificate {found} is not the one the parties file pins for {whom}")]
struct Unpinned {
    found: Pin,
    whom: String,
}

fn unpinned(found: Pin, whom: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(Arc::new(Unpinned {
        found,
        whom,
    }))))
}

/// The handshake-signature checks, the same whichever side the peer is on: ring's,
/// over the provider's algorithms.
macro_rules! signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(message, cert, dss, &self.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    };
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let peer = (0..3).find(|p| server_name.to_str() == format!("party{p}.secc")).expect("names from Tls::client");
        let found = Pin::of(end_entity);
        if found != self.pins[peer] {
            return Err(unpinned(found, format!("party {peer}")));
        }
        Ok(ServerCertVerified::assertion())
    }

    signature_checks!();
}

/// A serving party's TLS towards outside clients: it presents its party certificate
/// and accepts the client certificates pinned in the parties file, or any client
/// certificate (whose key the client still proves it holds) when none are pinned.
#[derive(Clone)]
pub struct ClientGate {
    server: Arc<ServerConfig>,
}

impl ClientGate {
    /// The gate of the party with `identity`; `client_pins` empty admits any client.
    pub fn new(identity: &Identity, client_pins: Vec<Pin>) -> Result<ClientGate, MpcError> {
        let algorithms = provider().signature_verification_algorithms;
        let verifier = Arc::new(ClientPins { pins: client_pins, whom: "a client (client_pins)", algorithms });
        Ok(ClientGate { server: server_config(identity, verifier)? })
    }

    /// A server connection for a client.
    pub fn server(&self) -> Result<rustls::ServerConnection, rustls::Error> {
        rustls::ServerConnection::new(self.server.clone())
    }
}

/// An outside client's TLS towards the three serving parties: its own identity, and
/// the parties' pins.
#[derive(Clone)]
pub struct ClientTls {
    client: Arc<ClientConfig>,
}

impl ClientTls {
    /// Settings for a client with `identity` that trusts the parties pinned by `pins`.
    pub fn new(identity: &Identity, pins: [Pin; 3]) -> Result<ClientTls, MpcError> {
        let verifier = Arc::new(Pinned { pins, algorithms: provider().signature_verification_algorithms });
        Ok(ClientTls { client: client_config(identity, verifier)? })
    }

    /// A client connection to party `party`.
    pub fn client(&self, party: usize) -> Result<ClientConnection, rustls::Error> {
        ClientConnection::new(self.client.clone(), server_name(party))
    }
}

/// Accepts the pinned client certificates (the other parties', or outside clients'),
/// or any when none are pinned.
#[derive(Debug)]
struct ClientPins {
    pins: Vec<Pin>,
    /// Who the pins are, for the error.
    whom: &'static str,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for ClientPins {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let found = Pin::of(end_entity);
        if !self.pins.is_empty() && !self.pins.contains(&found) {
            return Err(unpinned(found, self.whom.into()));
        }
        Ok(ClientCertVerified::assertion())
    }

    signature_checks!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip_through_pem_and_pins_through_text() {
        let id = Identity::generate();
        let back = Identity::from_pem(id.to_pem().as_bytes(), "k").unwrap();
        assert_eq!(back.pin(), id.pin());
        assert_eq!(id.pin().to_string().parse::<Pin>().unwrap(), id.pin());
        assert!("sha256:zz".parse::<Pin>().is_err());
        // A key with another key's certificate is refused.
        let other = Identity::generate();
        let pem = id.to_pem();
        let mixed =
            format!("{}{}", &pem[..pem.find("-----BEGIN CERTIFICATE").unwrap()], pem_block("CERTIFICATE", &other.cert));
        let err = Identity::from_pem(mixed.as_bytes(), "k").err().unwrap().to_string();
        assert!(err.contains("not the key's"), "{err}");
    }

    #[test]
    fn damaged_key_files_are_errors_not_panics() {
        // A party key file is outside data too: flip, cut and splice a real one.
        let pem = Identity::generate().to_pem().into_bytes();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        for _ in 0..2000 {
            let mut bad = pem.clone();
            match next(3) {
                0 => bad[next(pem.len())] ^= 1 << next(8),
                1 => bad.truncate(next(pem.len())),
                _ => {
                    let at = next(pem.len());
                    bad.drain(at..(at + 1 + next(64)).min(pem.len()));
                }
            }
            let _ = Identity::from_pem(&bad, "k");
        }
    }
}
