//! Container health, classified from container and pod status the way an operator reads
//! `kubectl get pods`, but per container and with the worst signal first.

use crate::model::pod::{ContainerInfo, PodInfo, StateInfo};
use crate::model::time::UnixSecs;

/// How bad, independent of the word: drives colour and the default sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Good,
    Neutral,
    Warn,
    Bad,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub severity: Severity,
    /// A word or two: `Running`, `CrashLoop`, `OOMKilled`, `NotReady`, `Pending`…
    pub word: String,
    /// Why, when the status says more than the word (a waiting message, a scheduler message).
    pub detail: Option<String>,
}

impl Health {
    fn new(severity: Severity, word: impl Into<String>, detail: Option<String>) -> Health {
        Health { severity, word: word.into(), detail }
    }
}

/// A restart this recent still marks a running container as suspicious.
pub const RECENT_RESTART_SECS: i64 = 3600;

pub fn classify(pod: &PodInfo, container: &ContainerInfo, now: UnixSecs) -> Health {
    use Severity::*;
    if pod.deleting {
        return Health::new(Neutral, "Terminating", None);
    }
    if let Some(message) = &pod.unschedulable {
        return Health::new(Bad, "Unschedulable", Some(message.clone()));
    }
    // The kubelet killed it to reclaim a resource; its controller has replaced it elsewhere.
    if pod.phase == "Failed" && pod.reason.as_deref() == Some("Evicted") {
        return Health::new(Warn, "Evicted", pod.message.clone());
    }
    match &container.state {
        StateInfo::Waiting { reason, message } => {
            let severity = match reason.as_str() {
                "ContainerCreating" | "PodInitializing" => Warn,
                _ => Bad,
            };
            let word = match reason.as_str() {
                "CrashLoopBackOff" => "CrashLoop",
                "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" | "ErrImageNeverPull"
                | "ImageInspectError" => "ImagePull",
                "CreateContainerConfigError" | "CreateContainerError" => "ConfigError",
                "ContainerCreating" => "Creating",
                "PodInitializing" => "Initializing",
                other => other,
            };
            let detail = match (reason.as_str(), &container.last_termination) {
                ("CrashLoopBackOff", Some((last, code, _))) => Some(format!("back-off after {last} (exit {code})")),
                _ => message.clone(),
            };
            Health::new(severity, word, detail)
        }
        StateInfo::Terminated { reason, exit_code, .. } => {
            if *exit_code == 0 {
                Health::new(if container.init { Good } else { Neutral }, "Completed", None)
            } else if reason == "OOMKilled" {
                Health::new(Bad, "OOMKilled", Some(format!("exit {exit_code}")))
            } else if container.restarts > 0 && !container.init && pod.phase == "Running" {
                // A real kubelet reports the dead instance (terminated, not yet waiting in
                // CrashLoopBackOff) for much of a back-off; it restarted it before and will again.
                Health::new(Bad, "CrashLoop", Some(format!("back-off after {reason} (exit {exit_code})")))
            } else {
                Health::new(Bad, "Failed", Some(format!("{reason} (exit {exit_code})")))
            }
        }
        StateInfo::Unknown => {
            if pod.phase == "Pending" {
                Health::new(Warn, "Pending", None)
            } else {
                Health::new(Neutral, "Unknown", None)
            }
        }
        StateInfo::Running { started } => {
            if !container.ready {
                let starting = started.is_some_and(|s| now - s < 30);
                return Health::new(Warn, if starting { "Starting" } else { "NotReady" }, None);
            }
            match &container.last_termination {
                Some((reason, code, Some(finished))) if now - finished < RECENT_RESTART_SECS => {
                    Health::new(Warn, "Restarted", Some(format!("last exit {reason} (exit {code})")))
                }
                _ => Health::new(Good, "Running", None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn pod(json: serde_json::Value) -> PodInfo {
        let pod: Pod = serde_json::from_value(json).expect("valid pod JSON");
        PodInfo::from_pod(&pod)
    }

    const NOW: i64 = 1_700_000_000;

    fn at(secs_before_now: i64) -> String {
        k8s_openapi::jiff::Timestamp::from_second(NOW - secs_before_now).unwrap().to_string()
    }

    fn health_of(p: &PodInfo, container: &str) -> Health {
        let c = p.containers.iter().find(|c| c.name == container).expect("container");
        classify(p, c, NOW)
    }

    #[test]
    fn crash_loop_with_oom_in_last_state() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "cart-7d9f8c6b5-x2x9z", "namespace": "shop",
                         "labels": {"app": "cart", "pod-template-hash": "7d9f8c6b5"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                             "name": "cart-7d9f8c6b5", "uid": "u1", "controller": true}],
                         "managedFields": [{"manager": "kubelet", "operation": "Update"}]},
            "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "shop/cart:1",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"cpu": "500m", "memory": "256Mi"}}}]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 7, "image": "shop/cart:1", "imageID": "",
                "state": {"waiting": {"reason": "CrashLoopBackOff",
                          "message": "back-off 5m0s restarting failed container=app"}},
                "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                              "finishedAt": at(40)}}}]}
        }));
        assert_eq!(p.workload.as_deref(), Some("deploy/cart"));
        let c = &p.containers[0];
        assert_eq!(c.restarts, 7);
        assert_eq!(c.resources.cpu_limit_m, Some(500.0));
        assert_eq!(c.resources.mem_limit, Some(256.0 * 1048576.0));
        assert_eq!(c.last_termination, Some(("OOMKilled".into(), 137, Some(NOW - 40))));
        let h = health_of(&p, "app");
        assert_eq!((h.severity, h.word.as_str()), (Severity::Bad, "CrashLoop"));
        assert_eq!(h.detail.as_deref(), Some("back-off after OOMKilled (exit 137)"));
    }

    /// As a real kubelet 1.36 reported it for most of an 80 s back-off: `terminated`, not
    /// `waiting: CrashLoopBackOff` (kubectl shows `Error`).
    #[test]
    fn a_restarted_container_lying_dead_between_restarts_is_crash_looping() {
        let status = |restarts: u32| {
            pod(serde_json::json!({
                "metadata": {"name": "notification-848d6f445-wnm76", "namespace": "shop"},
                "spec": {"nodeName": "kpulse-node", "containers": [{"name": "notification", "image": "w:1"}]},
                "status": {"phase": "Running", "containerStatuses": [{
                    "name": "notification", "ready": false, "restartCount": restarts, "image": "w:1", "imageID": "",
                    "state": {"terminated": {"reason": "Error", "exitCode": 1, "finishedAt": at(79)}},
                    "lastState": {"terminated": {"reason": "Error", "exitCode": 1, "finishedAt": at(180)}}}]}
            }))
        };
        let h = health_of(&status(4), "notification");
        assert_eq!((h.severity, h.word.as_str()), (Severity::Bad, "CrashLoop"));
        assert_eq!(h.detail.as_deref(), Some("back-off after Error (exit 1)"));
        // The first failure, never restarted yet, is a failure.
        assert_eq!(health_of(&status(0), "notification").word, "Failed");
    }

    #[test]
    fn image_pull_backoff_and_config_error() {
        for (reason, word) in [
            ("ImagePullBackOff", "ImagePull"),
            ("ErrImagePull", "ImagePull"),
            ("CreateContainerConfigError", "ConfigError"),
            ("RunContainerError", "RunContainerError"),
        ] {
            let p = pod(serde_json::json!({
                "metadata": {"name": "p", "namespace": "n"},
                "spec": {"containers": [{"name": "app", "image": "x"}]},
                "status": {"phase": "Pending", "containerStatuses": [{"name": "app", "ready": false,
                    "restartCount": 0, "image": "x", "imageID": "",
                    "state": {"waiting": {"reason": reason, "message": "m"}}}]}
            }));
            let h = health_of(&p, "app");
            assert_eq!((h.severity, h.word.as_str()), (Severity::Bad, word), "{reason}");
        }
    }

    #[test]
    fn pending_with_failed_scheduling_is_unschedulable() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "search-0", "namespace": "shop",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                             "name": "search", "uid": "u", "controller": true}]},
            "spec": {"containers": [{"name": "app", "image": "x",
                "resources": {"requests": {"cpu": "64"}}}]},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient cpu."}]}
        }));
        assert_eq!(p.workload.as_deref(), Some("sts/search"));
        let h = health_of(&p, "app");
        assert_eq!((h.severity, h.word.as_str()), (Severity::Bad, "Unschedulable"));
        assert_eq!(h.detail.as_deref(), Some("0/3 nodes are available: 3 Insufficient cpu."));
    }

    #[test]
    fn init_containers_are_rows_and_completed_init_is_good() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p", "namespace": "n"},
            "spec": {"initContainers": [{"name": "migrate", "image": "m"}],
                     "containers": [{"name": "app", "image": "a"}]},
            "status": {"phase": "Running",
                "initContainerStatuses": [{"name": "migrate", "ready": false, "restartCount": 0,
                    "image": "m", "imageID": "",
                    "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "image": "a",
                    "imageID": "", "state": {"running": {"startedAt": at(600)}}}]}
        }));
        assert_eq!(p.containers.len(), 2);
        assert!(p.containers[0].init);
        assert_eq!(health_of(&p, "migrate").severity, Severity::Good);
        assert_eq!(health_of(&p, "app").word, "Running");
    }

    #[test]
    fn running_states() {
        let mk = |ready: bool, started: i64, last: Option<i64>| {
            let mut status = serde_json::json!({"name": "app", "ready": ready, "restartCount": 1,
                "image": "a", "imageID": "", "state": {"running": {"startedAt": at(started)}}});
            if let Some(l) = last {
                status["lastState"] = serde_json::json!({"terminated":
                    {"reason": "OOMKilled", "exitCode": 137, "finishedAt": at(l)}});
            }
            pod(serde_json::json!({"metadata": {"name": "p", "namespace": "n"},
                "spec": {"containers": [{"name": "app", "image": "a"}]},
                "status": {"phase": "Running", "containerStatuses": [status]}}))
        };
        assert_eq!(health_of(&mk(false, 5, None), "app").word, "Starting");
        assert_eq!(health_of(&mk(false, 500, None), "app").word, "NotReady");
        assert_eq!(health_of(&mk(true, 500, Some(600)), "app").word, "Restarted");
        assert_eq!(health_of(&mk(true, 5000, Some(7200)), "app").word, "Running");
    }

    #[test]
    fn terminated_and_terminating() {
        let p = pod(serde_json::json!({"metadata": {"name": "p", "namespace": "n",
                "deletionTimestamp": at(1)},
            "spec": {"containers": [{"name": "app", "image": "a"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "app", "ready": true,
                "restartCount": 0, "image": "a", "imageID": "", "state": {"running": {}}}]}}));
        assert_eq!(health_of(&p, "app").word, "Terminating");
        let p = pod(serde_json::json!({"metadata": {"name": "p", "namespace": "n"},
            "spec": {"containers": [{"name": "app", "image": "a"}]},
            "status": {"phase": "Failed", "containerStatuses": [{"name": "app", "ready": false,
                "restartCount": 0, "image": "a", "imageID": "",
                "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}}));
        assert_eq!(health_of(&p, "app").word, "OOMKilled");
    }

    #[test]
    fn an_evicted_pod_says_so_with_the_kubelets_reason() {
        let message = "The node was low on resource: ephemeral-storage. Threshold quantity: 10%, available: 6%. ";
        let p = pod(serde_json::json!({"metadata": {"name": "p", "namespace": "n"},
            "spec": {"containers": [{"name": "app", "image": "a"}]},
            "status": {"phase": "Failed", "reason": "Evicted", "message": message,
                "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0, "image": "a",
                "imageID": "", "state": {"terminated": {"reason": "Error", "exitCode": 137}}}]}}));
        let h = health_of(&p, "app");
        assert_eq!((h.severity, h.word.as_str(), h.detail.as_deref()), (Severity::Warn, "Evicted", Some(message)));
    }
}
