//! HTTP(S) GETs outside the API server (a Prometheus URL, a `--scrape` URL, a broker's exporter),
//! with a timeout and error texts fit for the status bar. HTTPS trusts the system's roots
//! (`SSL_CERT_FILE` / `SSL_CERT_DIR` name others, as for curl and openssl).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

pub fn client() -> HttpClient {
    let builder = HttpsConnectorBuilder::new();
    // No system roots (a bare container): http:// still works, https:// names the missing trust.
    let builder = builder.with_native_roots().unwrap_or_else(|_| {
        HttpsConnectorBuilder::new().with_tls_config(
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        )
    });
    Client::builder(TokioExecutor::new()).build(builder.https_or_http().enable_http1().build())
}

/// Checks that `url` is `http://` or `https://` and well formed.
pub fn check_url(url: &str, what: &str) -> Result<http::Uri, String> {
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(format!("{what} URL {url:?} must start with http:// or https://"));
    }
    url.parse::<http::Uri>().map_err(|e| format!("bad {what} URL {url:?}: {e}"))
}

/// The largest exposition text read (a kubelet's cAdvisor for 250 pods is a few MB, a broker's
/// less): a bigger answer is refused, not parsed, so memory stays bounded.
pub const EXPOSITION_LIMIT: usize = 32 << 20;
/// The largest Prometheus answer read (a back-fill window for 30,000 containers is tens of MB).
pub const PROMETHEUS_LIMIT: usize = 256 << 20;

/// GET `uri`: (status, body of at most `limit` bytes), or why not.
pub async fn get(
    client: &HttpClient,
    uri: http::Uri,
    timeout: Duration,
    limit: usize,
) -> Result<(http::StatusCode, Bytes), String> {
    let fetch = async {
        let resp = client.get(uri).await.map_err(|e| connect_error(&error_chain(&e)))?;
        let status = resp.status();
        Ok((status, read_body(resp, limit).await?))
    };
    tokio::time::timeout(timeout, fetch)
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {}s", timeout.as_secs())))
}

/// Why a connection failed, short enough for the status bar; an untrusted certificate says what
/// to do about it.
fn connect_error(chain: &str) -> String {
    let chain = chain.trim_start_matches("client error (Connect): ");
    match chain.split_once("invalid peer certificate: ") {
        Some((_, why)) => format!("TLS certificate not trusted ({why}): set SSL_CERT_FILE to its CA"),
        None => format!("cannot connect: {chain}"),
    }
}

/// A whole response body in one buffer, sized up front from Content-Length when given.
/// Collecting the chunks and then joining them would hold a large answer twice (a Prometheus
/// answer for 30,000 containers is several MB, a back-fill window tens of MB). An answer over
/// `limit` bytes is given up on, with the reason, as soon as it is known to be one.
pub async fn read_body<B>(resp: http::Response<B>, limit: usize) -> Result<Bytes, String>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let too_big = || format!("answer larger than {} MiB: not read, to keep memory bounded", limit >> 20);
    let expected = resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .unwrap_or(0);
    if expected > limit {
        return Err(too_big());
    }
    let mut body = resp.into_body();
    let mut buf = Vec::with_capacity(expected);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the answer: {e}"))?;
        if let Some(data) = frame.data_ref() {
            if buf.len() + data.len() > limit {
                return Err(too_big());
            }
            buf.extend_from_slice(data);
        }
    }
    Ok(Bytes::from(buf))
}

/// An error and its sources on one line; a source whose text its parent already includes
/// (hyper and kube often wrap that way) is not repeated.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: Vec<u8>, content_length: Option<usize>) -> http::Response<http_body_util::Full<Bytes>> {
        let mut builder = http::Response::builder();
        if let Some(n) = content_length {
            builder = builder.header(http::header::CONTENT_LENGTH, n);
        }
        builder.body(http_body_util::Full::new(Bytes::from(body))).unwrap()
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_with_the_reason() {
        let big = vec![b'x'; 3 << 20];
        let err = read_body(response(big.clone(), None), 2 << 20).await.unwrap_err();
        assert_eq!(err, "answer larger than 2 MiB: not read, to keep memory bounded");
        // Announced too big: refused before reading.
        let err = read_body(response(vec![], Some(1 << 40)), 2 << 20).await.unwrap_err();
        assert!(err.starts_with("answer larger than 2 MiB"), "{err}");
        assert_eq!(read_body(response(big, None), 4 << 20).await.unwrap().len(), 3 << 20);
    }

    #[test]
    fn an_untrusted_certificate_says_what_to_do() {
        assert_eq!(
            connect_error("client error (Connect): invalid peer certificate: UnknownIssuer"),
            "TLS certificate not trusted (UnknownIssuer): set SSL_CERT_FILE to its CA"
        );
        assert_eq!(
            connect_error("client error (Connect): tcp connect error: Connection refused (os error 111)"),
            "cannot connect: tcp connect error: Connection refused (os error 111)"
        );
    }
}
