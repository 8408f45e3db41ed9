//! `--log-file FILE`: what kpulse saw and did (sources connecting, failing and recovering,
//! notices, contexts switched), appended to a file, never to the terminal the dashboard draws
//! on. Every line passes through `redact` on its way out: the texts logged are the status
//! bar's, which hold no secrets, and a token that slipped into one is masked all the same.
//! `KPULSE_LOG` sets the filter (`kpulse=info` by default: kpulse's own events; `debug`, or
//! any tracing filter, e.g. `kpulse=info,kube=debug`).

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// Starts logging to `path` (appended, created if missing); an unusable path or filter is named.
pub fn init(path: &Path) -> Result<(), String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("--log-file {}: {e}", path.display()))?;
    // kpulse's own events: the libraries' (kube's per-request errors) repeat what the sources say.
    let filter = std::env::var("KPULSE_LOG").unwrap_or_else(|_| "kpulse=info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).map_err(|e| format!("KPULSE_LOG={filter:?}: {e}"))?;
    let writer = Mutex::new(Redacting(file));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_writer(writer)
        .try_init()
        .map_err(|e| format!("logging: {e}"))
}

/// Writes each formatted event with its secrets masked (an event arrives in one write).
struct Redacting<W>(W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Words after which the next word is a secret.
const SECRET_AFTER: [&str; 6] = ["bearer ", "basic ", "token=", "token: ", "password=", "password: "];

/// `text` with every credential replaced by `[redacted]`: the word after `Bearer`, `Basic`,
/// `token=`, `password=`, and anything shaped like a JWT (`eyJ…`, what
/// Kubernetes service-account tokens are).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let lower = text.to_ascii_lowercase();
    let mut i = 0;
    while i < text.len() {
        let rest = &lower[i..];
        let after = SECRET_AFTER.iter().find(|k| rest.starts_with(*k)).map(|k| k.len());
        let jwt = rest.starts_with("eyj") && boundary_before(text, i);
        match after {
            Some(n) => {
                out.push_str(&text[i..i + n]);
                i += n;
                let end = secret_end(text, i);
                if end > i {
                    out.push_str("[redacted]");
                }
                i = end;
            }
            None if jwt => {
                out.push_str("[redacted]");
                i = secret_end(text, i);
            }
            None => {
                let ch = text[i..].chars().next().unwrap();
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

fn boundary_before(text: &str, i: usize) -> bool {
    text[..i].chars().next_back().is_none_or(|c| !c.is_ascii_alphanumeric())
}

/// Where a secret that starts at `start` ends: at whitespace, a quote or a separator.
fn secret_end(text: &str, start: usize) -> usize {
    text[start..]
        .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | ')'))
        .map_or(text.len(), |n| start + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_masked_and_the_rest_kept() {
        assert_eq!(
            redact("GET /api with Authorization: Bearer abc.def-123 failed"),
            "GET /api with Authorization: Bearer [redacted] failed"
        );
        assert_eq!(redact("url?token=s3cret&x=1 ok"), "url?token=[redacted] ok");
        assert_eq!(redact("password: hunter2, user: me"), "password: [redacted], user: me");
        assert_eq!(
            redact("client token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.sig here"),
            "client token [redacted] here"
        );
        assert_eq!(redact("keyJust a word"), "keyJust a word");
        let plain = "source pods: reconnecting (cannot connect: Connection refused)";
        assert_eq!(redact(plain), plain);
        assert_eq!(redact("ünïcode Bearer ☃tok ok"), "ünïcode Bearer [redacted] ok");
    }
}
