//! The config file: embedded defaults (config/default.toml) overlaid with the user's file.
//! A broken user file never stops kpulse: the error is reported and the defaults are used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::analysis::hotspots::Rules;
use crate::model::accesslog::Format;
use crate::model::broker::{BrokerKind, BrokerTarget, ConsumerSpec, Mapping};
use crate::model::promql::Queries;
use crate::sources::gateway::GatewaySpec;
use crate::sources::http::RequestHeaders;
use crate::sources::kube::UsageMode;

/// The longest history kept: at the default 15 s interval, 1,440 points a series.
const MAX_RETENTION_MINUTES: u64 = 360;

pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    refresh_interval_secs: Option<u64>,
    metrics_interval_secs: Option<u64>,
    cadvisor_full_interval_secs: Option<u64>,
    cadvisor_max_nodes: Option<usize>,
    mesh_max_pods: Option<usize>,
    retention_minutes: Option<u64>,
    theme: Option<String>,
    all_namespaces: Option<bool>,
    usage: Option<String>,
    prometheus: Option<String>,
    /// name = value, sent with every Prometheus request (e.g. Mimir's `X-Scope-OrgID`).
    #[serde(default)]
    prometheus_headers: BTreeMap<String, String>,
    prometheus_bearer_token_file: Option<PathBuf>,
    scrape: Option<Vec<String>>,
    gateway: Option<Vec<String>>,
    log_format: Option<String>,
    log_tz: Option<String>,
    #[serde(default)]
    prometheus_contexts: BTreeMap<String, String>,
    #[serde(default)]
    prometheus_queries: std::collections::HashMap<String, String>,
    #[serde(default)]
    keys: BTreeMap<String, String>,
    hotspots: Option<Rules>,
    events: Option<EventsFile>,
}

/// `[events]`: brokers to scrape, who consumes what, metric-name overrides per broker kind.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsFile {
    brokers: Option<Vec<String>>,
    #[serde(default)]
    consumers: Vec<ConsumerSpec>,
    /// kind → the keys of its Mapping to replace.
    #[serde(default)]
    mapping: BTreeMap<String, toml::Table>,
}

/// What the Events view reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventsConfig {
    pub brokers: Vec<BrokerTarget>,
    pub consumers: Vec<ConsumerSpec>,
    pub mappings: BTreeMap<BrokerKind, Mapping>,
}

impl EventsConfig {
    /// Adds a broker; a name already taken gets a numbered suffix, so two brokers' rows never merge.
    pub fn add_broker(&mut self, mut target: BrokerTarget) {
        let base = target.name.clone();
        let mut n = 1;
        while self.brokers.iter().any(|b| b.name == target.name) {
            n += 1;
            target.name = format!("{base}-{n}");
        }
        self.brokers.push(target);
    }

    pub fn mapping(&self, kind: BrokerKind) -> Mapping {
        self.mappings.get(&kind).cloned().unwrap_or_else(|| kind.default_mapping())
    }

    fn from_file(file: EventsFile) -> Result<EventsConfig, String> {
        let targets: Vec<BrokerTarget> =
            file.brokers.unwrap_or_default().iter().map(|b| BrokerTarget::parse(b)).collect::<Result<_, _>>()?;
        let mut mappings = BTreeMap::new();
        for (kind_name, overrides) in file.mapping {
            let kind = BrokerKind::parse(&kind_name)
                .ok_or_else(|| format!("[events.mapping.{kind_name}]: expected rabbitmq, kafka or nats"))?;
            let mut table = toml::Table::try_from(kind.default_mapping()).map_err(|e| e.to_string())?;
            table.extend(overrides);
            let mapping: Mapping =
                table.try_into().map_err(|e: toml::de::Error| format!("[events.mapping.{kind_name}]: {e}"))?;
            mappings.insert(kind, mapping);
        }
        let mut events = EventsConfig { brokers: Vec::new(), consumers: file.consumers, mappings };
        for target in targets {
            events.add_broker(target);
        }
        Ok(events)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub refresh_interval: Duration,
    pub metrics_interval: Duration,
    /// How often the kubelets' full cAdvisor text is read (throttling, network); CPU and memory
    /// come from their small resource endpoint every metrics interval.
    pub cadvisor_full_interval: Duration,
    /// In `auto` usage, above this many nodes usage comes from a cheaper source.
    pub cadvisor_max_nodes: usize,
    /// Mesh sidecars whose call logs are followed at most (0: none).
    pub mesh_max_pods: usize,
    pub retention: Duration,
    pub theme: String,
    pub all_namespaces: bool,
    pub usage: UsageMode,
    /// Prometheus base URL (or "auto"), and per kubeconfig context.
    pub prometheus: Option<String>,
    pub prometheus_contexts: BTreeMap<String, String>,
    /// Headers and a bearer token file for every Prometheus request; their values never shown.
    pub prometheus_headers: RequestHeaders,
    pub queries: Queries,
    /// Exposition URLs to scrape for usage instead of the kubelets.
    pub scrape: Vec<String>,
    /// Gateway log sources (`--gateway`): `auto`, `pods:NS/SELECTOR[#CONTAINER]`, `file:PATH`, `-`.
    pub gateway: Vec<GatewaySpec>,
    /// A log format for every gateway stream instead of detecting it (`--log-format`).
    pub log_format: Option<String>,
    /// The zone of log times written without one (`--log-tz`); unset: the system zone.
    pub log_tz: Option<String>,
    /// action name → key, as written by the user (validated by the keymap).
    pub keys: BTreeMap<String, String>,
    /// Hotspot thresholds and weights (`[hotspots]`); unset ones keep their documented defaults.
    pub hotspots: Rules,
    /// Message brokers (`[events]`, `--broker`).
    pub events: EventsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_toml(DEFAULT_CONFIG).expect("the embedded default config is valid")
    }
}

impl Config {
    fn from_toml(text: &str) -> Result<Config, String> {
        let base = FileConfig::default();
        Config::overlay(base, text)
    }

    fn overlay(base: FileConfig, text: &str) -> Result<Config, String> {
        let file: FileConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        let pick = |a: Option<u64>, b: Option<u64>, default: u64| a.or(b).unwrap_or(default);
        let refresh = pick(file.refresh_interval_secs, base.refresh_interval_secs, 2);
        let metrics = pick(file.metrics_interval_secs, base.metrics_interval_secs, 15);
        let retention = pick(file.retention_minutes, base.retention_minutes, 15);
        if refresh == 0 || metrics == 0 || retention == 0 {
            return Err("intervals and retention must be greater than 0".into());
        }
        // Each container keeps retention / metrics interval points per series: bound both so a
        // typo cannot ask for gigabytes at 10,000 pods.
        let full = pick(file.cadvisor_full_interval_secs, base.cadvisor_full_interval_secs, 60);
        if refresh > 3600 || metrics > 3600 || full > 3600 {
            return Err("intervals must be at most 3600 seconds".into());
        }
        if full == 0 {
            return Err("cadvisor_full_interval_secs must be greater than 0".into());
        }
        let max_nodes = file.cadvisor_max_nodes.or(base.cadvisor_max_nodes).unwrap_or(500);
        if retention > MAX_RETENTION_MINUTES {
            return Err(format!("retention_minutes must be at most {MAX_RETENTION_MINUTES} (6 hours)"));
        }
        let theme = file.theme.or(base.theme).unwrap_or_else(|| "dark".into());
        if !["dark", "light", "mono"].contains(&theme.as_str()) {
            return Err(format!("unknown theme {theme:?} (expected dark, light or mono)"));
        }
        let usage = match file.usage.or(base.usage).as_deref() {
            None | Some("auto") => UsageMode::Auto,
            Some("cadvisor") => UsageMode::Cadvisor,
            Some("metrics-api") => UsageMode::MetricsApi,
            Some(other) => {
                return Err(format!("unknown usage source {other:?} (expected auto, cadvisor or metrics-api)"));
            }
        };
        let mut keys = base.keys;
        keys.extend(file.keys);
        let gateway = file
            .gateway
            .or(base.gateway)
            .unwrap_or_else(|| vec!["auto".into()])
            .iter()
            .map(|g| GatewaySpec::parse(g))
            .collect::<Result<Vec<_>, _>>()?;
        let log_format = file.log_format.or(base.log_format);
        if let Some(f) = &log_format {
            Format::by_name(f)?;
        }
        let log_tz = file.log_tz.or(base.log_tz);
        if let Some(z) = &log_tz {
            crate::model::accesslog::zone::LogZone::parse(z)?;
        }
        let mut prometheus_headers = RequestHeaders::default();
        let mut headers = base.prometheus_headers;
        headers.extend(file.prometheus_headers);
        for (name, value) in &headers {
            prometheus_headers.insert(name, value).map_err(|e| format!("[prometheus_headers]: {e}"))?;
        }
        if let Some(path) = file.prometheus_bearer_token_file.or(base.prometheus_bearer_token_file) {
            prometheus_headers.set_bearer_token_file(path).map_err(|e| format!("prometheus_bearer_token_file: {e}"))?;
        }
        Ok(Config {
            refresh_interval: Duration::from_secs(refresh),
            metrics_interval: Duration::from_secs(metrics),
            cadvisor_full_interval: Duration::from_secs(full),
            cadvisor_max_nodes: max_nodes,
            mesh_max_pods: file.mesh_max_pods.or(base.mesh_max_pods).unwrap_or(50),
            retention: Duration::from_secs(retention * 60),
            theme,
            all_namespaces: file.all_namespaces.or(base.all_namespaces).unwrap_or(false),
            usage,
            prometheus: file.prometheus.or(base.prometheus),
            prometheus_headers,
            scrape: file.scrape.or(base.scrape).unwrap_or_default(),
            prometheus_contexts: {
                let mut m = base.prometheus_contexts;
                m.extend(file.prometheus_contexts);
                m
            },
            queries: {
                let mut overrides = base.prometheus_queries;
                overrides.extend(file.prometheus_queries);
                Queries::default().with_overrides(&overrides)?
            },
            gateway,
            log_format,
            log_tz,
            keys,
            hotspots: file.hotspots.or(base.hotspots).unwrap_or_default(),
            events: EventsConfig::from_file(file.events.or(base.events).unwrap_or_default())?,
        })
    }

    /// A user's config file's text over the embedded defaults, or why it cannot be used.
    pub fn from_user_toml(text: &str) -> Result<Config, String> {
        let base: FileConfig = toml::from_str(DEFAULT_CONFIG).expect("embedded default config");
        Config::overlay(base, text)
    }

    /// Loads `path` over the defaults. Returns the config to use and, if the file was bad, why.
    pub fn load(path: &Path) -> (Config, Option<String>) {
        let defaults = Config::default();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (defaults, None),
            Err(e) => return (defaults, Some(format!("cannot read config {}: {e}", path.display()))),
        };
        match Config::from_user_toml(&text) {
            Ok(c) => (c, None),
            Err(e) => (
                defaults,
                Some(format!("config {} ignored: {}", path.display(), e.lines().collect::<Vec<_>>().join(" "))),
            ),
        }
    }

    /// The Prometheus to use for a context: a per-context entry, else the global one.
    pub fn prometheus_for(&self, context: &str) -> Option<String> {
        self.prometheus_contexts.get(context).cloned().or_else(|| self.prometheus.clone())
    }

    /// `$XDG_CONFIG_HOME/kpulse/config.toml`, else `~/.config/kpulse/config.toml`.
    pub fn default_path() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(base.join("kpulse").join("config.toml"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_headers_and_token_file_come_from_the_file_and_conflict_by_name() {
        let c = Config::from_toml(
            "prometheus = \"http://mimir:8080/prometheus\"\nprometheus_bearer_token_file = \"/var/run/token\"\n\
             [prometheus_headers]\n\"X-Scope-OrgID\" = \"tenant-1\"\n",
        )
        .unwrap();
        let shown = format!("{:?}", c.prometheus_headers);
        assert!(shown.contains("x-scope-orgid") && shown.contains("/var/run/token") && !shown.contains("tenant-1"));
        let both = Config::from_toml(
            "prometheus_bearer_token_file = \"/t\"\n[prometheus_headers]\nAuthorization = \"Bearer secret\"\n",
        )
        .unwrap_err();
        assert!(both.contains("give one") && !both.contains("secret"), "{both}");
        let bad = Config::from_toml("[prometheus_headers]\n\"bad name\" = \"v\"\n").unwrap_err();
        assert!(bad.starts_with("[prometheus_headers]: \"bad name\" is not a header name"), "{bad}");
    }

    #[test]
    fn defaults_come_from_the_shipped_file() {
        let c = Config::default();
        assert_eq!(c.refresh_interval, Duration::from_secs(2));
        assert_eq!(c.retention, Duration::from_secs(15 * 60));
        assert_eq!(c.theme, "dark");
    }

    #[test]
    fn user_file_overrides_and_errors_fall_back_to_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "theme = \"mono\"\n[keys]\nquit = \"x\"\n").unwrap();
        let (c, err) = Config::load(&path);
        assert_eq!(err, None);
        assert_eq!(c.theme, "mono");
        assert_eq!(c.keys["quit"], "x");
        assert_eq!(c.refresh_interval, Duration::from_secs(2));

        std::fs::write(&path, "refresh_interval_secs = \"fast\"\n").unwrap();
        let (c, err) = Config::load(&path);
        assert_eq!(c, Config::default());
        let err = err.expect("an error is reported");
        assert!(err.contains("refresh_interval_secs") || err.contains("line 1"), "{err}");

        std::fs::write(&path, "colour = \"red\"\n").unwrap();
        let (_, err) = Config::load(&path);
        assert!(err.unwrap().contains("colour"), "unknown keys are named");

        for (line, named) in [("retention_minutes = 100000", "at most 360"), ("metrics_interval_secs = 86400", "3600")]
        {
            std::fs::write(&path, format!("{line}\n")).unwrap();
            let (c, err) = Config::load(&path);
            assert_eq!(c, Config::default(), "{line}: defaults stand");
            assert!(err.is_some_and(|e| e.contains(named)), "{line}");
        }

        let (c, err) = Config::load(&dir.path().join("missing.toml"));
        assert_eq!((c, err), (Config::default(), None));
    }

    #[test]
    fn events_brokers_consumers_and_a_partial_mapping_override() {
        let c = Config::from_toml(
            r#"
[events]
brokers = ["rabbitmq=http://127.0.0.1:15692/metrics/per-object", "kafka/orders=http://10.0.0.5:9308/metrics"]
[[events.consumers]]
queue = "order-events"
pods = "shop/app=notification"
[events.mapping.kafka]
backlog = ["kafka_consumergroup_lag_sum"]
"#,
        )
        .unwrap();
        let e = &c.events;
        assert_eq!(e.brokers.len(), 2);
        assert_eq!((e.brokers[1].name.as_str(), e.brokers[1].kind), ("orders", BrokerKind::Kafka));
        assert_eq!(e.consumers[0].selector(), Some(("shop", vec![("app", "notification")])));
        let kafka = e.mapping(BrokerKind::Kafka);
        assert_eq!(kafka.backlog, vec!["kafka_consumergroup_lag_sum".to_string()]);
        assert_eq!(kafka.group_label.as_deref(), Some("consumergroup"), "keys not given keep their defaults");
        assert_eq!(kafka.client_labels, ["member_host", "client_id"]);
        assert_eq!(e.mapping(BrokerKind::Rabbitmq), BrokerKind::Rabbitmq.default_mapping());

        let twice =
            Config::from_toml("[events]\nbrokers = [\"rabbitmq=http://a/m\", \"rabbitmq=http://b/m\"]").unwrap();
        let names: Vec<&str> = twice.events.brokers.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["rabbitmq", "rabbitmq-2"], "two brokers' rows never merge");

        for (bad, says) in [
            ("[events]\nbrokers = [\"redis=http://x\"]", "KIND"),
            ("[events]\nbrokers = [\"rabbitmq=ftp://x\"]", "https://"),
            ("[events.mapping.kafka]\nbacklog_label = \"x\"", "backlog_label"),
            ("[events.mapping.zeromq]\nbacklog = []", "zeromq"),
        ] {
            let err = Config::from_toml(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
