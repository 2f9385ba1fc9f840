//! Upstream `pkg/controller/nodeipam/ipam/cidrset/cidr_set.go`: the node-sized subnets of the
//! cluster CIDR as a bitmap; [`CidrSet::allocate_next`] goes round-robin from after the last
//! allocation, [`CidrSet::occupy`] and [`CidrSet::release`] mark any range inside the cluster
//! CIDR. IPv4 and IPv6 alike (addresses as `u128`).

use std::net::IpAddr;

/// Upstream `clusterSubnetMaxDiff`: at most 2^16 subnets.
const MAX_DIFF: u8 = 16;

/// A CIDR: a network address (host bits zero) and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    /// Go's `ParseCIDR` (`netutils.ParseCIDRSloppy`): the host bits are masked off.
    fn from_str(s: &str) -> Result<Cidr, String> {
        let bad = || format!("invalid CIDR address: {s}");
        let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > bits(addr) {
            return Err(bad());
        }
        let value = to_u128(addr) & mask(bits(addr), prefix);
        Ok(Cidr {
            addr: from_u128(value, addr.is_ipv4()),
            prefix,
        })
    }
}

fn bits(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_u128(v: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(std::net::Ipv4Addr::from(u32::try_from(v).unwrap_or(0)))
    } else {
        IpAddr::V6(std::net::Ipv6Addr::from(v))
    }
}

/// The network mask of `prefix` in an address of `bits` bits (as a `u128`).
fn mask(bits: u8, prefix: u8) -> u128 {
    let all: u128 = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    if prefix == 0 {
        0
    } else {
        all & !((1u128 << (bits - prefix)) - 1)
    }
}

/// What went wrong (upstream's error texts).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CidrSetError {
    /// `ErrCIDRRangeNoCIDRsRemaining`.
    #[error(
        "CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range"
    )]
    NoCidrsRemaining,
    /// `ErrCIDRSetSubNetTooBig` (and a node mask shorter than the cluster's).
    #[error("New CIDR set failed; the node CIDR size is too big")]
    SubNetTooBig,
    /// A CIDR outside the cluster CIDR.
    #[error("cidr {cidr} is out the range of cluster cidr {cluster}")]
    OutOfRange {
        /// The CIDR given.
        cidr: Cidr,
        /// The cluster CIDR.
        cluster: Cidr,
    },
}

/// The allocator's state for one cluster CIDR.
#[derive(Debug)]
pub struct CidrSet {
    cluster: Cidr,
    node_mask: u8,
    used: Vec<bool>,
    allocated: usize,
    next_candidate: usize,
}

impl CidrSet {
    /// Upstream `NewCIDRSet`.
    pub fn new(cluster: Cidr, node_mask: u8) -> Result<CidrSet, CidrSetError> {
        if node_mask < cluster.prefix
            || node_mask > bits(cluster.addr)
            || node_mask - cluster.prefix > MAX_DIFF
        {
            return Err(CidrSetError::SubNetTooBig);
        }
        let max = 1usize << (node_mask - cluster.prefix);
        Ok(CidrSet {
            cluster,
            node_mask,
            used: vec![false; max],
            allocated: 0,
            next_candidate: 0,
        })
    }

    fn block(&self, index: usize) -> Cidr {
        let b = bits(self.cluster.addr);
        let base = to_u128(self.cluster.addr);
        let v = base | ((index as u128) << (b - self.node_mask));
        Cidr {
            addr: from_u128(v, self.cluster.addr.is_ipv4()),
            prefix: self.node_mask,
        }
    }

    /// Upstream `AllocateNext`.
    pub fn allocate_next(&mut self) -> Result<Cidr, CidrSetError> {
        let max = self.used.len();
        if self.allocated == max {
            return Err(CidrSetError::NoCidrsRemaining);
        }
        let mut candidate = self.next_candidate;
        for _ in 0..max {
            if !self.used[candidate] {
                break;
            }
            candidate = (candidate + 1) % max;
        }
        self.next_candidate = (candidate + 1) % max;
        self.used[candidate] = true;
        self.allocated += 1;
        Ok(self.block(candidate))
    }

    /// Upstream `getBeginningAndEndIndices`: the subnets `cidr` covers.
    fn indices(&self, cidr: Cidr) -> Result<(usize, usize), CidrSetError> {
        let b = bits(self.cluster.addr);
        let out = || CidrSetError::OutOfRange {
            cidr,
            cluster: self.cluster,
        };
        if cidr.addr.is_ipv4() != self.cluster.addr.is_ipv4() {
            return Err(out());
        }
        let cluster_mask = mask(b, self.cluster.prefix);
        let c = to_u128(cidr.addr);
        let base = to_u128(self.cluster.addr);
        // Either contains the other's network address.
        let inside = c & cluster_mask == base;
        let around = base & mask(b, cidr.prefix) == c;
        if !inside && !around {
            return Err(out());
        }
        let max = self.used.len() - 1;
        if cidr.prefix <= self.cluster.prefix {
            return Ok((0, max));
        }
        let shift = b - self.node_mask;
        let rel = c - base;
        let begin = usize::try_from(rel >> shift).unwrap_or(max);
        let span = if cidr.prefix >= self.node_mask {
            0
        } else {
            (1usize << (self.node_mask - cidr.prefix)) - 1
        };
        Ok((begin.min(max), (begin + span).min(max)))
    }

    /// Upstream `Occupy`.
    pub fn occupy(&mut self, cidr: Cidr) -> Result<(), CidrSetError> {
        let (begin, end) = self.indices(cidr)?;
        for i in begin..=end {
            if !self.used[i] {
                self.used[i] = true;
                self.allocated += 1;
            }
        }
        Ok(())
    }

    /// Upstream `Release`.
    pub fn release(&mut self, cidr: Cidr) -> Result<(), CidrSetError> {
        let (begin, end) = self.indices(cidr)?;
        for i in begin..=end {
            if self.used[i] {
                self.used[i] = false;
                self.allocated -= 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn allocates_round_robin_and_reuses_released_ones_later() {
        let mut set = CidrSet::new(c("10.244.0.0/16"), 24).unwrap();
        assert_eq!(set.allocate_next().unwrap(), c("10.244.0.0/24"));
        assert_eq!(set.allocate_next().unwrap(), c("10.244.1.0/24"));
        set.occupy(c("10.244.2.0/24")).unwrap();
        assert_eq!(set.allocate_next().unwrap(), c("10.244.3.0/24"));
        set.release(c("10.244.0.0/24")).unwrap();
        // Round robin: the released one comes back only after the rest.
        assert_eq!(set.allocate_next().unwrap(), c("10.244.4.0/24"));
        assert_eq!(
            set.occupy(c("10.245.0.0/24")).unwrap_err().to_string(),
            "cidr 10.245.0.0/24 is out the range of cluster cidr 10.244.0.0/16"
        );
        let mut small = CidrSet::new(c("10.0.0.0/30"), 31).unwrap();
        assert_eq!(small.allocate_next().unwrap(), c("10.0.0.0/31"));
        assert_eq!(small.allocate_next().unwrap(), c("10.0.0.2/31"));
        assert_eq!(small.allocate_next(), Err(CidrSetError::NoCidrsRemaining));
        small.release(c("10.0.0.2/31")).unwrap();
        assert_eq!(small.allocate_next().unwrap(), c("10.0.0.2/31"));
        // A range wider than a node's occupies every subnet in it.
        let mut set = CidrSet::new(c("10.0.0.0/16"), 24).unwrap();
        set.occupy(c("10.0.0.0/23")).unwrap();
        assert_eq!(set.allocate_next().unwrap(), c("10.0.2.0/24"));
        assert!(CidrSet::new(c("10.0.0.0/8"), 28).is_err());
        assert!(CidrSet::new(c("10.0.0.0/16"), 8).is_err());
        let mut v6 = CidrSet::new(c("fd00::/48"), 64).unwrap();
        assert_eq!(v6.allocate_next().unwrap(), c("fd00::/64"));
        assert_eq!(v6.allocate_next().unwrap(), c("fd00:0:0:1::/64"));
        assert_eq!(c("10.244.7.9/16").to_string(), "10.244.0.0/16");
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }
}
