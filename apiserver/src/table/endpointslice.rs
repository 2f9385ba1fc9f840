//! `endpointslices`: upstream `printEndpointSlice`.

use serde_json::Value;

use super::{AGE, Column, NAME, Rows, col, items, s};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    col(
        "AddressType",
        "string",
        "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.",
    ),
    col(
        "Ports",
        "string",
        "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports.",
    ),
    col(
        "Endpoints",
        "string",
        "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.",
    ),
    AGE,
];

/// Upstream `printEndpointSlice`.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    const MAX: usize = 3;
    let mut ports = Vec::new();
    let mut more = false;
    let mut count = 0;
    for port in items(&obj["ports"]) {
        if ports.len() < MAX {
            ports.push(match (port["port"].as_i64(), port["name"].as_str()) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => "*".to_string(),
            });
        } else if ports.len() == MAX {
            more = true;
        }
        count += 1;
    }
    let ports = list_with_more(&ports, more, count, MAX);

    let mut addresses = Vec::new();
    let (mut more, mut count) = (false, 0);
    for endpoint in items(&obj["endpoints"]) {
        for address in items(&endpoint["addresses"]) {
            if addresses.len() < MAX {
                addresses.push(s(address).to_string());
            } else if addresses.len() == MAX {
                more = true;
            }
            count += 1;
        }
    }
    let endpoints = list_with_more(&addresses, more, count, MAX);
    p.named(
        obj,
        [
            s(&obj["addressType"]).into(),
            ports.into(),
            endpoints.into(),
        ],
    )
}

/// `listWithMoreString`: the first three, then `+ N more...`; `<unset>` when empty.
fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - max);
    }
    if ret.is_empty() {
        return "<unset>".into();
    }
    ret
}
