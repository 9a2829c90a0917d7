//! What the benchmarks share.

/// The record counts named on the command line (`cargo bench … -- 10000 100000`), or
/// `default`. Flags that cargo passes (`--bench`) are skipped.
pub fn record_counts(default: &[u64]) -> Vec<u64> {
    let counts: Vec<u64> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(|a| a.parse().expect("record counts are numbers"))
        .collect();
    if counts.is_empty() {
        default.to_vec()
    } else {
        counts
    }
}
