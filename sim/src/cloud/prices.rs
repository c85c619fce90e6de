//! Built-in EC2 Linux prices, USD per hour, from `reference/prices-and-timings.md`:
//!
//! - us-east-1 on-demand: Karpenter's generated fallback price table
//!   (aws/karpenter-provider-aws `pkg/providers/pricing/zz_generated.pricing_aws.go`,
//!   generated 2026-01-19).
//! - ap-northeast-2 on-demand: third-party cost tables, not the AWS price list.
//! - Spot (derived): on-demand × (1 − savings), savings from the AWS Spot Instance Advisor
//!   feed (copy of 2025-06-28); a trailing average, so treat spot prices as ±20 %.
//!
//! A scenario can override any price.

/// On-demand or spot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Market {
    /// On-demand instances.
    OnDemand,
    /// Spot instances (derived prices, see the module docs).
    Spot,
}

/// `(type, region, on-demand, spot, Spot Advisor interruption band's upper bound)`.
const TABLE: [(&str, &str, f64, f64, f64); 10] = [
    ("t2.micro", "us-east-1", 0.0116, 0.0031, 0.05),
    ("t2.medium", "us-east-1", 0.0464, 0.0167, 0.05),
    ("t3.medium", "us-east-1", 0.0416, 0.0183, 0.05),
    ("m5.large", "us-east-1", 0.0960, 0.0326, 0.20),
    ("c5.xlarge", "us-east-1", 0.1700, 0.0748, 0.05),
    ("t2.micro", "ap-northeast-2", 0.0144, 0.0039, 0.05),
    ("t2.medium", "ap-northeast-2", 0.0576, 0.0144, 0.05),
    ("t3.medium", "ap-northeast-2", 0.0520, 0.0182, 0.05),
    ("m5.large", "ap-northeast-2", 0.1180, 0.0378, 0.10),
    ("c5.xlarge", "ap-northeast-2", 0.1920, 0.0730, 0.20),
];

/// The region assumed when none is given (docker-machine's amazonec2 default).
pub const DEFAULT_REGION: &str = "us-east-1";

/// The hourly price of `instance_type` in `region` on `market`, if the table has it.
pub fn hourly_usd(instance_type: &str, region: &str, market: Market) -> Option<f64> {
    TABLE.iter().find(|(t, r, ..)| *t == instance_type && *r == region).map(
        |&(_, _, od, spot, _)| match market {
            Market::OnDemand => od,
            Market::Spot => spot,
        },
    )
}

/// The instance types and regions the table knows, for error messages.
pub fn known() -> String {
    let mut types: Vec<&str> = TABLE.iter().map(|(t, ..)| *t).collect();
    types.sort_unstable(); // the table is grouped by region: each type comes once per region
    types.dedup();
    let mut regions: Vec<&str> = TABLE.iter().map(|(_, r, ..)| *r).collect();
    regions.sort_unstable();
    regions.dedup();
    format!("types {} in regions {}", types.join(", "), regions.join(", "))
}

/// The AWS Spot Instance Advisor's interruption band for a type and region (its upper
/// bound: the share of instances interrupted over the trailing month), if the table has it.
/// Bands: <5 %, 5–10 %, 10–15 %, 15–20 %, >20 %.
pub fn interruption_band(instance_type: &str, region: &str) -> Option<f64> {
    TABLE.iter().find(|(t, r, ..)| *t == instance_type && *r == region).map(|&(.., band)| band)
}

/// The interruption hazard per hour that makes a month-long (730 h) instance interrupted
/// with probability `p`: λ = −ln(1 − p) / 730 (a modelling assumption; see the README).
pub fn hazard_per_hour(p: f64) -> f64 {
    -(1.0 - p).ln() / 730.0
}

/// Cost of running for `ms` at `usd_per_hour`, billed per second with a 60-second minimum
/// (EC2 Linux on-demand and spot, since 2017-10-02).
pub fn billed_usd(usd_per_hour: f64, ms: u64) -> f64 {
    let seconds = ms.div_ceil(1000).max(60);
    usd_per_hour / 3600.0 * seconds as f64
}

/// AWS S3 prices, us-east-1 (reference prices-and-timings.md): USD.
pub mod s3 {
    /// Standard storage, first 50 TB, per GB-month.
    pub const STORAGE_GB_MONTH: f64 = 0.023;
    /// PUT, COPY, POST, LIST per 1,000 requests.
    pub const PUT_PER_1000: f64 = 0.005;
    /// GET and others per 1,000 requests.
    pub const GET_PER_1000: f64 = 0.0004;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_each_type_and_region_once() {
        let k = known();
        assert_eq!(k.matches("m5.large").count(), 1, "{k}");
        assert_eq!(k.matches("us-east-1").count(), 1, "{k}");
    }

    #[test]
    fn table_lookups_and_billing() {
        assert_eq!(hourly_usd("t2.medium", "ap-northeast-2", Market::OnDemand), Some(0.0576));
        assert_eq!(hourly_usd("t2.micro", "us-east-1", Market::Spot), Some(0.0031));
        assert_eq!(hourly_usd("t9.huge", "us-east-1", Market::OnDemand), None);
        assert!((billed_usd(3.6, 10_000) - 0.06).abs() < 1e-12, "60 s minimum");
        assert!((billed_usd(3.6, 3_600_000) - 3.6).abs() < 1e-12);
        // 5 % per month → 7.0e-5 per hour; 20 % → 3.1e-4 (prices-and-timings.md).
        assert!((hazard_per_hour(0.05) - 7.03e-5).abs() < 1e-7);
        assert!((hazard_per_hour(0.20) - 3.06e-4).abs() < 1e-6);
        assert_eq!(interruption_band("m5.large", "us-east-1"), Some(0.20));
    }
}
