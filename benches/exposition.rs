//! Parsing ~10 MB of cAdvisor exposition (the simulator's, real metric names and label sets):
//! kpulse's parser against prometheus-parse 0.2.5 on the same bytes, in the same run.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kpulse::demo::scenario::Scenario;
use kpulse::demo::sim::Sim;
use kpulse::model::exposition::{Format, parse};

fn document() -> String {
    let mut sim = Sim::new(Scenario::shop().scaled_to(10_000), 1_767_225_600);
    sim.advance(20);
    let mut text = String::new();
    for node in sim.node_names() {
        if text.len() >= 10 * 1024 * 1024 {
            break;
        }
        text.push_str(&sim.cadvisor_exposition(&node).unwrap());
    }
    text
}

fn bench(c: &mut Criterion) {
    let text = document();
    let sample_lines = text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).count();
    // Zero samples lost: every sample line comes out as a sample.
    let stats = parse(&text, Format::Text, |_| {});
    assert_eq!(stats.samples, sample_lines);
    assert_eq!(stats.skipped_lines, 0);
    let theirs = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    eprintln!(
        "document: {} bytes, {sample_lines} samples; prometheus-parse returned {} samples",
        text.len(),
        theirs.samples.len()
    );

    let mut group = c.benchmark_group("parse_10mb_cadvisor");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("kpulse", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            let stats = parse(&text, Format::Text, |s| sum += s.value);
            (stats.samples, sum)
        })
    });
    group.bench_function("prometheus_parse_0_2_5", |b| {
        b.iter(|| prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap().samples.len())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
