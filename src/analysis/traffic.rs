//! Joins gateway traffic to the cluster: an upstream address to the pod with that IP, a backend
//! name as the gateway writes it to the Service it stands for.

use std::collections::BTreeSet;

use hashbrown::HashMap;

use crate::model::pod::{PodInfo, PodKey};
use crate::model::service::ServiceInfo;

/// Every backend name the gateways give the Services (`shop-payment-80`, `shop-payment-http`) →
/// `namespace/service`.
pub fn backend_index<'a>(services: impl Iterator<Item = &'a ServiceInfo>) -> HashMap<String, String> {
    services.flat_map(|s| s.backend_names().map(move |name| (name, s.key.to_string()))).collect()
}

/// Turns backend names into Services: exactly where the Services are known, else (Services not
/// readable, or not listed yet) guessed from the namespaces seen with [`service_of`].
pub struct Resolver<'a> {
    pub known: &'a HashMap<String, String>,
    pub namespaces: BTreeSet<&'a str>,
}

impl Resolver<'_> {
    pub fn service_of(&self, backend: &str) -> Option<String> {
        let name = backend.split('@').next().unwrap_or(backend);
        self.known.get(name).cloned().or_else(|| service_of(backend, &self.namespaces))
    }
}

/// The namespaces of the pods seen, sorted: what backend names are resolved against (and what
/// the namespace picker offers). Deduplicated by hash first: thousands of pods, a few dozen names.
pub fn namespaces_of<'a>(pods: impl Iterator<Item = &'a PodInfo>) -> BTreeSet<&'a str> {
    let distinct: hashbrown::HashSet<&str> = pods.map(|p| p.key.namespace.as_str()).collect();
    distinct.into_iter().collect()
}

/// Pod IP → pod, for the pods that are running (a finished pod's IP is reused).
pub fn pods_by_ip<'a>(pods: impl Iterator<Item = &'a PodInfo>) -> HashMap<&'a str, &'a PodKey> {
    pods.filter(|p| p.phase != "Succeeded" && p.phase != "Failed")
        .filter_map(|p| Some((p.pod_ip.as_deref().filter(|ip| !ip.is_empty())?, &p.key)))
        .collect()
}

/// The Service a backend name stands for, as `namespace/service`, when it can be told:
/// - ingress-nginx and HAProxy ingress write `<namespace>-<service>-<port>`; namespaces and
///   services both contain dashes, so the namespace is the longest known namespace that
///   prefixes the name, and the port is the last part;
/// - Istio writes the cluster `outbound|<port>|<subset>|<service>.<namespace>.svc.cluster.local`;
/// - Traefik writes `<namespace>-<service>-<port>@<provider>` as its service name;
/// - Envoy Gateway writes `httproute/<namespace>/<route>/rule/<n>` (a route, not a service).
///
/// Anything else is shown as the gateway wrote it.
pub fn service_of(backend: &str, namespaces: &BTreeSet<&str>) -> Option<String> {
    if let Some(host) = backend.split('|').nth(3) {
        let mut parts = host.split('.');
        let (svc, ns) = (parts.next()?, parts.next()?);
        return Some(format!("{ns}/{svc}"));
    }
    if let Some(rest) = backend.strip_prefix("httproute/").or_else(|| backend.strip_prefix("grpcroute/")) {
        let mut parts = rest.split('/');
        return Some(format!("{}/{}", parts.next()?, parts.next()?));
    }
    let name = backend.split('@').next().unwrap_or(backend);
    let ns = namespaces
        .iter()
        .filter(|ns| name.len() > ns.len() + 1 && name.starts_with(*ns) && name.as_bytes()[ns.len()] == b'-')
        .max_by_key(|ns| ns.len())?;
    let svc_port = &name[ns.len() + 1..];
    let svc = svc_port.rsplit_once('-').map_or(svc_port, |(svc, _port)| svc);
    (!svc.is_empty()).then(|| format!("{ns}/{svc}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_resolve_to_services() {
        let namespaces: BTreeSet<&str> = ["shop", "shop-eu", "default"].into_iter().collect();
        let svc = |b: &str| service_of(b, &namespaces);
        assert_eq!(svc("shop-payment-80").as_deref(), Some("shop/payment"));
        assert_eq!(svc("shop-eu-order-api-8080").as_deref(), Some("shop-eu/order-api"));
        assert_eq!(svc("shop-cart-http").as_deref(), Some("shop/cart"));
        assert_eq!(svc("outbound|9080||reviews.default.svc.cluster.local").as_deref(), Some("default/reviews"));
        assert_eq!(svc("shop-cart-80@kubernetes").as_deref(), Some("shop/cart"));
        assert_eq!(svc("httproute/default/backend/rule/0").as_deref(), Some("default/backend"));
        assert_eq!(svc("upstream-default-backend"), None);
        assert_eq!(svc("static"), None);
    }

    #[test]
    fn known_services_resolve_what_namespaces_alone_cannot() {
        // Namespace `shop` has pods; `shop-eu` has none yet: by namespaces alone the backend reads
        // as shop/eu-order-api.
        let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "order-api", "namespace": "shop-eu"},
            "spec": {"ports": [{"name": "http", "port": 8080}]}
        }))
        .unwrap();
        let info = ServiceInfo::from_service(&svc);
        let known = backend_index([&info].into_iter());
        let namespaces: BTreeSet<&str> = ["shop"].into_iter().collect();
        assert_eq!(service_of("shop-eu-order-api-8080", &namespaces).as_deref(), Some("shop/eu-order-api"));
        let resolver = Resolver { known: &known, namespaces };
        assert_eq!(resolver.service_of("shop-eu-order-api-8080").as_deref(), Some("shop-eu/order-api"));
        assert_eq!(resolver.service_of("shop-eu-order-api-http@kubernetes").as_deref(), Some("shop-eu/order-api"));
        assert_eq!(resolver.service_of("shop-cart-80").as_deref(), Some("shop/cart"), "unknown: guessed");
    }
}
