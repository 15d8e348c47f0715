import Testing
@testable import TrackCalibration

/// Issue 27: the analyzer keeps only the run (probabilities, labels, ids) per question and
/// sorts each column once as 64-bit keys (value bits, hit in the lowest bit). Its unit-weight
/// values must be bit-identical to the ones kept-per-question terms and stable orders give,
/// which the weighted pass (`metrics(weights:)`, every weight 1) still computes that way.
@Suite struct CompactLayoutTests {
    /// Probabilities on a coarse grid, so that ties (within and across questions) are everywhere.
    static func tiedSet(n: Int, k: Int, seed: UInt64) -> PredictionSet {
        var random = SeededRandom(seed: seed)
        var set = PredictionSet()
        for i in 0..<n {
            var raw = (0..<k).map { _ in Double(1 + random.nextInt(below: 4)) }
            let total = raw.reduce(0, +)
            raw = raw.map { $0 / total }
            set.append(id: Int64(i), label: random.nextInt(below: k), probabilities: raw)
        }
        return set
    }

    @Test(arguments: [(400, 4, UInt64(1)), (257, 3, 2), (64, 2, 3), (1, 4, 4)])
    func keyedSortsEqualTheStableOrdersBitForBit(n: Int, k: Int, seed: UInt64) {
        let set = Self.tiedSet(n: n, k: k, seed: seed)
        for bins in [1, 7, 10, 15] {
            let analyzer = CalibrationAnalyzer(set, bins: bins, epsilon: 0.2)
            let unit = analyzer.metrics()
            let ones = [UInt32](repeating: 1, count: n)
            let weighted = ones.withUnsafeBufferPointer { analyzer.metrics(weights: $0) }
            for key in MetricKey.resampled {
                // Bit-identical, not merely close: the same sums in the same order.
                #expect(unit[key]?.bitPattern == weighted[key]?.bitPattern, "\(key) bins \(bins): \(unit[key] ?? .nan) vs \(weighted[key] ?? .nan)")
            }
        }
    }

    @Test func twoHalvesJoinedEqualOneBuilder() {
        let set = Self.tiedSet(n: 300, k: 4, seed: 9)
        let whole = CalibrationAnalyzer(set)
        var first = CalibrationAnalyzer.Builder(), second = CalibrationAnalyzer.Builder()
        set.probabilities.withUnsafeBufferPointer { p in
            for i in 0..<set.count {
                let row = UnsafeBufferPointer(rebasing: p[set.offsets[i]..<set.offsets[i + 1]])
                if i < 137 {
                    first.append(id: set.questionIDs[i], label: Int(set.labels[i]), probabilities: row, scores: nil)
                } else {
                    second.append(id: set.questionIDs[i], label: Int(set.labels[i]), probabilities: row, scores: nil)
                }
            }
        }
        first.append(contentsOf: second)
        let joined = first.build().metrics(smooth: true), reference = whole.metrics(smooth: true)
        for key in MetricKey.allCases {
            #expect(joined[key]?.bitPattern == reference[key]?.bitPattern, "\(key)")
        }
    }

    /// Offsets are not stored while every question has K options, and become exact starts
    /// the moment one differs, through appends of single questions and of whole sets.
    @Test func offsetsFollowTheOptionCounts() {
        var random = SeededRandom(seed: 5)
        for trial in 0..<40 {
            var set = PredictionSet(), expected = [0]
            func add(_ count: Int, to set: inout PredictionSet, _ expected: inout [Int]) {
                let p = [Double](repeating: 1 / Double(count), count: count)
                set.append(label: 0, probabilities: p)
                expected.append(expected.last! + count)
            }
            for _ in 0..<(1 + random.nextInt(below: 6)) {
                add(trial % 3 == 0 ? 4 : 2 + random.nextInt(below: 2), to: &set, &expected)
            }
            var other = PredictionSet(), otherExpected = [0]
            for _ in 0..<random.nextInt(below: 5) {
                add(trial % 2 == 0 ? 4 : 2 + random.nextInt(below: 3), to: &other, &otherExpected)
            }
            set.append(contentsOf: other)
            expected += otherExpected.dropFirst().map { $0 + expected.last! }
            #expect(set.offsets.array(questions: set.count) == expected, "trial \(trial)")
            for i in 0..<set.count {
                #expect(set.offsets[i] == expected[i] && set.optionCount(i) == expected[i + 1] - expected[i])
            }
            let counts = Set(zip(expected.dropFirst(), expected).map { $0 - $1 })
            #expect(set.uniformOptionCount == (counts.count == 1 ? counts.first : nil))
        }
    }
}

/// Issue 27: the bootstrap draws eight resamples' streams in SIMD lanes; each lane must be
/// exactly the scalar stream its seed names, so a seed keeps naming the same interval.
@Suite struct LaneStreamTests {
    @Test func lanesEqualTheScalarStreams() {
        let seeds: [UInt64] = [0, 1, 42, .max, 0x9E37_79B9_7F4A_7C15, 7, 8, 12345]
        var lanes = SeededRandomLanes(seeds: seeds)
        var scalars = seeds.map { SeededRandom(seed: $0) }
        for _ in 0..<2000 {
            let words = lanes.next()
            for j in 0..<8 { #expect(words[j] == scalars[j].next()) }
        }
    }

    /// The calibration test's labels by the documented rule, written out with scalar streams:
    /// question 2t's uniform is the top 31 bits of the low half of its stream's output t, 2t + 1's
    /// of the high half; the drawn option is the number of steps round(2³¹ · cumulative / total)
    /// (capped at 2³¹ − 1; all but the last option's) the uniform reaches. The redrawn hits per
    /// cell equal `consistencySums`' (options of probability 0 and 1 included).
    @Test func testLabelsFollowTheDocumentedRule() {
        var set = PredictionSet()
        var random = SeededRandom(seed: 17)
        for i in 0..<301 {
            var p = Probabilities.softmax((0..<4).map { _ in random.nextGaussian() * 2 })
            if i % 7 == 0 { p = [0, 0.5, 0.5, 0] }
            if i % 11 == 0 { p = [1, 0, 0, 0] }
            set.append(id: Int64(i), label: random.nextInt(below: 4), probabilities: p)
        }
        let analyzer = CalibrationAnalyzer(set, bins: 5)
        let cells = BinnedCells(analyzer)
        let estimate = cells.estimate(analyzer)
        let seed: UInt64 = 4, first = 8
        let null = cells.consistencySums(analyzer, estimate, resamples: 16, seed: seed)
        for lane in 0..<8 {
            var stream = SeededRandom(seed: CalibrationAnalyzer.resampleSeed(seed ^ 0x5EED_C0A5_1573_3E57, first + lane))
            var hits = [Double](repeating: 0, count: cells.cellCount)
            var word: UInt64 = 0
            for i in 0..<set.count {
                if i % 2 == 0 { word = stream.next() }
                let u = Int64((i % 2 == 0 ? word & 0xFFFF_FFFF : word >> 32) >> 1)
                let p = Array(set.probabilities[(4 * i)..<(4 * i + 4)])
                let total = p.reduce(0, +)
                var drawn = 0, cumulative = 0.0
                for j in 0..<3 {
                    cumulative += p[j]
                    if u >= Int64(min((cumulative / total * 0x1p31).rounded(), 0x1p31 - 1)) { drawn += 1 }
                }
                if drawn == Int(cells.top[i]) { for slot in 0..<2 { hits[Int(cells.topCells[2 * i + slot])] += 1 } }
                for slot in 0..<cells.perValue {
                    let c = Int(cells.valueCells[(4 * i + drawn) * cells.perValue + slot])
                    if c >= 0 { hits[c] += 1 }
                }
            }
            cells.pooledFromClasses { pooled, cell in hits[pooled] += hits[cell] }
            for c in 0..<cells.cellCount {
                #expect(null.sums[(first + lane) * cells.cellCount + c] == hits[c] - estimate.valueSums[c], "lane \(lane) cell \(c)")
            }
        }
    }

    /// The documented rule, written out without the table or SIMD lanes: question i's weight is
    /// the inverse CDF of Poisson(1) at a 64-bit word whose top 16 bits are quarter i mod 4 of
    /// its resample stream's output ⌊i/4⌋ and whose lower 48 bits, when they matter, are the top
    /// 48 bits of the next output of the resample's refinement stream.
    @Test func poissonWeightsAreTheInverseCDFOfQuarterWords() {
        let n = 50_001
        let weights = CalibrationAnalyzer.poissonWeights(n: n, seed: 3, firstResample: 16)
        let t = CalibrationAnalyzer.poissonThresholds
        func inverse(_ u: UInt64) -> Int { var k = 0; while k < t.count, u >= t[k] { k += 1 }; return k }
        var refined = 0, large = 0
        for lane in 0..<8 {
            var stream = SeededRandom(seed: CalibrationAnalyzer.resampleSeed(3, 16 + lane))
            var refinement = SeededRandom(seed: CalibrationAnalyzer.refinementSeed(3, 16 + lane))
            var word: UInt64 = 0
            for i in 0..<n {
                if i % 4 == 0 { word = stream.next() }
                let top = (word >> UInt64(16 * (i % 4))) & 0xFFFF
                let low = inverse(top << 48), high = inverse(top << 48 | (1 << 48 - 1))
                var k = low
                if low != high {
                    k = inverse(top << 48 | refinement.next() >> 16)
                    refined += 1
                }
                #expect(Int(weights[i * 8 + lane]) == k, "question \(i) lane \(lane)")
                if k >= 5 { large += 1 }
            }
        }
        // The refinement (~12 of 65,536 quarters) and the rare weights (P(w ≥ 5) = 0.0037) occur.
        #expect(refined > 10 && large > 1000, "\(refined) refined, \(large) large")
    }

    /// The table gives a weight only where every word of the quarter has it.
    @Test func quarterTableIsExact() {
        let t = CalibrationAnalyzer.poissonThresholds
        func inverse(_ u: UInt64) -> Int { var k = 0; while k < t.count, u >= t[k] { k += 1 }; return k }
        var straddling = 0
        for (h, k) in CalibrationAnalyzer.poissonQuarterWeights.enumerated() {
            let low = inverse(UInt64(h) << 48), high = inverse(UInt64(h) << 48 | (1 << 48 - 1))
            if k == 0xFF { straddling += 1; #expect(low != high) } else { #expect(Int(k) == low && low == high, "quarter \(h)") }
        }
        #expect(straddling > 0 && straddling <= t.count)
    }

    /// Frequencies of 400,000 weights against Poisson(1)'s: each within 5 standard errors.
    @Test func weightsHavePoissonFrequencies() {
        let n = 50_000
        let weights = CalibrationAnalyzer.poissonWeights(n: n, seed: 8, firstResample: 0)
        var counts = [Double](repeating: 0, count: 8)
        for w in weights { counts[min(Int(w), 7)] += 1 }
        var pmf = 1 / 2.718281828459045, tail = 1.0
        for k in 0..<7 {
            let expected = pmf * Double(weights.count)
            #expect(abs(counts[k] - expected) <= 5 * (expected * (1 - pmf)).squareRoot(), "P(w = \(k))")
            tail -= pmf
            pmf /= Double(k + 1)
        }
        #expect(abs(counts[7] - tail * Double(weights.count)) <= 5 * (tail * Double(weights.count)).squareRoot() + 1)
    }
}

/// Issue 27: `intervals` draws one bootstrap pass for the means, smECE and the binned errors'
/// cells; its percentile intervals must be the ones the separate resampling gives, bit for bit.
@Suite struct FusedBootstrapTests {
    @Test func oneBootstrapPassGivesThePercentileIntervalsOfTheMeansAndSmECE() {
        let set = CompactLayoutTests.tiedSet(n: 700, k: 4, seed: 21)
        let analyzer = CalibrationAnalyzer(set)
        let keys: [MetricKey] = [.accuracy, .meanConfidence, .overconfidence, .brier, .nll, .smECE]
        for (resamples, seed) in [(200, UInt64(0)), (37, 5)] {
            let fused = analyzer.intervals(resamples: resamples, seed: seed, level: 0.9, smooth: true).intervals
            let separate = analyzer.percentileIntervals(keys, resamples: resamples, seed: seed, level: 0.9)
            for key in keys {
                #expect(fused[key]?.lower.bitPattern == separate[key]?.lower.bitPattern, "\(key) lower, \(resamples) resamples")
                #expect(fused[key]?.upper.bitPattern == separate[key]?.upper.bitPattern, "\(key) upper, \(resamples) resamples")
            }
        }
    }
}
