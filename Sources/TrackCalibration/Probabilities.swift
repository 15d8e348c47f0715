#if canImport(Glibc)
import Glibc
#endif

/// Option scores turned into probabilities, and the checks every stored row passes.
public enum Probabilities {
    /// Default tolerance on `|Σ_k p_k − 1|` for rows given as probabilities (METHODS §1).
    public static let sumTolerance = 1e-6

    /// Softmax over the K options (paper Eq. 1): `p_k = exp(s_k − max s) / Σ_j exp(s_j − max s)`.
    /// Scores must be finite. Writes into `output`, which must hold `scores.count` values.
    @inlinable
    public static func softmax(_ scores: UnsafeBufferPointer<Double>, into output: UnsafeMutableBufferPointer<Double>) {
        var maximum = -Double.infinity
        for s in scores where s > maximum { maximum = s }
        var total = 0.0
        for k in 0..<scores.count {
            let e = exp(scores[k] - maximum)
            output[k] = e
            total += e
        }
        let inverse = 1 / total
        for k in 0..<scores.count { output[k] *= inverse }
    }

    public static func softmax(_ scores: [Double]) -> [Double] {
        var output = [Double](repeating: 0, count: scores.count)
        scores.withUnsafeBufferPointer { s in output.withUnsafeMutableBufferPointer { softmax(s, into: $0) } }
        return output
    }

    /// `log softmax(s)_k`, exact: `s_k − max s − log Σ_j exp(s_j − max s)`.
    public static func logSoftmax(_ scores: UnsafeBufferPointer<Double>, at k: Int) -> Double {
        var maximum = -Double.infinity
        for s in scores where s > maximum { maximum = s }
        var total = 0.0
        for s in scores { total += exp(s - maximum) }
        return scores[k] - maximum - log(total)
    }

    /// Checks raw scores (logits or log-probabilities): at least two, all finite.
    public static func validateScores(_ scores: UnsafeBufferPointer<Double>) -> String? {
        if scores.count < 2 { return "a question needs at least 2 options, found \(scores.count)" }
        for (k, s) in scores.enumerated() where !s.isFinite {
            return "score of option \(k) is \(s.isNaN ? "NaN" : "infinite")"
        }
        return nil
    }

    /// The outcome of checking a probability row.
    public enum RowCheck: Equatable, Sendable {
        case valid
        case invalid(String)
        /// Every value is fine but the row sums to `total`, outside the tolerance.
        case wrongSum(total: Double)
    }

    /// Checks a probability row: at least two values, each finite and in [0, 1],
    /// summing to 1 within `tolerance`.
    public static func check(_ p: UnsafeBufferPointer<Double>, tolerance: Double = sumTolerance) -> RowCheck {
        if p.count < 2 { return .invalid("a question needs at least 2 options, found \(p.count)") }
        var total = 0.0
        for k in 0..<p.count {
            let v = p[k]
            if v.isNaN { return .invalid("probability of option \(k) is NaN") }
            if !v.isFinite { return .invalid("probability of option \(k) is infinite") }
            if v < 0 { return .invalid("probability of option \(k) is negative (\(v))") }
            if v > 1 { return .invalid("probability of option \(k) is greater than 1 (\(v))") }
            total += v
        }
        return abs(total - 1) > tolerance ? .wrongSum(total: total) : .valid
    }

    /// How far a row may be from a distribution and still be read as one
    /// that was rounded or computed in low precision: values within 1e-6
    /// below 0 or above 1 (float32 softmax noise) are clamped, and a sum
    /// within 1e-3 of 1 (values printed with 4–6 decimals, float16) is
    /// rescaled to 1. Anything further is refused unless rescaling is asked for.
    public static let valueNoise = 1e-6
    public static let roundingTolerance = 1e-3

    /// A row as stored, and whether it had to be rescaled or clamped to be a distribution.
    public struct CheckedRow: Sendable, Equatable {
        public var values: [Double]
        public var rescaled: Bool
    }

    /// Checks a probability row (the rule of `roundingTolerance`): returns the
    /// row to store, or why it is refused, saying what was seen. Within
    /// `tolerance` of summing to 1 a row is stored as given; within
    /// `roundingTolerance` it is rescaled (`rescaled`); beyond, only with
    /// `renormalize`, which never rescues NaN, infinities, negatives or a zero sum.
    public static func validated(_ p: [Double], tolerance: Double = sumTolerance,
                                 renormalize: Bool = false) -> Result<CheckedRow, RowError> {
        var row = p
        var clamped = false
        for k in row.indices {
            if row[k] < 0, row[k] >= -valueNoise { row[k] = 0; clamped = true }
            if row[k] > 1, row[k] <= 1 + valueNoise { row[k] = 1; clamped = true }
        }
        switch row.withUnsafeBufferPointer({ check($0, tolerance: tolerance) }) {
        case .valid:
            return .success(CheckedRow(values: row, rescaled: clamped))
        case .invalid(let reason):
            return .failure(RowError(reason))
        case .wrongSum(let total):
            if total > 0, renormalize || abs(total - 1) <= roundingTolerance {
                return .success(CheckedRow(values: row.map { $0 / total }, rescaled: true))
            }
            if total == 0 { return .failure(RowError("probabilities are all 0: not a distribution")) }
            return .failure(RowError("probabilities sum to \(total), not 1 (rows within \(roundingTolerance) of 1 are rescaled)", renormalizable: true))
        }
    }

    /// Why a row is refused.
    public struct RowError: Error, Sendable, Equatable {
        public var reason: String
        /// Whether renormalizing would accept the row (a positive sum other than 1).
        public var renormalizable: Bool
        public init(_ reason: String, renormalizable: Bool = false) {
            self.reason = reason
            self.renormalizable = renormalizable
        }
    }
}

/// The top-label view of one prediction (METHODS §1): `pred = argmax_k p_k`
/// with ties to the lowest index, `conf = max_k p_k`.
public struct TopLabel: Sendable, Equatable {
    public var prediction: Int
    public var confidence: Double

    public init(prediction: Int, confidence: Double) {
        self.prediction = prediction
        self.confidence = confidence
    }

    @inlinable
    public init(_ p: UnsafeBufferPointer<Double>) {
        var best = 0
        var bestValue = p[0]
        for k in 1..<p.count where p[k] > bestValue {
            best = k
            bestValue = p[k]
        }
        prediction = best
        confidence = bestValue
    }

    public init(_ p: [Double]) {
        self = p.withUnsafeBufferPointer { TopLabel($0) }
    }
}
