//! The PromQL kpulse asks, in one readable place, and the Prometheus HTTP API's JSON shapes.
//! One query per metric for all containers, never one per container. Label names differ
//! between installations, so every query can be replaced in the config (`[prometheus.queries]`).

use std::collections::HashMap;

use serde::Deserialize;

/// What each query must return: one series per container (`namespace`, `pod`, `container`
/// labels) or per pod (`namespace`, `pod`) for network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queries {
    /// CPU cores used (rate of the cAdvisor counter).
    pub cpu: String,
    /// Working set bytes (what metrics-server and `kubectl top` report).
    pub memory: String,
    /// Share of CFS periods throttled, as the kubernetes-mixin computes it for CPUThrottlingHigh.
    pub throttle: String,
    pub net_rx: String,
    pub net_tx: String,
    /// The OOM-kill counter itself (kpulse counts its increases, as it does when scraping), for
    /// the containers that have had one: a container left out has had none.
    pub oom: String,
    /// Restarts in the last hour from kube-state-metrics, where it is scraped: exact from the
    /// first round, where kpulse alone can date only the restarts it saw happen.
    pub restarts_1h: String,
}

impl Default for Queries {
    fn default() -> Self {
        // `container!=""` drops the pod-level cgroup, `container!="POD"` the pause container.
        const C: &str = r#"container!="",container!="POD""#;
        Queries {
            cpu: format!("sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{{{C}}}[1m]))"),
            memory: format!("sum by (namespace, pod, container) (container_memory_working_set_bytes{{{C}}})"),
            throttle: format!(
                "sum by (namespace, pod, container) (increase(container_cpu_cfs_throttled_periods_total{{{C}}}[5m])) \
                 / sum by (namespace, pod, container) (increase(container_cpu_cfs_periods_total{{{C}}}[5m]))"
            ),
            net_rx: "sum by (namespace, pod) (rate(container_network_receive_bytes_total[1m]))".into(),
            net_tx: "sum by (namespace, pod) (rate(container_network_transmit_bytes_total[1m]))".into(),
            // `> 0`: 30,000 zeros would be most of the answer.
            oom: format!("sum by (namespace, pod, container) (container_oom_events_total{{{C}}}) > 0"),
            restarts_1h: "sum by (namespace, pod, container) (increase(kube_pod_container_status_restarts_total[1h]))"
                .into(),
        }
    }
}

impl Queries {
    /// Applies overrides by name (cpu, memory, throttle, net_rx, net_tx, oom, restarts_1h);
    /// unknown names are errors.
    pub fn with_overrides(mut self, overrides: &HashMap<String, String>) -> Result<Queries, String> {
        for (name, query) in overrides {
            let slot = match name.as_str() {
                "cpu" => &mut self.cpu,
                "memory" => &mut self.memory,
                "throttle" => &mut self.throttle,
                "net_rx" => &mut self.net_rx,
                "net_tx" => &mut self.net_tx,
                "oom" => &mut self.oom,
                "restarts_1h" => &mut self.restarts_1h,
                other => {
                    return Err(format!(
                        "unknown query {other:?} (expected cpu, memory, throttle, net_rx, net_tx, oom, restarts_1h)"
                    ));
                }
            };
            *slot = query.clone();
        }
        Ok(self)
    }
}

#[derive(Debug, Deserialize)]
pub struct ApiResponse {
    pub status: String,
    #[serde(default)]
    pub data: Option<QueryData>,
    #[serde(default, rename = "errorType")]
    pub error_type: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct QueryData {
    #[serde(rename = "resultType")]
    pub result_type: String,
    pub result: Vec<SeriesResult>,
}

#[derive(Debug, Deserialize)]
pub struct SeriesResult {
    #[serde(default)]
    pub metric: HashMap<String, String>,
    /// Instant vector: `[unix_seconds, "value"]`.
    #[serde(default)]
    pub value: Option<(f64, String)>,
    /// Range matrix: `[[unix_seconds, "value"], …]`.
    #[serde(default)]
    pub values: Vec<(f64, String)>,
}

/// A sample value: Prometheus sends strings, including "NaN", "+Inf", "-Inf".
pub fn sample_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => None,
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        t => t.parse().ok().filter(|v: &f64| v.is_finite()),
    }
}

/// Parses a query response into its series, or a short reason for the status bar.
pub fn parse_response(body: &[u8]) -> Result<Vec<SeriesResult>, String> {
    let response: ApiResponse = serde_json::from_slice(body).map_err(|e| {
        let head: String =
            String::from_utf8_lossy(&body[..body.len().min(60)]).chars().filter(|c| !c.is_control()).collect();
        format!("bad JSON from Prometheus ({e}): {head:?}")
    })?;
    if response.status != "success" {
        return Err(format!(
            "{}: {}",
            response.error_type.unwrap_or_else(|| "error".into()),
            response.error.unwrap_or_else(|| "no error text".into())
        ));
    }
    let data = response.data.ok_or("a success without data")?;
    if data.result_type != "vector" && data.result_type != "matrix" {
        return Err(format!("expected a vector or matrix, got {}", data.result_type));
    }
    Ok(data.result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vector_matrix_and_errors() {
        let v = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"namespace":"shop","pod":"p","container":"app"},"value":[1435781451.781,"0.15"]},
            {"metric":{"namespace":"shop","pod":"q","container":"app"},"value":[1435781451.781,"NaN"]}]}}"#;
        let r = parse_response(v).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(sample_value(&r[0].value.as_ref().unwrap().1), Some(0.15));
        assert_eq!(sample_value(&r[1].value.as_ref().unwrap().1), None);
        let m = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"pod":"p"},"values":[[1,"1"],[2,"2"]]}]}}"#;
        assert_eq!(parse_response(m).unwrap()[0].values.len(), 2);
        let e = br#"{"status":"error","errorType":"bad_data","error":"1:10: parse error: unexpected \"}\""}"#;
        assert_eq!(parse_response(e).unwrap_err(), "bad_data: 1:10: parse error: unexpected \"}\"");
        let garbage = parse_response(b"<html>502 Bad Gateway</html>").unwrap_err();
        assert!(garbage.starts_with("bad JSON from Prometheus"), "{garbage}");
    }

    #[test]
    fn overrides_replace_by_name() {
        let mut o = HashMap::new();
        o.insert("cpu".to_string(), "my_cpu".to_string());
        assert_eq!(Queries::default().with_overrides(&o).unwrap().cpu, "my_cpu");
        o.insert("bogus".to_string(), "x".to_string());
        assert!(Queries::default().with_overrides(&o).is_err());
    }
}
