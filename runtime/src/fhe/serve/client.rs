//! The blocking HTTP client of the FHE service (ureq, rustls with ring).

use super::{ErrorReply, KeyReceipt, ModelInfo, KEY_ID_HEADER};
use secc_ir::client_spec::{ClientSpec, SpecError};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Largest reply read: result ciphertexts of [`super::MAX_REQUEST_ROWS`] samples.
const MAX_REPLY: u64 = 1 << 32;

/// Why a call to the service failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is unusable, or unsafe.
    #[error("{0}")]
    Url(String),
    /// The connection failed.
    #[error("{url}: {reason}")]
    Transport {
        /// What was called.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The service answered with an error.
    #[error("{url}: {status}: {message}")]
    Status {
        /// What was called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The service's message.
        message: String,
    },
    /// The service's client spec is unusable.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A reply that is not what the route returns.
    #[error("{url}: an unexpected reply: {reason}")]
    Reply {
        /// What was called.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

impl ClientError {
    /// The HTTP status the service answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// How the client reaches the service.
pub enum Transport {
    /// HTTPS; the server's certificate must chain to this PEM certificate (say, a
    /// self-signed server's own), or to the web's roots when `None`.
    Tls(Option<Vec<u8>>),
    /// Plain HTTP, on loopback only: anyone on the path reads every ciphertext (which
    /// stays secret) but also which model is queried, and can tamper with the replies.
    Plain,
}

/// A client of one service.
pub struct FheClient {
    base: String,
    agent: ureq::Agent,
}

/// Whether `url` (`scheme://host[:port]...`) names a loopback host.
fn loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl FheClient {
    /// A client of the service at `url` (`https://host:port`, or `http://` on loopback
    /// with [`Transport::Plain`]); each call gives up after `timeout`.
    pub fn new(url: &str, transport: Transport, timeout: Duration) -> Result<FheClient, ClientError> {
        let base = url.trim_end_matches('/').to_string();
        let tls = match (&transport, base.split_once("://").map(|(s, _)| s)) {
            (Transport::Tls(ca), Some("https")) => {
                let roots = match ca {
                    None => ureq::tls::RootCerts::WebPki,
                    Some(pem) => {
                        let certs: Vec<_> = ureq::tls::parse_pem(pem)
                            .filter_map(|item| match item {
                                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                                _ => None,
                            })
                            .collect();
                        if certs.is_empty() {
                            return Err(ClientError::Url("the CA file holds no PEM certificate".into()));
                        }
                        ureq::tls::RootCerts::Specific(Arc::new(certs))
                    }
                };
                ureq::tls::TlsConfig::builder().root_certs(roots).build()
            }
            (Transport::Plain, Some("http")) if loopback(&base) => ureq::tls::TlsConfig::default(),
            (Transport::Plain, Some("http")) => {
                return Err(ClientError::Url(format!("{base}: plain HTTP only to a loopback address; use https")))
            }
            (Transport::Plain, _) => return Err(ClientError::Url(format!("{base}: --insecure takes an http:// URL"))),
            (Transport::Tls(_), _) => {
                return Err(ClientError::Url(format!(
                    "{base}: an https:// URL (or http:// on loopback with --insecure)"
                )))
            }
        };
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .tls_config(tls)
            .build()
            .into();
        Ok(FheClient { base, agent })
    }

    fn read(
        &self,
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Vec<u8>, ClientError> {
        let transport = |e: ureq::Error| ClientError::Transport { url: url.to_string(), reason: e.to_string() };
        let mut response = response.map_err(transport)?;
        let status = response.status().as_u16();
        let bytes = response.body_mut().with_config().limit(MAX_REPLY).read_to_vec().map_err(transport)?;
        if status == 200 {
            return Ok(bytes);
        }
        let message = serde_json::from_slice::<ErrorReply>(&bytes)
            .map(|r| r.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
        Err(ClientError::Status { url: url.to_string(), status, message })
    }

    fn json<T: serde::de::DeserializeOwned>(url: &str, bytes: &[u8]) -> Result<T, ClientError> {
        serde_json::from_slice(bytes).map_err(|e| ClientError::Reply { url: url.to_string(), reason: e.to_string() })
    }

    /// The models served.
    pub fn models(&self) -> Result<Vec<ModelInfo>, ClientError> {
        let url = format!("{}/v1/models", self.base);
        let bytes = self.read(&url, self.agent.get(&url).call())?;
        Self::json(&url, &bytes)
    }

    /// The client spec of `model`, checked.
    pub fn client_spec(&self, model: &str) -> Result<ClientSpec, ClientError> {
        let url = format!("{}/v1/models/{model}/client", self.base);
        let bytes = self.read(&url, self.agent.get(&url).call())?;
        Ok(ClientSpec::from_bytes(&bytes, &url)?)
    }

    /// Uploads the server key file at `path`, made for `model`, streaming it; returns
    /// the key id inference requests name it by.
    pub fn upload_key(&self, model: &str, path: &Path) -> Result<String, ClientError> {
        let url = format!("{}/v1/keys?model={model}", self.base);
        let file = std::fs::File::open(path).map_err(|e| ClientError::Url(format!("{}: {e}", path.display())))?;
        let bytes = self.read(&url, self.agent.post(&url).content_type("application/octet-stream").send(file))?;
        Ok(Self::json::<KeyReceipt>(&url, &bytes)?.key_id)
    }

    /// Runs `model` on a ciphertext file made under the key `key_id`; returns the
    /// result ciphertext file.
    pub fn infer(&self, model: &str, key_id: &str, ciphertexts: &[u8]) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}/v1/models/{model}/infer", self.base);
        let request = self.agent.post(&url).header(KEY_ID_HEADER, key_id).content_type("application/octet-stream");
        self.read(&url, request.send(ciphertexts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_for_loopback_only() {
        let t = Duration::from_secs(1);
        for url in ["http://127.0.0.1:8080", "http://localhost:1/", "http://[::1]:9"] {
            assert!(FheClient::new(url, Transport::Plain, t).is_ok(), "{url}");
        }
        for url in ["http://10.0.0.1:8080", "http://example.com", "https://127.0.0.1:1"] {
            assert!(FheClient::new(url, Transport::Plain, t).is_err(), "{url}");
        }
        assert!(FheClient::new("http://127.0.0.1:1", Transport::Tls(None), t).is_err());
        assert!(FheClient::new("https://example.com", Transport::Tls(None), t).is_ok());
    }
}
