//! The PromQL kpulse asks, in one readable place, and the Prometheus HTTP API's JSON shapes.
//! One query per metric for all containers, never one per container. Label names differ
//! between installations, so every query can be replaced in the config (`[prometheus.queries]`).

use std::borrow::Cow;
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
pub struct SeriesResult<'a> {
    #[serde(default, borrow)]
    pub metric: Labels<'a>,
    /// Instant vector: `[unix_seconds, "value"]`.
    #[serde(default)]
    pub value: Option<Sample>,
    /// Range matrix: `[[unix_seconds, "value"], …]`.
    #[serde(default)]
    pub values: Vec<Sample>,
}

/// A series' labels as the JSON object lists them; a handful per series, so a scan beats a map.
#[derive(Debug, Default)]
pub struct Labels<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Labels<'a> {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_ref())
    }

    /// Moves a label's value out, borrowed from the body as it was read.
    pub fn take(&mut self, name: &str) -> Option<Cow<'a, str>> {
        let i = self.0.iter().position(|(k, _)| k == name)?;
        Some(self.0.swap_remove(i).1)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Labels<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<Labels<'a>>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Labels<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of label names to values")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Labels<'a>, M::Error> {
                let mut labels = Vec::with_capacity(map.size_hint().unwrap_or(4));
                while let Some((k, v)) = map.next_entry::<BorrowedText<'a>, BorrowedText<'a>>()? {
                    labels.push((k.0, v.0));
                }
                Ok(Labels(labels))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// Text borrowed from the body unless it has escapes (serde's `Cow<str>` alone always copies).
struct BorrowedText<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BorrowedText<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
        }
        d.deserialize_str(Visit).map(BorrowedText)
    }
}

/// One `[unix_seconds, "value"]` pair, its value parsed as it is read: a back-fill of 30,000
/// series × 60 points would otherwise hold 1.8 million Strings at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at: f64,
    /// None for NaN (Prometheus's "no value") and unparsable text.
    pub value: Option<f64>,
}

impl<'de> Deserialize<'de> for Sample {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (at, text): (f64, BorrowedText<'de>) = Deserialize::deserialize(d)?;
        Ok(Sample { at, value: sample_value(&text.0) })
    }
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
pub fn parse_response(body: &[u8]) -> Result<Vec<SeriesResult<'_>>, String> {
    let mut series = Vec::new();
    for_each_series(body, |s| series.push(s))?;
    Ok(series)
}

/// Hands each series of a query response to `each` as it is read, never holding them all: the
/// answer for 30,000 containers parsed whole is tens of MB more than the body itself. Returns
/// the answer's warnings (a Thanos or Mimir partial response says there what it is missing);
/// errors are a short reason for the status bar.
pub fn for_each_series<'a>(body: &'a [u8], mut each: impl FnMut(SeriesResult<'a>)) -> Result<Vec<String>, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let head = serde::de::DeserializeSeed::deserialize(Answer(&mut each), &mut de)
        .and_then(|head| de.end().map(|()| head))
        .map_err(|e| {
            format!(
                "bad JSON from Prometheus ({e}): {:?}",
                one_line(&String::from_utf8_lossy(&body[..body.len().min(60)]))
            )
        })?;
    if head.status != "success" {
        return Err(format!(
            "{}: {}",
            one_line(head.error_type.as_deref().unwrap_or("error")),
            one_line(head.error.as_deref().unwrap_or("no error text"))
        ));
    }
    match head.result_type.as_deref() {
        None => Err("a success without data".into()),
        Some("vector" | "matrix") => Ok(head.warnings.iter().map(|w| one_line(w)).collect()),
        Some(other) => Err(format!("expected a vector or matrix, got {}", one_line(other))),
    }
}

/// Text from the answer as the status bar shows it: one line, no control characters (a newline
/// or an escape would break the line, or the terminal).
fn one_line(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// What an answer says besides its series.
#[derive(Default)]
struct AnswerHead {
    status: String,
    result_type: Option<String>,
    error_type: Option<String>,
    error: Option<String>,
    warnings: Vec<String>,
}

/// `{"status": …, "data": {"resultType": …, "result": [series…]}, "errorType": …, "error": …}`,
/// read with each series passed on as it comes.
struct Answer<'f, F>(&'f mut F);

impl<'de, F: FnMut(SeriesResult<'de>)> serde::de::DeserializeSeed<'de> for Answer<'_, F> {
    type Value = AnswerHead;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<AnswerHead, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(SeriesResult<'de>)> serde::de::Visitor<'de> for Answer<'_, F> {
    type Value = AnswerHead;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Prometheus API answer")
    }
    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<AnswerHead, M::Error> {
        let mut head = AnswerHead::default();
        while let Some(key) = map.next_key::<BorrowedText>()? {
            match key.0.as_ref() {
                "status" => head.status = map.next_value()?,
                "errorType" => head.error_type = map.next_value()?,
                "error" => head.error = map.next_value()?,
                "warnings" => head.warnings = map.next_value::<Option<Vec<String>>>()?.unwrap_or_default(),
                "data" => head.result_type = Some(map.next_value_seed(Data(&mut *self.0))?),
                _ => drop(map.next_value::<serde::de::IgnoredAny>()?),
            }
        }
        Ok(head)
    }
}

/// `{"resultType": …, "result": […]}`: the result type, the series passed on.
struct Data<'f, F>(&'f mut F);

impl<'de, F: FnMut(SeriesResult<'de>)> serde::de::DeserializeSeed<'de> for Data<'_, F> {
    type Value = String;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(SeriesResult<'de>)> serde::de::Visitor<'de> for Data<'_, F> {
    type Value = String;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the data of a query answer")
    }
    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<String, M::Error> {
        let mut result_type = String::new();
        while let Some(key) = map.next_key::<BorrowedText>()? {
            match key.0.as_ref() {
                "resultType" => result_type = map.next_value()?,
                // A scalar or string result is not a list of series (the caller says so).
                "result" if matches!(result_type.as_str(), "" | "vector" | "matrix") => {
                    map.next_value_seed(Series(&mut *self.0))?
                }
                _ => drop(map.next_value::<serde::de::IgnoredAny>()?),
            }
        }
        Ok(result_type)
    }
}

struct Series<'f, F>(&'f mut F);

impl<'de, F: FnMut(SeriesResult<'de>)> serde::de::DeserializeSeed<'de> for Series<'_, F> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(SeriesResult<'de>)> serde::de::Visitor<'de> for Series<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of series")
    }
    fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        while let Some(series) = seq.next_element::<SeriesResult<'de>>()? {
            (self.0)(series);
        }
        Ok(())
    }
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
        assert_eq!(r[0].value, Some(Sample { at: 1435781451.781, value: Some(0.15) }));
        assert_eq!(r[1].value.unwrap().value, None);
        let m = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"pod":"p"},"values":[[1,"1"],[2,"2"]]}]}}"#;
        let points: Vec<(f64, Option<f64>)> =
            parse_response(m).unwrap()[0].values.iter().map(|s| (s.at, s.value)).collect();
        assert_eq!(points, [(1.0, Some(1.0)), (2.0, Some(2.0))]);
        let e = br#"{"status":"error","errorType":"bad_data","error":"1:10: parse error: unexpected \"}\""}"#;
        assert_eq!(parse_response(e).unwrap_err(), "bad_data: 1:10: parse error: unexpected \"}\"");
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#;
        assert_eq!(parse_response(scalar).unwrap_err(), "expected a vector or matrix, got scalar");
        assert_eq!(parse_response(br#"{"status":"success"}"#).unwrap_err(), "a success without data");
        let trailing = parse_response(br#"{"status":"success","data":{"resultType":"vector","result":[]}} x"#);
        assert!(trailing.unwrap_err().starts_with("bad JSON from Prometheus"));
        let garbage = parse_response(b"<html>502 Bad Gateway</html>").unwrap_err();
        assert!(garbage.starts_with("bad JSON from Prometheus"), "{garbage}");
    }

    #[test]
    fn a_partial_answer_hands_on_its_series_and_its_warnings() {
        // Thanos Query's answer when a store is down and partial responses are allowed.
        let partial = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"pod":"p"},"value":[1,"1"]}]},
            "warnings":["No StoreAPIs matched for this query","receive: rpc error: code = Unavailable"]}"#;
        let mut pods = Vec::new();
        let warnings = for_each_series(partial, |s| pods.push(s.metric.get("pod").unwrap().to_string())).unwrap();
        assert_eq!(pods, ["p"]);
        assert_eq!(warnings, ["No StoreAPIs matched for this query", "receive: rpc error: code = Unavailable"]);
        // Found by the fuzzer: a result type with a DEL in it reached the status bar as is.
        let odd_type = b"{\"status\":\"success\",\"data\":{\"resultType\":\"m\x7fatrix\",\"result\":[]}}";
        assert_eq!(parse_response(odd_type).unwrap_err(), "expected a vector or matrix, got matrix");
        let escaped = br#"{"status":"error","errorType":"bad\u001b[31m","error":"line one\nline two"}"#;
        assert_eq!(parse_response(escaped).unwrap_err(), "bad[31m: line oneline two");
        let two_lines = br#"{"status":"success","warnings":["a\nb"],"data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(for_each_series(two_lines, drop).unwrap(), ["ab"]);
        let whole = br#"{"status":"success","warnings":null,"data":{"resultType":"vector","result":[]}}"#;
        assert!(for_each_series(whole, drop).unwrap().is_empty());
    }

    #[test]
    fn label_values_with_escapes_are_decoded_and_plain_ones_borrowed() {
        let v = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"pod":"p","path":"/a\"b\u00e9"},"value":[1,"2"]}]}}"#;
        let r = parse_response(v).unwrap();
        assert_eq!(r[0].metric.get("path"), Some("/a\"bé"));
        assert_eq!(r[0].metric.get("pod"), Some("p"));
        assert!(matches!(r[0].metric.0[0].1, Cow::Borrowed(_)), "no copy of a plain value");
        assert_eq!(r[0].metric.get("container"), None);
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
