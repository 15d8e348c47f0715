#if canImport(Glibc)
import Glibc
#endif

/// Computes every metric of SPEC §3 for one run.
///
/// `init` does the per-question work once (top label, Brier and NLL terms,
/// the stable orders that equal-mass bins need, by radix sort); `metrics`
/// is then one pass over N·K values with fixed-size accumulators and no
/// per-row allocation. The bootstrap calls it with resampling multiplicities.
public struct CalibrationAnalyzer: Sendable {
    public let set: PredictionSet
    public let bins: Int
    /// TACE keeps values above this threshold (default 0.01).
    public let epsilon: Double
    let confidence: [Double]
    let correct: [Bool]
    let brierTerm: [Double]
    let nllTerm: [Double]
    let confidenceOrder: [Int32]
    /// Per class k, question indices in ascending order of p_ik (uniform K only).
    let classOrders: [[Int32]]

    public init(_ set: PredictionSet, bins: Int = 10, epsilon: Double = 0.01) {
        precondition(bins >= 1)
        self.set = set
        self.bins = bins
        self.epsilon = epsilon
        let n = set.count
        var confidence = [Double](repeating: 0, count: n)
        var correct = [Bool](repeating: false, count: n)
        var brierTerm = [Double](repeating: 0, count: n)
        var nllTerm = [Double](repeating: 0, count: n)
        set.probabilities.withUnsafeBufferPointer { p in
            for i in 0..<n {
                let start = set.offsets[i], end = set.offsets[i + 1]
                let label = Int(set.labels[i])
                let top = TopLabel(UnsafeBufferPointer(rebasing: p[start..<end]))
                confidence[i] = top.confidence
                correct[i] = top.prediction == label
                var brier = 0.0
                for k in start..<end {
                    let target = k - start == label ? 1.0 : 0.0
                    brier += (p[k] - target) * (p[k] - target)
                }
                brierTerm[i] = brier
                if let scores = set.scores {
                    nllTerm[i] = scores.withUnsafeBufferPointer {
                        -Probabilities.logSoftmax(UnsafeBufferPointer(rebasing: $0[start..<end]), at: label)
                    }
                } else {
                    nllTerm[i] = -log(max(p[start + label], 1e-15))
                }
            }
        }
        self.confidence = confidence
        self.correct = correct
        self.brierTerm = brierTerm
        self.nllTerm = nllTerm
        confidenceOrder = confidence.withUnsafeBufferPointer { stableAscendingOrder($0) }
        if let k = set.uniformOptionCount, n > 0 {
            var orders: [[Int32]] = []
            var column = [Double](repeating: 0, count: n)
            for c in 0..<k {
                for i in 0..<n { column[i] = set.probabilities[i * k + c] }
                orders.append(column.withUnsafeBufferPointer { stableAscendingOrder($0) })
            }
            classOrders = orders
        } else {
            classOrders = []
        }
    }

    // MARK: - Metrics

    /// All metrics; with `weights`, question i counts `weights[i]` times (bootstrap).
    public func metrics(weights: UnsafeBufferPointer<UInt32>? = nil) -> CalibrationMetrics {
        var result = CalibrationMetrics()
        result.bins = bins
        let n = set.count
        @inline(__always) func w(_ i: Int) -> Double { weights.map { Double($0[i]) } ?? 1 }
        var total = 0.0
        if let weights { for i in 0..<n { total += Double(weights[i]) } } else { total = Double(n) }
        result.n = Int(total)
        guard total > 0 else { return result }
        result.nllFromScores = set.scores != nil

        // Top label, equal-width bins, Brier and NLL: one pass.
        var count = [Double](repeating: 0, count: bins)
        var sumConfidence = [Double](repeating: 0, count: bins)
        var sumCorrect = [Double](repeating: 0, count: bins)
        var accuracy = 0.0, meanConfidence = 0.0, brier = 0.0, nll = 0.0
        for i in 0..<n {
            let weight = w(i)
            if weight == 0 { continue }
            let c = confidence[i], hit = correct[i] ? weight : 0
            let b = equalWidthBin(c, bins: bins)
            count[b] += weight
            sumConfidence[b] += weight * c
            sumCorrect[b] += hit
            accuracy += hit
            meanConfidence += weight * c
            brier += weight * brierTerm[i]
            nll += weight * nllTerm[i]
        }
        result.accuracy = accuracy / total
        result.meanConfidence = meanConfidence / total
        result.overconfidence = result.meanConfidence! - result.accuracy!
        result.brier = brier / total
        result.nll = nll / total
        var ece = 0.0, mce = 0.0, squared = 0.0
        for b in 0..<bins where count[b] > 0 {
            let gap = abs(sumCorrect[b] / count[b] - sumConfidence[b] / count[b])
            ece += count[b] / total * gap
            squared += count[b] / total * gap * gap
            mce = max(mce, gap)
        }
        result.confECE = ece
        result.mce = mce
        result.rmsce = squared.squareRoot()
        result.equalMassECE = equalMassError(order: confidenceOrder, weights: weights, total: total,
                                             value: { confidence[$0] }, hit: { correct[$0] }, weighted: true)

        // Classwise.
        if let k = set.uniformOptionCount {
            var classCount = [Double](repeating: 0, count: bins)
            var classSumP = [Double](repeating: 0, count: bins)
            var classSumY = [Double](repeating: 0, count: bins)
            var cw = 0.0, ace = 0.0, tace = 0.0
            set.probabilities.withUnsafeBufferPointer { p in
                for c in 0..<k {
                    for b in 0..<bins { classCount[b] = 0; classSumP[b] = 0; classSumY[b] = 0 }
                    for i in 0..<n {
                        let weight = w(i)
                        if weight == 0 { continue }
                        let value = p[i * k + c]
                        let b = equalWidthBin(value, bins: bins)
                        classCount[b] += weight
                        classSumP[b] += weight * value
                        if Int(set.labels[i]) == c { classSumY[b] += weight }
                    }
                    for b in 0..<bins where classCount[b] > 0 {
                        cw += classCount[b] / total * abs(classSumY[b] / classCount[b] - classSumP[b] / classCount[b])
                    }
                    let isClass = { (i: Int) in Int(set.labels[i]) == c }
                    let value = { (i: Int) in p[i * k + c] }
                    ace += equalMassError(order: classOrders[c], weights: weights, total: total,
                                          value: value, hit: isClass, weighted: false)
                    var kept = 0.0
                    for i in 0..<n where value(i) > epsilon { kept += w(i) }
                    if kept > 0 {
                        tace += equalMassError(order: classOrders[c], weights: weights, total: kept,
                                               value: value, hit: isClass, weighted: false,
                                               keep: { value($0) > epsilon })
                    }
                }
            }
            result.cwECE = cw / Double(k)
            result.ace = ace / Double(k * bins)
            result.tace = tace / Double(k * bins)
        }
        return result
    }

    /// Equal-mass binning over `order` (ascending, stable): the j-th kept value
    /// (0-based, each question repeated by its weight) goes to bin
    /// `floor(j·B/total)`. Returns `Σ_r (n_r/total)|acc_r − conf_r|` when
    /// `weighted`, else the unweighted sum `Σ_r |acc_r − conf_r|` over non-empty bins.
    private func equalMassError(order: [Int32], weights: UnsafeBufferPointer<UInt32>?, total: Double,
                                value: (Int) -> Double, hit: (Int) -> Bool, weighted: Bool,
                                keep: ((Int) -> Bool)? = nil) -> Double {
        var error = 0.0
        var binCount = 0.0, binValue = 0.0, binHits = 0.0
        var currentBin = 0
        var rank = 0.0
        func close() {
            guard binCount > 0 else { return }
            let gap = abs(binHits / binCount - binValue / binCount)
            error += weighted ? binCount / total * gap : gap
            binCount = 0; binValue = 0; binHits = 0
        }
        let b = Double(bins)
        for position in order {
            let i = Int(position)
            if let keep, !keep(i) { continue }
            var copies = weights.map { Int($0[i]) } ?? 1
            if copies == 0 { continue }
            let v = value(i), y = hit(i) ? 1.0 : 0.0
            while copies > 0 {
                let bin = Int((rank * b / total).rounded(.down))
                // Copies of this question that fall in the current bin.
                let nextBoundary = (Double(bin + 1) * total / b).rounded(.up)
                let inBin = max(1, min(copies, Int(nextBoundary - rank)))
                if bin != currentBin { close(); currentBin = bin }
                let c = Double(inBin)
                binCount += c; binValue += c * v; binHits += c * y
                rank += c
                copies -= inBin
            }
        }
        close()
        return error
    }

    // MARK: - Reliability tables

    /// The top-label reliability table: per equal-width bin, n, accuracy, mean confidence.
    public func reliabilityBins() -> [BinRow] {
        var rows = emptyRows()
        var sums = [(c: Double, y: Double)](repeating: (0, 0), count: bins)
        for i in 0..<set.count {
            let b = equalWidthBin(confidence[i], bins: bins)
            rows[b].count += 1
            sums[b].c += confidence[i]
            sums[b].y += correct[i] ? 1 : 0
        }
        return finish(rows, sums)
    }

    /// Classwise reliability tables, one per option, each over all N values p_ik;
    /// empty when questions differ in option count.
    public func classwiseBins() -> [[BinRow]] {
        guard let k = set.uniformOptionCount else { return [] }
        return (0..<k).map { c in
            var rows = emptyRows()
            var sums = [(c: Double, y: Double)](repeating: (0, 0), count: bins)
            for i in 0..<set.count {
                let value = set.probabilities[i * k + c]
                let b = equalWidthBin(value, bins: bins)
                rows[b].count += 1
                sums[b].c += value
                sums[b].y += Int(set.labels[i]) == c ? 1 : 0
            }
            return finish(rows, sums)
        }
    }

    /// The pooled classwise table: every p_ik of every class in one diagram.
    public func pooledClasswiseBins() -> [BinRow] {
        var rows = emptyRows()
        var sums = [(c: Double, y: Double)](repeating: (0, 0), count: bins)
        for i in 0..<set.count {
            let start = set.offsets[i]
            for k in 0..<set.optionCount(i) {
                let value = set.probabilities[start + k]
                let b = equalWidthBin(value, bins: bins)
                rows[b].count += 1
                sums[b].c += value
                sums[b].y += Int(set.labels[i]) == k ? 1 : 0
            }
        }
        return finish(rows, sums)
    }

    private func emptyRows() -> [BinRow] {
        (0..<bins).map { BinRow(bin: $0, lower: Double($0) / Double(bins), upper: Double($0 + 1) / Double(bins),
                                count: 0, accuracy: nil, confidence: nil) }
    }

    private func finish(_ rows: [BinRow], _ sums: [(c: Double, y: Double)]) -> [BinRow] {
        var rows = rows
        for b in 0..<bins where rows[b].count > 0 {
            rows[b].accuracy = sums[b].y / Double(rows[b].count)
            rows[b].confidence = sums[b].c / Double(rows[b].count)
        }
        return rows
    }

    /// Per-question values for paired comparisons.
    public var confidences: [Double] { confidence }
    public var correctness: [Bool] { correct }

    // MARK: - Bootstrap

    /// Percentile bootstrap over questions: `resamples` draws of N questions
    /// with replacement from `SeededRandom(seed)`; for each metric the
    /// interval between the (1−level)/2 and (1+level)/2 quantiles of the
    /// resampled values (linear interpolation between order statistics, as
    /// numpy's default). The same seed gives the same intervals everywhere.
    public func bootstrap(resamples: Int = 1000, seed: UInt64 = 0, level: Double = 0.95) -> [String: Interval] {
        let n = set.count
        guard n > 0, resamples > 0 else { return [:] }
        var random = SeededRandom(seed: seed)
        var samples: [String: [Double]] = [:]
        var weights = [UInt32](repeating: 0, count: n)
        for _ in 0..<resamples {
            for i in 0..<n { weights[i] = 0 }
            for _ in 0..<n { weights[random.nextInt(below: n)] += 1 }
            let m = weights.withUnsafeBufferPointer { metrics(weights: $0) }
            for key in CalibrationMetrics.keys {
                if let value = m[key] { samples[key, default: []].append(value) }
            }
        }
        var intervals: [String: Interval] = [:]
        for (key, values) in samples where values.count == resamples {
            let sorted = values.sorted()
            intervals[key] = Interval(lower: quantile(sorted, (1 - level) / 2), upper: quantile(sorted, (1 + level) / 2))
        }
        return intervals
    }
}

/// The q-quantile of sorted values, interpolating linearly between order statistics.
func quantile(_ sorted: [Double], _ q: Double) -> Double {
    let position = q * Double(sorted.count - 1)
    let low = Int(position.rounded(.down))
    let high = min(low + 1, sorted.count - 1)
    let fraction = position - Double(low)
    return sorted[low] + (sorted[high] - sorted[low]) * fraction
}
