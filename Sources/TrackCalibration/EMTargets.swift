#if canImport(Glibc)
import Glibc
#endif

/// EM targets for the ECE regulariser (Xiao et al., Algorithm 1, Appendix A.4; METHODS §6).
///
/// E-step: bin the questions by confidence (equal-width, B bins) and take each bin's
/// accuracy `acc_m`. Target of question i in bin m, in sorted option order
/// `p_(1) ≥ p_(2) ≥ … ≥ p_(K)` (ties in option order): `p̃_(1) = acc_m` and, for j ≥ 2,
/// `p̃_(j) = α·tanh(γ·p_(j)) + β` with `γ = ln 3 / p_(2)` (the paper; the authors'
/// code uses `ln 3 / (p_(2)·(1 − acc_m))`), `T = Σ_{j≥2} tanh(γ·p_(j))` and
/// `α = β = (1 − acc_m) / (T + K − 1)`, so that the targets sum to 1. If `acc_m = 1` the
/// other targets are 0; if `p_(2) = 0` they are `(1 − acc_m)/(K − 1)`. Rank order is
/// kept when `2(1 − acc_m)/(T + K − 1) ≤ acc_m`; questions where that fails are counted.
public struct EMTargets: Sendable {
    public enum Gamma: String, Sendable, CaseIterable {
        case paper, code
    }

    /// Per question, targets in the original option order (same layout as the set).
    public var targets: [Double]
    public var offsets: [Int]
    /// Per question, its confidence bin.
    public var bins: [Int]
    /// Per bin, the accuracy (nil when empty) and the count.
    public var binAccuracy: [Double?]
    public var binCount: [Int]
    /// Questions whose targets may break the rank order (`2(1 − acc_m)/(T + K − 1) > acc_m`).
    public var rankViolations: Int
    /// `L_cal = Σ_m (1/N_m) Σ_{i∈B_m} ‖p_i − p̃_i‖²` of the run's own probabilities.
    public var calibrationLoss: Double

    public init(_ set: PredictionSet, bins binCount: Int = 10, gamma: Gamma = .paper) {
        let analyzer = CalibrationAnalyzer(set, bins: binCount)
        let table = analyzer.reliabilityBins()
        binAccuracy = table.map(\.accuracy)
        self.binCount = table.map(\.count)
        offsets = set.offsets.array(questions: set.count)
        targets = [Double](repeating: 0, count: set.probabilities.count)
        bins = analyzer.confidences.map { equalWidthBin($0, bins: binCount) }
        rankViolations = 0
        var lossByBin = [Double](repeating: 0, count: binCount)
        for i in 0..<set.count {
            let start = set.offsets[i], k = set.optionCount(i)
            let p = Array(set.probabilities[start..<(start + k)])
            let accuracy = binAccuracy[bins[i]] ?? 0
            let order = (0..<k).sorted { p[$0] > p[$1] || (p[$0] == p[$1] && $0 < $1) }
            var row = [Double](repeating: 0, count: k)
            row[order[0]] = accuracy
            let second = p[order[1]]
            if accuracy < 1 {
                if second == 0 {
                    for j in 1..<k { row[order[j]] = (1 - accuracy) / Double(k - 1) }
                } else {
                    let g = gamma == .paper ? log(3) / second : log(3) / (second * (1 - accuracy))
                    let t = (1..<k).reduce(0.0) { $0 + tanh(g * p[order[$1]]) }
                    let alpha = (1 - accuracy) / (t + Double(k - 1))
                    for j in 1..<k { row[order[j]] = alpha * tanh(g * p[order[j]]) + alpha }
                    if 2 * alpha > accuracy { rankViolations += 1 }
                }
            }
            var squared = 0.0
            for c in 0..<k {
                targets[start + c] = row[c]
                squared += (p[c] - row[c]) * (p[c] - row[c])
            }
            lossByBin[bins[i]] += squared
        }
        let counts = table.map(\.count)
        var loss = 0.0
        for m in 0..<binCount where counts[m] > 0 { loss += lossByBin[m] / Double(counts[m]) }
        calibrationLoss = loss
    }

    /// The targets of question i.
    public func targets(of i: Int) -> ArraySlice<Double> { targets[offsets[i]..<offsets[i + 1]] }
}
