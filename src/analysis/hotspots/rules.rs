//! The thresholds (when a signal becomes a finding) and the weights (how much each finding
//! counts), with the reasoning next to each; overridable under `[hotspots]` in the config.

use serde::{Deserialize, Serialize};

/// Thresholds: when a signal becomes a finding.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Share of CFS periods throttled. The kubernetes-mixin's CPUThrottlingHigh alert fires at 25 %:
    /// beyond it, request latency suffers even when average usage looks fine.
    pub cpu_throttled: f64,
    /// CPU usage at this share of the limit is running at its ceiling (for usage sources that
    /// cannot see throttling, such as metrics.k8s.io).
    pub cpu_at_limit: f64,
    /// Memory working set at this share of the limit: the kernel reclaims page cache hard and the
    /// next spike is an OOM kill (the usual "memory near limit" alert uses 90 %).
    pub memory_near_limit: f64,
    /// A working set growing steadily that would reach the limit within this many minutes is a
    /// leak headed for an OOM kill (the line is fitted over the last ten minutes and must fit:
    /// R² ≥ 0.9 over at least 90 seconds, so a load wave or a GC cycle is not a leak; a leak that
    /// kills within ten minutes is called after a 30-second climb past every earlier high).
    pub oom_horizon_minutes: f64,
    /// Restarts in the last hour that make a running container unstable. The mixin's
    /// KubePodCrashLooping fires on any restart in 15 minutes; three an hour is a pattern.
    pub restarts_per_hour: u32,
    /// Share of 5xx answers at the gateway. At 5 %, a 99.9 % monthly availability objective is
    /// spent in under a day (the SRE workbook's fast-burn page).
    pub error_ratio: f64,
    /// Share of requests the gateway had to send to another upstream (retries after a timeout or
    /// a refused connection): replicas failing behind a gateway that hides it from clients.
    pub retry_ratio: f64,
    /// p95 latency this many times the service's own baseline (the median p95 of the retained
    /// history, the last two minutes excluded) is a regression.
    pub latency_vs_baseline: f64,
    /// ...and only when the p95 is at least this slow (ms), so 2 ms → 5 ms is not a hotspot.
    pub latency_floor_ms: f64,
    /// Without a baseline yet, a p95 this slow (ms) is a hotspot on its own.
    pub latency_absolute_ms: f64,
    /// Gateway overhead (p95 of total − upstream time per request, ms) above this means the
    /// gateway itself is slow: ingress-nginx adds well under 5 ms when healthy.
    pub gateway_overhead_ms: f64,
    /// A replica taking this many times its fair share of a service's requests is a balancing
    /// problem (sticky sessions, a broken endpoint list, client-side pooling).
    pub replica_imbalance: f64,
    /// Node CPU usage at this share of allocatable: pods without limits start starving each other.
    pub node_cpu_busy: f64,
    /// A container using this many times its CPU request on a busy node is a noisy neighbour.
    pub neighbour_burst: f64,
    /// Times a running container went not ready within ten minutes that make it flapping: its
    /// endpoints come and go, and the load on its replicas jumps each time.
    pub readiness_flaps: u32,
    /// Traffic rules need this many requests in the last minute; fewer is noise.
    pub min_requests: u64,
    /// Pods created this recently (minutes) when a service starts failing point to a rollout.
    pub rollout_minutes: i64,
    /// A queue's backlog growing without a break for this long means its consumers fall behind
    /// (shorter bursts are what queues are for).
    pub queue_growing_secs: i64,
    /// ... and only once this many messages wait.
    pub queue_min_backlog: f64,
    pub weights: Weights,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            cpu_throttled: 0.25,
            cpu_at_limit: 0.9,
            memory_near_limit: 0.9,
            oom_horizon_minutes: 30.0,
            restarts_per_hour: 3,
            error_ratio: 0.05,
            retry_ratio: 0.05,
            latency_vs_baseline: 2.0,
            latency_floor_ms: 100.0,
            latency_absolute_ms: 1000.0,
            gateway_overhead_ms: 50.0,
            replica_imbalance: 2.0,
            node_cpu_busy: 0.9,
            neighbour_burst: 3.0,
            readiness_flaps: 3,
            min_requests: 20,
            rollout_minutes: 15,
            queue_growing_secs: 120,
            queue_min_backlog: 100.0,
            weights: Weights::default(),
        }
    }
}

/// The score of each finding at its threshold; stronger signals scale it up to 1.5× (capped at
/// 100). The order says what an operator should look at first: a container that is down beats
/// one that is slow, which beats one that will be slow.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    pub crash_loop: f64,
    pub oom_killed: f64,
    pub image_pull: f64,
    pub config_error: f64,
    pub unschedulable: f64,
    pub not_ready: f64,
    pub restarting: f64,
    pub cpu_starved: f64,
    pub memory_leak: f64,
    pub memory_near_limit: f64,
    pub errors: f64,
    pub retries: f64,
    pub latency: f64,
    pub gateway_overhead: f64,
    pub imbalance: f64,
    pub node_pressure: f64,
    pub node_not_ready: f64,
    pub node_busy: f64,
    pub noisy_neighbour: f64,
    pub consumer_lag: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            crash_loop: 80.0,
            oom_killed: 75.0,
            image_pull: 65.0,
            config_error: 65.0,
            unschedulable: 60.0,
            not_ready: 50.0,
            restarting: 40.0,
            cpu_starved: 55.0,
            memory_leak: 50.0,
            memory_near_limit: 45.0,
            errors: 55.0,
            retries: 45.0,
            latency: 50.0,
            gateway_overhead: 60.0,
            imbalance: 45.0,
            node_pressure: 60.0,
            node_not_ready: 80.0,
            node_busy: 35.0,
            noisy_neighbour: 60.0,
            consumer_lag: 60.0,
        }
    }
}
