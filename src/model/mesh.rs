//! How a service mesh marks the pods it manages (Istio's names): the simulator writes them and
//! the mesh source looks for them.

/// The label Istio's injector puts on the pods it gave a sidecar.
pub const MESH_LABEL: (&str, &str) = ("security.istio.io/tlsMode", "istio");
/// The sidecar that logs the pod's calls.
pub const SIDECAR: &str = "istio-proxy";
