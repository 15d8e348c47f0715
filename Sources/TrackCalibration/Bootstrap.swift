import Dispatch

/// The percentile bootstrap of every metric, eight resamples at a time.
///
/// Resampling scheme (the Poisson bootstrap): in resample b, question i counts
/// w_bi ~ Poisson(1) times, drawn from its own xoshiro256** stream seeded
/// through SplitMix64 with `seed` and b, one draw per question in question
/// order. Each resample is therefore independent of the others and of how
/// many cores compute it, so a seed names the same interval on every machine;
/// the total weight of a resample varies around N (the metrics divide by it),
/// which for N in the hundreds and up is the multinomial bootstrap to within
/// its own Monte-Carlo noise. A resample in which every weight is 0 (only
/// likely for a handful of questions) has no value and is left out.
///
/// Why it is fast: everything that does not depend on the weights (top labels,
/// bins, Brier and NLL terms, the stable sort orders of the equal-mass bins)
/// is computed once; eight resamples share one pass over the questions, with
/// their weights side by side in one 8-byte word and their sums in SIMD lanes;
/// batches of eight run in parallel on every core. `intervals` (BinnedIntervals.swift)
/// draws a batch's weights once for the means, smECE and the binned errors' cells.
extension CalibrationAnalyzer {
    typealias Lanes = SIMD8<Double>
    static let lanes = 8

    /// Every resampled metric's interval at `level` (`intervals`, BinnedIntervals.swift:
    /// percentile for accuracy, confidence, Brier, NLL and smECE; bounded for the binned errors).
    /// `progress(done, total)` is called as resamples finish.
    public func bootstrap(resamples: Int = 1000, seed: UInt64 = 0, level: Double = 0.95, smooth: Bool = false,
                          progress: (@Sendable (Int, Int) -> Void)? = nil) -> [MetricKey: Interval] {
        intervals(resamples: resamples, seed: seed, level: level, smooth: smooth, progress: progress).intervals
    }

    /// The metric values of each resample (resamples with no question left out), by key.
    public func bootstrapSamples(resamples: Int, seed: UInt64, smooth: Bool = false, keys: [MetricKey] = MetricKey.resampled + [.smECE],
                                 progress: (@Sendable (Int, Int) -> Void)? = nil) -> [MetricKey: [Double]] {
        var samples: [MetricKey: [Double]] = [:]
        let binned = keys.contains { $0.definition.usesBins }
        for case let m? in bootstrapResamples(resamples: resamples, seed: seed, smooth: smooth, binned: binned, progress: progress) {
            for key in keys {
                if let value = m[key] { samples[key, default: []].append(value) }
            }
        }
        return samples
    }

    /// Each resample's metrics, in resample order (nil for a resample that left every
    /// question out): what paired comparisons line up, since two analyzers of the same
    /// questions in the same order draw the same weights for the same seed. smECE is
    /// recomputed at the estimate's bandwidth (the bandwidth search is not resampled), with `smooth`.
    /// Without `binned` only the means (accuracy, confidence, Brier, NLL) are resampled: the
    /// binned errors' intervals come from their cells (`intervals`), not from these resamples.
    public func bootstrapResamples(resamples: Int, seed: UInt64, smooth: Bool = false, binned: Bool = true,
                                   progress: (@Sendable (Int, Int) -> Void)? = nil) -> [CalibrationMetrics?] {
        let n = set.count
        guard n > 0, resamples > 0 else { return [] }
        let plan = BootstrapPlan(self, binned: binned)
        let batches = (resamples + Self.lanes - 1) / Self.lanes
        let results = Slots<[CalibrationMetrics]>(repeating: [], count: batches)
        let step = ProgressCounter.steps(progress, total: resamples)
        let sigma = smooth ? smoothBandwidth() : 0
        let terms = smooth ? self.terms : nil
        DispatchQueue.concurrentPerform(iterations: batches) { batch in
            let first = batch * Self.lanes
            let weights = Self.poissonWeights(n: n, seed: seed, firstResample: first)
            var metrics = plan.metrics(weights: weights, analyzer: self)
            if let terms {
                // smECE of each resample at the estimate's bandwidth, the eight lanes in one pass.
                let grid = SmoothGridLanes(sigma: sigma)
                weights.withUnsafeBufferPointer { w in
                    for i in 0..<n {
                        grid.add(prediction: terms.confidence[i], outcome: terms.correct[i] ? 1 : 0, weights: Self.laneWeights(w, i))
                    }
                }
                for lane in metrics.indices where first + lane < resamples && metrics[lane].n > 0 {
                    metrics[lane].smECE = grid.value(lane: lane)
                    metrics[lane].smECEBandwidth = sigma
                }
            }
            results.store(batch, metrics)
            step?(Self.lanes)
        }
        return (0..<resamples).map { b in
            let m = results.value(b / Self.lanes)[b % Self.lanes]
            return m.n > 0 ? m : nil
        }
    }

    /// Question i's eight weights: bytes `8i ..< 8i + 8` of `poissonWeights`.
    @inline(__always)
    static func laneWeightBytes(_ weights: UnsafeBufferPointer<UInt8>, _ i: Int) -> SIMD8<UInt8> {
        UnsafeRawPointer(weights.baseAddress! + i * lanes).loadUnaligned(as: SIMD8<UInt8>.self)
    }

    /// Question i's eight weights as doubles.
    @inline(__always)
    static func laneWeights(_ weights: UnsafeBufferPointer<UInt8>, _ i: Int) -> Lanes {
        // Exactly: each byte widened into the mantissa of 2^52 and 2^52 subtracted, lane-wise.
        let wide = SIMD8<UInt64>(truncatingIfNeeded: laneWeightBytes(weights, i))
        return unsafeBitCast(wide | SIMD8(repeating: 0x4330_0000_0000_0000), to: Lanes.self) - 0x1p52
    }

    /// smECE's bandwidth on the estimate (relplot's search, shared with `metrics(smooth:)`),
    /// at which resamples are scored.
    func smoothBandwidth() -> Double {
        derived.topLabelSmoothECE {
            let terms = self.terms
            return terms.confidence.withUnsafeBufferPointer { confidence in
                terms.correct.withUnsafeBufferPointer { SmoothECE.automatic(TopLabelPoints(confidence: confidence, correct: $0)) }
            }
        }.sigma
    }

    /// Weights of resamples `firstResample ..< firstResample + 8`, question-major:
    /// question i's eight weights are bytes `8i ..< 8i + 8` (at most 20: P(w > 20) < 2⁻⁶⁴).
    ///
    /// Each output of a resample's stream gives four questions their weights: question i reads
    /// the 16-bit quarter i mod 4 (lowest first) of output ⌊i/4⌋ as the top bits of a uniform
    /// 64-bit word and takes the inverse CDF of Poisson(1) at it (`poissonThresholds`). Where
    /// the quarter alone decides the weight (every quarter but the ~12 that straddle a step of
    /// the CDF) a table gives it; otherwise the word's lower 48 bits are the top of the next
    /// output of the resample's refinement stream (`refinementSeed`). Each weight is therefore
    /// exactly the inverse CDF at a uniform 64-bit word, at a quarter of a draw per question.
    /// The eight resamples' streams advance together in SIMD lanes (`SeededRandomLanes`).
    public static func poissonWeights(n: Int, seed: UInt64, firstResample: Int) -> [UInt8] {
        var weights = [UInt8](repeating: 0, count: n * lanes)
        let t = poissonThresholds
        var streams = SeededRandomLanes(seeds: (0..<lanes).map { resampleSeed(seed, firstResample + $0) })
        var refinements: [SeededRandom] = []
        weights.withUnsafeMutableBytes { w in
        poissonQuarterWeights.withUnsafeBufferPointer { table in
            for group in Swift.stride(from: 0, to: n, by: 4) {
                let x = streams.next()
                for q in 0..<Swift.min(4, n - group) {
                    let top = (x &>> UInt64(16 * q)) & 0xFFFF
                    var word: UInt64 = 0
                    for lane in 0..<lanes { word |= UInt64(table[Int(top[lane])]) << UInt64(8 * lane) }
                    if word & 0x8080_8080_8080_8080 != 0 {
                        // A quarter straddles a step (0xFF; a weight is at most 20): the lower bits decide.
                        if refinements.isEmpty {
                            refinements = (0..<lanes).map { SeededRandom(seed: refinementSeed(seed, firstResample + $0)) }
                        }
                        for lane in 0..<lanes where (word >> UInt64(8 * lane)) & 0xFF == 0xFF {
                            let u = top[lane] << 48 | refinements[lane].next() >> 16
                            var k = 0
                            while k < t.count, u >= t[k] { k += 1 }
                            word = word & ~(0xFF << UInt64(8 * lane)) | UInt64(k) << UInt64(8 * lane)
                        }
                    }
                    w.storeBytes(of: word.littleEndian, toByteOffset: (group + q) * lanes, as: UInt64.self)
                }
            }
        }}
        return weights
    }

    /// The seed of resample b's refinement stream (the lower bits of a weight whose quarter
    /// straddles a step of the CDF).
    static func refinementSeed(_ seed: UInt64, _ resample: Int) -> UInt64 {
        resampleSeed(seed ^ 0x2545_F491_4F6C_DD1D, resample)
    }

    /// P(X <= k) for X ~ Poisson(1), k = 0, 1, …, as thresholds on a uniform 64-bit word.
    static let poissonThresholds: [UInt64] = {
        var cdf = 0.0, term = 1.0 / 2.718281828459045235360287
        var t: [UInt64] = []
        for k in 0..<20 {
            cdf += term
            term /= Double(k + 1)
            t.append(cdf >= 1 ? .max : UInt64(cdf * 0x1p64))
        }
        return t
    }()

    /// Per 16-bit top quarter h of a uniform 64-bit word, the Poisson(1) weight every word
    /// starting with h has (the inverse CDF at `poissonThresholds`), or 0xFF where a threshold
    /// falls inside h's words and the lower bits decide.
    static let poissonQuarterWeights: [UInt8] = {
        let t = poissonThresholds
        func weight(_ u: UInt64) -> Int { t.firstIndex { u < $0 } ?? t.count }
        return (0..<(1 << 16)).map { (h: Int) -> UInt8 in
            let low = UInt64(h) << 48, high = low | (1 << 48 - 1)
            let k = weight(low)
            return k == weight(high) ? UInt8(k) : 0xFF
        }
    }()

    /// The seed of resample b's stream: SplitMix64 of (seed, b).
    static func resampleSeed(_ seed: UInt64, _ resample: Int) -> UInt64 {
        var z = seed &+ 0x9E37_79B9_7F4A_7C15 &* (UInt64(resample) &+ 1)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// What the resamples share: each question's bins and terms, computed once.
struct BootstrapPlan {
    let n: Int
    let k: Int
    let bins: Int
    /// The questions' top-label terms (the analyzer's, made once).
    let terms: CalibrationAnalyzer.QuestionTerms
    let hit: [Double]
    /// First position of each class's ascending order with p > ε (TACE keeps those).
    let keptStart: [Int]
    /// Equal-mass passes work on blocks of `blockSize` consecutive positions of an
    /// ascending order: per question, its block in the confidence order (index 0)
    /// and in each class's order (1 + c).
    let blockSize: Int
    let blockCount: Int
    let orders: Int
    /// Question-major: `blockOf[i * orders + o]` is question i's block in order o.
    let blockOf: [Int32]
    /// Per order, the first position of each equal-width bin (`bins + 1` entries).
    let binStart: [[Int]]
    /// Whether the binned errors are resampled too (else only the means, and no orders are laid out).
    let binned: Bool

    init(_ analyzer: CalibrationAnalyzer, binned: Bool = true) {
        let set = analyzer.set
        n = set.count
        k = set.uniformOptionCount ?? 0
        bins = analyzer.bins
        terms = analyzer.terms
        hit = terms.correct.map { $0 ? 1 : 0 }
        self.binned = binned
        guard binned else {
            (keptStart, blockSize, blockCount, orders, blockOf, binStart) = ([], 1, 0, 0, [], [])
            return
        }
        keptStart = analyzer.classRanked.map { ranked in
            ranked.values.firstIndex(where: { $0 > analyzer.epsilon }) ?? ranked.values.count
        }
        // About a thousand blocks: their sums stay in cache, and a bin boundary
        // costs one block walked element by element.
        var size = 16
        while size * 1024 < n { size *= 2 }
        blockSize = size
        blockCount = (n + size - 1) / size
        let ranked = [analyzer.confidenceRanked] + analyzer.classRanked
        orders = ranked.count
        var blocks = [Int32](repeating: 0, count: n * ranked.count)
        for (o, order) in ranked.enumerated() {
            for (position, question) in order.order.enumerated() { blocks[Int(question) * ranked.count + o] = Int32(position / size) }
        }
        blockOf = blocks
        binStart = ranked.map { order in
            var starts = [Int](repeating: order.values.count, count: analyzer.bins + 1)
            var position = 0
            for b in 0..<analyzer.bins {
                while position < order.values.count, equalWidthBin(order.values[position], bins: analyzer.bins) < b { position += 1 }
                starts[b] = position
            }
            return starts
        }
    }

    /// The metrics of the eight resamples whose weights are `weights`.
    func metrics(weights: [UInt8], analyzer a: CalibrationAnalyzer) -> [CalibrationMetrics] {
        typealias Lanes = CalibrationAnalyzer.Lanes
        let lanes = CalibrationAnalyzer.lanes
        return weights.withUnsafeBufferPointer { w in
            @inline(__always) func load(_ i: Int) -> Lanes {
                CalibrationAnalyzer.laneWeights(w, i)
            }
            guard binned else { return means(load, analyzer: a) }
            // Pass 1, questions in order: Brier and NLL, and per order (confidence, then
            // each class) and block of that order: count, Σ w·value, Σ w·hit, at slot
            // 3·(order·blockCount + block). Every binned sum is then a sum of blocks.
            var brier = Lanes.zero, nll = Lanes.zero
            var pooledCount = [Lanes](repeating: .zero, count: bins), pooledSum = pooledCount, pooledHit = pooledCount
            var blockSums = [Lanes](repeating: .zero, count: 3 * orders * blockCount)
            terms.confidence.withUnsafeBufferPointer { conf in
            terms.brier.withUnsafeBufferPointer { brierTerm in
            terms.nll.withUnsafeBufferPointer { nllTerm in
            a.set.probabilities.withUnsafeBufferPointer { p in
            a.set.labels.withUnsafeBufferPointer { labels in
            blockSums.withUnsafeMutableBufferPointer { sums in
            blockOf.withUnsafeBufferPointer { blockOf in
            hit.withUnsafeBufferPointer { hit in
                let stride = 3 * blockCount
                for i in 0..<n {
                    let weight = load(i)
                    brier += weight * brierTerm[i]
                    nll += weight * nllTerm[i]
                    guard k == 0 else { continue }
                    // Mixed option counts: the pooled bins directly (with one K they come from the class orders).
                    let start = a.set.offsets[i], label = Int(labels[i])
                    for option in 0..<(a.set.offsets[i + 1] - start) {
                        let value = p[start + option]
                        let bin = equalWidthBin(value, bins: bins)
                        pooledCount[bin] += weight
                        pooledSum[bin] += weight * value
                        if option == label { pooledHit[bin] += weight }
                    }
                }
                // One order at a time, so that its block sums stay in cache.
                for order in 0..<orders {
                    let base = order * stride
                    for i in 0..<n {
                        let weight = load(i)
                        let b = base + 3 * Int(blockOf[i * orders + order])
                        sums[b] += weight
                        if order == 0 {
                            sums[b + 1] += weight * conf[i]
                            sums[b + 2] += weight * hit[i]
                        } else {
                            sums[b + 1] += weight * p[i * k + order - 1]
                            if Int(labels[i]) == order - 1 { sums[b + 2] += weight }
                        }
                    }
                }
            }}}}}}}}
            /// Sums over positions `range` of an order: whole blocks from their sums, the rest element by element.
            func rangeSums(_ order: Int, _ range: Range<Int>) -> (count: Lanes, value: Lanes, hits: Lanes) {
                let ranked = order == 0 ? a.confidenceRanked : a.classRanked[order - 1]
                var count = Lanes.zero, value = Lanes.zero, hits = Lanes.zero
                var j = range.lowerBound
                while j < range.upperBound {
                    if j % blockSize == 0, j + blockSize <= range.upperBound {
                        let slot = 3 * (order * blockCount + j / blockSize)
                        count += blockSums[slot]
                        value += blockSums[slot + 1]
                        hits += blockSums[slot + 2]
                        j += blockSize
                    } else {
                        let weight = load(Int(ranked.order[j]))
                        count += weight
                        value += weight * ranked.values[j]
                        if ranked.hits[j] { hits += weight }
                        j += 1
                    }
                }
                return (count, value, hits)
            }
            // Equal-width bins are ranges of the ascending orders.
            var count = [Lanes](), sumConf = [Lanes](), sumHit = [Lanes]()
            for b in 0..<bins {
                let sums = rangeSums(0, binStart[0][b]..<binStart[0][b + 1])
                count.append(sums.count); sumConf.append(sums.value); sumHit.append(sums.hits)
            }
            var classCount = [Lanes](), classSum = [Lanes](), classHit = [Lanes]()
            for c in 0..<k {
                for b in 0..<bins {
                    let sums = rangeSums(1 + c, binStart[1 + c][b]..<binStart[1 + c][b + 1])
                    classCount.append(sums.count); classSum.append(sums.value); classHit.append(sums.hits)
                }
            }
            for c in 0..<k {
                for b in 0..<bins {
                    pooledCount[b] += classCount[c * bins + b]
                    pooledSum[b] += classSum[c * bins + b]
                    pooledHit[b] += classHit[c * bins + b]
                }
            }
            let total = count.reduce(.zero, +), correct = sumHit.reduce(.zero, +), confidence = sumConf.reduce(.zero, +)
            // Pass 2, the ascending orders: equal-mass bins from the block sums, lane by lane.
            func walk(_ order: Int, from start: Int, totals: Lanes, weighted: Bool) -> Lanes {
                let ranked = order == 0 ? a.confidenceRanked : a.classRanked[order - 1]
                var error = Lanes.zero
                for lane in 0..<lanes {
                    error[lane] = EqualMassWalker.walk(ranked, from: start, lane: lane, weights: w, blockSize: blockSize,
                                                       blockSums: blockSums, first: 3 * order * blockCount, bins: bins, total: totals[lane],
                                                       weighted: weighted)
                }
                return error
            }
            let equalMass = walk(0, from: 0, totals: total, weighted: true)
            var ace = Lanes.zero, tace = Lanes.zero
            for c in 0..<k {
                ace += walk(1 + c, from: 0, totals: total, weighted: false)
                // TACE keeps the values above ε: a suffix of the order, whose weight is the total less the prefix's.
                var prefix = Lanes.zero
                let start = keptStart[c]
                for block in 0..<(start / blockSize) { prefix += blockSums[3 * ((1 + c) * blockCount + block)] }
                let ranked = a.classRanked[c]
                for j in (start / blockSize * blockSize)..<start { prefix += load(Int(ranked.order[j])) }
                tace += walk(1 + c, from: start, totals: total - prefix, weighted: false)
            }
            // Per lane: the metrics as CalibrationAnalyzer.metrics computes them.
            return (0..<lanes).map { lane in
                var m = LaneMeans(total: total, correct: correct, confidence: confidence, brier: brier, nll: nll)
                    .metrics(lane, bins: bins, nllFromScores: a.set.scores != nil)
                let t = total[lane]
                guard t > 0 else { return m }
                m.setTopLabelErrors(total: t, bins: bins) { BinTotal(count: count[$0][lane], hits: sumHit[$0][lane], sum: sumConf[$0][lane]) }
                m.equalMassECE = equalMass[lane]
                m.setPooledError(bins: bins) { BinTotal(count: pooledCount[$0][lane], hits: pooledHit[$0][lane], sum: pooledSum[$0][lane]) }
                guard k > 0 else { return m }
                m.setClasswiseError(total: t, classes: k, bins: bins) { BinTotal(count: classCount[$0][lane], hits: classHit[$0][lane], sum: classSum[$0][lane]) }
                m.ace = ace[lane] / Double(k)
                m.tace = tace[lane] / Double(k)
                return m
            }
        }
    }

    /// The means of the eight resamples (accuracy, confidence, Brier, NLL): one pass, no orders.
    private func means(_ load: (Int) -> CalibrationAnalyzer.Lanes, analyzer a: CalibrationAnalyzer) -> [CalibrationMetrics] {
        var sums = LaneMeans()
        for i in 0..<n { sums.add(load(i), hit: hit[i], confidence: terms.confidence[i], brier: terms.brier[i], nll: terms.nll[i]) }
        return (0..<CalibrationAnalyzer.lanes).map { sums.metrics($0, bins: bins, nllFromScores: a.set.scores != nil) }
    }
}

/// The weighted sums eight resamples' means come from (accuracy, confidence, Brier, NLL),
/// lane by lane, questions added in order.
struct LaneMeans {
    typealias Lanes = CalibrationAnalyzer.Lanes
    var total = Lanes.zero, correct = Lanes.zero, confidence = Lanes.zero, brier = Lanes.zero, nll = Lanes.zero

    @inline(__always)
    mutating func add(_ weight: Lanes, hit: Double, confidence c: Double, brier b: Double, nll l: Double) {
        total += weight
        correct += weight * hit
        addTerms(weight, confidence: c, brier: b, nll: l)
    }

    /// The sums of the terms alone, for a pass that counts `total` and `correct` (integers,
    /// exact in any order) itself.
    @inline(__always)
    mutating func addTerms(_ weight: Lanes, confidence c: Double, brier b: Double, nll l: Double) {
        confidence += weight * c
        brier += weight * b
        nll += weight * l
    }

    /// One lane's means (n = 0, nothing else set, when the resample left every question out).
    func metrics(_ lane: Int, bins: Int, nllFromScores: Bool) -> CalibrationMetrics {
        var m = CalibrationMetrics()
        m.bins = bins
        let t = total[lane]
        m.n = Int(t)
        guard t > 0 else { return m }
        m.nllFromScores = nllFromScores
        m.setMeans(total: t, correct: correct[lane], confidence: confidence[lane], brier: brier[lane], nll: nll[lane])
        return m
    }
}

/// Equal-mass binning of one weighted resample along one ascending order, with the
/// rule of `CalibrationAnalyzer.equalMassError`: ranks over the kept copies, a tie group
/// (equal values, so also every copy of one question) whole in the bin of its first rank.
/// Whole blocks of the order are added from their sums when they end strictly inside the
/// current bin (no bin decision falls in them); any other block is walked element by element.
enum EqualMassWalker {
    static func walk(_ ranked: RankedValues, from start: Int, lane: Int, weights: UnsafeBufferPointer<UInt8>,
                     blockSize: Int, blockSums: [CalibrationAnalyzer.Lanes], first: Int, bins: Int, total: Double,
                     weighted: Bool) -> Double {
        let lanes = CalibrationAnalyzer.lanes
        let count = ranked.order.count
        guard start < count, total > 0 else { return 0 }
        let totalCount = Int(total.rounded())
        var boundaries = [Double](repeating: 0, count: bins + 1)
        for r in 0...bins { boundaries[r] = Double((r * totalCount + bins - 1) / bins) }
        var error = 0.0, rank = 0.0, nonEmpty = 0
        var binCount = 0.0, binValue = 0.0, binHits = 0.0
        var bin = 0
        var previous = -Double.infinity
        func close() {
            guard binCount > 0 else { return }
            let gap = abs(binHits / binCount - binValue / binCount)
            error += weighted ? binCount / total * gap : gap
            nonEmpty += 1
            binCount = 0; binValue = 0; binHits = 0
        }
        func elements(_ range: Range<Int>) {
            for j in range {
                let copies = Double(weights[Int(ranked.order[j]) * lanes + lane])
                if copies == 0 { continue }
                let v = ranked.values[j]
                if v != previous {
                    while rank >= boundaries[bin + 1] { close(); bin += 1 }
                    previous = v
                }
                binCount += copies; binValue += copies * v; binHits += ranked.hits[j] ? copies : 0
                rank += copies
            }
        }
        var block = start / blockSize
        let blockStart = block * blockSize
        if blockStart < start {
            elements(start..<min(blockStart + blockSize, count))
            block += 1
        }
        while block * blockSize < count {
            let range = (block * blockSize)..<min((block + 1) * blockSize, count)
            let c = blockSums[first + 3 * block][lane]
            if c > 0 {
                if rank + c < boundaries[bin + 1] {
                    binCount += c
                    binValue += blockSums[first + 3 * block + 1][lane]
                    binHits += blockSums[first + 3 * block + 2][lane]
                    rank += c
                } else {
                    elements(range)
                }
            }
            block += 1
        }
        close()
        return weighted || nonEmpty == 0 ? error : error / Double(nonEmpty)
    }
}

/// A shared count of finished work, for progress reports.
final class ProgressCounter: @unchecked Sendable {
    private var done = 0
    private let lock = NSLockLike()
    func add(_ amount: Int, limit: Int) -> Int { lock.locked { done = min(done + amount, limit); return done } }
    /// A report of `(done, total)` to call with each piece of work finished (nil without `progress`).
    static func steps(_ progress: (@Sendable (Int, Int) -> Void)?, total: Int) -> (@Sendable (Int) -> Void)? {
        guard let progress else { return nil }
        let counter = ProgressCounter()
        return { amount in progress(counter.add(amount, limit: total), total) }
    }

    /// The count before this call, then one more (a job queue's next job).
    func take() -> Int { lock.locked { done += 1; return done - 1 } }
}
