//! Choosing the cluster exactly as kubectl does: `--kubeconfig`, else `$KUBECONFIG` (several files,
//! merged, missing ones skipped), else `~/.kube/config`, else in-cluster; `--context` picks the
//! context, whose namespace is the default scope.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

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

    /// A client for `context` and that context's default namespace.
    pub async fn connect(&self, context: &str) -> Result<(Client, String), ConnectError> {
        let config = match self {
            Connector::InCluster => {
                Config::incluster().map_err(|e| ConnectError::Config(context.into(), e.to_string()))?
            }
            Connector::Kubeconfig(k) => {
                let options = KubeConfigOptions { context: Some(context.to_string()), ..Default::default() };
                Config::from_custom_kubeconfig((**k).clone(), &options)
                    .await
                    .map_err(|e| ConnectError::Config(context.into(), e.to_string()))?
            }
        };
        let namespace = config.default_namespace.clone();
        let client = Client::try_from(config).map_err(|e| ConnectError::Config(context.into(), e.to_string()))?;
        Ok((client, namespace))
    }
}

fn read(path: &Path) -> Result<Kubeconfig, ConnectError> {
    Kubeconfig::read_from(path).map_err(|e| ConnectError::Unreadable(path.to_path_buf(), e.to_string()))
}
