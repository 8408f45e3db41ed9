//! Ranking hotspots at scale: 10,000 pods (29,964 containers), each with 15 minutes of usage
//! history at a 10 s poll (90 samples), memory trends fitted wherever a limit could be reached.
//! Target: ≤ 20 ms per ranking. The baseline in the same run is the refresh a metrics poll
//! already costs (rows updated in place), so the ratio says what ranking adds to a refresh.

use criterion::{Criterion, criterion_group, criterion_main};
use kpulse::app::{Msg, State};
use kpulse::config::Config;
use kpulse::demo::scenario::Scenario;
use kpulse::demo::sim::Sim;
use kpulse::demo::{gateway_updates, updates_from_sim};
use kpulse::sources::Update;
use kpulse::sources::kube::Scope;

const START: i64 = 1_767_225_600;
const POLL_SECS: i64 = 10;
const HISTORY_POLLS: i64 = 90;

fn bench(c: &mut Criterion) {
    let mut sim = Sim::new(Scenario::shop().scaled_to(10_000), START);
    sim.advance(60);
    let updates = updates_from_sim(&sim);
    let now = START + HISTORY_POLLS * POLL_SECS;
    let mut state = State::new(Config::default(), "bench".into(), vec![], Scope::All, START);
    for u in updates.iter().filter(|u| !matches!(u, Update::PodUsage { .. })) {
        state.update(Msg::Source(u.clone()));
    }
    let Some(Update::PodUsage { source, usages, .. }) = updates.iter().find(|u| matches!(u, Update::PodUsage { .. }))
    else {
        panic!("the simulator reports usage");
    };
    // Fifteen minutes of polls. Memory jitters everywhere (so every container near enough to its
    // limit gets its trend fitted: the fit is the cost), and one container in a hundred leaks.
    for poll in 0..HISTORY_POLLS {
        let at = START + poll * POLL_SECS;
        let mut round = usages.clone();
        for (i, u) in round.iter_mut().enumerate() {
            let jitter = ((i as u64 * 2_654_435_761 + poll as u64 * 40_503) % 1000) as f64 / 1000.0 - 0.5;
            let leak = if i % 100 == 0 { 0.01 * poll as f64 } else { 0.0 };
            u.usage.mem *= 1.0 + 0.04 * jitter + leak;
        }
        state.update(Msg::Tick(at));
        state.update(Msg::Source(Update::PodUsage { at, source: *source, usages: round }));
    }
    for u in gateway_updates(&sim, 0).0 {
        state.update(Msg::Source(u));
    }
    state.update(Msg::Tick(now));
    state.refresh();
    state.refresh_hotspots();
    assert!(state.container_table.rows.len() >= 29_900, "{} rows", state.container_table.rows.len());
    let leaks = state.hotspots.iter().filter(|h| h.verdict() == "Memory leak").count();
    assert!((100..=400).contains(&leaks), "the leaking hundredth is found, the jitter is not: {leaks}");

    let mut group = c.benchmark_group("hotspots_30k_containers");
    group.sample_size(20);
    // Between two polls (the ranking runs every second, a poll lands every 10-15 s): the
    // memory fits are remembered per sample.
    group.bench_function("rank_between_polls", |b| b.iter(|| state.refresh_hotspots()));
    // Right after a poll: every container's fit is redone (the worst case, once per poll).
    let usage = usages.clone();
    let mut at = now;
    let mut poll = |state: &mut State| {
        at += POLL_SECS;
        state.update(Msg::Tick(at));
        state.update(Msg::Source(Update::PodUsage { at, source: *source, usages: usage.clone() }));
    };
    group.bench_function("rank_right_after_a_poll", |b| {
        b.iter_custom(|iterations| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iterations {
                // The new samples are in the tracks; ranking now refits every memory trend.
                poll(&mut state);
                let started = std::time::Instant::now();
                state.refresh_hotspots();
                total += started.elapsed();
            }
            total
        })
    });
    // Baseline, same run: the whole refresh a poll already costs (rows updated, ranking included).
    group.bench_function("baseline_metrics_poll_then_refresh", |b| {
        b.iter(|| {
            poll(&mut state);
            state.refresh();
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
