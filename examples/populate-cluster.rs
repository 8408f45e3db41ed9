//! Writes a simulated scenario into a real (test) cluster as a kubelet would, so kpulse can be
//! tried against a real kube-apiserver: `scripts/local-cluster.sh` runs it. A development tool,
//! not part of kpulse (kpulse never writes to a cluster).
//!
//!   cargo run --example populate-cluster -- ADMIN_KUBECONFIG [SCENARIO.toml] [--pods N] [--follow]
//!
//! --pods scales the scenario up to about N pods (as `kpulse demo --pods`); --follow keeps
//! advancing the simulation one second per second and writing the changes.

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
    let pods = match args.iter().position(|a| a == "--pods") {
        Some(i) => Some(args.get(i + 1).and_then(|n| n.parse::<u32>().ok()).ok_or("--pods needs a number")?),
        None => None,
    };
    let after_pods = |i: usize| i > 0 && args[i - 1] == "--pods";
    let positional: Vec<&String> =
        args.iter().enumerate().filter(|(i, a)| !a.starts_with("--") && !after_pods(*i)).map(|(_, a)| a).collect();
    let Some(kubeconfig) = positional.first() else {
        return Err("usage: populate-cluster ADMIN_KUBECONFIG [SCENARIO.toml] [--pods N] [--follow]".into());
    };
    let scenario = match positional.get(1) {
        Some(path) => Scenario::load(std::path::Path::new(path.as_str()))?,
        None => Scenario::shop(),
    };
    let scenario = match pods {
        Some(n) => scenario.scaled_to(n),
        None => scenario,
    };
    let kc = kube::config::Kubeconfig::read_from(kubeconfig.as_str())?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let client = kube::Client::try_from(config)?;
    let mut sim = Sim::new(scenario, now_unix());
    let started = std::time::Instant::now();
    mirror::mirror(&client, &mirror::SimObjects::of(&sim)).await?;
    eprintln!(
        "populate-cluster: {} pods on {} nodes written in {:.1} s",
        sim.pod_count(),
        sim.node_names().len(),
        started.elapsed().as_secs_f64()
    );
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
