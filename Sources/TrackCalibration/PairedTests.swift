#if canImport(Glibc)
import Glibc
#endif

/// Tests of whether two runs differ on the same questions (METHODS §8).
public enum PairedTests {
    /// McNemar's exact test on the discordant pairs: `b` questions only the base answers
    /// right, `c` only the other. Two-sided p = min(1, 2·P(X ≤ min(b, c))), X ~ Bin(b + c, ½),
    /// which is what `scipy.stats.binomtest(b, b + c, 0.5)` gives (1 when b = c).
    public static func mcnemarExact(b: Int, c: Int) -> Double {
        let n = b + c, k = min(b, c)
        guard n > 0, b != c else { return 1 }
        return min(1, 2 * binomialCDFHalf(k, n))
    }

    /// P(X ≤ k) for X ~ Bin(n, ½): the terms C(n, i)/2ⁿ summed relative to the largest (i = k,
    /// k < n/2), each from the next by C(n, i−1) = C(n, i)·i/(n − i + 1), then scaled by the
    /// k-th term computed in logs.
    static func binomialCDFHalf(_ k: Int, _ n: Int) -> Double {
        if k >= n { return 1 }
        var term = 1.0, sum = 1.0
        var i = k
        while i > 0 {
            term *= Double(i) / Double(n - i + 1)
            sum += term
            if term < sum * 1e-18 { break }
            i -= 1
        }
        let logTerm = lgamma(Double(n) + 1) - lgamma(Double(k) + 1) - lgamma(Double(n - k) + 1) - Double(n) * M_LN2
        return sum * exp(logTerm)
    }

    /// A paired bootstrap of the difference other − base: the resampled differences'
    /// percentile interval at `level` and the two-sided p-value 2·min(P(Δ* ≤ 0), P(Δ* ≥ 0)),
    /// capped at 1 (nil without resamples).
    public static func bootstrapDifference(_ differences: [Double], level: Double) -> (interval: Interval, p: Double)? {
        guard !differences.isEmpty else { return nil }
        let sorted = differences.sorted()
        let below = Double(sorted.filter { $0 <= 0 }.count), above = Double(sorted.filter { $0 >= 0 }.count)
        let p = min(1, 2 * min(below, above) / Double(sorted.count))
        return (Interval(lower: quantile(sorted, (1 - level) / 2), upper: quantile(sorted, (1 + level) / 2)), p)
    }
}
