//! Plays kubelet for a simulated cluster on a real apiserver: the simulator's nodes, pods, Services
//! and Warning events written through the API, statuses through the status subresource. Shared by the real-
//! apiserver tests and `cargo run --example populate-cluster` (scripts/local-cluster.sh); never
//! part of kpulse, which only reads.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, Service};
use kpulse::demo::sim::Sim;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// Strips what the server assigns, so an object read from the simulator can be created.
fn for_create<T: kube::Resource>(mut obj: T) -> T {
    let meta = obj.meta_mut();
    meta.resource_version = None;
    meta.uid = None;
    meta.creation_timestamp = None;
    meta.managed_fields = None;
    obj
}

fn decode<T: serde::de::DeserializeOwned>(json: &[u8]) -> T {
    serde_json::from_slice(json).expect("the simulator serves valid objects")
}

/// One object's (namespace, name) and its wire JSON.
type Keyed = ((String, String), Arc<Vec<u8>>);

/// How many writes the harness keeps in flight (10,000 pods one by one would take minutes).
const IN_FLIGHT: usize = 16;

/// The simulator's objects at one instant (its wire JSON), taken under its lock and written to the
/// real apiserver after it is released, so the simulator's own server is not held up meanwhile.
pub struct SimObjects {
    namespaces: Vec<String>,
    nodes: Vec<Arc<Vec<u8>>>,
    pods: Vec<Keyed>,
    events: Vec<Keyed>,
    services: Vec<Keyed>,
}

impl SimObjects {
    pub fn of(sim: &Sim) -> SimObjects {
        SimObjects {
            namespaces: sim.namespaces(),
            nodes: sim.nodes_api.objects.values().map(|s| s.json.clone()).collect(),
            pods: sim.pods_api.objects.iter().map(|(k, s)| (k.clone(), s.json.clone())).collect(),
            events: sim.events_api.objects.iter().map(|(k, s)| (k.clone(), s.json.clone())).collect(),
            services: sim.services_api.objects.iter().map(|(k, s)| (k.clone(), s.json.clone())).collect(),
        }
    }
}

/// (namespace, name) of every object of a kind, from one LIST across namespaces.
async fn listed_keys<K>(client: &kube::Client) -> Result<std::collections::HashSet<(String, String)>, kube::Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let list = Api::<K>::all(client.clone()).list(&ListParams::default()).await?;
    Ok(list
        .items
        .iter()
        .map(|o| (o.meta().namespace.clone().unwrap_or_default(), o.meta().name.clone().unwrap_or_default()))
        .collect())
}

fn status_patch<T: serde::Serialize>(status: &T) -> Patch<serde_json::Value> {
    Patch::Merge(json!({ "status": status }))
}

/// Plays kubelet (and the controllers) for the simulator's cluster: creates what is missing,
/// writes every status through the status subresource, deletes what the simulator deleted.
/// Call it again after `Sim::advance` to carry the changes over.
pub async fn mirror(client: &kube::Client, sim: &SimObjects) -> Result<(), kube::Error> {
    let pp = PostParams::default();
    let names = |list: Vec<Option<String>>| list.into_iter().flatten().collect::<Vec<String>>();

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let existing =
        names(namespaces.list(&ListParams::default()).await?.items.into_iter().map(|n| n.metadata.name).collect());
    for ns in sim.namespaces.iter().filter(|ns| !existing.contains(ns)) {
        let obj: Namespace = serde_json::from_value(json!({ "metadata": { "name": ns } })).expect("a namespace");
        namespaces.create(&pp, &obj).await?;
    }

    // Services, as a controller-less cluster has them: created once, their IPs allocated here.
    let existing = listed_keys::<Service>(client).await?;
    for (key, json) in sim.services.iter().filter(|(k, _)| !existing.contains(k)) {
        let mut svc: Service = decode(json);
        if let Some(spec) = svc.spec.as_mut() {
            (spec.cluster_ip, spec.cluster_ips) = (None, None);
        }
        Api::<Service>::namespaced(client.clone(), &key.0).create(&pp, &for_create(svc)).await?;
    }

    let nodes: Api<Node> = Api::all(client.clone());
    let existing =
        names(nodes.list(&ListParams::default()).await?.items.into_iter().map(|n| n.metadata.name).collect());
    for json in &sim.nodes {
        let node: Node = decode(json);
        let name = node.metadata.name.clone().unwrap_or_default();
        if !existing.contains(&name) {
            nodes.create(&pp, &for_create(Node { status: None, ..node.clone() })).await?;
        }
        nodes.patch_status(&name, &PatchParams::default(), &status_patch(&node.status)).await?;
    }

    let mut stale = listed_keys::<Pod>(client).await?;
    let fresh: Vec<(bool, &Keyed)> = sim.pods.iter().map(|p| (!stale.remove(&p.0), p)).collect();
    futures::stream::iter(fresh)
        .map(|(create, ((ns, name), json))| {
            let api: Api<Pod> = Api::namespaced(client.clone(), ns);
            async move {
                let pod: Pod = decode(json);
                if create {
                    api.create(&PostParams::default(), &for_create(Pod { status: None, ..pod.clone() })).await?;
                }
                api.patch_status(name, &PatchParams::default(), &status_patch(&pod.status)).await.map(|_| ())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    for (ns, name) in stale {
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let gone = DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
        match api.delete(&name, &gone).await {
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            other => drop(other?),
        }
    }

    // One LIST, as for the pods, rather than a GET per event on every call.
    let existing = listed_keys::<Event>(client).await?;
    for ((ns, name), json) in &sim.events {
        let event: Event = decode(json);
        let api: Api<Event> = Api::namespaced(client.clone(), ns);
        if existing.contains(&(ns.clone(), name.clone())) {
            let changes =
                json!({ "count": event.count, "lastTimestamp": event.last_timestamp, "message": event.message });
            api.patch(name, &PatchParams::default(), &Patch::Merge(changes)).await?;
        } else {
            api.create(&pp, &for_create(event)).await?;
        }
    }
    Ok(())
}
