//! Any text as a kubeconfig (`--kubeconfig FILE`): no panic, and an error never quotes the file,
//! whose lines may hold a token or a client key.
#![no_main]

use kpulse::kubeconfig::Connector;
use libfuzzer_sys::fuzz_target;

/// Runs of letters and digits long enough to be a token or a key's base64.
fn secret_like(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| w.len() >= 16)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Connector::from_yaml(text) {
        Err(why) => {
            for secret in secret_like(text) {
                assert!(!why.contains(secret), "the error quotes the file: {why}");
            }
        }
        Ok(connector) => {
            // What kpulse reads before it connects: context names, the current one, its server.
            let contexts = connector.contexts();
            if let Ok(context) = connector.resolve_context(None) {
                assert!(contexts.contains(&context));
                let _ = connector.server(&context);
            }
            for name in contexts.iter().take(8) {
                let _ = connector.server(name);
            }
        }
    }
});
