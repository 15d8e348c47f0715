#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// Computes every metric of METHODS §3 for one run.
///
/// Per-question work (top label, Brier and NLL terms) is done once, as the
/// questions arrive (`Builder`), and the stable orders that equal-mass bins
/// need are radix sorts run in parallel; `metrics` is then one pass over
/// N·K values with fixed-size accumulators and no per-row allocation. The
/// bootstrap calls it with resampling multiplicities.
public struct CalibrationAnalyzer: Sendable {
    public let set: PredictionSet
    public let bins: Int
    /// TACE keeps values above this threshold (default 0.01).
    public let epsilon: Double
    let confidence: [Double]
    let correct: [Bool]
    let brierTerm: [Double]
    let nllTerm: [Double]
    /// Confidence in ascending order (stable), with its questions and their correctness.
    let confidenceRanked: RankedValues
    /// Per class k, p_ik in ascending order (stable), with questions and [y_i = k] (uniform K only).
    let classRanked: [RankedValues]

    public init(_ set: PredictionSet, bins: Int = 10, epsilon: Double = 0.01) {
        var builder = Builder(bins: bins, epsilon: epsilon)
        builder.reserve(questions: set.count, options: set.uniformOptionCount ?? 4)
        set.probabilities.withUnsafeBufferPointer { p in
            for i in 0..<set.count {
                let range = set.offsets[i]..<set.offsets[i + 1]
                let row = UnsafeBufferPointer(rebasing: p[range])
                if let scores = set.scores {
                    scores.withUnsafeBufferPointer {
                        builder.append(id: set.questionIDs[i], label: Int(set.labels[i]), probabilities: row,
                                       scores: UnsafeBufferPointer(rebasing: $0[range]))
                    }
                } else {
                    builder.append(id: set.questionIDs[i], label: Int(set.labels[i]), probabilities: row, scores: nil)
                }
            }
        }
        self = builder.build()
    }

    fileprivate init(builder: Builder, confidenceRanked: RankedValues, classRanked: [RankedValues]) {
        set = builder.set
        bins = builder.bins
        epsilon = builder.epsilon
        confidence = builder.confidence
        correct = builder.correct
        brierTerm = builder.brierTerm
        nllTerm = builder.nllTerm
        self.confidenceRanked = confidenceRanked
        self.classRanked = classRanked
    }

    /// Builds an analyzer question by question, doing each question's work as it comes.
    public struct Builder: Sendable {
        public let bins: Int
        public let epsilon: Double
        public private(set) var set = PredictionSet()
        var confidence: [Double] = []
        var correct: [Bool] = []
        var brierTerm: [Double] = []
        var nllTerm: [Double] = []
        /// Questions whose NLL term came from raw scores (all of them, or the terms are redone from p).
        var scoredTerms = 0
        /// Radix digit counts of the confidences and of each class column, kept as questions arrive.
        var confidenceHistogram = RadixHistogram()
        var classHistograms: [RadixHistogram] = []

        public init(bins: Int = 10, epsilon: Double = 0.01) {
            precondition(bins >= 1)
            self.bins = bins
            self.epsilon = epsilon
        }

        public mutating func reserve(questions: Int, options: Int) {
            set.reserve(questions: questions, options: options)
            confidence.reserveCapacity(questions)
            correct.reserveCapacity(questions)
            brierTerm.reserveCapacity(questions)
            nllTerm.reserveCapacity(questions)
        }

        public mutating func append(id: Int64, label: Int, probabilities p: UnsafeBufferPointer<Double>,
                                    scores: UnsafeBufferPointer<Double>?) {
            set.append(id: id, label: label, probabilities: p, scores: scores)
            let top = TopLabel(p)
            confidence.append(top.confidence)
            confidenceHistogram.add(top.confidence)
            if set.count == 1 { classHistograms = Array(repeating: RadixHistogram(), count: p.count) }
            if set.uniformOptionCount != nil {
                for k in 0..<p.count { classHistograms[k].add(p[k]) }
            }
            correct.append(top.prediction == label)
            var brier = 0.0
            for k in 0..<p.count {
                let difference = p[k] - (k == label ? 1 : 0)
                brier += difference * difference
            }
            brierTerm.append(brier)
            if let scores {
                nllTerm.append(-Probabilities.logSoftmax(scores, at: label))
                scoredTerms += 1
            } else {
                nllTerm.append(-log(max(p[label], 1e-15)))
            }
        }

        /// Appends the questions `other` was fed, after these (e.g. the second
        /// half of a run, read in parallel).
        public mutating func append(contentsOf other: Builder) {
            precondition(other.bins == bins && other.epsilon == epsilon)
            guard other.set.count > 0 else { return }
            if set.count == 0 {
                self = other
                return
            }
            let wasUniform = set.uniformOptionCount
            set.append(contentsOf: other.set)
            confidence += other.confidence
            correct += other.correct
            brierTerm += other.brierTerm
            nllTerm += other.nllTerm
            scoredTerms += other.scoredTerms
            confidenceHistogram.add(other.confidenceHistogram)
            if set.uniformOptionCount != nil, wasUniform == other.set.uniformOptionCount {
                for k in classHistograms.indices { classHistograms[k].add(other.classHistograms[k]) }
            }
        }

        /// Sorts what equal-mass binning needs (in parallel) and returns the analyzer.
        public func build() -> CalibrationAnalyzer {
            var builder = self
            if set.scores == nil, scoredTerms > 0 {
                // Some questions lack raw scores: NLL is from p for all of them (README, `nll`).
                for i in 0..<set.count {
                    builder.nllTerm[i] = -log(max(set.probabilities[set.offsets[i] + Int(set.labels[i])], 1e-15))
                }
            }
            return builder.sorted()
        }

        private func sorted() -> CalibrationAnalyzer {
            let n = set.count
            let k = n > 0 ? set.uniformOptionCount ?? 0 : 0
            let slots = Slots(repeating: RankedValues(), count: k + 1)
            let set = self.set, confidence = self.confidence, correct = self.correct
            let confidenceHistogram = self.confidenceHistogram, classHistograms = self.classHistograms
            DispatchQueue.concurrentPerform(iterations: k + 1) { job in
                if job == 0 {
                    let ranked = confidence.withUnsafeBufferPointer { values in
                        RankedValues(count: n, histogram: confidenceHistogram, value: { values[$0] }, hit: { correct[$0] })
                    }
                    slots.store(0, ranked)
                } else {
                    let c = job - 1
                    let ranked = set.probabilities.withUnsafeBufferPointer { p in
                        set.labels.withUnsafeBufferPointer { labels in
                            RankedValues(count: n, histogram: classHistograms[c], value: { p[$0 * k + c] },
                                         hit: { Int(labels[$0]) == c })
                        }
                    }
                    slots.store(job, ranked)
                }
            }
            let all = slots.values
            return CalibrationAnalyzer(builder: self, confidenceRanked: all[0], classRanked: Array(all.dropFirst()))
        }
    }

    // MARK: - Metrics

    /// All metrics; with `weights`, question i counts `weights[i]` times (bootstrap). The smooth
    /// and ℓ2 metrics (smECE, cw-smECE, ℓ2 ECE; a bandwidth search each) only with `smooth`,
    /// and only of the unweighted estimate.
    public func metrics(weights: UnsafeBufferPointer<UInt32>? = nil, smooth: Bool = false) -> CalibrationMetrics {
        if let weights { return metrics(CountWeights(counts: weights), smooth: false) }
        return metrics(UnitWeights(), smooth: smooth)
    }

    private func metrics<W: QuestionWeights>(_ weights: W, smooth: Bool) -> CalibrationMetrics {
        var result = CalibrationMetrics()
        result.bins = bins
        let n = set.count
        let total = weights.total(n)
        result.n = Int(total)
        guard total > 0 else { return result }
        result.nllFromScores = set.scores != nil
        // Independent passes, spread over the cores: the top-label pass, the
        // classwise equal-width pass, and one equal-mass pass per class.
        let k = set.uniformOptionCount ?? 0
        let parts = Slots<CalibrationMetrics>(repeating: CalibrationMetrics(), count: 2 + k)
        DispatchQueue.concurrentPerform(iterations: 2 + k) { job in
            switch job {
            case 0: parts.store(0, topLabelPass(weights, total: total))
            case 1: parts.store(1, classwisePass(weights, total: total, optionCount: k))
            default:
                let c = job - 2
                let kept = classRanked[c].values.indices.reduce(0.0) { sum, j in
                    classRanked[c].values[j] > epsilon ? sum + weights.weight(Int(classRanked[c].order[j])) : sum
                }
                var part = CalibrationMetrics()
                part.ace = equalMassError(classRanked[c], weights: weights, total: total, weighted: false, threshold: -1)
                part.tace = kept > 0
                    ? equalMassError(classRanked[c], weights: weights, total: kept, weighted: false, threshold: epsilon) : 0
                parts.store(job, part)
            }
        }
        if smooth { smoothAndL2Metrics(into: &result) }
        let top = parts.value(0), classwise = parts.value(1)
        result.accuracy = top.accuracy
        result.meanConfidence = top.meanConfidence
        result.overconfidence = top.overconfidence
        result.brier = top.brier
        result.nll = top.nll
        result.confECE = top.confECE
        result.mce = top.mce
        result.rmsce = top.rmsce
        result.equalMassECE = top.equalMassECE
        result.pooledECE = classwise.pooledECE
        guard k > 0 else { return result }
        result.cwECE = classwise.cwECE
        var ace = 0.0, tace = 0.0
        for c in 0..<k {
            ace += parts.value(2 + c).ace!
            tace += parts.value(2 + c).tace!
        }
        result.ace = ace / Double(k)
        result.tace = tace / Double(k)
        return result
    }

    /// smECE (top label and per class), ℓ2 ECE plug-in and debiased: of the estimate only
    /// (a bootstrap resample is weighted; `bootstrap` gives smECE's interval at this bandwidth).
    private func smoothAndL2Metrics(into result: inout CalibrationMetrics) {
        let k = set.uniformOptionCount ?? 0
        let parts = Slots<[Double?]>(repeating: [], count: 3 + k)
        let outcomes = correct.map { $0 ? 1.0 : 0.0 }
        DispatchQueue.concurrentPerform(iterations: 3 + k) { job in
            switch job {
            case 0:
                let smooth = SmoothECE.automatic(confidence, outcomes)
                parts.store(0, [smooth.value, smooth.sigma])
            case 1: parts.store(1, [L2CalibrationError.value(confidences: confidence, correct: correct, bins: bins, debiased: false)])
            case 2: parts.store(2, [L2CalibrationError.value(confidences: confidence, correct: correct, bins: bins, debiased: true)])
            default:
                let c = job - 3
                let f = (0..<set.count).map { set.probabilities[$0 * k + c] }
                let y = (0..<set.count).map { Int(set.labels[$0]) == c ? 1.0 : 0.0 }
                parts.store(job, [SmoothECE.automatic(f, y).value])
            }
        }
        result.smECE = parts.value(0)[0]
        result.smECEBandwidth = parts.value(0)[1]
        result.l2ECE = parts.value(1)[0]
        result.debiasedL2ECE = parts.value(2)[0]
        if k > 0 { result.cwSmECE = (0..<k).reduce(0.0) { $0 + parts.value(3 + $1)[0]! } / Double(k) }
    }

    /// The top-label metrics: accuracy, mean confidence (and overconfidence), Brier, NLL,
    /// conf-ECE, MCE, RMSCE and equal-mass ECE.
    private func topLabelPass<W: QuestionWeights>(_ weights: W, total: Double) -> CalibrationMetrics {
        let n = set.count
        var count = [Double](repeating: 0, count: bins)
        var sumConfidence = [Double](repeating: 0, count: bins)
        var sumCorrect = [Double](repeating: 0, count: bins)
        var accuracy = 0.0, meanConfidence = 0.0, brier = 0.0, nll = 0.0
        confidence.withUnsafeBufferPointer { confidence in
            correct.withUnsafeBufferPointer { correct in
                for i in 0..<n {
                    let weight = weights.weight(i)
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
            }
        }
        let equalMass = equalMassError(confidenceRanked, weights: weights, total: total, weighted: true, threshold: -1)
        var part = CalibrationMetrics()
        part.setMeans(total: total, correct: accuracy, confidence: meanConfidence, brier: brier, nll: nll)
        part.setTopLabelErrors(total: total, bins: bins) { BinTotal(count: count[$0], hits: sumCorrect[$0], sum: sumConfidence[$0]) }
        part.equalMassECE = equalMass
        return part
    }

    /// cw-ECE, `(1/K) Σ_k Σ_m (n_km/N)·|freq_km − meanp_km|` (nil unless every question
    /// has K options), and the pooled ECE: every question × option one prediction,
    /// `Σ_m (n_m/ΣK_i)·|freq_m − meanp_m|` with the same bins (any option counts).
    private func classwisePass<W: QuestionWeights>(_ weights: W, total: Double, optionCount k: Int) -> CalibrationMetrics {
        let n = set.count
        var classCount = [Double](repeating: 0, count: max(k, 1) * bins)
        var classSumP = [Double](repeating: 0, count: max(k, 1) * bins)
        var classSumY = [Double](repeating: 0, count: max(k, 1) * bins)
        var pooledCount = [Double](repeating: 0, count: bins)
        var pooledSumP = [Double](repeating: 0, count: bins)
        var pooledSumY = [Double](repeating: 0, count: bins)
        set.probabilities.withUnsafeBufferPointer { p in
            set.labels.withUnsafeBufferPointer { labels in
                for i in 0..<n {
                    let weight = weights.weight(i)
                    if weight == 0 { continue }
                    let label = Int(labels[i])
                    let start = set.offsets[i], options = set.offsets[i + 1] - start
                    for c in 0..<options {
                        let value = p[start + c]
                        let bin = equalWidthBin(value, bins: bins)
                        pooledCount[bin] += weight
                        pooledSumP[bin] += weight * value
                        if c == label { pooledSumY[bin] += weight }
                        guard k > 0 else { continue }
                        let slot = c * bins + bin
                        classCount[slot] += weight
                        classSumP[slot] += weight * value
                        if c == label { classSumY[slot] += weight }
                    }
                }
            }
        }
        var part = CalibrationMetrics()
        part.setClasswiseError(total: total, classes: k, bins: bins) { BinTotal(count: classCount[$0], hits: classSumY[$0], sum: classSumP[$0]) }
        part.setPooledError(bins: bins) { BinTotal(count: pooledCount[$0], hits: pooledSumY[$0], sum: pooledSumP[$0]) }
        return part
    }

    /// Equal-mass binning over values in ascending order (METHODS §2): the kept values
    /// (above `threshold`, each question repeated by its weight) are ranked 0 ..< total, and
    /// a run of equal values (a tie group) goes whole to the bin of its first rank r,
    /// `floor(r·B/total)`, so the result never depends on the order of tied rows. Returns
    /// `Σ_r (n_r/total)|acc_r − conf_r|` when `weighted`, else the mean of `|acc_r − conf_r|`
    /// over the non-empty bins (ACE's per-class term).
    private func equalMassError<W: QuestionWeights>(_ ranked: RankedValues, weights: W, total: Double,
                                                    weighted: Bool, threshold: Double) -> Double {
        // First rank of each bin, exactly: ceil(r·total/B) in integers.
        let totalCount = Int(total.rounded())
        var boundaries = [Int](repeating: 0, count: bins + 1)
        for r in 0...bins { boundaries[r] = (r * totalCount + bins - 1) / bins }
        var error = 0.0, nonEmpty = 0
        var binCount = 0.0, binValue = 0.0, binHits = 0.0
        var bin = 0
        var rank = 0
        var previous = -Double.infinity
        @inline(__always) func close() {
            guard binCount > 0 else { return }
            let gap = abs(binHits / binCount - binValue / binCount)
            error += weighted ? binCount / total * gap : gap
            nonEmpty += 1
            binCount = 0; binValue = 0; binHits = 0
        }
        ranked.values.withUnsafeBufferPointer { values in
            ranked.hits.withUnsafeBufferPointer { hits in
                ranked.order.withUnsafeBufferPointer { order in
                    for j in 0..<values.count {
                        let v = values[j]
                        if !(v > threshold) { continue }
                        let copies = weights.copies(Int(order[j]))
                        if copies == 0 { continue }
                        if v != previous {
                            while rank >= boundaries[bin + 1] { close(); bin += 1 }
                            previous = v
                        }
                        let c = Double(copies)
                        binCount += c; binValue += c * v; binHits += hits[j] ? c : 0
                        rank += copies
                    }
                }
            }
        }
        close()
        return weighted || nonEmpty == 0 ? error : error / Double(nonEmpty)
    }

    // MARK: - Reliability tables

    /// The top-label reliability table: per equal-width bin, n, accuracy, mean confidence.
    public func reliabilityBins() -> [BinRow] {
        binTable { add in
            for i in 0..<set.count { add(confidence[i], correct[i]) }
        }
    }

    /// Classwise reliability tables, one per option, each over all N values p_ik;
    /// empty when questions differ in option count.
    public func classwiseBins() -> [[BinRow]] {
        guard let k = set.uniformOptionCount else { return [] }
        return (0..<k).map { c in
            binTable { add in
                for i in 0..<set.count { add(set.probabilities[i * k + c], Int(set.labels[i]) == c) }
            }
        }
    }

    /// The pooled classwise table: every p_ik of every class in one diagram.
    public func pooledClasswiseBins() -> [BinRow] {
        binTable { add in
            for i in 0..<set.count {
                for k in 0..<set.optionCount(i) { add(set.probabilities[set.offsets[i] + k], Int(set.labels[i]) == k) }
            }
        }
    }

    /// A reliability table from the (value, hit) pairs `feed` adds: per equal-width bin, the
    /// count, the fraction of hits and the mean value.
    private func binTable(_ feed: ((Double, Bool) -> Void) -> Void) -> [BinRow] {
        var rows = emptyRows()
        var sums = [(c: Double, y: Double)](repeating: (0, 0), count: bins)
        feed { value, hit in
            let b = equalWidthBin(value, bins: bins)
            rows[b].count += 1
            sums[b].c += value
            sums[b].y += hit ? 1 : 0
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
}

/// The q-quantile of sorted values, interpolating linearly between order statistics.
func quantile(_ sorted: [Double], _ q: Double) -> Double {
    let position = q * Double(sorted.count - 1)
    let low = Int(position.rounded(.down))
    let high = min(low + 1, sorted.count - 1)
    let fraction = position - Double(low)
    return sorted[low] + (sorted[high] - sorted[low]) * fraction
}

// MARK: - Specialised access for the metric loops

/// How much each question counts: once (the estimate) or by bootstrap multiplicity.
protocol QuestionWeights: Sendable {
    func weight(_ i: Int) -> Double
    func copies(_ i: Int) -> Int
    func total(_ n: Int) -> Double
}

struct UnitWeights: QuestionWeights {
    @inline(__always) func weight(_ i: Int) -> Double { 1 }
    @inline(__always) func copies(_ i: Int) -> Int { 1 }
    func total(_ n: Int) -> Double { Double(n) }
}

struct CountWeights: QuestionWeights, @unchecked Sendable {  // read-only view, used within the call that owns it
    let counts: UnsafeBufferPointer<UInt32>
    @inline(__always) func weight(_ i: Int) -> Double { Double(counts[i]) }
    @inline(__always) func copies(_ i: Int) -> Int { Int(counts[i]) }
    func total(_ n: Int) -> Double { counts.reduce(0.0) { $0 + Double($1) } }
}

/// Values in ascending order, ties in question order, with the question of
/// each and whether it "hits" (is correct / has that label): what an
/// equal-mass pass walks, sequentially.
struct RankedValues: Sendable {
    var order: [Int32]
    var values: [Double]
    var hits: [Bool]

    init(count: Int, histogram: RadixHistogram, value: (Int) -> Double, hit: (Int) -> Bool) {
        (order, values) = stableAscendingSort(count: count, histogram: histogram, value: value)
        hits = order.map { hit(Int($0)) }
    }

    init() {
        order = []
        values = []
        hits = []
    }
}

/// Results that parallel jobs fill, one slot each, read after they finish.
final class Slots<Value>: @unchecked Sendable {   // every access holds the lock
    private var slots: [Value]
    private let lock = NSLockLike()
    init(repeating value: Value, count: Int) { slots = Array(repeating: value, count: count) }
    func store(_ index: Int, _ value: Value) { lock.locked { slots[index] = value } }
    func value(_ index: Int) -> Value { lock.locked { slots[index] } }
    var values: [Value] { lock.locked { slots } }
}

/// A minimal mutex over pthread, so TrackCalibration needs no Foundation.
final class NSLockLike: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }
}
