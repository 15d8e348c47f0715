import Foundation
import Testing
@testable import TrackCalibration

/// Reads a fixture (`p0..p{K-1},label`) straight into a PredictionSet.
func loadFixture(_ name: String) throws -> PredictionSet {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("TrackStoreTests/Fixtures/\(name)")
    var set = PredictionSet()
    for (index, line) in try String(contentsOf: url, encoding: .utf8).split(separator: "\n").enumerated() where index > 0 {
        let fields = line.split(separator: ",").map { Double($0)! }
        set.append(id: Int64(index), label: Int(fields.last!), probabilities: Array(fields.dropLast()))
    }
    return set
}

func set(_ rows: [([Double], Int)]) -> PredictionSet {
    var s = PredictionSet()
    for (i, row) in rows.enumerated() { s.append(id: Int64(i), label: row.1, probabilities: row.0) }
    return s
}

func close(_ a: Double?, _ b: Double, _ tolerance: Double = 5e-7) -> Bool {
    guard let a else { return false }
    return abs(a - b) <= tolerance
}

@Suite struct CheckedValuesTests {
    /// METHODS §3, first file (all of uncertainty-calibration, netcal, scikit-learn, relplot agree).
    @Test func synthetic1000() throws {
        let m = CalibrationAnalyzer(try loadFixture("synthetic-seed0-n1000.csv")).metrics()
        #expect(m.n == 1000)
        #expect(close(m.accuracy, 0.614))
        #expect(close(m.meanConfidence, 0.780578))
        #expect(close(m.confECE, 0.169247))
        #expect(close(m.mce, 0.291293))
        #expect(close(m.rmsce, 0.180835))
        #expect(close(m.cwECE, 0.089048))
        #expect(close(m.equalMassECE, 0.166578))
        #expect(close(m.brier, 0.558263))
        #expect(close(m.nll, 1.100437))
        #expect(!m.nllFromScores)
    }

    /// METHODS §3, second file: confidences exactly on bin edges pin the binning rule.
    @Test func binEdges160() throws {
        let m = CalibrationAnalyzer(try loadFixture("bin-edges-n160.csv")).metrics()
        #expect(m.n == 160)
        #expect(close(m.accuracy, 0.625))
        #expect(close(m.meanConfidence, 0.65))
        #expect(close(m.confECE, 0.100))
        #expect(close(m.mce, 0.100))
        #expect(close(m.rmsce, 0.100))
        #expect(close(m.cwECE, 0.0375))
        // SPEC's 0.105 kept tied confidences in question order; ties are now one bin (METHODS §2),
        // held to the independent numpy binning of Tests/reference (`equal_mass_ties`).
        #expect(close(m.equalMassECE, 0.100))
        #expect(close(m.brier, 0.503333))
        #expect(close(m.nll, 1.350916))
    }
}

@Suite struct HandComputedTests {
    @Test func oneQuestion() {
        // Right with confidence 0.7: gap 0.3 in bin 7.
        let m = CalibrationAnalyzer(set([([0.7, 0.2, 0.1], 0)])).metrics()
        #expect(m.accuracy == 1 && close(m.confECE, 0.3, 1e-15) && close(m.mce, 0.3, 1e-15) && close(m.rmsce, 0.3, 1e-15))
        #expect(close(m.brier, 0.09 + 0.04 + 0.01, 1e-15))
        #expect(close(m.nll, -log(0.7), 1e-15))
        // Classwise: class 0 has p=0.7 (bin 7, freq 1): 0.3; class 1: 0.2 (bin 2, freq 0): 0.2; class 2: 0.1.
        #expect(close(m.cwECE, (0.3 + 0.2 + 0.1) / 3, 1e-15))
        // Equal-mass with N=1 < B: one non-empty bin.
        #expect(close(m.equalMassECE, 0.3, 1e-15))
        // ACE averages each class's non-empty bins (one here), then the classes.
        #expect(close(m.ace, (0.3 + 0.2 + 0.1) / 3, 1e-15))
    }

    @Test func allInOneBin() {
        // Four questions, all confidence 0.55 (bin 5), two right: ECE = |0.5 - 0.55|.
        let m = CalibrationAnalyzer(set([([0.55, 0.45], 0), ([0.55, 0.45], 1), ([0.45, 0.55], 1), ([0.45, 0.55], 0)])).metrics()
        #expect(close(m.confECE, 0.05, 1e-15) && close(m.mce, 0.05, 1e-15))
        let bins = CalibrationAnalyzer(set([([0.55, 0.45], 0), ([0.55, 0.45], 1)])).reliabilityBins()
        #expect(bins.map(\.count) == [0, 0, 0, 0, 0, 2, 0, 0, 0, 0])
        #expect(bins[5].accuracy == 0.5 && bins[4].accuracy == nil)
    }

    @Test func classThatNeverOccurs() {
        // Label is never 2; class 2 contributes |0 - meanp| in its bins.
        let s = set([([0.6, 0.3, 0.1], 0), ([0.2, 0.7, 0.1], 1)])
        let m = CalibrationAnalyzer(s).metrics()
        // class 0: 0.6 (bin 6, y=1) 0.4; 0.2 (bin 2, y=0) 0.2 -> (0.4+0.2)/2 = 0.3
        // class 1: 0.3 (bin 3, y=0) 0.3; 0.7 (bin 7, y=1) 0.3 -> 0.3
        // class 2: 0.1, 0.1 (bin 1, y=0) -> 0.1
        #expect(close(m.cwECE, (0.3 + 0.3 + 0.1) / 3, 1e-15))
        #expect(CalibrationAnalyzer(s).classwiseBins()[2][1].accuracy == 0)
    }

    @Test func binaryAndFiveOptions() {
        let two = CalibrationAnalyzer(set([([0.9, 0.1], 0), ([0.8, 0.2], 1)])).metrics()
        #expect(close(two.accuracy, 0.5, 1e-15) && close(two.confECE, 0.5 * 0.1 + 0.5 * 0.8, 1e-15))
        let five = CalibrationAnalyzer(set([([0.2, 0.2, 0.2, 0.2, 0.2], 4)])).metrics()
        // Tie: pred 0, wrong, confidence 0.2.
        #expect(five.accuracy == 0 && close(five.confECE, 0.2, 1e-15))
        #expect(close(five.brier, 4 * 0.04 + 0.64, 1e-15))
    }

    @Test func edgesOneAndZero() {
        // p = 1.0 goes to the last bin, p = 0 to bin 0; 0.3 * 10 stays in bin 3 by float64 arithmetic.
        #expect(equalWidthBin(1.0, bins: 10) == 9)
        #expect(equalWidthBin(0.0, bins: 10) == 0)
        #expect(equalWidthBin(0.1, bins: 10) == 1)
        #expect(equalWidthBin(0.3, bins: 10) == Int(0.3 * 10.0))
        #expect(equalWidthBin(0.9999999999999999, bins: 10) == 9)
        let m = CalibrationAnalyzer(set([([1.0, 0.0], 0), ([1.0, 0.0], 1)])).metrics()
        #expect(close(m.confECE, 0.5, 1e-15))
        #expect(close(m.nll, (0 + -log(1e-15)) / 2, 1e-12))
    }

    @Test func tiesInTheArgmax() {
        let m = CalibrationAnalyzer(set([([0.4, 0.4, 0.2], 0), ([0.4, 0.4, 0.2], 1)])).metrics()
        #expect(m.accuracy == 0.5)
    }

    @Test func mixedOptionCountsKeepTopLabelMetricsAndDropClasswise() {
        let m = CalibrationAnalyzer(set([([0.7, 0.3], 0), ([0.5, 0.3, 0.2], 2)])).metrics()
        #expect(close(m.accuracy, 0.5, 1e-15) && m.confECE != nil && m.brier != nil)
        #expect(m.cwECE == nil && m.ace == nil && m.tace == nil)
        #expect(CalibrationAnalyzer(set([([0.7, 0.3], 0), ([0.5, 0.3, 0.2], 2)])).classwiseBins().isEmpty)
    }

    @Test func nllIsExactFromScores() {
        var s = PredictionSet()
        let logits = [0.0, -800.0]
        s.append(label: 1, probabilities: Probabilities.softmax(logits), scores: logits)
        let m = CalibrationAnalyzer(s).metrics()
        #expect(m.nllFromScores && m.nll == 800)
    }

    @Test func emptyRunHasNoValuesAndNoNaN() {
        let m = CalibrationAnalyzer(PredictionSet()).metrics()
        #expect(m.n == 0)
        for key in CalibrationMetrics.keys { #expect(m[key] == nil) }
        #expect(CalibrationAnalyzer(PredictionSet()).bootstrap(resamples: 10).isEmpty)
    }

    @Test func noNaNOnDegenerateRuns() {
        for rows in [[([1.0, 0.0], 0)], [([0.5, 0.5], 1)], Array(repeating: ([0.0, 1.0], 1), count: 3)] {
            let m = CalibrationAnalyzer(set(rows), bins: 15).metrics(smooth: true)
            for key in CalibrationMetrics.keys { #expect(m[key].map { !$0.isNaN } == true, "\(key)") }
        }
    }

    @Test func equalMassBinsKeepTiesTogether() {
        // 4 questions, B = 2, all confidence 0.6: one tie group, one bin; half right.
        let s = set([([0.6, 0.4], 0), ([0.6, 0.4], 0), ([0.6, 0.4], 1), ([0.6, 0.4], 1)])
        let m = CalibrationAnalyzer(s, bins: 2).metrics()
        #expect(close(m.equalMassECE, 0.1, 1e-15))
        // The issue's case: 20 rows (0.7, 0.1, 0.1, 0.1), 13 labelled 0 then 7 labelled 1. The true
        // gap is |13/20 − 0.7| = 0.05 in every order the rows can come in.
        let rows = (0..<20).map { ([0.7, 0.1, 0.1, 0.1], $0 < 13 ? 0 : 1) }
        var random = SeededRandom(seed: 4)
        for round in 0..<6 {
            var shuffled = rows
            if round > 0 {
                for i in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(i, random.nextInt(below: i + 1)) }
            }
            let m = CalibrationAnalyzer(set(shuffled)).metrics()
            #expect(close(m.equalMassECE, 0.05, 1e-12), "round \(round)")
            // Classes: p = 0.7 for class 0 (freq 13/20); 0.1 for classes 1–3 (freq 7/20, 0, 0).
            #expect(close(m.ace, (0.05 + 0.25 + 0.1 + 0.1) / 4, 1e-12), "round \(round)")
        }
    }
}

@Suite struct OrderTests {
    @Test func radixOrderIsStableAndSorted() {
        var random = SeededRandom(seed: 3)
        let values = (0..<5000).map { _ in (random.nextDouble() * 20).rounded() / 20 }
        let order = values.withUnsafeBufferPointer { stableAscendingOrder($0) }
        let expected = values.indices.sorted { values[$0] < values[$1] || (values[$0] == values[$1] && $0 < $1) }
        #expect(order.map(Int.init) == expected)
    }
}

@Suite struct BootstrapTests {
    @Test func sameSeedSameIntervalAndItCoversTheEstimate() throws {
        let analyzer = CalibrationAnalyzer(try loadFixture("synthetic-seed0-n1000.csv"))
        let a = analyzer.bootstrap(resamples: 200, seed: 11)
        let b = analyzer.bootstrap(resamples: 200, seed: 11)
        #expect(a == b)
        let c = analyzer.bootstrap(resamples: 200, seed: 12)
        #expect(a != c)
        let m = analyzer.metrics()
        for key: MetricKey in [.accuracy, .confECE, .cwECE, .brier, .nll, .equalMassECE, .ace] {
            let interval = try #require(a[key])
            #expect(interval.lower <= m[key]! + 0.02 && m[key]! - 0.02 <= interval.upper, "\(key)")
            #expect(interval.lower < interval.upper, "\(key)")
        }
        // Accuracy of 1000 Bernoulli(0.614): the 95% interval is about ±0.03.
        let width = a[.accuracy]!.upper - a[.accuracy]!.lower
        #expect(abs(width - 2 * 1.96 * (0.614 * 0.386 / 1000).squareRoot()) < 0.015)
    }

    @Test func unitWeightsEqualTheUnweightedMetrics() throws {
        let analyzer = CalibrationAnalyzer(try loadFixture("bin-edges-n160.csv"))
        let ones = [UInt32](repeating: 1, count: 160)
        let weighted = ones.withUnsafeBufferPointer { analyzer.metrics(weights: $0) }
        for key in MetricKey.resampled { #expect(close(weighted[key], analyzer.metrics()[key]!, 1e-12), "\(key)") }
        // Weight 2 everywhere is the same distribution.
        let twos = [UInt32](repeating: 2, count: 160)
        let doubled = twos.withUnsafeBufferPointer { analyzer.metrics(weights: $0) }
        for key in MetricKey.resampled { #expect(close(doubled[key], analyzer.metrics()[key]!, 1e-12), "\(key)") }
    }
}

/// The batched bootstrap (eight resamples in SIMD lanes) computes, for each
/// resample, exactly what the one-resample metric pass computes with the same
/// weights, on runs with K = 4 and 5, ties, mixed option counts and tiny N.
@Suite struct BatchedBootstrapTests {
    static func run(_ n: Int, k: Int, seed: UInt64, mixed: Bool = false) -> PredictionSet {
        var random = SeededRandom(seed: seed)
        var set = PredictionSet()
        for i in 0..<n {
            let options = mixed && i % 3 == 0 ? k + 1 : k
            let logits = (0..<options).map { _ in (random.nextGaussian() * 4).rounded() / 2 }
            set.append(id: Int64(i), label: random.nextInt(below: options), probabilities: Probabilities.softmax(logits))
        }
        return set
    }

    @Test(arguments: [(1, 4), (3, 2), (17, 4), (500, 4), (2_000, 5), (301, 3)])
    func lanesEqualTheSingleResamplePass(n: Int, k: Int) {
        for mixed in [false, true] {
            let analyzer = CalibrationAnalyzer(Self.run(n, k: k, seed: UInt64(n * 10 + k), mixed: mixed), bins: 7, epsilon: 0.05)
            let weights = CalibrationAnalyzer.poissonWeights(n: n, seed: 3, firstResample: 8)
            let batched = BootstrapPlan(analyzer).metrics(weights: weights, analyzer: analyzer)
            for lane in 0..<8 {
                let counts = (0..<n).map { UInt32(weights[$0 * 8 + lane]) }
                let single = counts.withUnsafeBufferPointer { analyzer.metrics(weights: $0) }
                #expect(batched[lane].n == single.n)
                for key in MetricKey.resampled {
                    switch (batched[lane][key], single[key]) {
                    case (nil, nil): break
                    case (let a?, let b?):
                        let difference: Double = abs(a - b)
                        #expect(difference <= 1e-12, "n \(n) k \(k) mixed \(mixed) lane \(lane) \(key): \(a) vs \(b)")
                    default: Issue.record("n \(n) k \(k) mixed \(mixed) lane \(lane) \(key): \(String(describing: batched[lane][key])) vs \(String(describing: single[key]))")
                    }
                }
            }
        }
    }

    /// Poisson(1) weights: mean 1, variance 1, P(0) = 1/e; every resample its own stream.
    @Test func weightsArePoissonAndPerResample() {
        let n = 200_000
        let w = CalibrationAnalyzer.poissonWeights(n: n, seed: 0, firstResample: 0)
        var sum = 0.0, squares = 0.0, zeros = 0.0
        for i in 0..<n {
            let x = Double(w[i * 8])
            sum += x
            squares += x * x
            if x == 0 { zeros += 1 }
        }
        let mean = sum / Double(n)
        let variance = squares / Double(n) - mean * mean
        #expect(abs(mean - 1) < 0.01 && abs(variance - 1) < 0.02)
        #expect(abs(zeros / Double(n) - 0.36788) < 0.005)
        // Resample 9 is lane 1 of the batch starting at 8, and lane 0 of a batch starting at 9.
        let a = CalibrationAnalyzer.poissonWeights(n: 1000, seed: 5, firstResample: 8)
        let b = CalibrationAnalyzer.poissonWeights(n: 1000, seed: 5, firstResample: 9)
        var same = true, differ = false
        for i in 0..<1000 {
            if a[i * 8 + 1] != b[i * 8] { same = false }
            if a[i * 8] != a[i * 8 + 1] { differ = true }
        }
        #expect(same && differ)
    }

    /// Results do not depend on how batches are spread over cores: the samples
    /// equal those computed batch by batch, in order.
    @Test func samplesAreThoseOfEachResampleAlone() {
        let analyzer = CalibrationAnalyzer(Self.run(400, k: 4, seed: 1))
        let samples = analyzer.bootstrapSamples(resamples: 20, seed: 9)
        #expect(samples[.accuracy]?.count == 20)
        let plan = BootstrapPlan(analyzer)
        var expected: [Double] = []
        for first in [0, 8, 16] {
            let m = plan.metrics(weights: CalibrationAnalyzer.poissonWeights(n: 400, seed: 9, firstResample: first), analyzer: analyzer)
            expected += m.prefix(min(8, 20 - first)).map { $0.conf_eceValue }
        }
        #expect(samples[.confECE]! == expected)
    }
}

extension CalibrationMetrics {
    var conf_eceValue: Double { confECE ?? .nan }
}

/// The pooled ECE (issue 16): every question × option one binary prediction.
@Suite struct PooledECETests {
    static func set(_ rows: [([Double], Int)]) -> PredictionSet {
        var s = PredictionSet()
        for (p, y) in rows { s.append(label: y, probabilities: p) }
        return s
    }

    /// K = 2, by hand with 10 bins: predictions (0.8, y=1) (0.2, 0) | (0.6, 0) (0.4, 1).
    /// Bins: 8 {0.8 hit}, 2 {0.2 miss}, 6 {0.6 miss}, 4 {0.4 hit} → gaps 0.2, 0.2, 0.6, 0.6 → (0.2+0.2+0.6+0.6)/4 = 0.4.
    @Test func twoOptionsByHand() {
        let m = CalibrationAnalyzer(Self.set([([0.8, 0.2], 0), ([0.6, 0.4], 1)])).metrics()
        #expect(abs(m.pooledECE! - 0.4) < 1e-15)
    }

    /// K = 4 with a probability of exactly 1.0 (last bin, closed) and empty bins.
    @Test func exactOneAndEmptyBins() {
        // Q1: (1, 0, 0, 0), y = 0 → 1.0 hit in bin 9; three 0.0 misses in bin 0.
        // Q2: (0.25 × 4), y = 3 → four 0.25 in bin 2, one hit.
        // bin 9: n 1, freq 1, mean 1 → 0; bin 0: n 3, freq 0, mean 0 → 0; bin 2: n 4, freq 0.25, mean 0.25 → 0.
        let calibrated = CalibrationAnalyzer(Self.set([([1, 0, 0, 0], 0), ([0.25, 0.25, 0.25, 0.25], 3)])).metrics()
        #expect(calibrated.pooledECE == 0)
        // Q1 wrong instead: bin 9 gap 1 (n 1), bin 0: n 3, one hit (freq 1/3, mean 0) → (1·1 + 3·(1/3)) / 8 = 0.25.
        let wrong = CalibrationAnalyzer(Self.set([([1, 0, 0, 0], 1), ([0.25, 0.25, 0.25, 0.25], 3)])).metrics()
        #expect(abs(wrong.pooledECE! - 0.25) < 1e-15)
    }

    /// K = 5, and mixed option counts (pooled is defined; cw-ECE is not).
    @Test func fiveOptionsAndMixedCounts() {
        // One question, K = 5: (0.6, 0.1, 0.1, 0.1, 0.1), y = 0 → bin 6 (n 1, gap 0.4), bin 1 (n 4, freq 0, mean 0.1: gap 0.1).
        let five = CalibrationAnalyzer(Self.set([([0.6, 0.1, 0.1, 0.1, 0.1], 0)])).metrics()
        #expect(abs(five.pooledECE! - (0.4 + 4 * 0.1) / 5) < 1e-15)
        let mixed = CalibrationAnalyzer(Self.set([([0.6, 0.1, 0.1, 0.1, 0.1], 0), ([0.7, 0.3], 0)])).metrics()
        #expect(mixed.cwECE == nil && mixed.pooledECE != nil)
        // Bins over the 7 predictions: 6 {0.6 hit}, 1 {4 × 0.1 misses}, 7 {0.7 hit}, 3 {0.3 miss}.
        #expect(abs(mixed.pooledECE! - (0.4 + 0.4 + 0.3 + 0.3) / 7) < 1e-15)
    }

    /// Values from an independent numpy computation (Tests/reference/pooled_ece_numpy.py),
    /// on the synthetic fixture and on a K = 10 fixture, for 10 and 15 bins.
    @Test func equalsNumpy() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("TrackStoreTests/Fixtures/pooled-ece-numpy.json")
        let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: [String: Double]]
        #expect(reference.count == 2)
        for (fixture, values) in reference {
            let set = try loadFixture(fixture)
            for (bins, value) in values {
                let m = CalibrationAnalyzer(set, bins: Int(bins)!).metrics()
                #expect(abs(m.pooledECE! - value) <= 1e-12, "\(fixture) bins \(bins): \(m.pooledECE!) vs numpy \(value)")
            }
        }
    }
}

/// Issue 24: a metric's identity is one definition; what it says is checked against what the
/// analyzer and the bootstrap do.
@Suite struct MetricDefinitionTests {
    @Test func definitionsSayWhatTheComputationsDo() throws {
        let data = try loadFixture("synthetic-seed0-n1000.csv")
        let ten = CalibrationAnalyzer(data, bins: 10).metrics(smooth: true), fifteen = CalibrationAnalyzer(data, bins: 15).metrics(smooth: true)
        for key in MetricKey.allCases {
            let definition = key.definition
            #expect(ten[key] != nil, "\(key) is computed")
            // A metric that uses no bins has one value whatever the bin count; one that uses bins moves.
            if definition.usesBins { #expect(ten[key] != fifteen[key], "\(key) should depend on the bins") }
            else { #expect(ten[key] == fifteen[key], "\(key) should not depend on the bins") }
            #expect(!definition.label.isEmpty && MetricKey(rawValue: key.rawValue) == key)
        }
        // The bootstrap recomputes exactly the resampled metrics.
        let samples = CalibrationAnalyzer(data, bins: 10).bootstrapSamples(resamples: 4, seed: 1, keys: MetricKey.allCases)
        #expect(Set(samples.keys) == Set(MetricKey.resampled))
        // What totals answer: every such metric's value from the totals' definitions equals the analyzer's.
        #expect(MetricKey.fromTotals == Set(MetricKey.allCases.filter { !$0.needsEveryQuestion }))
        #expect(MetricKey.fromTotals.isSuperset(of: [.accuracy, .confECE, .cwECE, .pooledECE, .nll]))
    }
}
