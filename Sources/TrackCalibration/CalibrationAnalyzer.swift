#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// Computes every metric of METHODS §3 for one run.
///
/// What it keeps per question is the run itself (its probabilities, label and id): the top
/// label, Brier and NLL terms are recomputed from a question's row when a pass needs them,
/// with the same arithmetic, so every value is bit-identical to keeping them. Equal-mass
/// bins need the values in ascending order: the build sorts each column once (the
/// confidences, and each class's p when every question has K options) as 64-bit keys, the
/// value's bits and the hit in the lowest bit, walks it for the unit-weight errors and
/// frees it; a tie group's values are equal, so the order within it changes no sum. The
/// stable orders of the weighted passes (the bootstrap, `metrics(weights:)`) and the
/// per-question terms those passes read are made on first use and kept.
public struct CalibrationAnalyzer: Sendable {
    public let set: PredictionSet
    public let bins: Int
    /// TACE keeps values above this threshold (default 0.01).
    public let epsilon: Double
    /// The unit-weight equal-mass errors, from the build's sorts.
    let equalMass: EqualMassErrors
    /// What weighted passes read, made on first use.
    let derived: Derived

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

    fileprivate init(set: PredictionSet, bins: Int, epsilon: Double, equalMass: EqualMassErrors) {
        self.set = set
        self.bins = bins
        self.epsilon = epsilon
        self.equalMass = equalMass
        derived = Derived()
    }

    /// Builds an analyzer question by question; the sorts run once, in `build`.
    public struct Builder: Sendable {
        public let bins: Int
        public let epsilon: Double
        public private(set) var set = PredictionSet()
        /// Radix digit counts of the sort keys (confidence with correctness, each class's p
        /// with its label), kept as questions arrive so that sorting only scatters.
        var confidenceHistogram = RadixHistogram()
        var classHistograms: [RadixHistogram] = []

        public init(bins: Int = 10, epsilon: Double = 0.01) {
            precondition(bins >= 1)
            self.bins = bins
            self.epsilon = epsilon
        }

        public mutating func reserve(questions: Int, options: Int) {
            set.reserve(questions: questions, options: options)
        }

        public mutating func append(id: Int64, label: Int, probabilities p: UnsafeBufferPointer<Double>,
                                    scores: UnsafeBufferPointer<Double>?) {
            set.append(id: id, label: label, probabilities: p, scores: scores)
            let top = TopLabel(p)
            confidenceHistogram.add(key: RadixHistogram.key(top.confidence, hit: top.prediction == label))
            if set.count == 1 { classHistograms = Array(repeating: RadixHistogram(), count: p.count) }
            if set.uniformOptionCount != nil {
                for k in 0..<p.count { classHistograms[k].add(key: RadixHistogram.key(p[k], hit: k == label)) }
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
            confidenceHistogram.add(other.confidenceHistogram)
            if set.uniformOptionCount != nil, wasUniform == other.set.uniformOptionCount {
                for k in classHistograms.indices { classHistograms[k].add(other.classHistograms[k]) }
            }
        }

        /// Sorts each column (in parallel, one key array per core at a time), walks its
        /// equal-mass bins, and returns the analyzer.
        public func build() -> CalibrationAnalyzer {
            let n = set.count
            let k = n > 0 ? set.uniformOptionCount ?? 0 : 0
            var errors = EqualMassErrors(classes: k)
            if n > 0 {
                let parts = Slots<[Double]>(repeating: [], count: k + 1)
                let set = self.set, bins = self.bins, epsilon = self.epsilon
                let confidenceHistogram = self.confidenceHistogram, classHistograms = self.classHistograms
                // Two sorts at a time whatever the cores: each holds 16 bytes per question.
                performJobs(k + 1, width: 2) { job in
                    set.probabilities.withUnsafeBufferPointer { p in
                        set.labels.withUnsafeBufferPointer { labels in
                            if job == 0 {
                                let keys = sortedKeys(count: n, histogram: confidenceHistogram) { i in
                                    let top = TopLabel(UnsafeBufferPointer(rebasing: p[set.offsets[i]..<set.offsets[i + 1]]))
                                    return RadixHistogram.key(top.confidence, hit: top.prediction == Int(labels[i]))
                                }
                                parts.store(0, [keyedEqualMassError(keys, bins: bins, weighted: true, threshold: -1)])
                            } else {
                                let c = job - 1
                                let keys = sortedKeys(count: n, histogram: classHistograms[c]) { i in
                                    RadixHistogram.key(p[i * k + c], hit: Int(labels[i]) == c)
                                }
                                let ace = keyedEqualMassError(keys, bins: bins, weighted: false, threshold: -1)
                                let tace = keyedEqualMassError(keys, bins: bins, weighted: false, threshold: epsilon)
                                parts.store(job, [ace, tace])
                            }
                        }
                    }
                }
                errors.topLabel = parts.value(0)[0]
                for c in 0..<k {
                    errors.ace[c] = parts.value(1 + c)[0]
                    errors.tace[c] = parts.value(1 + c)[1]
                }
            }
            return CalibrationAnalyzer(set: set, bins: bins, epsilon: epsilon, equalMass: errors)
        }
    }

    /// The unit-weight equal-mass errors: eq-mass ECE, and per class ACE's and TACE's terms.
    struct EqualMassErrors: Sendable {
        var topLabel = 0.0
        var ace: [Double]
        var tace: [Double]
        init(classes: Int) {
            ace = Array(repeating: 0, count: classes)
            tace = ace
        }
    }

    /// Per question, what the top-label passes read: the top option and its confidence,
    /// correctness, and the Brier and NLL terms.
    struct QuestionTerms: Sendable {
        var confidence: [Double]
        var correct: [Bool]
        var prediction: [Int32]
        var brier: [Double]
        var nll: [Double]
    }

    /// The per-question terms and stable orders of the weighted passes, made once on first use.
    final class Derived: @unchecked Sendable {   // every access holds the lock
        private let lock = NSLockLike()
        private var terms: QuestionTerms?
        private var orders: (confidence: RankedValues, classes: [RankedValues])?
        private var smooth: (value: Double, sigma: Double)?

        /// The top label's smECE and bandwidth (one search, whichever pass asks first); `compute`
        /// runs outside the lock, since it may read `terms`.
        func topLabelSmoothECE(_ compute: () -> (value: Double, sigma: Double)) -> (value: Double, sigma: Double) {
            if let smooth = lock.locked({ smooth }) { return smooth }
            let made = compute()
            lock.locked { smooth = made }
            return made
        }

        func terms(_ a: CalibrationAnalyzer) -> QuestionTerms {
            lock.locked {
                if let terms { return terms }
                let made = a.makeTerms()
                terms = made
                return made
            }
        }

        func orders(_ a: CalibrationAnalyzer) -> (confidence: RankedValues, classes: [RankedValues]) {
            let terms = terms(a)
            return lock.locked {
                if let orders { return orders }
                let made = a.makeOrders(terms)
                orders = made
                return made
            }
        }
    }

    /// Question i's top label, Brier term `Σ_k (p_k − [k = y])²` and NLL term: `−log softmax(s)_y`
    /// when the run has raw scores, else `−log max(p_y, 1e-15)` (README, `nll`).
    @inline(__always)
    func questionTerms(_ i: Int, _ p: UnsafeBufferPointer<Double>, _ labels: UnsafeBufferPointer<Int32>,
                       _ scores: UnsafeBufferPointer<Double>?) -> (top: TopLabel, brier: Double, nll: Double) {
        let start = set.offsets[i], end = set.offsets[i + 1]
        let row = UnsafeBufferPointer(rebasing: p[start..<end])
        let label = Int(labels[i])
        var brier = 0.0
        for k in 0..<row.count {
            let difference = row[k] - (k == label ? 1 : 0)
            brier += difference * difference
        }
        let nll = scores.map { -Probabilities.logSoftmax(UnsafeBufferPointer(rebasing: $0[start..<end]), at: label) }
            ?? -log(max(row[label], 1e-15))
        return (TopLabel(row), brier, nll)
    }

    /// Calls `body(i, top label of i, label of i)` for every question in order (no other term).
    @inline(__always)
    func forEachTopLabel(_ body: (Int, TopLabel, Int) -> Void) {
        set.probabilities.withUnsafeBufferPointer { p in
            set.labels.withUnsafeBufferPointer { labels in
                for i in 0..<set.count {
                    body(i, TopLabel(UnsafeBufferPointer(rebasing: p[set.offsets[i]..<set.offsets[i + 1]])), Int(labels[i]))
                }
            }
        }
    }

    /// Calls `body(i, terms of i)` for every question in order.
    @inline(__always)
    func forEachQuestion(_ body: (Int, (top: TopLabel, brier: Double, nll: Double)) -> Void) {
        set.probabilities.withUnsafeBufferPointer { p in
            set.labels.withUnsafeBufferPointer { labels in
                if let scores = set.scores {
                    scores.withUnsafeBufferPointer { s in
                        for i in 0..<set.count { body(i, questionTerms(i, p, labels, s)) }
                    }
                } else {
                    for i in 0..<set.count { body(i, questionTerms(i, p, labels, nil)) }
                }
            }
        }
    }

    private func makeTerms() -> QuestionTerms {
        let n = set.count
        var terms = QuestionTerms(confidence: [], correct: [], prediction: [], brier: [], nll: [])
        terms.confidence.reserveCapacity(n)
        terms.correct.reserveCapacity(n)
        terms.prediction.reserveCapacity(n)
        terms.brier.reserveCapacity(n)
        terms.nll.reserveCapacity(n)
        forEachQuestion { i, q in
            terms.confidence.append(q.top.confidence)
            terms.correct.append(q.top.prediction == Int(set.labels[i]))
            terms.prediction.append(Int32(q.top.prediction))
            terms.brier.append(q.brier)
            terms.nll.append(q.nll)
        }
        return terms
    }

    private func makeOrders(_ terms: QuestionTerms) -> (confidence: RankedValues, classes: [RankedValues]) {
        let n = set.count
        let k = set.uniformOptionCount ?? 0
        let slots = Slots(repeating: RankedValues(), count: k + 1)
        let set = self.set
        DispatchQueue.concurrentPerform(iterations: k + 1) { job in
            if job == 0 {
                slots.store(0, terms.confidence.withUnsafeBufferPointer { values in
                    RankedValues(count: n, value: { values[$0] }, hit: { terms.correct[$0] })
                })
            } else {
                let c = job - 1
                slots.store(job, set.probabilities.withUnsafeBufferPointer { p in
                    set.labels.withUnsafeBufferPointer { labels in
                        RankedValues(count: n, value: { p[$0 * k + c] }, hit: { Int(labels[$0]) == c })
                    }
                })
            }
        }
        let all = slots.values
        return (all[0], Array(all.dropFirst()))
    }

    /// Per-question values the weighted passes read (made on first use).
    var terms: QuestionTerms { derived.terms(self) }
    /// Confidence in ascending order (stable), with its questions and their correctness.
    var confidenceRanked: RankedValues { derived.orders(self).confidence }
    /// Per class k, p_ik in ascending order (stable), with questions and [y_i = k] (uniform K only).
    var classRanked: [RankedValues] { derived.orders(self).classes }

    // MARK: - Metrics

    /// All metrics; with `weights`, question i counts `weights[i]` times (bootstrap). The smooth
    /// and ℓ2 metrics (smECE, cw-smECE, ℓ2 ECE; a bandwidth search each) only with `smooth`,
    /// and only of the unweighted estimate.
    public func metrics(weights: UnsafeBufferPointer<UInt32>? = nil, smooth: Bool = false) -> CalibrationMetrics {
        if let weights {
            let counts = CountWeights(counts: weights)
            return metrics(counts, smooth: false, equalMass: weightedEqualMass(counts, total: counts.total(set.count)))
        }
        return metrics(UnitWeights(), smooth: smooth, equalMass: equalMass)
    }

    private func metrics<W: QuestionWeights>(_ weights: W, smooth: Bool, equalMass: EqualMassErrors) -> CalibrationMetrics {
        var result = CalibrationMetrics()
        result.bins = bins
        let n = set.count
        let total = weights.total(n)
        result.n = Int(total)
        guard total > 0 else { return result }
        result.nllFromScores = set.scores != nil
        // Two independent passes, one per core: the top-label pass and the classwise equal-width pass.
        let k = set.uniformOptionCount ?? 0
        let parts = Slots<CalibrationMetrics>(repeating: CalibrationMetrics(), count: 2)
        DispatchQueue.concurrentPerform(iterations: 2) { job in
            if job == 0 {
                parts.store(0, topLabelPass(weights, total: total))
            } else {
                parts.store(1, classwisePass(weights, total: total, optionCount: k))
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
        result.equalMassECE = equalMass.topLabel
        result.pooledECE = classwise.pooledECE
        guard k > 0 else { return result }
        result.cwECE = classwise.cwECE
        result.ace = equalMass.ace.reduce(0, +) / Double(k)
        result.tace = equalMass.tace.reduce(0, +) / Double(k)
        return result
    }

    /// The equal-mass errors of a weighted resample, from the stable orders (in parallel).
    private func weightedEqualMass<W: QuestionWeights>(_ weights: W, total: Double) -> EqualMassErrors {
        let k = set.uniformOptionCount ?? 0
        var errors = EqualMassErrors(classes: k)
        guard total > 0 else { return errors }
        let orders = derived.orders(self)
        let parts = Slots<[Double]>(repeating: [], count: k + 1)
        DispatchQueue.concurrentPerform(iterations: k + 1) { job in
            if job == 0 {
                parts.store(0, [equalMassError(orders.confidence, weights: weights, total: total, weighted: true, threshold: -1)])
                return
            }
            let ranked = orders.classes[job - 1]
            var kept = 0.0
            for j in ranked.values.indices where ranked.values[j] > epsilon { kept += weights.weight(Int(ranked.order[j])) }
            let ace = equalMassError(ranked, weights: weights, total: total, weighted: false, threshold: -1)
            let tace = kept > 0 ? equalMassError(ranked, weights: weights, total: kept, weighted: false, threshold: epsilon) : 0
            parts.store(job, [ace, tace])
        }
        errors.topLabel = parts.value(0)[0]
        for c in 0..<k {
            errors.ace[c] = parts.value(1 + c)[0]
            errors.tace[c] = parts.value(1 + c)[1]
        }
        return errors
    }

    /// smECE (top label and per class), ℓ2 ECE plug-in and debiased: of the estimate only
    /// (a bootstrap resample is weighted; `bootstrap` gives smECE's interval at this bandwidth).
    private func smoothAndL2Metrics(into result: inout CalibrationMetrics) {
        let k = set.uniformOptionCount ?? 0
        let parts = Slots<[Double?]>(repeating: [], count: 2 + k)
        // Only what the top-label jobs read is copied out; each class is read in place.
        var confidence: [Double] = [], correct: [Bool] = []
        confidence.reserveCapacity(set.count)
        correct.reserveCapacity(set.count)
        forEachTopLabel { _, top, label in
            confidence.append(top.confidence)
            correct.append(top.prediction == label)
        }
        let set = self.set, bins = self.bins, derived = self.derived
        let (topConfidence, topCorrect) = (confidence, correct)
        DispatchQueue.concurrentPerform(iterations: 2 + k) { job in
            switch job {
            case 0:
                let smooth = derived.topLabelSmoothECE {
                    topConfidence.withUnsafeBufferPointer { confidence in
                        topCorrect.withUnsafeBufferPointer { SmoothECE.automatic(TopLabelPoints(confidence: confidence, correct: $0)) }
                    }
                }
                parts.store(0, [smooth.value, smooth.sigma])
            case 1:
                let l2 = L2CalibrationError.values(confidences: topConfidence, correct: topCorrect, bins: bins)
                parts.store(1, [l2?.plugIn, l2?.debiased])
            default:
                let value = set.probabilities.withUnsafeBufferPointer { p in
                    set.labels.withUnsafeBufferPointer { SmoothECE.automatic(ClassPoints(probabilities: p, labels: $0, options: k, option: job - 2)).value }
                }
                parts.store(job, [value])
            }
        }
        result.smECE = parts.value(0)[0]
        result.smECEBandwidth = parts.value(0)[1]
        result.l2ECE = parts.value(1)[0]
        result.debiasedL2ECE = parts.value(1)[1]
        if k > 0 { result.cwSmECE = (0..<k).reduce(0.0) { $0 + parts.value(2 + $1)[0]! } / Double(k) }
    }

    /// The top-label metrics: accuracy, mean confidence (and overconfidence), Brier, NLL,
    /// conf-ECE, MCE and RMSCE (the equal-mass ECE comes from the sorted orders).
    private func topLabelPass<W: QuestionWeights>(_ weights: W, total: Double) -> CalibrationMetrics {
        var count = [Double](repeating: 0, count: bins)
        var sumConfidence = [Double](repeating: 0, count: bins)
        var sumCorrect = [Double](repeating: 0, count: bins)
        var accuracy = 0.0, meanConfidence = 0.0, brier = 0.0, nll = 0.0
        set.labels.withUnsafeBufferPointer { labels in
            forEachQuestion { i, q in
                let weight = weights.weight(i)
                if weight == 0 { return }
                let c = q.top.confidence, hit = q.top.prediction == Int(labels[i]) ? weight : 0
                let b = equalWidthBin(c, bins: bins)
                count[b] += weight
                sumConfidence[b] += weight * c
                sumCorrect[b] += hit
                accuracy += hit
                meanConfidence += weight * c
                brier += weight * q.brier
                nll += weight * q.nll
            }
        }
        var part = CalibrationMetrics()
        part.setMeans(total: total, correct: accuracy, confidence: meanConfidence, brier: brier, nll: nll)
        part.setTopLabelErrors(total: total, bins: bins) { BinTotal(count: count[$0], hits: sumCorrect[$0], sum: sumConfidence[$0]) }
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
        ranked.values.withUnsafeBufferPointer { values in
            ranked.hits.withUnsafeBufferPointer { hits in
                ranked.order.withUnsafeBufferPointer { order in
                    walkEqualMass(count: values.count, bins: bins, total: total, weighted: weighted, threshold: threshold) { j in
                        (values[j], hits[j], weights.copies(Int(order[j])))
                    }
                }
            }
        }
    }
    // MARK: - Reliability tables

    /// The top-label reliability table: per equal-width bin, n, accuracy, mean confidence.
    public func reliabilityBins() -> [BinRow] {
        binTable { add in
            forEachTopLabel { _, top, label in add(top.confidence, top.prediction == label) }
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

    /// Per-question values for paired comparisons (made on first use and kept).
    public var confidences: [Double] { terms.confidence }
    public var correctness: [Bool] { terms.correct }
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

    init(count: Int, value: (Int) -> Double, hit: (Int) -> Bool) {
        var histogram = RadixHistogram()
        for i in 0..<count { histogram.add(value(i)) }
        (order, values) = stableAscendingSort(count: count, histogram: histogram, value: value)
        hits = order.map { hit(Int($0)) }
    }

    init() {
        order = []
        values = []
        hits = []
    }
}

/// The unit-weight equal-mass error of keys sorted ascending (`RadixHistogram.key(value, hit:)`):
/// `CalibrationAnalyzer.equalMassError`'s rule, every question once. Values not above
/// `threshold` are left out; the total is the count of those kept.
func keyedEqualMassError(_ keys: [UInt64], bins: Int, weighted: Bool, threshold: Double) -> Double {
    keys.withUnsafeBufferPointer { keys in
        // The kept values are a suffix of the ascending keys: find where it starts.
        var low = 0, high = keys.count
        while low < high {
            let middle = (low + high) / 2
            if RadixHistogram.value(keys[middle]) > threshold { high = middle } else { low = middle + 1 }
        }
        let kept = keys.count - low
        guard kept > 0 else { return 0 }
        return walkEqualMass(count: keys.count, bins: bins, total: Double(kept), weighted: weighted, threshold: threshold) { j in
            (RadixHistogram.value(keys[j]), keys[j] & 1 == 1, 1)
        }
    }
}

/// The equal-mass walk (METHODS §2) over `count` entries in ascending value order, entry j
/// giving its value, whether it hits, and its copies: the kept copies are ranked
/// 0 ..< total and a tie group goes whole to the bin of its first rank.
@inline(__always)
func walkEqualMass(count: Int, bins: Int, total: Double, weighted: Bool, threshold: Double,
                   entry: (Int) -> (value: Double, hit: Bool, copies: Int)) -> Double {
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
    for j in 0..<count {
        let (v, hit, copies) = entry(j)
        if !(v > threshold) { continue }
        if copies == 0 { continue }
        if v != previous {
            while rank >= boundaries[bin + 1] { close(); bin += 1 }
            previous = v
        }
        let c = Double(copies)
        binCount += c; binValue += c * v; binHits += hit ? c : 0
        rank += copies
    }
    close()
    return weighted || nonEmpty == 0 ? error : error / Double(nonEmpty)
}

/// Runs `body(0 ..< count)` on at most `width` threads at once (jobs taken in order), so
/// that jobs holding large buffers bound the memory they hold together.
func performJobs(_ count: Int, width: Int, _ body: @Sendable (Int) -> Void) {
    let next = ProgressCounter()
    DispatchQueue.concurrentPerform(iterations: min(count, width)) { _ in
        while true {
            let job = next.take()
            if job >= count { return }
            body(job)
        }
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
