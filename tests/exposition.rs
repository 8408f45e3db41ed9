//! The exposition parser on text produced by real software (Prometheus's own /metrics and the
//! Debian node exporter), differentially against prometheus-parse 0.2.5: we agree wherever it is
//! right, and each case where it is wrong is written down here as a test of what it loses.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{KillOnDrop, free_port, http_get, real_binary, spawn_prometheus, wait_http_ok};
use kpulse::model::exposition::{Format, parse};

type Key = (String, BTreeMap<String, String>);

/// Ours: every sample keyed by (name, labels).
fn ours(text: &str) -> (HashMap<Key, f64>, usize) {
    let mut out = HashMap::new();
    let stats = parse(text, Format::detect(None, text), |s| {
        let labels = s.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        out.insert((s.name.to_string(), labels), s.value);
    });
    assert_eq!(stats.skipped_lines, 0, "real exposition parses completely: {:?}", stats.errors);
    (out, stats.samples)
}

/// prometheus-parse's view, flattened back into samples (it folds histograms and summaries).
fn theirs(text: &str) -> HashMap<Key, f64> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let mut out = HashMap::new();
    for s in scrape.samples {
        let labels: BTreeMap<String, String> = s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => {
                out.insert((s.metric.clone(), labels), v);
            }
            prometheus_parse::Value::Histogram(buckets) => {
                for b in buckets {
                    let mut l = labels.clone();
                    l.insert("le".into(), format_le(b.less_than));
                    out.insert((format!("{}_bucket", s.metric), l), b.count);
                }
            }
            prometheus_parse::Value::Summary(qs) => {
                for q in qs {
                    let mut l = labels.clone();
                    l.insert("quantile".into(), format_le(q.quantile));
                    out.insert((s.metric.clone(), l), q.count);
                }
            }
        }
    }
    out
}

fn format_le(v: f64) -> String {
    if v.is_infinite() { "+Inf".into() } else { v.to_string() }
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}

/// Every sample prometheus-parse reports, we report with the same value; we never report fewer.
fn assert_agrees(text: &str, what: &str) {
    let (ours, count) = ours(text);
    let theirs = theirs(text);
    assert!(count > 100, "{what}: a real document ({count} samples)");
    let mut compared = 0;
    for (key, v) in &theirs {
        // prometheus-parse prints `le`/`quantile` through f64, so "0.005" may come back as 0.005
        // and "1e-05" as 1e-5: compare those by value.
        let found = ours.get(key).or_else(|| {
            ours.iter()
                .find(|((n, l), _)| {
                    n == &key.0
                        && l.len() == key.1.len()
                        && l.iter().all(|(k, val)| {
                            key.1.get(k).is_some_and(|w| {
                                w == val
                                    || (val.parse::<f64>().ok() == w.parse::<f64>().ok() && w.parse::<f64>().is_ok())
                            })
                        })
                })
                .map(|(_, v)| v)
        });
        let ours_v = found.unwrap_or_else(|| panic!("{what}: we lost {key:?}"));
        assert!(same(*ours_v, *v), "{what}: {key:?}: ours {ours_v} theirs {v}");
        compared += 1;
    }
    assert!(ours.len() >= theirs.len(), "{what}: ours {} < theirs {}", ours.len(), theirs.len());
    assert!(compared > 100);
}

#[test]
fn node_exporter_output_parses_and_agrees() {
    let Some(bin) = real_binary("prometheus-node-exporter", "apt-get install -y prometheus-node-exporter") else {
        return;
    };
    let addr = format!("127.0.0.1:{}", free_port());
    let _child = KillOnDrop(
        std::process::Command::new(bin)
            .arg(format!("--web.listen-address={addr}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_http_ok(&addr, "/metrics", "node exporter");
    let (_, text) = http_get(&addr, "/metrics").unwrap();
    assert!(text.contains("node_cpu_seconds_total"));
    assert_agrees(&text, "node exporter");
}

#[test]
fn prometheus_own_metrics_parse_and_agree() {
    let Some((_prometheus, addr, _dir)) = spawn_prometheus("global:\n  scrape_interval: 1s\nscrape_configs: []\n")
    else {
        return;
    };
    let (_, text) = http_get(&addr, "/metrics").unwrap();
    assert!(text.contains("prometheus_build_info"));
    assert_agrees(&text, "prometheus /metrics");
}

#[test]
fn the_simulators_cadvisor_output_agrees() {
    let mut sim = kpulse::demo::sim::Sim::new(kpulse::demo::scenario::Scenario::shop().scaled_to(300), 1_767_225_600);
    sim.advance(30);
    let text = sim.cadvisor_exposition("pool-1").unwrap();
    assert_agrees(&text, "simulated cAdvisor");
}

/// Where prometheus-parse 0.2.5 is wrong (../shared/reference/data-sources.md §3.6): each case,
/// what it returns, and what we return.
#[test]
fn documented_cases_where_prometheus_parse_loses_data() {
    let cases: &[(&str, &str)] = &[
        ("m{path=\"/a,b\",code=\"200\"} 1\n", "truncates a label value at a comma"),
        ("m{q=\"a=b\",code=\"200\"} 1\n", "drops a label whose value holds '='"),
        ("m{ext=\"{plpgsql}\"} 1\n", "drops a sample whose label value holds '}'"),
        ("m{err=\"say \\\"hi\\\"\"} 1\n", "does not decode escapes"),
        ("m{a=\"1\", b=\"2\"} 1\n", "keeps the space before a label name"),
        ("job:m:rate5m{a=\"1\"} 3\n", "drops recording-rule names with ':'"),
        ("{\"my.dotted.metric\"} 6\n", "drops quoted UTF-8 metric names"),
    ];
    for (text, what) in cases {
        let (ours, _) = {
            let mut out = HashMap::new();
            let stats = parse(text, Format::Text, |s| {
                let labels: BTreeMap<String, String> =
                    s.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                out.insert((s.name.to_string(), labels), s.value);
            });
            (out, stats)
        };
        let theirs = theirs(text);
        assert_eq!(ours.len(), 1, "{what}: we keep the sample");
        assert_ne!(ours, theirs, "prometheus-parse {what}");
    }
    // The decoded values we give.
    let mut seen = Vec::new();
    parse("m{path=\"/a,b\",err=\"say \\\"hi\\\"\",q=\"a=b\"} 1\n", Format::Text, |s| {
        seen = s.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    });
    assert_eq!(
        seen,
        vec![("path".into(), "/a,b".into()), ("err".into(), "say \"hi\"".into()), ("q".into(), "a=b".into())]
    );
    // OpenMetrics float timestamps: prometheus-parse replaces them with the parse time; we keep them.
    let mut ts = None;
    parse("m 1 1520879607.789\n# EOF\n", Format::OpenMetrics, |s| ts = s.timestamp_ms);
    assert_eq!(ts, Some(1520879607789));
}
