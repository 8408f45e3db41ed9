//! One frame of the Containers view at 30,000 rows, and of the detail pane, on a 200x50 screen.

use criterion::{Criterion, criterion_group, criterion_main};
use kpulse::app::{Msg, State};
use kpulse::config::Config;
use kpulse::demo::scenario::Scenario;
use kpulse::demo::sim::Sim;
use kpulse::demo::updates_from_sim;
use kpulse::sources::kube::Scope;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Constraint;
use ratatui::widgets::{Cell, Row, Table, TableState};

const START: i64 = 1_767_225_600;

fn bench(c: &mut Criterion) {
    let mut sim = Sim::new(Scenario::shop().scaled_to(10_000), START);
    let mut state = State::new(Config::default(), "bench".into(), vec![], Scope::All, START);
    // Several metric samples so sparklines and charts have data.
    for _ in 0..6 {
        sim.advance(10);
        state.update(Msg::Tick(sim.now));
        for u in updates_from_sim(&sim) {
            state.update(Msg::Source(u));
        }
    }
    state.refresh();
    assert!(state.container_table.rows.len() >= 29_900, "{} rows", state.container_table.rows.len());
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).unwrap();
    let mut group = c.benchmark_group("draw_frame_30k_rows");
    group.bench_function("containers", |b| {
        b.iter(|| {
            terminal.draw(|f| kpulse::ui::draw(&state, f)).unwrap();
        })
    });
    // Baseline, same run: the naive way — one ratatui Row per container, scrolled by TableState.
    group.bench_function("baseline_naive_table_of_all_rows", |b| {
        b.iter(|| {
            terminal
                .draw(|f| {
                    let rows = state.container_table.shown().map(|r| {
                        Row::new(vec![
                            Cell::from(r.pod.namespace.clone()),
                            Cell::from(r.pod.name.clone()),
                            Cell::from(r.container.clone()),
                            Cell::from(r.node.clone()),
                            Cell::from(r.health.word.clone()),
                            Cell::from(r.restarts.to_string()),
                            Cell::from(format!("{:.0}", r.usage.cpu_m)),
                            Cell::from(format!("{:.0}", r.usage.mem)),
                        ])
                    });
                    let table = Table::new(rows, [Constraint::Fill(1); 8]);
                    let mut ts = TableState::default();
                    ts.select(Some(0));
                    f.render_stateful_widget(table, f.area(), &mut ts);
                })
                .unwrap();
        })
    });
    state.update(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
    state.refresh();
    group.bench_function("containers_with_detail", |b| {
        b.iter(|| {
            terminal.draw(|f| kpulse::ui::draw(&state, f)).unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
