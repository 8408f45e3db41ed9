//! GETs through the API server that kube's typed `Api` does not cover (the node proxy to a
//! kubelet, the service proxy to a Prometheus), and what a client error means for a source: one
//! place for every source that talks to the API server, so none imports another for it.

use std::time::Duration;

use bytes::Bytes;
use kube::Client;

use super::SourceState;
use super::http::{error_chain, gunzip, read_body};

/// GET `path` through the API server, asking for gzip (a kubelet compresses its exposition and
/// the proxy passes it on: a real kubelet's cAdvisor text shrinks 23×), with `headers` added and
/// the body capped at `limit` bytes before and after inflating. (status, body), or why not.
pub async fn get(
    client: &Client,
    path: &str,
    headers: &http::HeaderMap,
    timeout: Duration,
    limit: usize,
) -> Result<(http::StatusCode, Bytes), SourceState> {
    let mut request = http::Request::get(path)
        .header(http::header::ACCEPT_ENCODING, "gzip")
        .body(kube::client::Body::empty())
        .map_err(|e| SourceState::Reconnecting(e.to_string()))?;
    request.headers_mut().extend(headers.clone());
    let fetch = async {
        let resp = client.send(request).await.map_err(|e| classify_client_error(&e))?;
        let status = resp.status();
        let gzipped = resp
            .headers()
            .get(http::header::CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let body = read_body(resp, limit).await.map_err(SourceState::Reconnecting)?;
        let body = if gzipped { gunzip(&body, limit).map_err(SourceState::Reconnecting)? } else { body };
        Ok((status, body))
    };
    match tokio::time::timeout(timeout, fetch).await {
        Ok(result) => result,
        Err(_) => Err(SourceState::Reconnecting(format!("timed out after {}s", timeout.as_secs()))),
    }
}

/// Turns a client error into a short, secret-free reason for the status bar.
pub fn classify_client_error(err: &kube::Error) -> SourceState {
    match err {
        kube::Error::Api(status) => match status.code {
            403 => SourceState::Forbidden(first_line(&status.message)),
            404 => SourceState::Absent(first_line(&status.message)),
            code => SourceState::Reconnecting(format!("HTTP {code}: {}", first_line(&status.message))),
        },
        kube::Error::HyperError(e) => SourceState::Reconnecting(format!("connection: {e}")),
        kube::Error::Service(e) => {
            SourceState::Reconnecting(format!("connection: {}", first_line(&error_chain(e.as_ref()))))
        }
        kube::Error::Auth(_) => SourceState::Reconnecting(crate::kubeconfig::safe_error(err)),
        other => SourceState::Reconnecting(first_line(&other.to_string())),
    }
}

/// The first line of a server's message, at most 160 characters: a status bar has one line.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("").trim();
    let mut out: String = line.chars().take(160).collect();
    if line.chars().count() > 160 {
        out.push('…');
    }
    out
}
