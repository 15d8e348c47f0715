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
/// batches of eight run in parallel on every core.
extension CalibrationAnalyzer {
    typealias Lanes = SIMD8<Double>
    static let lanes = 8

    /// Percentile intervals between the (1−level)/2 and (1+level)/2 quantiles of
    /// the resampled values (linear interpolation between order statistics, as
    /// numpy's default). `progress(done, total)` is called as resamples finish.
    public func bootstrap(resamples: Int = 1000, seed: UInt64 = 0, level: Double = 0.95,
                          progress: (@Sendable (Int, Int) -> Void)? = nil) -> [String: Interval] {
        let values = bootstrapSamples(resamples: resamples, seed: seed, progress: progress)
        var intervals: [String: Interval] = [:]
        for (key, samples) in values where !samples.isEmpty {
            let sorted = samples.sorted()
            intervals[key] = Interval(lower: quantile(sorted, (1 - level) / 2), upper: quantile(sorted, (1 + level) / 2))
        }
        return intervals
    }

    /// The metric values of each resample (resamples with no question left out), by key.
    public func bootstrapSamples(resamples: Int, seed: UInt64,
                                 progress: (@Sendable (Int, Int) -> Void)? = nil) -> [String: [Double]] {
        let n = set.count
        guard n > 0, resamples > 0 else { return [:] }
        let plan = BootstrapPlan(self)
        let batches = (resamples + Self.lanes - 1) / Self.lanes
        let results = BatchResults(batches: batches)
        let counter = ProgressCounter()
        DispatchQueue.concurrentPerform(iterations: batches) { batch in
            let first = batch * Self.lanes
            let weights = Self.poissonWeights(n: n, seed: seed, firstResample: first)
            results.store(batch, plan.metrics(weights: weights, analyzer: self))
            if let progress { progress(counter.add(Self.lanes, limit: resamples), resamples) }
        }
        var samples: [String: [Double]] = [:]
        for batch in 0..<batches {
            for (lane, m) in results.value(batch).enumerated() where batch * Self.lanes + lane < resamples && m.n > 0 {
                for key in CalibrationMetrics.keys {
                    if let value = m[key] { samples[key, default: []].append(value) }
                }
            }
        }
        return samples
    }

    /// Weights of resamples `firstResample ..< firstResample + 8`, question-major:
    /// question i's eight weights are bytes `8i ..< 8i + 8`. A weight above 255
    /// (probability ~1e-500 per draw) is capped there.
    static func poissonWeights(n: Int, seed: UInt64, firstResample: Int) -> [UInt8] {
        var weights = [UInt8](repeating: 0, count: n * lanes)
        // P(X <= k) for X ~ Poisson(1), as thresholds on a uniform 64-bit word.
        let thresholds: [UInt64] = {
            var cdf = 0.0, term = 1.0 / 2.718281828459045235360287
            var t: [UInt64] = []
            for k in 0..<20 {
                cdf += term
                term /= Double(k + 1)
                t.append(cdf >= 1 ? .max : UInt64(cdf * 0x1p64))
            }
            return t
        }()
        weights.withUnsafeMutableBufferPointer { w in
            thresholds.withUnsafeBufferPointer { t in
                for lane in 0..<lanes {
                    var random = SeededRandom(seed: resampleSeed(seed, firstResample + lane))
                    var i = lane
                    for _ in 0..<n {
                        let u = random.next()
                        var k = 0
                        while k < t.count - 1, u >= t[k] { k += 1 }
                        w[i] = UInt8(min(k, 255))
                        i += lanes
                    }
                }
            }
        }
        return weights
    }

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
    let topBin: [Int32]
    let hit: [Double]
    /// Per question and class: `class * bins + bin(p_ic)` (uniform K only).
    let classSlot: [Int32]
    /// First position of each class's ascending order with p > ε (TACE keeps those).
    let keptStart: [Int]

    init(_ analyzer: CalibrationAnalyzer) {
        let set = analyzer.set
        n = set.count
        k = set.uniformOptionCount ?? 0
        bins = analyzer.bins
        topBin = analyzer.confidence.map { Int32(equalWidthBin($0, bins: analyzer.bins)) }
        hit = analyzer.correct.map { $0 ? 1 : 0 }
        var slots = [Int32](repeating: 0, count: n * k)
        for index in 0..<(n * k) {
            slots[index] = Int32((index % k) * analyzer.bins + equalWidthBin(set.probabilities[index], bins: analyzer.bins))
        }
        classSlot = slots
        keptStart = analyzer.classRanked.map { ranked in
            ranked.values.firstIndex(where: { $0 > analyzer.epsilon }) ?? ranked.values.count
        }
    }

    /// The metrics of the eight resamples whose weights are `weights`.
    func metrics(weights: [UInt8], analyzer a: CalibrationAnalyzer) -> [CalibrationMetrics] {
        typealias Lanes = CalibrationAnalyzer.Lanes
        let lanes = CalibrationAnalyzer.lanes
        return weights.withUnsafeBufferPointer { w in
            @inline(__always) func load(_ i: Int) -> Lanes {
                let word = UnsafeRawPointer(w.baseAddress! + i * lanes).loadUnaligned(as: SIMD8<UInt8>.self)
                return Lanes(word)
            }
            // Pass 1, questions in order: top-label bins, Brier, NLL; classwise bins.
            var count = [Lanes](repeating: .zero, count: bins), sumConf = count, sumHit = count
            var classCount = [Lanes](repeating: .zero, count: k * bins), classSum = classCount, classHit = classCount
            var total = Lanes.zero, correct = Lanes.zero, confidence = Lanes.zero, brier = Lanes.zero, nll = Lanes.zero
            a.confidence.withUnsafeBufferPointer { conf in
            a.brierTerm.withUnsafeBufferPointer { brierTerm in
            a.nllTerm.withUnsafeBufferPointer { nllTerm in
            a.set.probabilities.withUnsafeBufferPointer { p in
            a.set.labels.withUnsafeBufferPointer { labels in
            count.withUnsafeMutableBufferPointer { count in
            sumConf.withUnsafeMutableBufferPointer { sumConf in
            sumHit.withUnsafeMutableBufferPointer { sumHit in
            classCount.withUnsafeMutableBufferPointer { classCount in
            classSum.withUnsafeMutableBufferPointer { classSum in
            classHit.withUnsafeMutableBufferPointer { classHit in
                for i in 0..<n {
                    let weight = load(i)
                    let b = Int(topBin[i])
                    let c = conf[i]
                    let hits = weight * hit[i]
                    total += weight
                    count[b] += weight
                    sumConf[b] += weight * c
                    sumHit[b] += hits
                    correct += hits
                    confidence += weight * c
                    brier += weight * brierTerm[i]
                    nll += weight * nllTerm[i]
                    if k > 0 {
                        let label = Int(labels[i])
                        for option in 0..<k {
                            let slot = Int(classSlot[i * k + option])
                            classCount[slot] += weight
                            classSum[slot] += weight * p[i * k + option]
                            if option == label { classHit[slot] += weight }
                        }
                    }
                }
            }}}}}}}}}}}
            // Pass 2, the ascending orders: equal-mass bins.
            var walker = EqualMassWalker(bins: bins)
            let equalMass = walker.walk(a.confidenceRanked, from: 0, weights: load, totals: total, weighted: true).error
            var ace = Lanes.zero, tace = Lanes.zero
            for c in 0..<k {
                let ranked = a.classRanked[c]
                let all = walker.walk(ranked, from: 0, weights: load, totals: total, weighted: false, mark: keptStart[c])
                ace += all.error
                let kept = total - all.rankAtMark
                let suffix = walker.walk(ranked, from: keptStart[c], weights: load, totals: kept, weighted: false)
                tace += suffix.error
            }
            // Per lane: the metrics as CalibrationAnalyzer.metrics computes them.
            return (0..<lanes).map { lane in
                var m = CalibrationMetrics()
                m.bins = bins
                let t = total[lane]
                m.n = Int(t)
                guard t > 0 else { return m }
                m.nllFromScores = a.set.scores != nil
                m.accuracy = correct[lane] / t
                m.meanConfidence = confidence[lane] / t
                m.overconfidence = m.meanConfidence! - m.accuracy!
                m.brier = brier[lane] / t
                m.nll = nll[lane] / t
                var ece = 0.0, mce = 0.0, squared = 0.0
                for b in 0..<bins where count[b][lane] > 0 {
                    let gap = abs(sumHit[b][lane] / count[b][lane] - sumConf[b][lane] / count[b][lane])
                    ece += count[b][lane] / t * gap
                    squared += count[b][lane] / t * gap * gap
                    mce = max(mce, gap)
                }
                m.confECE = ece
                m.mce = mce
                m.rmsce = squared.squareRoot()
                m.equalMassECE = equalMass[lane]
                guard k > 0 else { return m }
                var cw = 0.0
                for slot in 0..<(k * bins) where classCount[slot][lane] > 0 {
                    let n = classCount[slot][lane]
                    cw += n / t * abs(classHit[slot][lane] / n - classSum[slot][lane] / n)
                }
                m.cwECE = cw / Double(k)
                m.ace = ace[lane] / Double(k * bins)
                m.tace = tace[lane] / Double(k * bins)
                return m
            }
        }
    }
}

/// Equal-mass binning of eight weighted resamples along one ascending order,
/// with the rule of `CalibrationAnalyzer.equalMassError`: the j-th kept copy
/// (0-based) goes to bin floor(j·B/total). Sums run in SIMD lanes; an element
/// that crosses a lane's bin boundary is split lane by lane.
struct EqualMassWalker {
    typealias Lanes = CalibrationAnalyzer.Lanes
    let bins: Int
    private var boundaries: [[Double]] = []

    init(bins: Int) { self.bins = bins }

    /// Returns each lane's error (`Σ (n_r/total)|acc − conf|` when `weighted`, else
    /// `Σ |acc − conf|` over non-empty bins) and the rank reached at position `mark`.
    mutating func walk(_ ranked: RankedValues, from start: Int, weights load: (Int) -> Lanes, totals: Lanes,
                       weighted: Bool, mark: Int = -1) -> (error: Lanes, rankAtMark: Lanes) {
        let lanes = CalibrationAnalyzer.lanes
        // First rank of each bin per lane: ceil(r·total/B), exactly, in integers.
        boundaries = (0..<lanes).map { lane in
            let total = Int(totals[lane].rounded())
            return (0...bins).map { Double(($0 * total + bins - 1) / bins) }
        }
        var error = Lanes.zero, rank = Lanes.zero, rankAtMark = Lanes.zero
        var binCount = Lanes.zero, binValue = Lanes.zero, binHits = Lanes.zero
        var bin = [Int](repeating: 0, count: lanes)
        var next = Lanes((0..<lanes).map { boundaries[$0][1] })
        func close(_ lane: Int) {
            guard binCount[lane] > 0 else { return }
            let gap = abs(binHits[lane] / binCount[lane] - binValue[lane] / binCount[lane])
            error[lane] += weighted ? binCount[lane] / totals[lane] * gap : gap
            binCount[lane] = 0; binValue[lane] = 0; binHits[lane] = 0
        }
        ranked.values.withUnsafeBufferPointer { values in
            ranked.hits.withUnsafeBufferPointer { hits in
                ranked.order.withUnsafeBufferPointer { order in
                    for j in start..<values.count {
                        if j == mark { rankAtMark = rank }
                        let w = load(Int(order[j]))
                        let v = values[j], y: Double = hits[j] ? 1 : 0
                        let reached = rank + w
                        if all(reached .<= next) && all(rank .< next) {
                            binCount += w; binValue += w * v; binHits += w * y
                            rank = reached
                            continue
                        }
                        for lane in 0..<lanes {
                            var copies = w[lane]
                            if copies == 0 { continue }
                            while copies > 0 {
                                while bin[lane] < bins, rank[lane] >= boundaries[lane][bin[lane] + 1] {
                                    close(lane)
                                    bin[lane] += 1
                                }
                                let room = bin[lane] < bins ? boundaries[lane][bin[lane] + 1] - rank[lane] : copies
                                let inBin = min(copies, room)
                                binCount[lane] += inBin; binValue[lane] += inBin * v; binHits[lane] += inBin * y
                                rank[lane] += inBin
                                copies -= inBin
                            }
                            next[lane] = bin[lane] < bins ? boundaries[lane][bin[lane] + 1] : .infinity
                        }
                    }
                    if mark >= values.count { rankAtMark = rank }
                }
            }
        }
        for lane in 0..<lanes { close(lane) }
        return (error, rankAtMark)
    }
}

/// Per-batch results that parallel jobs fill, one slot each.
final class BatchResults: @unchecked Sendable {
    private var slots: [[CalibrationMetrics]]
    private let lock = NSLockLike()
    init(batches: Int) { slots = Array(repeating: [], count: batches) }
    func store(_ index: Int, _ value: [CalibrationMetrics]) { lock.locked { slots[index] = value } }
    func value(_ index: Int) -> [CalibrationMetrics] { lock.locked { slots[index] } }
}

/// A shared count of finished work, for progress reports.
final class ProgressCounter: @unchecked Sendable {
    private var done = 0
    private let lock = NSLockLike()
    func add(_ amount: Int, limit: Int) -> Int { lock.locked { done = min(done + amount, limit); return done } }
}
