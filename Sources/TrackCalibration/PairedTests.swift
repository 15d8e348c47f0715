#if canImport(Glibc)
import Glibc
#endif

/// Tests of whether two runs differ on the same questions (METHODS §8).
public enum PairedTests {
    /// McNemar's exact test on the discordant pairs: `b` questions only the base answers
    /// right, `c` only the other. Two-sided p = min(1, 2·P(X ≤ min(b, c))), X ~ Bin(b + c, ½),
    /// which is what `scipy.stats.binomtest(b, b + c, 0.5)` gives (1 when b = c).
    public static func mcnemarExact(b: Int, c: Int) -> Double {
        exp(mcnemarExactLog(b: b, c: c))
    }

    /// log10 of McNemar's exact p, exact where p itself is below the smallest double
    /// (e.g. b = 0, c = 14,042: log10 p ≈ −4226.76).
    public static func mcnemarExactLog10(b: Int, c: Int) -> Double {
        mcnemarExactLog(b: b, c: c) / M_LN10
    }

    /// ln of McNemar's exact p: `min(0, ln 2 + ln P(X ≤ min(b, c)))`.
    public static func mcnemarExactLog(b: Int, c: Int) -> Double {
        let n = b + c
        guard n > 0, b != c else { return 0 }
        return min(0, M_LN2 + logBinomialCDFHalf(min(b, c), n))
    }

    /// ln P(X ≤ k) for X ~ Bin(n, ½): the terms C(n, i)/2ⁿ summed relative to the largest (i = k,
    /// k < n/2), each from the next by C(n, i−1) = C(n, i)·i/(n − i + 1), plus the log of the
    /// k-th term.
    static func logBinomialCDFHalf(_ k: Int, _ n: Int) -> Double {
        if k >= n { return 0 }
        var term = 1.0, sum = 1.0
        var i = k
        while i > 0 {
            term *= Double(i) / Double(n - i + 1)
            sum += term
            if term < sum * 1e-18 { break }
            i -= 1
        }
        let logTerm = lgamma(Double(n) + 1) - lgamma(Double(k) + 1) - lgamma(Double(n - k) + 1) - Double(n) * M_LN2
        return log(sum) + logTerm
    }

    /// A paired bootstrap of the difference other − base: the resampled differences'
    /// percentile interval at `level` and the two-sided p-value
    /// `min(1, 2·(1 + min(#{Δ* ≤ 0}, #{Δ* ≥ 0}))/(B + 1))`, never below 2/(B + 1)
    /// (nil without resamples).
    public static func bootstrapDifference(_ differences: [Double], level: Double) -> (interval: Interval, p: Double)? {
        guard !differences.isEmpty else { return nil }
        let sorted = differences.sorted()
        let below = Double(sorted.filter { $0 <= 0 }.count), above = Double(sorted.filter { $0 >= 0 }.count)
        let p = min(1, 2 * (1 + min(below, above)) / Double(sorted.count + 1))
        return (Interval(lower: quantile(sorted, (1 - level) / 2), upper: quantile(sorted, (1 + level) / 2)), p)
    }

    /// Paired intervals and p-values of the binned errors' differences other − base (bin-bounded
    /// or norm-bounded, as their single-run intervals), from the two analyzers of the same
    /// questions in the same order (so one seed draws the same weights for both).
    public static func binnedDifferences(base: CalibrationAnalyzer, other: CalibrationAnalyzer, resamples: Int, seed: UInt64,
                                         level: Double) -> [MetricKey: (interval: Interval, p: Double)] {
        let a = base.binnedDeviations(resamples: resamples, seed: seed)
        let b = other.binnedDeviations(resamples: resamples, seed: seed)
        var result: [MetricKey: (interval: Interval, p: Double)] = [:]
        for (key, x) in a {
            guard let y = b[key], x.low.count == y.low.count else { continue }
            let difference = Deviations.difference(base: x, other: y)
            result[key] = (difference.interval(level: level), difference.p)
        }
        return result
    }

    /// A p-value as printed: `< 0.001` below a thousandth, `< 1e-300` where only its log is
    /// representable, else four decimals (never 0).
    public static func format(_ p: Double, log10: Double? = nil) -> String {
        if let log10, log10 < -300 { return "< 1e-300" }
        if p < 0.001 { return "< 0.001" }
        return String(p.formatted4)
    }
}

extension Double {
    /// Four decimals, without Foundation.
    var formatted4: String {
        let scaled = (self * 10_000).rounded()
        let whole = Int(scaled) / 10_000, fraction = Int(scaled) % 10_000
        let digits = String(fraction)
        return "\(whole)." + String(repeating: "0", count: 4 - digits.count) + digits
    }
}
