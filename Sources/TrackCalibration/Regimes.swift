/// The regime theory of Xiao et al. §4 (METHODS §5, reconstructed).
public enum Regimes {
    /// TCE (Def. 4.3): `(1/N) Σ_i (1/K) Σ_k |p_ik − p*_ik|` over questions paired by id.
    /// Returns nil when the runs share no question; questions whose option counts differ are skipped.
    public static func tce(_ run: PredictionSet, target: PredictionSet) -> (value: Double, paired: Int)? {
        var index: [Int64: Int] = [:]
        for (i, id) in target.questionIDs.enumerated() { index[id] = i }
        var total = 0.0, paired = 0
        for (i, id) in run.questionIDs.enumerated() {
            guard let j = index[id], run.optionCount(i) == target.optionCount(j) else { continue }
            let k = run.optionCount(i)
            var sum = 0.0
            for c in 0..<k { sum += abs(run.probabilities[run.offsets[i] + c] - target.probabilities[target.offsets[j] + c]) }
            total += sum / Double(k)
            paired += 1
        }
        return paired > 0 ? (total / Double(paired), paired) : nil
    }

    /// Theorem 4.4's upper-bound constant with the ÷K normalisation: `C_u = 2/K`.
    public static func upperConstant(optionCount k: Int) -> Double { 2 / Double(k) }

    /// The band `[c·|a − A*|, C_u·|a − A*|]` that TCE lies in (Theorems 4.4, 4.5).
    public static func bounds(accuracy: Double, aStar: Double, optionCount k: Int, lowerConstant c: Double) -> (lower: Double, upper: Double) {
        let distance = abs(accuracy - aStar)
        return (c * distance, upperConstant(optionCount: k) * distance)
    }

    public enum Regime: String, Sendable {
        /// acc ≤ A*: ECE can reach 0 without losing accuracy.
        case calibratable
        /// acc > A*: ECE > 0 is forced.
        case nonCalibratable = "non-calibratable"
    }

    public static func regime(accuracy: Double, aStar: Double) -> Regime {
        accuracy <= aStar ? .calibratable : .nonCalibratable
    }

    /// A* estimated as the highest accuracy among runs whose ECE is within `tolerance` of 0; nil if none.
    public static func estimateAStar(_ runs: [(accuracy: Double, ece: Double)], tolerance: Double) -> Double? {
        runs.filter { $0.ece <= tolerance }.map(\.accuracy).max()
    }
}
