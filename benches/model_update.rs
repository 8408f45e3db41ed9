//! The cost of taking in a 10,000-pod / 30,000-container cluster: applying the initial list and a
//! metrics poll, then rebuilding, filtering and sorting the rows (what happens before a frame).

use criterion::{Criterion, criterion_group, criterion_main};
use kpulse::app::{Msg, State};
use kpulse::config::Config;
use kpulse::demo::scenario::Scenario;
use kpulse::demo::sim::Sim;
use kpulse::demo::updates_from_sim;
use kpulse::model::store::Change;
use kpulse::sources::Update;
use kpulse::sources::kube::Scope;

const START: i64 = 1_767_225_600;

fn bench(c: &mut Criterion) {
    let sim = Sim::new(Scenario::shop().scaled_to(10_000), START);
    let updates = updates_from_sim(&sim);
    let mut group = c.benchmark_group("model_update_10k_pods");
    group.sample_size(10);
    group.bench_function("initial_list_and_metrics_then_refresh", |b| {
        b.iter_batched(
            || updates.clone(),
            |updates| {
                let mut state = State::new(Config::default(), "bench".into(), vec![], Scope::All, START);
                for u in updates {
                    state.update(Msg::Source(u));
                }
                state.refresh();
                assert!(state.container_table.rows.len() >= 29_900, "{} rows", state.container_table.rows.len());
                state
            },
            criterion::BatchSize::LargeInput,
        )
    });
    let mut state = State::new(Config::default(), "bench".into(), vec![], Scope::All, START);
    for u in updates.clone() {
        state.update(Msg::Source(u));
    }
    state.refresh();
    // One pod changed (the common watch event): only its rows are rebuilt, then filter + sort.
    let one_pod = updates
        .iter()
        .find_map(|u| match u {
            Update::Pods(Change::InitItem(p)) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    group.bench_function("one_pod_changed_then_refresh", |b| {
        b.iter(|| {
            state.update(Msg::Source(Update::Pods(Change::Applied(one_pod.clone()))));
            state.refresh();
        })
    });
    // A metrics poll for every container, then refresh (every metrics interval).
    let usage = updates.iter().find(|u| matches!(u, Update::PodUsage { .. })).unwrap().clone();
    group.bench_function("metrics_poll_then_refresh", |b| {
        let mut now = START;
        b.iter(|| {
            now += 10;
            let mut u = usage.clone();
            if let Update::PodUsage { at, .. } = &mut u {
                *at = now;
            }
            state.update(Msg::Tick(now));
            state.update(Msg::Source(u));
            state.refresh();
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
