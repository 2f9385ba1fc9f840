//! Kubernetes resource quantities (`k8s.io/apimachinery/pkg/api/resource`): parsing
//! (`100m`, `1Gi`, `1e3`, `0.5`, `+2k`), exact arithmetic, the rounded-up integer and milli
//! values upstream reports, and canonical formatting (`0.5Gi` → `512Mi`, `1.5` → `1500m`).
//!
//! Values are held exactly as an integer count of nano-units (10⁻⁹), which covers every
//! suffix from `n` to `Ei`; anything finer than a nano-unit is rounded up, as upstream does
//! when it scales to its smallest representation.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// How a quantity is written (and re-written canonically), from the suffix it was parsed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `n`, `u`, `m`, ``, `k`, `M`, `G`, `T`, `P`, `E`.
    DecimalSI,
    /// `Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`.
    BinarySI,
    /// `e3`, `E-6`.
    DecimalExponent,
}

/// Why a quantity string was rejected (upstream `ErrFormatWrong`, `ErrNumeric`, `ErrSuffix`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The string is not `<number><suffix>` at all.
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    FormatWrong,
    /// The numeric part could not be parsed.
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    /// The suffix is not a known one.
    #[error("unable to parse quantity's suffix")]
    Suffix,
    /// The value does not fit the supported range (about ±1.7e29).
    #[error("quantity is too large")]
    TooLarge,
}

/// A parsed quantity.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

const NANO: i128 = 1_000_000_000;
/// Largest magnitude accepted, in nano-units (leaves headroom for sums).
const MAX_NANOS: i128 = 10i128.pow(38) / 1000;

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}
impl Eq for Quantity {}
impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

/// Integer division rounding toward +infinity.
fn div_ceil(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b != 0 && (a > 0) == (b > 0) {
        q + 1
    } else {
        q
    }
}

fn saturate(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

impl Quantity {
    /// Parses a quantity string.
    pub fn parse(s: &str) -> Result<Self, QuantityError> {
        let s = s.trim();
        if s.is_empty() || s.len() > 64 {
            return Err(QuantityError::FormatWrong);
        }
        let bytes = s.as_bytes();
        let mut i = 0;
        let negative = match bytes[0] {
            b'-' => {
                i = 1;
                true
            }
            b'+' => {
                i = 1;
                false
            }
            _ => false,
        };
        let num_start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number = &s[num_start..i];
        let suffix = &s[i..];
        if number.is_empty() {
            return Err(QuantityError::FormatWrong);
        }
        let (int_part, frac_part) = match number.split_once('.') {
            Some((a, b)) => (a, b),
            None => (number, ""),
        };
        if frac_part.contains('.') || (int_part.is_empty() && frac_part.is_empty()) {
            return Err(QuantityError::Numeric);
        }
        // digits as an integer mantissa with a decimal exponent
        let digits: String = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 36 {
            return Err(QuantityError::TooLarge);
        }
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| QuantityError::Numeric)?
        };
        let frac_len = i32::try_from(frac_part.len()).map_err(|_| QuantityError::Numeric)?;
        let (base2, exp10, format) = parse_suffix(suffix)?;
        // value = mantissa * 10^(exp10 - frac_len) * 2^base2, in nanos: * 10^9
        let mut e10 = exp10 - frac_len + 9;
        let mut v = mantissa;
        let mul = |v: i128, m: i128| v.checked_mul(m).ok_or(QuantityError::TooLarge);
        for _ in 0..base2 {
            v = mul(v, 2)?;
        }
        while e10 > 0 {
            v = mul(v, 10)?;
            e10 -= 1;
        }
        if e10 < 0 {
            let d = 10i128
                .checked_pow(u32::try_from(-e10).map_err(|_| QuantityError::Numeric)?)
                .unwrap_or(i128::MAX);
            v = div_ceil(v, d);
        }
        if v > MAX_NANOS {
            return Err(QuantityError::TooLarge);
        }
        Ok(Self {
            nanos: if negative { -v } else { v },
            format,
        })
    }

    /// A quantity of `milli` thousandths in `format`.
    pub fn from_milli(milli: i64, format: Format) -> Self {
        Self {
            nanos: i128::from(milli) * 1_000_000,
            format,
        }
    }

    /// A quantity of whole units in `format`.
    pub fn from_value(value: i64, format: Format) -> Self {
        Self {
            nanos: i128::from(value) * NANO,
            format,
        }
    }

    /// The format this quantity is written in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The exact value in nano-units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The value in thousandths, rounded up (upstream `MilliValue`): `100m` → 100, `1` → 1000.
    pub fn milli_value(&self) -> i64 {
        saturate(div_ceil(self.nanos, 1_000_000))
    }

    /// The value in whole units, rounded up (upstream `Value`): `1Gi` → 1073741824, `100m` → 1.
    pub fn value(&self) -> i64 {
        saturate(div_ceil(self.nanos, NANO))
    }

    /// Rounds up to milli precision, as `SetDefaults_ResourceList` does.
    pub fn round_up_milli(&self) -> Self {
        Self {
            nanos: div_ceil(self.nanos, 1_000_000) * 1_000_000,
            format: self.format,
        }
    }

    /// The sum (saturating at the supported range).
    pub fn add(&self, other: &Self) -> Self {
        Self {
            nanos: self
                .nanos
                .saturating_add(other.nanos)
                .clamp(-MAX_NANOS, MAX_NANOS),
            format: self.format,
        }
    }

    /// The difference (saturating at the supported range).
    pub fn sub(&self, other: &Self) -> Self {
        Self {
            nanos: self
                .nanos
                .saturating_sub(other.nanos)
                .clamp(-MAX_NANOS, MAX_NANOS),
            format: self.format,
        }
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// The canonical string upstream serializes (`CanonicalizeBytes`).
    pub fn canonical(&self) -> String {
        let sign = if self.nanos < 0 { "-" } else { "" };
        let n = self.nanos.abs();
        if n == 0 {
            return "0".to_string();
        }
        // Upstream's `CanonicalizeBytes`: a BinarySI value under 1024, or not a whole number,
        // is written as DecimalSI; a whole one of 1024 or more in the largest power of 1024
        // that divides it (none: the plain number).
        if self.format == Format::BinarySI && n % NANO == 0 && n / NANO >= 1024 {
            let v = n / NANO;
            const SUFFIXES: [(&str, u32); 6] = [
                ("Ei", 60),
                ("Pi", 50),
                ("Ti", 40),
                ("Gi", 30),
                ("Mi", 20),
                ("Ki", 10),
            ];
            for (suffix, shift) in SUFFIXES {
                let unit = 1i128 << shift;
                if v % unit == 0 {
                    return format!("{sign}{}{suffix}", v / unit);
                }
            }
            return format!("{sign}{v}");
        }
        // Decimal: the largest exponent (multiple of 3) with an integer mantissa.
        const DECIMAL: [(i32, &str); 10] = [
            (18, "E"),
            (15, "P"),
            (12, "T"),
            (9, "G"),
            (6, "M"),
            (3, "k"),
            (0, ""),
            (-3, "m"),
            (-6, "u"),
            (-9, "n"),
        ];
        for (exp, suffix) in DECIMAL {
            let unit = 10i128.pow(u32::try_from(exp + 9).unwrap_or(0));
            if n % unit == 0 {
                let m = n / unit;
                return if self.format == Format::DecimalExponent {
                    if exp == 0 {
                        format!("{sign}{m}")
                    } else {
                        format!("{sign}{m}e{exp}")
                    }
                } else {
                    format!("{sign}{m}{suffix}")
                };
            }
        }
        format!("{sign}{n}n")
    }
}

/// (power of two, power of ten, format) for a suffix.
fn parse_suffix(s: &str) -> Result<(u32, i32, Format), QuantityError> {
    let r = match s {
        "" => (0, 0, Format::DecimalSI),
        "n" => (0, -9, Format::DecimalSI),
        "u" => (0, -6, Format::DecimalSI),
        "m" => (0, -3, Format::DecimalSI),
        "k" => (0, 3, Format::DecimalSI),
        "M" => (0, 6, Format::DecimalSI),
        "G" => (0, 9, Format::DecimalSI),
        "T" => (0, 12, Format::DecimalSI),
        "P" => (0, 15, Format::DecimalSI),
        "E" => (0, 18, Format::DecimalSI),
        "Ki" => (10, 0, Format::BinarySI),
        "Mi" => (20, 0, Format::BinarySI),
        "Gi" => (30, 0, Format::BinarySI),
        "Ti" => (40, 0, Format::BinarySI),
        "Pi" => (50, 0, Format::BinarySI),
        "Ei" => (60, 0, Format::BinarySI),
        _ => {
            let rest = s
                .strip_prefix('e')
                .or_else(|| s.strip_prefix('E'))
                .ok_or(QuantityError::Suffix)?;
            if rest.is_empty() || rest.len() > 4 {
                return Err(QuantityError::Suffix);
            }
            let e: i32 = rest.parse().map_err(|_| QuantityError::Suffix)?;
            if !(-40..=40).contains(&e) {
                return Err(QuantityError::TooLarge);
            }
            (0, e, Format::DecimalExponent)
        }
    };
    Ok(r)
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl TryFrom<&k8s_openapi::apimachinery::pkg::api::resource::Quantity> for Quantity {
    type Error = QuantityError;
    fn try_from(
        q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
    ) -> Result<Self, Self::Error> {
        Self::parse(&q.0)
    }
}

/// A resource list (`cpu` → quantity), parsed.
pub type ResourceList = std::collections::BTreeMap<String, Quantity>;

/// Parses a k8s-openapi resource list; unparsable quantities are an error naming the resource.
pub fn resource_list(
    list: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
) -> Result<ResourceList, (String, QuantityError)> {
    let mut out = ResourceList::new();
    for (name, q) in list.into_iter().flatten() {
        let parsed = Quantity::parse(&q.0).map_err(|e| (name.clone(), e))?;
        out.insert(name.clone(), parsed);
    }
    Ok(out)
}

fn add_list(into: &mut ResourceList, from: &ResourceList) {
    for (k, v) in from {
        let sum = into.get(k).map_or(*v, |cur| cur.add(v));
        into.insert(k.clone(), sum);
    }
}

fn max_list(into: &mut ResourceList, from: &ResourceList) {
    for (k, v) in from {
        if into.get(k).is_none_or(|cur| v > cur) {
            into.insert(k.clone(), *v);
        }
    }
}

/// Whether pod-level resources (`spec.resources`) may set `name`: cpu, memory and huge pages
/// (upstream `IsSupportedPodLevelResource`).
pub fn is_supported_pod_level_resource(name: &str) -> bool {
    name == "cpu" || name == "memory" || name.starts_with("hugepages-")
}

/// The effective requests of a pod, as the scheduler and kubelet admission compute them
/// (upstream `resourcehelper.PodRequests` in `k8s.io/component-helpers/resource`, with the
/// PodLevelResources gate on, as it is by default): the sum over regular containers and
/// restartable (sidecar) init containers, at least the largest need of any init container
/// (which runs alongside the sidecars started before it); then the pod-level requests
/// (`spec.resources.requests`) replace that sum for the resources they may set; plus
/// `overhead`. Container resources from status (in-place resize) are not considered: they
/// are the spec's here.
pub fn pod_requests(
    spec: &k8s_openapi::api::core::v1::PodSpec,
) -> Result<ResourceList, (String, QuantityError)> {
    let requests = |c: &k8s_openapi::api::core::v1::Container| {
        resource_list(c.resources.as_ref().and_then(|r| r.requests.as_ref()))
    };
    let mut reqs = ResourceList::new();
    for c in &spec.containers {
        add_list(&mut reqs, &requests(c)?);
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for c in spec.init_containers.iter().flatten() {
        let own = requests(c)?;
        let need = if c.restart_policy.as_deref() == Some("Always") {
            add_list(&mut reqs, &own);
            add_list(&mut sidecars, &own);
            sidecars.clone()
        } else {
            let mut tmp = own;
            add_list(&mut tmp, &sidecars);
            tmp
        };
        max_list(&mut init_max, &need);
    }
    max_list(&mut reqs, &init_max);
    let pod_level = resource_list(spec.resources.as_ref().and_then(|r| r.requests.as_ref()))?;
    for (name, q) in pod_level {
        if is_supported_pod_level_resource(&name) {
            reqs.insert(name, q);
        }
    }
    add_list(&mut reqs, &resource_list(spec.overhead.as_ref())?);
    Ok(reqs)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn parse_values() {
        assert_eq!(q("100m").milli_value(), 100);
        assert_eq!(q("100m").value(), 1);
        assert_eq!(q("1").milli_value(), 1000);
        assert_eq!(q("0.5").milli_value(), 500);
        assert_eq!(q("1Gi").value(), 1 << 30);
        assert_eq!(q("1e3").value(), 1000);
        assert_eq!(q("1E-3").milli_value(), 1);
        assert_eq!(q("+2k").value(), 2000);
        assert_eq!(q("-1.5").milli_value(), -1500);
        assert_eq!(q("1n").milli_value(), 1);
        assert_eq!(q(".5").milli_value(), 500);
        assert_eq!(q("1.").value(), 1);
        assert_eq!(q("128974848").value(), 128_974_848);
        assert_eq!(q("129e6").value(), 129_000_000);
        assert_eq!(q("123Mi").value(), 123 * 1024 * 1024);
        assert!(q("1Gi") > q("1G"));
    }

    #[test]
    fn parse_errors() {
        assert_eq!(Quantity::parse(""), Err(QuantityError::FormatWrong));
        assert_eq!(Quantity::parse("abc"), Err(QuantityError::FormatWrong));
        assert_eq!(Quantity::parse("1x"), Err(QuantityError::Suffix));
        assert_eq!(Quantity::parse("1KI"), Err(QuantityError::Suffix));
        assert_eq!(Quantity::parse("1.2.3"), Err(QuantityError::Numeric));
        assert_eq!(Quantity::parse("."), Err(QuantityError::Numeric));
        assert_eq!(Quantity::parse("1e999"), Err(QuantityError::TooLarge));
        assert_eq!(
            Quantity::parse("99999999999Ei"),
            Err(QuantityError::TooLarge)
        );
    }

    #[test]
    fn canonical_forms() {
        for (input, want) in [
            ("0.5Gi", "512Mi"),
            ("1.5", "1500m"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("0.1", "100m"),
            ("1024Ki", "1Mi"),
            ("1536", "1536"),
            ("1e3", "1e3"),
            ("0", "0"),
            ("-100m", "-100m"),
            ("2048", "2048"),
            ("1.5Ki", "1536"),
            ("0.5Ki", "512"),
            ("100e-3", "100e-3"),
            // BinarySI: under 1024 as DecimalSI, else no decimal suffix.
            ("0.9765625Ki", "1k"),
            ("1.953125Ki", "2000"),
            ("976.5625Ki", "1000000"),
        ] {
            assert_eq!(q(input).canonical(), want, "{input}");
        }
        assert_eq!(q("1.0001m").round_up_milli().canonical(), "2m");
        assert_eq!(q("1").add(&q("500m")).canonical(), "1500m");
        assert_eq!(q("1").sub(&q("2")).milli_value(), -1000);
    }

    #[test]
    fn pod_requests_with_init_and_sidecars() {
        let spec: k8s_openapi::api::core::v1::PodSpec = serde_json::from_value(serde_json::json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "200m"}}}
            ],
            "initContainers": [
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}},
                {"name": "big", "resources": {"requests": {"cpu": "1", "memory": "32Mi"}}}
            ],
            "overhead": {"cpu": "10m"}
        }))
        .unwrap();
        let r = pod_requests(&spec).unwrap();
        // max(100m+200m+50m, 1+50m) + 10m overhead; memory max(64Mi, 32Mi).
        assert_eq!(r["cpu"].milli_value(), 1060);
        assert_eq!(r["memory"].value(), 64 << 20);
        let bad: k8s_openapi::api::core::v1::PodSpec = serde_json::from_value(serde_json::json!({
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "x"}}}]
        }))
        .unwrap();
        assert_eq!(pod_requests(&bad).unwrap_err().0, "cpu");
    }

    #[test]
    fn pod_requests_sidecars_run_alongside_later_init_containers() {
        let spec: k8s_openapi::api::core::v1::PodSpec = serde_json::from_value(serde_json::json!({
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}],
            "initContainers": [
                {"name": "first", "resources": {"requests": {"cpu": "300m"}}},
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "200m"}}},
                {"name": "after", "resources": {"requests": {"cpu": "250m"}}}
            ]
        }))
        .unwrap();
        // Peaks: first 300m alone, after 250m + side 200m = 450m; running 100m + 200m = 300m.
        assert_eq!(pod_requests(&spec).unwrap()["cpu"].milli_value(), 450);
    }

    #[test]
    fn pod_level_requests_replace_the_containers_sum_before_overhead() {
        let spec: k8s_openapi::api::core::v1::PodSpec = serde_json::from_value(serde_json::json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi",
                                                         "ephemeral-storage": "1Gi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "200m"}}}
            ],
            "resources": {"requests": {"cpu": "1", "ephemeral-storage": "5Gi"}},
            "overhead": {"cpu": "10m"}
        }))
        .unwrap();
        let r = pod_requests(&spec).unwrap();
        assert_eq!(r["cpu"].milli_value(), 1010);
        // Memory is not set at pod level: the containers' sum stands.
        assert_eq!(r["memory"].value(), 64 << 20);
        // ephemeral-storage cannot be set at pod level: ignored there.
        assert_eq!(r["ephemeral-storage"].value(), 1 << 30);
        assert!(is_supported_pod_level_resource("hugepages-2Mi"));
        assert!(!is_supported_pod_level_resource("nvidia.com/gpu"));
    }

    proptest! {
        #[test]
        fn canonical_round_trips(m in -1_000_000_000i64..1_000_000_000, fmt in 0..3usize) {
            let format = [Format::DecimalSI, Format::BinarySI, Format::DecimalExponent][fmt];
            let a = Quantity::from_milli(m, format);
            let b = Quantity::parse(&a.canonical()).unwrap();
            prop_assert_eq!(a, b);
            prop_assert_eq!(b.milli_value(), m);
        }

        #[test]
        fn suffixes_scale_exactly(n in 0i64..1_000_000, frac in 0u32..1000, idx in 0usize..12) {
            // (suffix, numerator, denominator) of the unit in whole units.
            const UNITS: [(&str, i128, i128); 12] = [
                ("m", 1, 1000), ("", 1, 1), ("k", 1000, 1), ("M", 1_000_000, 1),
                ("G", 1_000_000_000, 1), ("Ki", 1 << 10, 1), ("Mi", 1 << 20, 1),
                ("Gi", 1 << 30, 1), ("Ti", 1 << 40, 1), ("e3", 1000, 1), ("e-3", 1, 1000),
                ("u", 1, 1_000_000),
            ];
            let (suffix, num, den) = UNITS[idx];
            let q = Quantity::parse(&format!("{n}.{frac:03}{suffix}")).unwrap();
            // value = (n + frac/1000) * num / den, in nanos, rounded up
            let exact_num = (i128::from(n) * 1000 + i128::from(frac)) * num * 1_000_000;
            let want = div_ceil(exact_num, den);
            prop_assert_eq!(q.nanos(), want);
        }

        #[test]
        fn parse_never_panics(s in "[-+0-9.eEinumkKMGTP]{0,20}") {
            let _ = Quantity::parse(&s);
        }
    }
}
