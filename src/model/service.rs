//! What kpulse needs of a Service: its name and ports. Gateways name a backend after them
//! (ingress-nginx `<namespace>-<service>-<port>`, Traefik the same with `@provider`), so the
//! Services turn those names into `namespace/service` exactly, where splitting on dashes guesses.

use k8s_openapi::api::core::v1::Service;

use super::pod::PodKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// `namespace/name` (the same shape as a pod's key).
    pub key: PodKey,
    /// Each port's number and, where it has one, its name.
    pub ports: Vec<(i32, Option<String>)>,
}

impl ServiceInfo {
    pub fn from_service(s: &Service) -> ServiceInfo {
        let key =
            PodKey::new(s.metadata.namespace.clone().unwrap_or_default(), s.metadata.name.clone().unwrap_or_default());
        let ports = s
            .spec
            .as_ref()
            .and_then(|spec| spec.ports.as_ref())
            .map(|ports| ports.iter().map(|p| (p.port, p.name.clone().filter(|n| !n.is_empty()))).collect())
            .unwrap_or_default();
        ServiceInfo { key, ports }
    }

    /// The backend names a gateway gives this Service: `<namespace>-<service>-<port>`, by port
    /// number and by port name (an Ingress may refer to either).
    pub fn backend_names(&self) -> impl Iterator<Item = String> + '_ {
        let stem = format!("{}-{}-", self.key.namespace, self.key.name);
        self.ports.iter().flat_map(move |(number, name)| {
            let by_number = format!("{stem}{number}");
            let by_name = name.as_ref().map(|n| format!("{stem}{n}"));
            std::iter::once(by_number).chain(by_name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_names_its_backends_by_port_number_and_name() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "order-api", "namespace": "shop-eu"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}, {"port": 9090}]}
        }))
        .unwrap();
        let info = ServiceInfo::from_service(&svc);
        assert_eq!(info.key.to_string(), "shop-eu/order-api");
        let names: Vec<String> = info.backend_names().collect();
        assert_eq!(names, ["shop-eu-order-api-80", "shop-eu-order-api-http", "shop-eu-order-api-9090"]);
    }
}
