//! HTTP(S) GETs outside the API server (a Prometheus URL, a `--scrape` URL, a broker's exporter;
//! through it: api_get.rs), with a timeout and error texts fit for the status bar. HTTPS trusts the system's roots
//! (`SSL_CERT_FILE` / `SSL_CERT_DIR` name others, as for curl and openssl).

use std::path::PathBuf;
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

/// Headers sent with every request to one server: fixed ones (a tenant's `X-Scope-OrgID`, an API
/// key) and a bearer token read from its file at each request, so a rotated token is picked up.
/// Values are secrets: marked sensitive, and never in `Debug` output or an error text.
#[derive(Clone, Default, PartialEq)]
pub struct RequestHeaders {
    fixed: Vec<(http::HeaderName, http::HeaderValue)>,
    bearer_token_file: Option<PathBuf>,
}

impl std::fmt::Debug for RequestHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let names: Vec<&str> = self.fixed.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("RequestHeaders")
            .field("names", &names)
            .field("bearer_token_file", &self.bearer_token_file)
            .finish()
    }
}

/// Two sources of one Authorization header: which was meant is not guessed.
const TWO_AUTHORIZATIONS: &str = "an Authorization header and a bearer token file: give one";

impl RequestHeaders {
    /// Adds `NAME: VALUE` (curl's `-H` form); a name given twice keeps its last value.
    pub fn add(&mut self, spec: &str) -> Result<(), String> {
        let (name, value) = spec
            .split_once(':')
            .ok_or_else(|| "a header is written NAME: VALUE, e.g. X-Scope-OrgID: tenant-1".to_string())?;
        self.insert(name.trim(), value.trim())
    }

    pub fn insert(&mut self, name: &str, value: &str) -> Result<(), String> {
        let name =
            http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("{name:?} is not a header name"))?;
        if name == http::header::AUTHORIZATION && self.bearer_token_file.is_some() {
            return Err(TWO_AUTHORIZATIONS.into());
        }
        // Only the name goes into the error: the value may be a key.
        let mut value = http::HeaderValue::from_str(value)
            .map_err(|_| format!("the value of header {name} holds characters a header cannot carry"))?;
        value.set_sensitive(true);
        self.fixed.retain(|(n, _)| *n != name);
        self.fixed.push((name, value));
        Ok(())
    }

    pub fn set_bearer_token_file(&mut self, path: PathBuf) -> Result<(), String> {
        if self.fixed.iter().any(|(n, _)| *n == http::header::AUTHORIZATION) {
            return Err(TWO_AUTHORIZATIONS.into());
        }
        self.bearer_token_file = Some(path);
        Ok(())
    }

    /// The headers with the token read now; a missing or empty file is named, its content never.
    async fn resolve(&self) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, String> {
        let mut out = self.fixed.clone();
        if let Some(path) = &self.bearer_token_file {
            let unreadable = |why: String| format!("bearer token file {}: {why}", path.display());
            let text = tokio::fs::read_to_string(path).await.map_err(|e| unreadable(e.to_string()))?;
            let token = text.trim();
            if token.is_empty() {
                return Err(unreadable("empty".into()));
            }
            let mut value = http::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| unreadable("holds characters a header cannot carry".into()))?;
            value.set_sensitive(true);
            out.push((http::header::AUTHORIZATION, value));
        }
        Ok(out)
    }

    /// A request to the API server's proxy: the fixed headers only (the API server's own
    /// credentials are the Authorization there).
    pub fn apply_fixed(&self, request: &mut http::HeaderMap) {
        for (name, value) in &self.fixed {
            if *name != http::header::AUTHORIZATION {
                request.insert(name.clone(), value.clone());
            }
        }
    }
}

/// GET `uri`: (status, body of at most `limit` bytes), or why not.
pub async fn get(
    client: &HttpClient,
    uri: http::Uri,
    headers: &RequestHeaders,
    timeout: Duration,
    limit: usize,
) -> Result<(http::StatusCode, Bytes), String> {
    let fetch = async {
        let mut request = http::Request::get(uri).body(Empty::new()).map_err(|e| format!("bad request: {e}"))?;
        request.headers_mut().extend(headers.resolve().await?);
        let resp = client.request(request).await.map_err(|e| connect_error(&error_chain(&e)))?;
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

/// A gzipped body inflated, at most `limit` bytes of it: a small answer that inflates without end
/// (a gzip bomb) is refused like a large one.
pub fn gunzip(compressed: &[u8], limit: usize) -> Result<Bytes, String> {
    use std::io::Read;
    let mut out = Vec::with_capacity((compressed.len() * 8).min(limit));
    flate2::read::GzDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("the gzipped answer is broken: {e}"))?;
    if out.len() > limit {
        return Err(format!("answer larger than {} MiB once inflated: not read, to keep memory bounded", limit >> 20));
    }
    Ok(Bytes::from(out))
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

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_gzipped_answer_is_inflated_within_the_limit_and_a_bomb_is_refused() {
        let text = "container_cpu_usage_seconds_total{pod=\"p\"} 1\n".repeat(1000);
        assert_eq!(gunzip(&gzip(text.as_bytes()), 1 << 20).unwrap(), text.as_bytes());
        // 64 MiB of zeros gzip to ~64 kB: refused once more than the limit came out.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 100_000);
        let err = gunzip(&bomb, 1 << 20).unwrap_err();
        assert!(err.contains("once inflated"), "{err}");
        assert!(gunzip(b"not gzip at all", 1 << 20).unwrap_err().contains("broken"));
    }

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

    /// The head of one request a loopback server received, answered 200.
    async fn request_head_of(headers: &RequestHeaders) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.ends_with(b"\r\n\r\n") {
                let n = conn.read(&mut buf).await.unwrap();
                head.extend_from_slice(&buf[..n]);
            }
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await.unwrap();
            String::from_utf8(head).unwrap().to_ascii_lowercase()
        });
        let uri = format!("http://{addr}/api/v1/query").parse().unwrap();
        let (status, body) = get(&client(), uri, headers, Duration::from_secs(5), 1024).await.unwrap();
        assert_eq!((status.as_u16(), &body[..]), (200, &b"ok"[..]));
        server.await.unwrap()
    }

    #[tokio::test]
    async fn the_users_headers_and_token_go_with_each_request_and_stay_out_of_debug() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "first-token\n").unwrap();
        let mut headers = RequestHeaders::default();
        headers.add("X-Scope-OrgID: tenant-1").unwrap();
        headers.add("X-Scope-OrgID:tenant-2").unwrap();
        headers.set_bearer_token_file(token.clone()).unwrap();
        let head = request_head_of(&headers).await;
        assert!(head.contains("x-scope-orgid: tenant-2\r\n") && !head.contains("tenant-1"), "{head}");
        assert!(head.contains("authorization: bearer first-token\r\n"), "{head}");
        // A rotated token is read at the next request.
        std::fs::write(&token, "second-token").unwrap();
        assert!(request_head_of(&headers).await.contains("authorization: bearer second-token\r\n"));
        let shown = format!("{headers:?}");
        assert!(shown.contains("X-Scope-OrgID") || shown.contains("x-scope-orgid"), "{shown}");
        assert!(!shown.contains("tenant-2") && !shown.contains("second-token"), "{shown}");
        // Malformed: the name or the shape is named, never the value.
        assert!(headers.add("no colon here").unwrap_err().contains("NAME: VALUE"));
        let bad = headers.add("X-Key: sec\u{7f}ret").unwrap_err();
        assert!(bad.contains("x-key") && !bad.contains("sec"), "{bad}");
        assert!(headers.add("Authorization: Bearer x").unwrap_err().contains("give one"));
        std::fs::write(&token, " \n").unwrap();
        let uri: http::Uri = "http://127.0.0.1:9/".parse().unwrap();
        let empty = get(&client(), uri, &headers, Duration::from_secs(5), 1024).await.unwrap_err();
        assert_eq!(empty, format!("bearer token file {}: empty", token.display()));
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
