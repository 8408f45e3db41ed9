//! Choosing the cluster exactly as kubectl does: `--kubeconfig`, else `$KUBECONFIG` (several files,
//! merged, missing ones skipped), else `~/.kube/config`, else in-cluster; `--context` picks the
//! context, whose namespace is the default scope.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::sources::api_traffic::{ApiTraffic, CountingLayer};

#[derive(Clone)]
pub enum Connector {
    Kubeconfig(Box<Kubeconfig>),
    InCluster,
}

/// A user-facing failure to find or read cluster credentials. Texts never include file contents.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("kubeconfig {0} does not exist")]
    Missing(PathBuf),
    #[error("cannot read kubeconfig {0}: {1}")]
    Unreadable(PathBuf, String),
    #[error(
        "no kubeconfig found (tried $KUBECONFIG and ~/.kube/config) and not running inside a cluster; try `kpulse demo`"
    )]
    NoConfig,
    #[error("context {0:?} is not in the kubeconfig (known: {1})")]
    UnknownContext(String, String),
    #[error("the kubeconfig has no current-context; pick one with --context")]
    NoCurrentContext,
    #[error("cannot use context {0:?}: {1}")]
    Config(String, String),
}

impl Connector {
    pub fn discover(explicit: Option<&Path>) -> Result<Connector, ConnectError> {
        if let Some(path) = explicit {
            if !path.exists() {
                return Err(ConnectError::Missing(path.to_path_buf()));
            }
            return read(path).map(|k| Connector::Kubeconfig(Box::new(k)));
        }
        if let Some(value) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
            let paths: Vec<PathBuf> = std::env::split_paths(&value).filter(|p| p.exists()).collect();
            if !paths.is_empty() {
                let mut merged = Kubeconfig::default();
                for p in &paths {
                    merged = merged.merge(read(p)?).map_err(|e| ConnectError::Unreadable(p.clone(), e.to_string()))?;
                }
                return Ok(Connector::Kubeconfig(Box::new(merged)));
            }
        }
        if let Some(home) = std::env::var_os("HOME") {
            let path = PathBuf::from(home).join(".kube").join("config");
            if path.exists() {
                return read(&path).map(|k| Connector::Kubeconfig(Box::new(k)));
            }
        }
        if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
            return Ok(Connector::InCluster);
        }
        Err(ConnectError::NoConfig)
    }

    /// A kubeconfig's text (one file, as `--kubeconfig` names it), or why it is not one: never
    /// with the file's contents, which may hold a token or a key.
    pub fn from_yaml(text: &str) -> Result<Connector, String> {
        Kubeconfig::from_yaml(text)
            .map(|k| Connector::Kubeconfig(Box::new(k)))
            .map_err(|e| redacted_config_error(&e.to_string()))
    }

    pub fn contexts(&self) -> Vec<String> {
        match self {
            Connector::Kubeconfig(k) => k.contexts.iter().map(|c| c.name.clone()).collect(),
            Connector::InCluster => vec!["in-cluster".into()],
        }
    }

    /// The context to use: the one asked for, else current-context.
    pub fn resolve_context(&self, asked: Option<&str>) -> Result<String, ConnectError> {
        match self {
            Connector::InCluster => Ok("in-cluster".into()),
            Connector::Kubeconfig(k) => {
                let name = match asked {
                    Some(n) => n.to_string(),
                    None => {
                        k.current_context.clone().filter(|c| !c.is_empty()).ok_or(ConnectError::NoCurrentContext)?
                    }
                };
                if !k.contexts.iter().any(|c| c.name == name) {
                    return Err(ConnectError::UnknownContext(name, self.contexts().join(", ")));
                }
                Ok(name)
            }
        }
    }

    /// The API server `context` talks to, as the kubeconfig names it (for messages: no secret in it).
    pub fn server(&self, context: &str) -> Option<String> {
        match self {
            Connector::InCluster => {
                let host = std::env::var("KUBERNETES_SERVICE_HOST").ok()?;
                let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
                Some(format!("https://{host}:{port}"))
            }
            Connector::Kubeconfig(k) => {
                let cluster = k.contexts.iter().find(|c| c.name == context)?.context.as_ref()?.cluster.clone();
                let named = k.clusters.iter().find(|c| c.name == cluster)?;
                named.cluster.as_ref()?.server.clone()
            }
        }
    }

    /// A client for `context`, that context's default namespace, and the counter of what the
    /// client asks of the API server.
    pub async fn connect(&self, context: &str) -> Result<Connection, ConnectError> {
        let server = self.server(context).unwrap_or_else(|| "an unknown server".into());
        tracing::info!("connecting to context {context} at {server}");
        let config = self.client_config(context).await?;
        let namespace = config.default_namespace.clone();
        let plugin = config.auth_info.exec.as_ref().and_then(|e| e.command.clone());
        // An exec credential plugin runs here, blocking, and may hang (a login prompt with no one
        // to answer it): on a thread of its own, with a deadline.
        let traffic = Arc::new(ApiTraffic::default());
        let layer = CountingLayer(traffic.clone());
        let build = tokio::task::spawn_blocking(move || {
            kube::client::ClientBuilder::try_from(config).map(|b| b.with_layer(&layer).build())
        });
        let client = match tokio::time::timeout(PLUGIN_TIMEOUT, build).await {
            Ok(Ok(Ok(client))) => client,
            Ok(Ok(Err(e))) => return Err(ConnectError::Config(context.into(), safe_error(&e))),
            Ok(Err(e)) => return Err(ConnectError::Config(context.into(), format!("building the client failed: {e}"))),
            Err(_) => {
                let what = plugin.map_or("the client".to_string(), |p| format!("credential plugin {p}"));
                return Err(ConnectError::Config(
                    context.into(),
                    format!("{what} did not answer within {}s", PLUGIN_TIMEOUT.as_secs()),
                ));
            }
        };
        Ok(Connection { client, namespace, traffic })
    }

    /// The client configuration of `context`, as kube reads it (no credential plugin runs yet).
    async fn client_config(&self, context: &str) -> Result<Config, ConnectError> {
        Ok(match self {
            Connector::InCluster => {
                Config::incluster().map_err(|e| ConnectError::Config(context.into(), e.to_string()))?
            }
            Connector::Kubeconfig(k) => {
                let options = KubeConfigOptions { context: Some(context.to_string()), ..Default::default() };
                Config::from_custom_kubeconfig((**k).clone(), &options)
                    .await
                    .map_err(|e| ConnectError::Config(context.into(), redacted_config_error(&e.to_string())))?
            }
        })
    }
}

/// A connected client: requests go through a counting layer, so the cost is known.
pub struct Connection {
    pub client: Client,
    /// The context's namespace (the default scope).
    pub namespace: String,
    pub traffic: Arc<ApiTraffic>,
}

/// How long an exec credential plugin may take (kubectl has no limit; a dashboard must not hang).
const PLUGIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn read(path: &Path) -> Result<Kubeconfig, ConnectError> {
    Kubeconfig::read_from(path)
        .map_err(|e| ConnectError::Unreadable(path.to_path_buf(), redacted_config_error(&e.to_string())))
}

/// A kubeconfig error without the file's contents: YAML errors quote the lines near the fault,
/// and those lines can hold a token or a key. Only the position is kept.
pub fn redacted_config_error(text: &str) -> String {
    let lower = text.to_lowercase();
    let position = lower.find("line ").map(|i| {
        let digits = |from: usize| -> String { lower[from..].chars().take_while(char::is_ascii_digit).collect() };
        let line = digits(i + 5);
        let column = lower[i..].find("column ").map(|j| digits(i + j + 7)).unwrap_or_default();
        (line, column)
    });
    let quotes_content = text.contains('\n') || text.contains('"') || text.contains('`') || text.contains('\'');
    match position {
        Some((line, column)) if !line.is_empty() => {
            let at = if column.is_empty() { format!("line {line}") } else { format!("line {line}, column {column}") };
            format!("not a valid kubeconfig (YAML error at {at})")
        }
        _ if quotes_content => "not a valid kubeconfig (YAML error)".to_string(),
        _ => text.to_string(),
    }
}

/// A client error in words that carry no secret: a failed exec plugin's error embeds its whole
/// output (the credential included) and its environment.
pub fn safe_error(err: &kube::Error) -> String {
    use kube::client::AuthError;
    match err {
        kube::Error::Auth(AuthError::AuthExecRun { out, .. }) => {
            let code = out.status.code().map_or("a signal".to_string(), |c| format!("exit code {c}"));
            format!("the credential plugin failed ({code}); run it by hand to see why")
        }
        kube::Error::Auth(AuthError::AuthExecStart(e)) => format!("the credential plugin could not be started: {e}"),
        kube::Error::Auth(AuthError::AuthExecParse(_)) => {
            "the credential plugin's output is not an ExecCredential".into()
        }
        kube::Error::Auth(AuthError::ExecPluginFailed) => "the credential plugin returned no status".into(),
        kube::Error::Auth(AuthError::ReadTokenFile(e, path)) => {
            format!("cannot read token file {}: {e}", path.display())
        }
        kube::Error::Auth(_) => "authentication failed (credentials not shown)".into(),
        other => other.to_string(),
    }
}
