#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// A fitted temperature and what it did to the fitting questions.
public struct TemperatureFit: Sendable, Equatable {
    public enum Criterion: String, Sendable, CaseIterable {
        /// Minimise the negative log-likelihood (Guo et al. 2017), solved to 1e-9 in log T.
        case nll
        /// Minimise conf-ECE over a fine log-spaced grid of T (the paper's prose).
        case ece
    }
    public var temperature: Double
    public var criterion: Criterion
    public var iterations: Int
    public var nllBefore: Double
    public var nllAfter: Double
    public var eceBefore: Double
    public var eceAfter: Double
}

/// Temperature scaling (Guo et al. 2017): `p = softmax(s / T)` with one T > 0.
///
/// With β = 1/T, `NLL(β) = mean_i [−β·s_iy + log Σ_k exp(β·s_ik)]` is convex:
/// `NLL'(β) = mean_i [E_β[s_i] − s_iy]`, `NLL''(β) = mean_i Var_β[s_i] ≥ 0`.
/// Newton's method on β, kept inside a bracket that bisection shrinks when a
/// step would leave it, converges in a handful of passes; iteration stops when
/// a step changes log T by less than 1e-9.
public struct TemperatureScaling: Sendable {
    /// Scores row by row (`offsets` as in `PredictionSet`): raw logits/log-probs, or log p.
    public let scores: [Double]
    public let offsets: [Int]
    public let labels: [Int32]

    /// From a prediction set: its raw scores when stored, else `log p` (p floored at the
    /// smallest normal double, so that a zero probability stays finite).
    public init(_ set: PredictionSet) {
        scores = set.scores ?? set.probabilities.map { log(max($0, Double.leastNormalMagnitude)) }
        offsets = set.offsets.array(questions: set.count)
        labels = set.labels
    }

    public var count: Int { labels.count }

    /// NLL and its first two derivatives in β at `beta`, over the questions `rows` (all when nil).
    /// The questions are split into 8 fixed chunks summed in parallel and combined in chunk
    /// order, so the result is the same on any number of cores.
    func derivatives(beta: Double, rows: [Int]? = nil) -> (value: Double, first: Double, second: Double) {
        let n = rows?.count ?? count
        guard n > 0 else { return (0, 0, 0) }
        let chunks = 8
        let partial = Slots<[Double]>(repeating: [], count: chunks)
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let from = n * chunk / chunks, to = n * (chunk + 1) / chunks
            var value = 0.0, first = 0.0, second = 0.0
            scores.withUnsafeBufferPointer { s in
                offsets.withUnsafeBufferPointer { offsets in
                    labels.withUnsafeBufferPointer { labels in
                        for index in from..<to {
                            let i = rows?[index] ?? index
                            let start = offsets[i], end = offsets[i + 1]
                            var maximum = -Double.infinity
                            for k in start..<end where s[k] > maximum { maximum = s[k] }
                            var z = 0.0, mean = 0.0, square = 0.0
                            for k in start..<end {
                                let d = s[k] - maximum
                                let w = exp(beta * d)
                                z += w
                                mean += w * d
                                square += w * d * d
                            }
                            mean /= z
                            square /= z
                            // Moments of s − max (the variance is the same, the mean shifts by max).
                            let y = s[start + Int(labels[i])] - maximum
                            value += -beta * y + log(z)
                            first += mean - y
                            second += max(square - mean * mean, 0)
                        }
                    }
                }
            }
            partial.store(chunk, [value, first, second])
        }
        var value = 0.0, first = 0.0, second = 0.0
        for chunk in 0..<chunks {
            let p = partial.value(chunk)
            value += p[0]; first += p[1]; second += p[2]
        }
        return (value / Double(n), first / Double(n), second / Double(n))
    }

    /// Mean NLL at temperature T over `rows` (all when nil).
    public func nll(temperature: Double, rows: [Int]? = nil) -> Double {
        derivatives(beta: 1 / temperature, rows: rows).value
    }

    /// Probabilities `softmax(s / T)` of the questions `rows` (all when nil), as a prediction set.
    public func scaled(temperature: Double, rows: [Int]? = nil, ids: [Int64]? = nil) -> PredictionSet {
        var result = PredictionSet()
        let beta = 1 / temperature
        for i in rows ?? Array(0..<count) {
            let row = scores[offsets[i]..<offsets[i + 1]].map { $0 * beta }
            result.append(id: ids?[i] ?? Int64(i), label: Int(labels[i]), probabilities: Probabilities.softmax(row), scores: row)
        }
        return result
    }

    /// The temperature alone, without the before/after report (what a benchmark should time).
    public func fitTemperature(criterion: TemperatureFit.Criterion = .nll, rows: [Int]? = nil, bins: Int = 10) -> (temperature: Double, iterations: Int) {
        criterion == .nll ? fitNLL(rows: rows) : fitECE(rows: rows, bins: bins)
    }

    /// Fits T on the questions `rows` (all when nil).
    public func fit(criterion: TemperatureFit.Criterion = .nll, rows: [Int]? = nil, bins: Int = 10) -> TemperatureFit {
        let nllBefore = nll(temperature: 1, rows: rows)
        let eceBefore = ece(temperature: 1, rows: rows, bins: bins)
        let (temperature, iterations) = fitTemperature(criterion: criterion, rows: rows, bins: bins)
        return TemperatureFit(temperature: temperature, criterion: criterion, iterations: iterations,
                              nllBefore: nllBefore, nllAfter: nll(temperature: temperature, rows: rows),
                              eceBefore: eceBefore, eceAfter: ece(temperature: temperature, rows: rows, bins: bins))
    }

    /// conf-ECE of `softmax(s / T)`. The argmax (ties to the lowest index) does not move
    /// with T > 0, so only the confidences `1 / Σ_k exp(β(s_k − s_max))` are recomputed.
    public func ece(temperature: Double, rows: [Int]?, bins: Int) -> Double {
        let beta = 1 / temperature
        let n = rows?.count ?? count
        guard n > 0 else { return 0 }
        var count = [Double](repeating: 0, count: bins), sumConfidence = count, sumCorrect = count
        scores.withUnsafeBufferPointer { s in
            for index in 0..<n {
                let i = rows?[index] ?? index
                let start = offsets[i], end = offsets[i + 1]
                var top = start
                for k in start..<end where s[k] > s[top] { top = k }
                var z = 0.0
                for k in start..<end { z += exp(beta * (s[k] - s[top])) }
                let confidence = 1 / z
                let b = equalWidthBin(confidence, bins: bins)
                count[b] += 1
                sumConfidence[b] += confidence
                if top - start == Int(labels[i]) { sumCorrect[b] += 1 }
            }
        }
        var ece = 0.0
        for b in 0..<bins where count[b] > 0 { ece += abs(sumCorrect[b] - sumConfidence[b]) / Double(n) }
        return ece
    }

    /// Safeguarded Newton on β = 1/T.
    private func fitNLL(rows: [Int]?) -> (Double, Int) {
        var low = 1e-6, high = 1e6           // bracket on β: T from 1e-6 to 1e6
        var beta = 1.0
        for iteration in 1...200 {
            let (_, g, h) = derivatives(beta: beta, rows: rows)
            if g > 0 { high = beta } else { low = beta }   // NLL' increasing: the root lies below when g > 0
            var next = h > 0 ? beta - g / h : .nan
            if !(next > low && next < high) { next = (low + high) / 2 }
            let step = abs(log(next) - log(beta))
            beta = next
            if step < 1e-9 || high / low - 1 < 1e-12 { return (1 / beta, iteration) }
        }
        return (1 / beta, 200)
    }

    /// conf-ECE over 2001 log-spaced T in [0.05, 20] (steps of 0.3%); the first minimum wins.
    private func fitECE(rows: [Int]?, bins: Int) -> (Double, Int) {
        let grid = (0...2000).map { exp(log(0.05) + Double($0) / 2000 * (log(20) - log(0.05))) }
        var best = 1.0, bestValue = Double.infinity
        for t in grid {
            let value = ece(temperature: t, rows: rows, bins: bins)
            if value < bestValue { (best, bestValue) = (t, value) }
        }
        return (best, grid.count)
    }
}
