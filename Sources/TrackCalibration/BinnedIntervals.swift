#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// Intervals and a test of calibration for the binned calibration errors (METHODS §3,
/// "Intervals and the calibration test").
///
/// Every binned error is a function of per-cell sums `S_c = Σ_{i∈c} (y_i − v_i)` over fixed
/// cells (the estimate's bins: equal-width bins of the confidence or of each class's p, and the
/// estimate's equal-mass bins): conf-ECE is `Σ_c |S_c|/N`, cw-ECE `(1/K) Σ_c |S_c|/N`, ACE
/// `(1/K) Σ_k (1/R_k) Σ_c |S_c/n_c|`, RMSCE `sqrt(Σ_c S_c²/(n_c N))`, MCE `max_c |S_c/n_c|`.
/// Near zero these are biased upward (`E|x̂| > |x|`) and the percentile bootstrap adds the bias
/// a second time, so its interval misses a small true error. Here each cell's bootstrap
/// deviation `h_c = g*_c − ĝ_c` is mapped through the error's directional derivative
/// (Fang & Santos 2019): a cell whose gap is clearly non-zero (`|ĝ_c| > κ·se_c`) moves the error
/// by `sign(ĝ_c)·h_c`, any other by at most `|h_c|` either way (the triangle inequality), so
///   lower = θ̂ − q_{1−α/2}(Σ_clear sign·h + Σ_rest |h|),  upper = θ̂ − q_{α/2}(Σ_clear sign·h − Σ_rest |h|).
/// RMSCE and MCE (a norm and a maximum of the gaps) use their own triangle inequality,
/// `|θ̂ − θ| ≤ ‖h‖`, so θ̂ ± q_{1−α}(‖h*‖). The lower end is clipped at 0, and set to 0 when the
/// calibration test of the same error does not reject at α: at ECE = 0 (a boundary of the
/// parameter space, where no bootstrap is consistent: Andrews 2000) the interval is then the
/// set of values the test does not reject, and covers 0 as often as the test keeps H0.
///
/// The test (consistency resampling, Bröcker & Smith 2007): under H0 "the labels are drawn from
/// the predicted probabilities", labels y*_i ~ Categorical(p_i) are redrawn B times with the
/// cells and values fixed, the error recomputed each time, and `p = (1 + #{θ* ≥ θ̂}) / (B + 1)`,
/// a valid Monte-Carlo p-value never below 1/(B + 1).
public enum IntervalMethod: String, Sendable, Equatable, CaseIterable {
    /// Between the α/2 and 1 − α/2 quantiles of the resampled values.
    case percentile = "percentile bootstrap"
    /// Per-bin derivative bounds (conf-ECE, cw-ECE, pooled ECE, eq-mass ECE, ACE, TACE).
    case binBounds = "bin-bounded bootstrap"
    /// θ̂ ± the 1 − α quantile of the resampled gap vector's norm (RMSCE) or largest gap (MCE).
    case normBound = "norm-bounded bootstrap"
    /// Wilson score interval of a proportion.
    case wilson = "Wilson score"
}

/// The result of a test of calibration (H0: the run is perfectly calibrated).
public struct CalibrationTest: Sendable, Equatable {
    /// The statistic's value on the run (the metric's estimate).
    public var statistic: Double
    /// `(1 + #{θ* ≥ θ̂}) / (B + 1)`.
    public var p: Double
    public var resamples: Int
    public var key: MetricKey
    public var method: String {
        "consistency resampling (Bröcker & Smith 2007): labels redrawn from the predicted probabilities, \(resamples) times, statistic \(key.rawValue)"
    }
}

/// What `CalibrationAnalyzer.intervals` computes: an interval per resampled metric, and a test
/// of calibration per binned error.
public struct IntervalReport: Sendable, Equatable {
    public var intervals: [MetricKey: Interval] = [:]
    public var tests: [MetricKey: CalibrationTest] = [:]
    public init() {}
}

/// Which fixed cells a binned error sums over, and how.
enum CellShape: Sendable {
    /// `scale · Σ_c |S_c| / total` (total: questions, or question × option values for the pooled ECE).
    case sum(scale: Double, pooled: Bool)
    /// `Σ_c a_c |S_c / n_c|` (ACE, TACE: each class's non-empty bins averaged, then the classes).
    case meanOfGaps
    /// `sqrt(Σ_c S_c² / (n_c · N))`.
    case rms
    /// `max_c |S_c / n_c|` over non-empty cells.
    case max
}

/// The cells of every binned error of one run, laid out once: per question its top-label
/// cells, per (question, option) value its class and pooled cells. Cells of all errors are
/// numbered in one space so one pass over the values fills them all.
struct BinnedCells: Sendable {
    struct Family: Sendable {
        var key: MetricKey
        var shape: CellShape
        var cells: Range<Int>
        /// Per cell, the weight a_c of `.meanOfGaps` (1/(K·R_k)); empty otherwise.
        var weights: [Double] = []
    }
    let n: Int
    let k: Int
    let bins: Int
    var families: [Family] = []
    var cellCount = 0
    /// Per question: its top option and its two top-label cells (equal width, equal mass).
    var top: [Int32] = []
    var topCells: [Int32] = []
    /// Per value (question-major, `set.offsets`): the cells it adds to, `perValue` of them
    /// (class equal width, ACE, TACE (−1 when not kept); the pooled bin when questions differ
    /// in option count), −1 for none.
    var valueCells: [Int32] = []
    var perValue = 0
    /// With K options per question the pooled bins are not added to value by value: pooled
    /// bin b is the sum of the class bins (c, b), `pooledFromClasses` (-1 otherwise).
    var pooledCells = -1
    var classWidthCells = -1
    /// The resampling passes add to segments, not cells: a question's two top-label cells (equal
    /// width, equal mass) change together along the confidence order, and a value's class cells
    /// (equal width, ACE, TACE) along its class's order, so each distinct combination met along
    /// the order is one segment, and a cell's sum is the sum of its segments' (added after the
    /// pass). A question then adds to 1 + K segments instead of 2 + 3K cells (≤ 3B + 1 segments
    /// per class). Per question its top segment, per value its segment, per segment its cells
    /// (`segmentStride` of them, −1 padded).
    var topSegments: [Int32] = []
    var valueSegments: [Int32] = []
    var segmentCells: [Int32] = []
    var segmentCount = 0
    /// Segments `0 ..< topSegmentCount` are the top-label ones: every question is in exactly one.
    var topSegmentCount = 0
    static let segmentStride = 3
    init(_ a: CalibrationAnalyzer) {
        let set = a.set
        n = set.count
        k = set.uniformOptionCount ?? 0
        bins = a.bins
        let b = bins
        func family(_ key: MetricKey, _ shape: CellShape, _ count: Int) -> Int {
            families.append(Family(key: key, shape: shape, cells: cellCount..<(cellCount + count)))
            cellCount += count
            return cellCount - count
        }
        let confWidth = family(.confECE, .sum(scale: 1, pooled: false), b)
        families.append(Family(key: .rmsce, shape: .rms, cells: confWidth..<(confWidth + b)))
        families.append(Family(key: .mce, shape: .max, cells: confWidth..<(confWidth + b)))
        let confMass = family(.equalMassECE, .sum(scale: 1, pooled: false), b)
        let pooled = family(.pooledECE, .sum(scale: 1, pooled: true), b)
        var classWidth = -1, ace = -1, tace = -1
        if k > 0 {
            classWidth = family(.cwECE, .sum(scale: 1 / Double(k), pooled: false), k * b)
            ace = family(.ace, .meanOfGaps, k * b)
            tace = family(.tace, .meanOfGaps, k * b)
        }
        perValue = k > 0 ? 3 : 1
        let terms = a.terms
        top = terms.prediction
        let confidence = terms.confidence, confidenceRanked = a.confidenceRanked
        let topLabel = { @Sendable in Self.topLabelCells(confidence, confidenceRanked, bins: b, width: confWidth, mass: confMass) }
        valueCells = [Int32](repeating: -1, count: set.probabilities.count * perValue)
        guard k > 0 else {
            useTopLabel(topLabel())
            for (j, value) in set.probabilities.enumerated() { valueCells[j] = Int32(pooled + equalWidthBin(value, bins: b)) }
            makeMixedSegments()
            return
        }
        pooledCells = pooled
        classWidthCells = classWidth
        // Each class's cells and segments are its own job (two at a time): the class walks its
        // own order and writes only its own values' entries.
        let (n, k, perValue, epsilon) = (n, k, perValue, a.epsilon)
        let (widthBase, aceBase, taceBase) = (classWidth, ace, tace)
        let classRanked = a.classRanked, probabilities = set.probabilities
        let stride = Self.segmentStride
        valueSegments = [Int32](repeating: -1, count: probabilities.count)
        let classes = Slots<(segments: [Int32], ace: [Double], tace: [Double])>(repeating: ([], [], []), count: k)
        let topLabelResult = Slots<TopLabelCells?>(repeating: nil, count: 1)
        valueCells.withUnsafeMutableBufferPointer { cellsBuffer in
        valueSegments.withUnsafeMutableBufferPointer { segmentsBuffer in
            let cells = DisjointWrites(cellsBuffer), segments = DisjointWrites(segmentsBuffer)
            // The top label's cells and segments are a job beside the classes'.
            performJobs(k + 1, width: 2) { job in
                guard job < k else { return topLabelResult.store(0, topLabel()) }
                let c = job
                let ranked = classRanked[c]
                for i in 0..<n {
                    cells[(i * k + c) * perValue] = Int32(widthBase + c * b + equalWidthBin(probabilities[i * k + c], bins: b))
                }
                var weights = ([Double](repeating: 0, count: b), [Double](repeating: 0, count: b))
                for (slot, threshold, base) in [(1, -1.0, aceBase), (2, epsilon, taceBase)] {
                    let binOf = equalMassBins(ranked, threshold: threshold, bins: b)
                    var used = [Bool](repeating: false, count: b)
                    for (position, question) in ranked.order.enumerated() where binOf[position] >= 0 {
                        cells[(Int(question) * k + c) * perValue + slot] = Int32(base + c * b) + binOf[position]
                        used[Int(binOf[position])] = true
                    }
                    let weight = 1 / (Double(k) * Double(used.filter { $0 }.count))
                    for bin in 0..<b where used[bin] {
                        if slot == 1 { weights.0[bin] = weight } else { weights.1[bin] = weight }
                    }
                }
                // The class's segments along its order (numbered from 0 here, offset below).
                var own: [Int32] = []
                var previous = (Int32(-2), Int32(-2), Int32(-2))
                for question in ranked.order {
                    let j = Int(question) * k + c, at = j * perValue
                    let mine = (cells[at], cells[at + 1], cells[at + 2])
                    if own.isEmpty || mine != previous {
                        own += [mine.0, mine.1, mine.2]
                        previous = mine
                    }
                    segments[j] = Int32(own.count / stride - 1)
                }
                classes.store(c, (own, weights.0, weights.1))
            }
        }}
        useTopLabel(topLabelResult.value(0)!)
        var aceWeights: [Double] = [], taceWeights: [Double] = []
        for c in 0..<k {
            let (own, aceOf, taceOf) = classes.value(c)
            let offset = Int32(segmentCount)
            segmentCells += own
            segmentCount += own.count / stride
            if offset > 0 { for i in 0..<n { valueSegments[i * k + c] += offset } }
            aceWeights += aceOf
            taceWeights += taceOf
        }
        for index in families.indices where families[index].key == .ace { families[index].weights = aceWeights }
        for index in families.indices where families[index].key == .tace { families[index].weights = taceWeights }
    }

    /// A question's two top-label cells (equal width, equal mass), and the top-label segments:
    /// walking the confidence order, a new segment wherever the pair of cells changes (a pair met
    /// again later would get a second segment, which sums the same; along the order both bin
    /// rules are monotone, so none is). The same walk numbers each class's segments (in `init`).
    typealias TopLabelCells = (cells: [Int32], segments: [Int32], segmentCells: [Int32])
    static func topLabelCells(_ confidence: [Double], _ ranked: RankedValues, bins b: Int, width: Int, mass: Int) -> TopLabelCells {
        let n = confidence.count
        var cells = [Int32](repeating: 0, count: 2 * n)
        for i in 0..<n { cells[2 * i] = Int32(width + equalWidthBin(confidence[i], bins: b)) }
        let massOfConfidence = equalMassBins(ranked, threshold: -1, bins: b)
        for (position, question) in ranked.order.enumerated() {
            cells[2 * Int(question) + 1] = Int32(mass + Int(massOfConfidence[position]))
        }
        var segments = [Int32](repeating: 0, count: n), segmentCells: [Int32] = []
        var previous = (Int32(-1), Int32(-1))
        for question in ranked.order {
            let i = Int(question), pair = (cells[2 * i], cells[2 * i + 1])
            if segmentCells.isEmpty || pair != previous {
                segmentCells += [pair.0, pair.1, -1]
                previous = pair
            }
            segments[i] = Int32(segmentCells.count / segmentStride - 1)
        }
        return (cells, segments, segmentCells)
    }

    /// The top-label cells and segments, numbered first.
    private mutating func useTopLabel(_ result: TopLabelCells) {
        topCells = result.cells
        topSegments = result.segments
        segmentCells = result.segmentCells
        segmentCount = segmentCells.count / Self.segmentStride
        topSegmentCount = segmentCount
    }

    /// Mixed option counts: one cell (the pooled bin) per value, one segment per cell.
    private mutating func makeMixedSegments() {
        valueSegments = [Int32](repeating: -1, count: valueCells.count)
        var ofCell = [Int32](repeating: -1, count: cellCount)
        for j in valueCells.indices {
            let c = Int(valueCells[j])
            if ofCell[c] < 0 {
                segmentCells += [valueCells[j], -1, -1]
                segmentCount += 1
                ofCell[c] = Int32(segmentCount - 1)
            }
            valueSegments[j] = ofCell[c]
        }
    }

    /// Calls `add(cell, segment)` for every cell of every segment.
    @inline(__always)
    func cellsOfSegments(_ add: (Int, Int) -> Void) {
        for segment in 0..<segmentCount {
            for slot in 0..<Self.segmentStride {
                let c = segmentCells[segment * Self.segmentStride + slot]
                if c >= 0 { add(Int(c), segment) }
            }
        }
    }

    /// Calls `add(pooled cell, class cell)` for every class cell a pooled cell sums (none when
    /// questions differ in option count: their pooled cells are filled value by value).
    @inline(__always)
    func pooledFromClasses(_ add: (Int, Int) -> Void) {
        guard pooledCells >= 0 else { return }
        for c in 0..<k {
            for bin in 0..<bins { add(pooledCells + bin, classWidthCells + c * bins + bin) }
        }
    }

    /// One family's value from cell sums `s`, counts `m` and totals (questions, values).
    func value(_ family: Family, s: UnsafeBufferPointer<Double>, m: UnsafeBufferPointer<Double>,
               questions: Double, values: Double) -> Double {
        switch family.shape {
        case .sum(let scale, let pooled):
            var total = 0.0
            for c in family.cells { total += abs(s[c]) }
            return scale * total / (pooled ? values : questions)
        case .meanOfGaps:
            var total = 0.0
            for c in family.cells where m[c] > 0 { total += family.weights[c - family.cells.lowerBound] * abs(s[c] / m[c]) }
            return total
        case .rms:
            var total = 0.0
            for c in family.cells where m[c] > 0 { total += s[c] * s[c] / (m[c] * questions) }
            return total.squareRoot()
        case .max:
            var largest = 0.0
            for c in family.cells where m[c] > 0 { largest = Swift.max(largest, abs(s[c] / m[c])) }
            return largest
        }
    }

    /// Per cell, the gap whose deviations the interval bounds: `S_c/N` (sums), `S_c/n_c`
    /// (means, maxima), `S_c/sqrt(n_c N)` (rms); nil where the cell is empty.
    func gap(_ family: Family, _ c: Int, s: Double, m: Double, questions: Double, values: Double) -> Double? {
        switch family.shape {
        case .sum(_, let pooled): return s / (pooled ? values : questions)
        case .meanOfGaps, .max: return m > 0 ? s / m : nil
        case .rms: return m > 0 ? s / (m * questions).squareRoot() : nil
        }
    }
}

/// Equal-mass bins of one ascending order with unit weights, by the rule of
/// `CalibrationAnalyzer.equalMassError`: per position its bin, −1 when not above `threshold`.
func equalMassBins(_ ranked: RankedValues, threshold: Double, bins: Int) -> [Int32] {
    let kept = ranked.values.reduce(0) { $0 + ($1 > threshold ? 1 : 0) }
    var result = [Int32](repeating: -1, count: ranked.values.count)
    var bin = 0, rank = 0
    var previous = -Double.infinity
    for (j, v) in ranked.values.enumerated() where v > threshold {
        if v != previous {
            while rank >= (( bin + 1) * kept + bins - 1) / bins { bin += 1 }
            previous = v
        }
        result[j] = Int32(bin)
        rank += 1
    }
    return result
}

/// Cell sums of B resamples: per resample, per cell, `S_c` and `n_c`, and the totals.
struct CellResamples: Sendable {
    var count: Int
    var cells: Int
    var sums: [Double]
    var counts: [Double]
    var questions: [Double]
    var values: [Double]
    /// Bootstrap only: per resample its means (accuracy, confidence, Brier, NLL; nil when
    /// the resample left every question out), from the same weights in the same pass.
    var means: [CalibrationMetrics?] = []
}

/// The sums of one pass with unit weights and the run's own labels: per cell `S_c`, its count
/// `n_c` and the sum of its values `V_c`, and the totals.
struct CellSums: Sendable {
    var sums: [Double]
    var counts: [Double]
    var valueSums: [Double]
    var questions: Double
    var values: Double
}

extension BinnedCells {
    /// Runs `fill(first, sums, counts, questions, values, means)` for each batch of eight resamples
    /// (`first` the batch's first resample; lane-major outputs, `lanes × cells`), on every core,
    /// and lays the resamples out in order.
    private func batches(_ resamples: Int, progress: (@Sendable (Int) -> Void)?,
                         fill: @Sendable (Int, inout [Double], inout [Double], inout [Double], inout [Double],
                                          inout [CalibrationMetrics?]) -> Void) -> CellResamples {
        let lanes = CalibrationAnalyzer.lanes
        let cells = cellCount
        let count = (resamples + lanes - 1) / lanes
        let out = Slots<([Double], [Double], [Double], [Double], [CalibrationMetrics?])>(repeating: ([], [], [], [], []), count: count)
        DispatchQueue.concurrentPerform(iterations: count) { batch in
            var sums = [Double](repeating: 0, count: lanes * cells), counts = sums
            var questions = [Double](repeating: 0, count: lanes), values = questions
            var means: [CalibrationMetrics?] = []
            fill(batch * lanes, &sums, &counts, &questions, &values, &means)
            out.store(batch, (sums, counts, questions, values, means))
            progress?(lanes)
        }
        var result = CellResamples(count: resamples, cells: cells, sums: [], counts: [], questions: [], values: [])
        result.sums.reserveCapacity(resamples * cells)
        result.counts.reserveCapacity(resamples * cells)
        for b in 0..<resamples {
            let (sums, counts, questions, values, means) = out.value(b / lanes)
            let lane = b % lanes
            result.sums += sums[(lane * cells)..<((lane + 1) * cells)]
            result.counts += counts[(lane * cells)..<((lane + 1) * cells)]
            result.questions.append(questions[lane])
            result.values.append(values[lane])
            if !means.isEmpty { result.means.append(means[lane]) }
        }
        return result
    }

    /// Bootstrap: in resample b question i counts w ~ Poisson(1) times (the weights of
    /// `CalibrationAnalyzer.bootstrap` for the same seed), with its own label: each value's
    /// `y − v` is fixed, the eight resamples' weights sit in SIMD lanes. The same pass sums
    /// the means' terms, as `CalibrationAnalyzer.bootstrapResamples` does (bit for bit).
    /// With `smoothSigma` each resample's smECE at that bandwidth too (`SmoothGridLanes`).
    func bootstrapSums(_ a: CalibrationAnalyzer, resamples: Int, seed: UInt64, smoothSigma: Double? = nil,
                       progress: (@Sendable (Int) -> Void)? = nil) -> CellResamples {
        typealias Lanes = CalibrationAnalyzer.Lanes
        let lanes = CalibrationAnalyzer.lanes
        let cells = cellCount
        let terms = a.terms
        let positions = smoothSigma.map { sigma in terms.confidence.withUnsafeBufferPointer { SmoothGridLanes.positions($0, sigma: sigma) } }
        return batches(resamples, progress: progress) { first, sums, counts, questions, values, means in
            let weights = CalibrationAnalyzer.poissonWeights(n: n, seed: seed, firstResample: first)
            let segments = segmentCount
            // Sums per segment (`S`, and the counts `M`), made cell sums after the pass.
            var segmentS = [Lanes](repeating: .zero, count: segments), segmentM = segmentS
            // Counts are integers: summed in 16-bit lanes (a weight is at most 255) and moved to
            // `segmentM` every 256 questions, before any lane could pass 65,535.
            var counts16 = [SIMD8<UInt16>](repeating: .zero, count: segments)
            var totalValues = Lanes.zero
            // The means' terms; their totals are integers: the weight from the top segments' counts,
            // the weight of hits in 16-bit lanes moved to `correct` with the counts.
            var meanSums = LaneMeans()
            var hits16 = SIMD8<UInt16>.zero, correct = Lanes.zero
            let grid = smoothSigma.map { SmoothGridLanes(sigma: $0) }
            let set = a.set
            set.probabilities.withUnsafeBufferPointer { p in
            set.labels.withUnsafeBufferPointer { labels in
            terms.confidence.withUnsafeBufferPointer { conf in
            terms.brier.withUnsafeBufferPointer { brierTerm in
            terms.nll.withUnsafeBufferPointer { nllTerm in
            topSegments.withUnsafeBufferPointer { topSegments in
            valueSegments.withUnsafeBufferPointer { valueSegments in
            weights.withUnsafeBufferPointer { weights in
            (positions?.bins ?? []).withUnsafeBufferPointer { gridBins in
            (positions?.fractions ?? []).withUnsafeBufferPointer { gridFractions in
            segmentS.withUnsafeMutableBufferPointer { s in
            segmentM.withUnsafeMutableBufferPointer { m in
            counts16.withUnsafeMutableBufferPointer { counts16 in
                func widened(_ x: SIMD8<UInt16>) -> Lanes {
                    Lanes(Double(x[0]), Double(x[1]), Double(x[2]), Double(x[3]), Double(x[4]), Double(x[5]), Double(x[6]), Double(x[7]))
                }
                func flush() {
                    for c in 0..<segments {
                        m[c] += widened(counts16[c])
                        counts16[c] = .zero
                    }
                    correct += widened(hits16)
                    hits16 = .zero
                }
                top.withUnsafeBufferPointer { top in
                for chunk in Swift.stride(from: 0, to: n, by: 256) {
                for i in chunk..<Swift.min(chunk + 256, n) {
                    let w = CalibrationAnalyzer.laneWeights(weights, i)
                    let w16 = SIMD8<UInt16>(truncatingIfNeeded: CalibrationAnalyzer.laneWeightBytes(weights, i))
                    let start = set.offsets[i], options = set.offsets[i + 1] - start, label = Int(labels[i])
                    let hit = label == Int(top[i])
                    if k == 0 { totalValues += w * Double(options) }   // with K options: K × the weight, after
                    meanSums.addTerms(w, confidence: conf[i], brier: brierTerm[i], nll: nllTerm[i])
                    hits16 &+= w16 & (hit ? .max : .zero)
                    if let grid {
                        grid.add(prediction: conf[i], outcome: hit ? 1 : 0, weights: w, bin: Int(gridBins[i]), fraction: gridFractions[i])
                    }
                    let top = Int(topSegments[i])
                    s[top] += w * ((hit ? 1 : 0) - conf[i])
                    counts16[top] &+= w16
                    for option in 0..<options {
                        let segment = Int(valueSegments[start + option])
                        s[segment] += w * ((option == label ? 1 : 0) - p[start + option])
                        counts16[segment] &+= w16
                    }
                }
                // Every 256 questions, before a 16-bit count could pass 65,535.
                flush()
                }}
            }}}}}}}}}}}}}
            meanSums.correct = correct
            for segment in 0..<topSegmentCount { meanSums.total += segmentM[segment] }
            var s = [Lanes](repeating: .zero, count: cells), m = s
            cellsOfSegments { cell, segment in
                s[cell] += segmentS[segment]
                m[cell] += segmentM[segment]
            }
            pooledFromClasses { pooled, cell in
                s[pooled] += s[cell]
                m[pooled] += m[cell]
            }
            for lane in 0..<lanes {
                for c in 0..<cells {
                    sums[lane * cells + c] = s[c][lane]
                    counts[lane * cells + c] = m[c][lane]
                }
                questions[lane] = meanSums.total[lane]
                values[lane] = k > 0 ? Double(k) * meanSums.total[lane] : totalValues[lane]
                var metrics = meanSums.metrics(lane, bins: bins, nllFromScores: set.scores != nil)
                guard metrics.n > 0 else { means.append(nil); continue }
                if let grid {
                    metrics.smECE = grid.value(lane: lane)
                    metrics.smECEBandwidth = grid.sigma
                }
                means.append(metrics)
            }
        }
    }

    /// Consistency resampling: every question once, its label redrawn from its probabilities.
    /// Counts and value sums are the estimate's; only the hits vary, so per resample each
    /// question adds 1 to the cells of its drawn option (and to its top-label cells when that
    /// option is the top one), and `S_c = hits_c − V_c`.
    func consistencySums(_ a: CalibrationAnalyzer, _ estimate: CellSums, resamples: Int, seed: UInt64,
                         progress: (@Sendable (Int) -> Void)? = nil) -> CellResamples {
        typealias Lanes = CalibrationAnalyzer.Lanes
        let lanes = CalibrationAnalyzer.lanes
        let cells = cellCount
        // Each question's cumulative probabilities over their total, as steps on a uniform 31-bit
        // integer (all but the last option's): a label is drawn as the number of steps its
        // uniform reaches, so each option's probability is exact to 2⁻³¹. (31 bits: `u ≥ t` is
        // then the sign of `t − 1 − u`, which SSE2 computes lane-wise; its compares are not.)
        let set = a.set
        let steps = [Int32](unsafeUninitializedCapacity: set.probabilities.count) { steps, count in
            for i in 0..<n {
                let start = set.offsets[i], end = set.offsets[i + 1]
                var total = 0.0, cumulative = 0.0
                for j in start..<end { total += set.probabilities[j] }
                for j in start..<(end - 1) {
                    cumulative += set.probabilities[j]
                    steps[j] = Int32(Swift.min((cumulative / total * 0x1p31).rounded(), 0x1p31 - 1))
                }
                steps[end - 1] = 0   // not read
            }
            count = set.probabilities.count
        }
        return batches(resamples, progress: progress) { first, sums, counts, questions, values, _ in
            // Labels drawn from each question's probabilities, eight resamples at a time, from
            // streams of their own (a seed distinct from the bootstrap's).
            var streams = SeededRandomLanes(seeds: (0..<lanes).map {
                CalibrationAnalyzer.resampleSeed(seed ^ 0x5EED_C0A5_1573_3E57, first + $0)
            })
            // Hits are counted cell-major in 16-bit lanes, one question adding a one-hot vector
            // per cell it touches, and moved to the lane-major sums every 65,535 questions.
            var counters = [SIMD8<UInt16>](repeating: .zero, count: segmentCount)
            func flush(_ counters: UnsafeMutableBufferPointer<SIMD8<UInt16>>) {
                cellsOfSegments { c, segment in
                    for lane in 0..<lanes { sums[lane * cells + c] += Double(counters[segment][lane]) }
                }
                for segment in counters.indices { counters[segment] = .zero }
            }
            steps.withUnsafeBufferPointer { steps in
            topSegments.withUnsafeBufferPointer { topSegments in
            valueSegments.withUnsafeBufferPointer { valueSegments in
            counters.withUnsafeMutableBufferPointer { counters in
                // Question i's label from uniform u: the number of steps (all but the last
                // option's) u reaches; one-hot counts to its top-label and class segments.
                @inline(__always) func draw(_ i: Int, _ u: SIMD8<Int32>) {
                    let start = set.offsets[i], end = set.offsets[i + 1]
                    var drawn32 = SIMD8<Int32>.zero
                    for j in start..<(end - 1) {
                        drawn32 &-= (SIMD8(repeating: steps[j] &- 1) &- u) &>> 31
                    }
                    let drawn = SIMD8<UInt16>(truncatingIfNeeded: drawn32)
                    counters[Int(topSegments[i])] &+= Self.oneHot(drawn, UInt16(top[i]))
                    for option in 0..<(end - start) {
                        counters[Int(valueSegments[start + option])] &+= Self.oneHot(drawn, UInt16(option))
                    }
                }
                // Two questions per output of each lane's stream: the top 31 bits of its low half,
                // then of its high half. Counts move to the sums every 65,534 questions.
                var pending = 0
                for pair in 0..<(n / 2) {
                    let word = streams.next()
                    draw(2 * pair, SIMD8<Int32>(truncatingIfNeeded: (word &<< 32) &>> 33))
                    draw(2 * pair + 1, SIMD8<Int32>(truncatingIfNeeded: word &>> 33))
                    pending += 2
                    if pending == 65_534 {
                        flush(counters)
                        pending = 0
                    }
                }
                if n % 2 == 1 { draw(n - 1, SIMD8<Int32>(truncatingIfNeeded: (streams.next() &<< 32) &>> 33)) }
                flush(counters)
            }}}}
            for lane in 0..<lanes {
                pooledFromClasses { pooled, cell in sums[lane * cells + pooled] += sums[lane * cells + cell] }
                for c in 0..<cells {
                    sums[lane * cells + c] -= estimate.valueSums[c]
                    counts[lane * cells + c] = estimate.counts[c]
                }
                questions[lane] = estimate.questions
                values[lane] = estimate.values
            }
        }
    }

    /// 1 in each lane where `drawn` is `option`, else 0 (arithmetic, no mask).
    @inline(__always)
    static func oneHot(_ drawn: SIMD8<UInt16>, _ option: UInt16) -> SIMD8<UInt16> {
        let x = drawn ^ SIMD8(repeating: option)
        return ((x | (0 &- x)) &>> 15) ^ 1
    }

    /// The estimate's cell sums (every question once, its own label).
    func estimate(_ a: CalibrationAnalyzer) -> CellSums {
        var s = [Double](repeating: 0, count: cellCount), m = s, v = s
        func add(_ c: Int, hit: Bool, value: Double) {
            s[c] += (hit ? 1 : 0) - value
            m[c] += 1
            v[c] += value
        }
        let confidence = a.terms.confidence
        for i in 0..<n {
            let hit = Int(a.set.labels[i]) == Int(top[i])
            add(Int(topCells[2 * i]), hit: hit, value: confidence[i])
            add(Int(topCells[2 * i + 1]), hit: hit, value: confidence[i])
            let start = a.set.offsets[i]
            for option in 0..<(a.set.offsets[i + 1] - start) {
                for slot in 0..<perValue {
                    let c = Int(valueCells[(start + option) * perValue + slot])
                    if c >= 0 { add(c, hit: Int(a.set.labels[i]) == option, value: a.set.probabilities[start + option]) }
                }
            }
        }
        pooledFromClasses { pooled, cell in
            s[pooled] += s[cell]
            m[pooled] += m[cell]
            v[pooled] += v[cell]
        }
        return CellSums(sums: s, counts: m, valueSums: v, questions: Double(n), values: Double(a.set.probabilities.count))
    }
}

/// Per resample, the two bounding deviations of one binned error (`low` for the lower end,
/// `high` for the upper), with the quantile tail they are read at.
struct Deviations: Sendable {
    var estimate: Double
    var low: [Double]
    var high: [Double]
    /// Each end at α/2 (derivative bounds) or both at α (one norm bound for both ends).
    var simultaneous: Bool

    /// `[θ̂ − q_{1−a}(low), θ̂ − q_{a}(high)]`, a = α/2 or α.
    func interval(level: Double) -> Interval {
        let a = simultaneous ? 1 - level : (1 - level) / 2
        let lower = estimate - quantile(low.sorted(), 1 - a)
        let upper = estimate - quantile(high.sorted(), a)
        return Interval(lower: lower, upper: upper, method: simultaneous ? .normBound : .binBounds)
    }

    /// The paired difference other − base: its deviations bound the difference's.
    static func difference(base: Deviations, other: Deviations) -> Deviations {
        Deviations(estimate: other.estimate - base.estimate,
                   low: zip(other.low, base.high).map { $0 - $1 },
                   high: zip(other.high, base.low).map { $0 - $1 },
                   simultaneous: base.simultaneous)
    }

    /// The smallest α at which the interval excludes 0: `(1 + #)/(B + 1)` per end, doubled for
    /// ends read at α/2.
    var p: Double {
        let b = Double(low.count)
        let up = (1 + Double(low.filter { $0 >= estimate }.count)) / (b + 1)
        let down = (1 + Double(high.filter { $0 <= estimate }.count)) / (b + 1)
        return Swift.min(1, (simultaneous ? 1 : 2) * Swift.min(up, down))
    }
}

extension CalibrationAnalyzer {
    /// κ_n of the clear-cell rule: slowly growing (Fang & Santos need κ_n → ∞, κ_n/√n → 0).
    static func clearThreshold(_ n: Int) -> Double { Swift.max(1, log(Swift.max(log(Double(Swift.max(n, 3))), 1)).squareRoot()) }

    /// Every binned error's bounding deviations over `resamples` bootstrap resamples (seeded as
    /// `bootstrap`), keyed by metric.
    func binnedDeviations(resamples: Int, seed: UInt64) -> [MetricKey: Deviations] {
        guard set.count > 0, resamples > 0 else { return [:] }
        let cells = BinnedCells(self)
        return binnedDeviations(cells, cells.estimate(self), cells.bootstrapSums(self, resamples: resamples, seed: seed))
    }

    /// The bounding deviations from the bootstrap's cell sums `boot`.
    func binnedDeviations(_ cells: BinnedCells, _ estimate: CellSums, _ boot: CellResamples) -> [MetricKey: Deviations] {
        let resamples = boot.count
        let kappa = Self.clearThreshold(set.count)
        var result: [MetricKey: Deviations] = [:]
        estimate.sums.withUnsafeBufferPointer { s in
        estimate.counts.withUnsafeBufferPointer { m in
            for family in cells.families {
                let theta = cells.value(family, s: s, m: m, questions: estimate.questions, values: estimate.values)
                let gaps = family.cells.map { cells.gap(family, $0, s: s[$0], m: m[$0], questions: estimate.questions, values: estimate.values) }
                // h[b][c]: deviation of cell c in resample b (0 where the cell is empty in either).
                let width = family.cells.count
                var h = [Double](repeating: 0, count: resamples * width)
                for b in 0..<resamples {
                    for (j, c) in family.cells.enumerated() {
                        guard let g = gaps[j],
                              let g2 = cells.gap(family, c, s: boot.sums[b * boot.cells + c], m: boot.counts[b * boot.cells + c],
                                                 questions: boot.questions[b], values: boot.values[b]) else { continue }
                        h[b * width + j] = g2 - g
                    }
                }
                var low = [Double](repeating: 0, count: resamples), high = low
                switch family.shape {
                case .rms, .max:
                    for b in 0..<resamples {
                        var norm = 0.0
                        for j in 0..<width {
                            let x = h[b * width + j]
                            if case .rms = family.shape { norm += x * x } else { norm = Swift.max(norm, abs(x)) }
                        }
                        if case .rms = family.shape { norm = norm.squareRoot() }
                        low[b] = norm
                        high[b] = -norm
                    }
                    result[family.key] = Deviations(estimate: theta, low: low, high: high, simultaneous: true)
                case .sum, .meanOfGaps:
                    var weight = [Double](repeating: 0, count: width)
                    for j in 0..<width {
                        switch family.shape {
                        case .sum(let scale, _): weight[j] = scale
                        default: weight[j] = family.weights[j]
                        }
                    }
                    var clear = [Bool](repeating: false, count: width), sign = [Double](repeating: 0, count: width)
                    for j in 0..<width {
                        guard let g = gaps[j], g != 0 else { continue }
                        var sum = 0.0, squares = 0.0
                        for b in 0..<resamples { let x = h[b * width + j]; sum += x; squares += x * x }
                        let mean = sum / Double(resamples)
                        let se = Swift.max(0, squares / Double(resamples) - mean * mean).squareRoot()
                        clear[j] = abs(g) > kappa * se
                        sign[j] = g > 0 ? 1 : -1
                    }
                    for b in 0..<resamples {
                        var lo = 0.0, hi = 0.0
                        for j in 0..<width where weight[j] != 0 {
                            let x = h[b * width + j]
                            if clear[j] {
                                lo += weight[j] * sign[j] * x
                                hi += weight[j] * sign[j] * x
                            } else {
                                lo += weight[j] * abs(x)
                                hi -= weight[j] * abs(x)
                            }
                        }
                        low[b] = lo
                        high[b] = hi
                    }
                    result[family.key] = Deviations(estimate: theta, low: low, high: high, simultaneous: false)
                }
            }
        }}
        return result
    }

    /// The test of calibration for every binned error: labels redrawn from the predicted
    /// probabilities `resamples` times (seeded), the error recomputed on the same cells.
    public func calibrationTests(resamples: Int, seed: UInt64, progress: (@Sendable (Int, Int) -> Void)? = nil) -> [MetricKey: CalibrationTest] {
        guard set.count > 0, resamples > 0 else { return [:] }
        let cells = BinnedCells(self)
        return calibrationTests(cells, cells.estimate(self), resamples: resamples, seed: seed,
                                progress: ProgressCounter.steps(progress, total: resamples))
    }

    func calibrationTests(_ cells: BinnedCells, _ estimate: CellSums, resamples: Int, seed: UInt64,
                          progress: (@Sendable (Int) -> Void)? = nil) -> [MetricKey: CalibrationTest] {
        let null = cells.consistencySums(self, estimate, resamples: resamples, seed: seed, progress: progress)
        var tests: [MetricKey: CalibrationTest] = [:]
        estimate.sums.withUnsafeBufferPointer { es in
        estimate.counts.withUnsafeBufferPointer { em in
        null.sums.withUnsafeBufferPointer { ns in
        null.counts.withUnsafeBufferPointer { nm in
            for family in cells.families {
                let theta = cells.value(family, s: es, m: em, questions: estimate.questions, values: estimate.values)
                var exceed = 0
                for b in 0..<resamples {
                    let range = (b * null.cells)..<((b + 1) * null.cells)
                    let value = cells.value(family, s: UnsafeBufferPointer(rebasing: ns[range]), m: UnsafeBufferPointer(rebasing: nm[range]),
                                            questions: null.questions[b], values: null.values[b])
                    // A relative tolerance: the same error recomputed in another order is not "larger".
                    if value >= theta - 1e-12 * Swift.max(theta, 1e-300) { exceed += 1 }
                }
                tests[family.key] = CalibrationTest(statistic: theta, p: (1 + Double(exceed)) / Double(resamples + 1),
                                                    resamples: resamples, key: family.key)
            }
        }}}}
        return tests
    }

    /// Percentile bootstrap intervals at `level` of metrics that are not binned errors (accuracy,
    /// confidence, Brier, NLL, smECE at the estimate's bandwidth): the resamples `intervals` uses.
    public func percentileIntervals(_ keys: [MetricKey], resamples: Int = 1000, seed: UInt64 = 0, level: Double = 0.95,
                                    progress: (@Sendable (Int, Int) -> Void)? = nil) -> [MetricKey: Interval] {
        guard set.count > 0, resamples > 0 else { return [:] }
        let samples = bootstrapSamples(resamples: resamples, seed: seed, smooth: keys.contains(.smECE), keys: keys, progress: progress)
        return Self.percentile(samples, level: level)
    }

    /// The percentile interval at `level` of each key's resampled values.
    static func percentile(_ samples: [MetricKey: [Double]], level: Double) -> [MetricKey: Interval] {
        var result: [MetricKey: Interval] = [:]
        for (key, values) in samples where !values.isEmpty {
            let sorted = values.sorted()
            result[key] = Interval(lower: quantile(sorted, (1 - level) / 2), upper: quantile(sorted, (1 + level) / 2))
        }
        return result
    }

    /// Intervals of every resampled metric at `level`, and the test of calibration of every binned
    /// error: percentile intervals for accuracy, confidence, Brier, NLL (and smECE at the
    /// estimate's bandwidth, with `smooth`); bin-bounded or norm-bounded intervals for the binned
    /// errors, whose lower end is 0 where their test does not reject at 1 − level. One bootstrap
    /// pass gives the means and the binned errors' cell sums; `progress` counts its resamples and
    /// then the test's (of `2 × resamples`).
    public func intervals(resamples: Int = 1000, seed: UInt64 = 0, level: Double = 0.95, smooth: Bool = false,
                          progress: (@Sendable (Int, Int) -> Void)? = nil) -> IntervalReport {
        var report = IntervalReport()
        guard set.count > 0, resamples > 0 else { return report }
        let step = ProgressCounter.steps(progress, total: 2 * resamples)
        let cells = BinnedCells(self)
        let estimate = cells.estimate(self)
        let boot = cells.bootstrapSums(self, resamples: resamples, seed: seed, smoothSigma: smooth ? smoothBandwidth() : nil,
                                       progress: step)
        var samples: [MetricKey: [Double]] = [:]
        let meanKeys = MetricKey.resampled.filter { !$0.definition.usesBins } + (smooth ? [.smECE] : [])
        for case let m? in boot.means {
            for key in meanKeys { if let value = m[key] { samples[key, default: []].append(value) } }
        }
        report.intervals = Self.percentile(samples, level: level)
        report.tests = calibrationTests(cells, estimate, resamples: resamples, seed: seed, progress: step)
        for (key, deviations) in binnedDeviations(cells, estimate, boot) {
            var interval = deviations.interval(level: level)
            // Every binned error lies in [0, 1].
            interval.upper = Swift.min(Swift.max(interval.upper, 0), 1)
            interval.lower = Swift.min(Swift.max(interval.lower, 0), 1)
            if let test = report.tests[key], test.p >= 1 - level {
                interval.lower = 0
                interval.atBoundary = true
            }
            interval.upper = Swift.max(interval.upper, interval.lower)
            report.intervals[key] = interval
        }
        return report
    }
}

/// A buffer that parallel jobs write at indices each owns alone (no two jobs write one index, and
/// nothing reads it until they have all finished).
struct DisjointWrites<Element>: @unchecked Sendable {
    private let base: UnsafeMutablePointer<Element>
    init(_ buffer: UnsafeMutableBufferPointer<Element>) { base = buffer.baseAddress! }
    subscript(index: Int) -> Element {
        get { base[index] }
        nonmutating set { base[index] = newValue }
    }
}
