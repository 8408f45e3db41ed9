//! A container's own findings: crash loops, OOM kills, CPU starvation, memory leaks and
//! pressure, readiness.

use crate::model::quantity::{format_bytes, format_cpu_millis, format_ratio};
use crate::model::time::format_age;

use super::{Board, ContainerFacts, Finding, OOM_KILL_WINDOW_SECS, Rules, container_subject, scaled};

pub(super) fn container_rules(c: &ContainerFacts, rules: &Rules, board: &mut Board) {
    let w = &rules.weights;
    // Most containers have no finding: nothing is allocated for them (30,000 per refresh).
    let mut found: Vec<Finding> = Vec::new();
    let mut add = |verdict: &str, evidence: String, score: f64| {
        found.push(Finding { verdict: verdict.to_string(), evidence, score });
    };
    let detail = c.health.detail.as_deref().unwrap_or("");
    let oom_last = c.last_reason == Some("OOMKilled");
    let mem_limit =
        || c.resources.mem_limit.map(format_bytes).map(|l| format!(" at its {l} limit")).unwrap_or_default();
    // A healthy container that never restarted has no health finding: skip the word matching.
    let quiet = c.health.severity == crate::analysis::health::Severity::Good && c.restarts_1h == 0;
    match if quiet { "" } else { c.health.word.as_str() } {
        "CrashLoop" => {
            let why = if oom_last { format!("OOMKilled{}", mem_limit()) } else { detail.to_string() };
            let evidence = format!("{why}; {} restarts in the last hour", c.restarts_1h);
            add("Crash-looping", evidence, scaled(w.crash_loop, c.restarts_1h as f64, 1.0, 10.0));
        }
        "OOMKilled" => add("OOMKilled", format!("killed{}", mem_limit()), w.oom_killed),
        "ImagePull" => add("Image pull failing", detail.to_string(), w.image_pull),
        "ConfigError" => add("Cannot start", detail.to_string(), w.config_error),
        "Failed" => add("Failed", detail.to_string(), w.config_error),
        "Evicted" => add("Evicted", format!("by its node's kubelet: {}", detail.trim_end()), w.restarting),
        "Unschedulable" => add("Pending: fits no node", detail.to_string(), w.unschedulable),
        // Between two crashes of a crash loop the container runs, not yet ready: still a loop.
        "Starting" | "NotReady" if c.restarts_1h >= 2 && !oom_last => {
            let why =
                c.last_reason.map(|r| format!("running again after {r}")).unwrap_or_else(|| "running again".into());
            let evidence = format!("{why}, not ready; {} restarts in the last hour", c.restarts_1h);
            add("Crash-looping", evidence, scaled(w.crash_loop, c.restarts_1h as f64, 1.0, 10.0));
        }
        "NotReady" => add("Not ready", "running but failing its readiness probe".into(), w.not_ready),
        // Running again: an OOM kill within the hour is always worth seeing (the next one is
        // coming); other restarts when they are a pattern.
        _ if oom_last && c.restarts_1h >= 1 => {
            let times = if c.restarts_1h == 1 { "once".to_string() } else { format!("{} times", c.restarts_1h) };
            let evidence = format!("OOMKilled{} {times} in the last hour", mem_limit());
            add("OOMKilled", evidence, scaled(w.oom_killed, c.restarts_1h as f64, 1.0, 6.0));
        }
        _ if c.restarts_1h >= rules.restarts_per_hour => {
            let why = c.last_reason.map(|r| format!(", last {r}")).unwrap_or_default();
            let evidence = format!("{} restarts in the last hour{why}", c.restarts_1h);
            add("Restarting", evidence, scaled(w.restarting, c.restarts_1h as f64, 3.0, 12.0));
        }
        _ => {}
    }
    // The kernel killed a process, but the container did not die of it (no OOMKilled restart in
    // the hour): a worker of a multi-process server, invisible in the pod's status.
    if c.oom_kills > 0 && !(oom_last && c.restarts_1h > 0) {
        let times = if c.oom_kills == 1 { "once".to_string() } else { format!("{} times", c.oom_kills) };
        let usage = c
            .resources
            .mem_limit
            .filter(|_| c.mem.is_finite())
            .map(|l| format!("; working set {} of its {} limit", format_bytes(c.mem), format_bytes(l)))
            .unwrap_or_default();
        let evidence = format!(
            "the kernel OOM-killed a process {times} in the last {} min, the container kept running{usage}",
            OOM_KILL_WINDOW_SECS / 60
        );
        add("Processes OOM-killed", evidence, scaled(w.oom_killed * 0.8, c.oom_kills as f64, 1.0, 5.0));
    }
    if c.not_ready_spells >= rules.readiness_flaps {
        let evidence = format!("went not ready {} times in the last 10 minutes", c.not_ready_spells);
        add(
            "Readiness flapping",
            evidence,
            scaled(w.not_ready, c.not_ready_spells as f64, rules.readiness_flaps as f64, 10.0),
        );
    }
    // A finished init container uses nothing: its usage rules do not apply.
    let finished = c.init && c.health.word == "Completed";
    // CPU: throttling when the source sees it, else usage pinned at the limit.
    if let Some(limit) = c.resources.cpu_limit_m.filter(|l| *l > 0.0 && !finished) {
        let usage = || {
            if c.cpu_m.is_finite() {
                format!(" at {} of a {} limit", format_cpu_millis(c.cpu_m), format_cpu_millis(limit))
            } else {
                String::new()
            }
        };
        match c.throttle {
            Some(t) if t >= rules.cpu_throttled => {
                let evidence = format!("throttled {:.0}% of periods{}", t * 100.0, usage());
                add("CPU-starved", evidence, scaled(w.cpu_starved, t, rules.cpu_throttled, 0.75));
            }
            None if c.cpu_m.is_finite() && c.cpu_m >= rules.cpu_at_limit * limit => {
                let evidence =
                    format!("using {} of its {} CPU limit", format_ratio(c.cpu_m / limit), format_cpu_millis(limit));
                add("CPU-starved", evidence, w.cpu_starved);
            }
            _ => {}
        }
    }
    // Memory: a leak (growth towards the limit) or a working set already near it — of a running
    // container only: a crash loop's last sample and trend are history, not a forecast.
    let running = matches!(c.health.word.as_str(), "Running" | "Restarted" | "NotReady" | "Starting");
    if let Some(limit) = c.resources.mem_limit.filter(|l| *l > 0.0 && !finished && running)
        && c.mem.is_finite()
    {
        let growth = c.mem_growth.filter(|g| *g > 0.0);
        let minutes_to_limit = growth.map(|g| (limit - c.mem).max(0.0) / g / 60.0);
        match minutes_to_limit {
            Some(m) if m <= rules.oom_horizon_minutes => {
                let evidence = format!(
                    "working set {} of {} and growing {}/min: OOM in ~{}",
                    format_bytes(c.mem),
                    format_bytes(limit),
                    format_bytes(growth.unwrap_or(0.0) * 60.0),
                    format_age((m * 60.0) as i64)
                );
                let urgency = rules.oom_horizon_minutes - m;
                add("Memory leak", evidence, scaled(w.memory_leak, urgency, 0.0, rules.oom_horizon_minutes));
            }
            _ if c.mem >= rules.memory_near_limit * limit => {
                let evidence = format!("working set {} of its {} limit", format_bytes(c.mem), format_bytes(limit));
                add(
                    "Memory near limit",
                    evidence,
                    scaled(w.memory_near_limit, c.mem / limit, rules.memory_near_limit, 1.0),
                );
            }
            _ => {}
        }
    }
    if !found.is_empty() {
        board.findings.entry(container_subject(c)).or_default().extend(found);
    }
}
