//! `endpoints`: upstream `printEndpoints` / `formatEndpoints` (all ports).

use serde_json::Value;

use super::{AGE, Column, NAME, Printer, Rows, col, int, items, name, no_conditions, s};

const COLUMNS: &[Column] = &[
    NAME,
    col(
        "Endpoints",
        "string",
        "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.",
    ),
    AGE,
];

/// The printer the kind map hands out.
pub(super) const PRINTER: Printer = Printer {
    columns: COLUMNS,
    row,
    conditions: no_conditions,
};

/// Upstream `printEndpoints` / `formatEndpoints` (all ports).
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    vec![
        name(obj).into(),
        format_endpoints(obj).into(),
        p.age(obj).into(),
    ]
}

/// Upstream `formatEndpoints` with all ports: `ip:port` per address and port, the first three
/// then `+ N more...`; `<none>` without subsets.
fn format_endpoints(obj: &Value) -> String {
    const MAX: usize = 3;
    let subsets = items(&obj["subsets"]);
    if subsets.is_empty() {
        return "<none>".into();
    }
    let mut list = Vec::new();
    let mut more = false;
    let mut count = 0;
    for subset in subsets {
        let addresses = items(&subset["addresses"]);
        let ports = items(&subset["ports"]);
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for address in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(s(&address["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for address in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(s(&address["ip"]), int(&port["port"])));
            }
        }
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - MAX);
    }
    ret
}

/// `net.JoinHostPort`: brackets around IPv6 hosts.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{cells, names};

    #[test]
    fn endpoints() {
        assert_eq!(
            names("", "endpoints"),
            [("Name", 0), ("Endpoints", 0), ("Age", 0)].map(|(n, p)| (n.to_string(), p))
        );
        assert_eq!(
            cells(
                "",
                "endpoints",
                json!({"metadata": {"name": "web"}, "subsets": []})
            )[1],
            "<none>"
        );
        let ep = json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "subsets": [
            {"addresses": [{"ip": "10.244.0.5"}, {"ip": "10.244.0.6"}],
             "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}]},
            {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}
        ]});
        assert_eq!(
            cells("", "endpoints", ep),
            [
                json!("web"),
                json!("10.244.0.5:8080,10.244.0.6:8080,10.244.0.5:9090 + 2 more..."),
                json!("60m")
            ]
        );
        let headless = json!({"metadata": {"name": "h"},
            "subsets": [{"addresses": [{"ip": "10.244.0.5"}, {"ip": "fd00::2"}]}]});
        assert_eq!(cells("", "endpoints", headless)[1], "10.244.0.5,fd00::2");
        let ep6 = json!({"metadata": {"name": "v6"},
            "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]});
        assert_eq!(cells("", "endpoints", ep6)[1], "[fd00::1]:80");
    }
}
