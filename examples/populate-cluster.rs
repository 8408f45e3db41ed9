//! Writes a simulated scenario into a real (test) cluster as a kubelet would, so kpulse can be
//! tried against a real kube-apiserver: `scripts/local-cluster.sh` runs it. A development tool,
//! not part of kpulse (kpulse never writes to a cluster).
//!
//!   cargo run --example populate-cluster -- ADMIN_KUBECONFIG [SCENARIO.toml] [--follow]
//!
//! With --follow it keeps advancing the simulation one second per second and writing the changes.

#[path = "../tests/common/mirror.rs"]
mod mirror;

use std::time::Duration;

use kpulse::demo::scenario::Scenario;
use kpulse::demo::sim::Sim;
use kpulse::model::time::now_unix;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let follow = args.iter().any(|a| a == "--follow");
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let Some(kubeconfig) = positional.first() else {
        return Err("usage: populate-cluster ADMIN_KUBECONFIG [SCENARIO.toml] [--follow]".into());
    };
    let scenario = match positional.get(1) {
        Some(path) => Scenario::load(std::path::Path::new(path.as_str()))?,
        None => Scenario::shop(),
    };
    let kc = kube::config::Kubeconfig::read_from(kubeconfig.as_str())?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let client = kube::Client::try_from(config)?;
    let mut sim = Sim::new(scenario, now_unix());
    mirror::mirror(&client, &mirror::SimObjects::of(&sim)).await?;
    eprintln!("populate-cluster: {} pods on {} nodes written", sim.pod_count(), sim.node_names().len());
    if !follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        sim.advance(1);
        if let Err(e) = mirror::mirror(&client, &mirror::SimObjects::of(&sim)).await {
            eprintln!("populate-cluster: {e}; retrying");
        }
    }
}
