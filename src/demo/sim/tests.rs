//! The simulator on its own: scheduling, faults, usage, and the objects and metrics it serves.

use super::*;
use crate::model::pod::{PodInfo, StateInfo};
use k8s_openapi::api::core::v1::Pod;

const START: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn pods(sim: &Sim) -> Vec<PodInfo> {
    sim.pods_api.objects.values().map(|s| PodInfo::from_pod(&serde_json::from_slice::<Pod>(&s.json).unwrap())).collect()
}

#[test]
fn shop_has_every_service_and_a_pending_pod() {
    let sim = Sim::new(Scenario::shop(), START);
    let pods = pods(&sim);
    for svc in &sim.scenario.services {
        assert!(pods.iter().any(|p| p.label("app") == Some(&svc.name)), "{} has pods", svc.name);
    }
    let search = pods.iter().find(|p| p.key.name == "search-0").unwrap();
    assert!(search.node.is_none());
    assert!(search.unschedulable.as_deref().unwrap().contains("Insufficient cpu"));
    assert!(sim.events_api.objects.values().any(|e| String::from_utf8_lossy(&e.json).contains("FailedScheduling")));
}

#[test]
fn leak_ends_in_oomkilled_and_crash_loop_backs_off() {
    let mut sim = Sim::new(Scenario::shop(), START);
    sim.advance(400);
    let pods = pods(&sim);
    let cart = pods.iter().find(|p| p.label("app") == Some("cart")).unwrap();
    let c = &cart.containers[0];
    assert!(c.restarts >= 1, "cart restarted: {c:?}");
    assert_eq!(c.last_termination.as_ref().unwrap().0, "OOMKilled");
    let notif = pods.iter().find(|p| p.label("app") == Some("notification")).unwrap();
    assert!(notif.containers[0].restarts >= 3, "{:?}", notif.containers[0]);
    // The kubelet's back-off doubles: after 400 s there cannot be more than ~6 crashes.
    assert!(notif.containers[0].restarts <= 7);
    let payment: Vec<_> =
        sim.pod_metrics(Some("shop")).into_iter().filter(|m| m.metadata.name.starts_with("payment")).collect();
    let cpu = crate::model::quantity::parse_cpu_millis(&payment[0].containers[0].usage["cpu"]).unwrap();
    assert!(cpu <= 150.0 + 1e-6, "CPU is capped at the limit: {cpu}");
    let _ = StateInfo::Unknown;
}

#[test]
fn same_seed_same_run() {
    let mut a = Sim::new(Scenario::shop(), START);
    let mut b = Sim::new(Scenario::shop(), START);
    a.advance(120);
    b.advance(120);
    assert_eq!(pods(&a), pods(&b));
    assert_eq!(a.resource_version(), b.resource_version());
}

#[test]
fn delete_replaces_the_pod() {
    let mut sim = Sim::new(Scenario::shop(), START);
    let before = sim.pod_count();
    let victim = pods(&sim).into_iter().find(|p| p.label("app") == Some("frontend")).unwrap();
    assert!(sim.delete_pod(&victim.key.namespace, &victim.key.name));
    assert_eq!(sim.pod_count(), before);
    assert!(!pods(&sim).iter().any(|p| p.key == victim.key));
}
