import Foundation
import Testing
@testable import TrackCalibration

/// Intervals and the test of calibration (METHODS §3): the cells reproduce every binned error,
/// the test's Monte-Carlo p equals the exact p of an enumerated null, p-values are never 0,
/// and a seeded coverage simulation holds every interval near its nominal level.
@Suite struct BinnedIntervalTests {
    static func randomSet(_ n: Int, k: Int, seed: UInt64, mixed: Bool = false, ties: Bool = false) -> PredictionSet {
        var random = SeededRandom(seed: seed)
        var set = PredictionSet()
        for i in 0..<n {
            let options = mixed && i % 3 == 0 ? k + 1 : k
            var logits = (0..<options).map { _ in random.nextGaussian() * 2 }
            if ties { logits = logits.map { ($0 * 2).rounded() / 2 } }
            set.append(id: Int64(i), label: random.nextInt(below: options), probabilities: Probabilities.softmax(logits))
        }
        return set
    }

    static var sets: [(String, PredictionSet)] {
        get throws {
            [("synthetic", try loadFixture("synthetic-seed0-n1000.csv")), ("bin-edges", try loadFixture("bin-edges-n160.csv")),
             ("K=2", randomSet(300, k: 2, seed: 1)), ("K=5 ties", randomSet(400, k: 5, seed: 2, ties: true)),
             ("mixed", randomSet(200, k: 4, seed: 3, mixed: true)), ("one", randomSet(1, k: 3, seed: 4)),
             ("tiny", randomSet(7, k: 4, seed: 5))]
        }
    }

    /// Every binned error computed from the fixed cells equals the analyzer's value.
    @Test func cellsReproduceEveryBinnedError() throws {
        for (name, set) in try Self.sets {
            for bins in [10, 15] {
                let analyzer = CalibrationAnalyzer(set, bins: bins)
                let metrics = analyzer.metrics()
                let cells = BinnedCells(analyzer)
                let estimate = cells.estimate(analyzer)
                var seen = Set<MetricKey>()
                for family in cells.families {
                    let value = estimate.sums.withUnsafeBufferPointer { s in
                        estimate.counts.withUnsafeBufferPointer { m in
                            cells.value(family, s: s, m: m, questions: estimate.questions, values: estimate.values)
                        }
                    }
                    let expected = try #require(metrics[family.key], "\(name) \(family.key)")
                    #expect(abs(value - expected) <= 1e-12, "\(name) B=\(bins) \(family.key): \(value) vs \(expected)")
                    seen.insert(family.key)
                }
                let expectedKeys: Set<MetricKey> = set.uniformOptionCount == nil
                    ? [.confECE, .rmsce, .mce, .equalMassECE, .pooledECE]
                    : [.confECE, .rmsce, .mce, .equalMassECE, .pooledECE, .cwECE, .ace, .tace]
                #expect(seen == expectedKeys, "\(name)")
            }
        }
    }

    /// The resampling passes add to segments: every question's top segment stands for exactly its
    /// two top-label cells and every value's segment for exactly its cells; at most 2B + K(3B + 1)
    /// segments; and the bootstrap's cell sums made from segment sums equal the cells summed
    /// directly from the same Poisson weights (counts exactly, sums to rounding).
    @Test func segmentsStandForTheirCells() throws {
        for (name, set) in try Self.sets {
            for bins in [4, 15] {
                let analyzer = CalibrationAnalyzer(set, bins: bins)
                let cells = BinnedCells(analyzer)
                let stride = BinnedCells.segmentStride
                func cellsOf(_ segment: Int32) -> Set<Int32> {
                    Set(cells.segmentCells[(Int(segment) * stride)..<((Int(segment) + 1) * stride)].filter { $0 >= 0 })
                }
                let n = set.count
                for i in 0..<n {
                    #expect(cellsOf(cells.topSegments[i]) == [cells.topCells[2 * i], cells.topCells[2 * i + 1]], "\(name) question \(i)")
                }
                for j in cells.valueSegments.indices {
                    let own = Set(cells.valueCells[(j * cells.perValue)..<((j + 1) * cells.perValue)].filter { $0 >= 0 })
                    #expect(cellsOf(cells.valueSegments[j]) == own, "\(name) value \(j)")
                }
                if cells.k > 0 { #expect(cells.segmentCount <= 2 * bins + cells.k * (3 * bins + 1), "\(name): \(cells.segmentCount) segments") }
                // Eight resamples through the pass against the cells summed directly.
                let boot = cells.bootstrapSums(analyzer, resamples: 8, seed: 11)
                let weights = CalibrationAnalyzer.poissonWeights(n: n, seed: 11, firstResample: 0)
                let offsets = set.offsets.array(questions: n)
                for lane in 0..<8 {
                    var sums = [Double](repeating: 0, count: cells.cellCount), counts = sums
                    for i in 0..<n {
                        let w = Double(weights[8 * i + lane])
                        let label = Int(set.labels[i]), top = Int(cells.top[i])
                        let confidence = set.probabilities[offsets[i] + top]
                        for slot in 0..<2 {
                            let c = Int(cells.topCells[2 * i + slot])
                            sums[c] += w * ((label == top ? 1 : 0) - confidence)
                            counts[c] += w
                        }
                        for option in 0..<(offsets[i + 1] - offsets[i]) {
                            let j = offsets[i] + option
                            for slot in 0..<cells.perValue {
                                let c = Int(cells.valueCells[j * cells.perValue + slot])
                                guard c >= 0 else { continue }
                                sums[c] += w * ((option == label ? 1 : 0) - set.probabilities[j])
                                counts[c] += w
                            }
                        }
                    }
                    cells.pooledFromClasses { pooled, cell in
                        sums[pooled] += sums[cell]
                        counts[pooled] += counts[cell]
                    }
                    for c in 0..<cells.cellCount {
                        #expect(boot.counts[lane * cells.cellCount + c] == counts[c], "\(name) B=\(bins) lane \(lane) cell \(c)")
                        #expect(abs(boot.sums[lane * cells.cellCount + c] - sums[c]) <= 1e-11 * Swift.max(1, counts[c]),
                                "\(name) B=\(bins) lane \(lane) cell \(c): \(boot.sums[lane * cells.cellCount + c]) vs \(sums[c])")
                    }
                }
            }
        }
    }

    /// The test's p from consistency resampling equals, within its Monte-Carlo error, the exact p
    /// of the null enumerated over every labelling (each with probability Π p_i(y_i)).
    @Test(arguments: [(8, 2, MetricKey.confECE), (5, 3, MetricKey.cwECE), (6, 2, MetricKey.equalMassECE), (5, 3, MetricKey.ace)])
    func testMatchesTheEnumeratedNull(n: Int, k: Int, key: MetricKey) {
        var random = SeededRandom(seed: UInt64(n * 10 + k))
        var rows: [[Double]] = []
        for _ in 0..<n { rows.append(Probabilities.softmax((0..<k).map { _ in random.nextGaussian() * 1.5 })) }
        // Labels drawn uniformly: a run miscalibrated by chance, its p inside (0, 1).
        let labels = rows.map { _ in random.nextInt(below: k) }
        func value(_ labels: [Int]) -> Double {
            var set = PredictionSet()
            for (i, row) in rows.enumerated() { set.append(id: Int64(i), label: labels[i], probabilities: row) }
            return CalibrationAnalyzer(set, bins: 4).metrics()[key]!
        }
        let observed = value(labels)
        var exact = 0.0
        var y = [Int](repeating: 0, count: n)
        for code in 0..<Int(pow(Double(k), Double(n))) {
            var rest = code, probability = 1.0
            for i in 0..<n { y[i] = rest % k; rest /= k; probability *= rows[i][y[i]] }
            if value(y) >= observed - 1e-12 { exact += probability }
        }
        var set = PredictionSet()
        for (i, row) in rows.enumerated() { set.append(id: Int64(i), label: labels[i], probabilities: row) }
        let resamples = 20_000
        let test = CalibrationAnalyzer(set, bins: 4).calibrationTests(resamples: resamples, seed: 3)[key]!
        #expect(abs(test.statistic - observed) < 1e-12)
        let monteCarlo = (test.p * Double(resamples + 1) - 1) / Double(resamples)
        let se = (exact * (1 - exact) / Double(resamples)).squareRoot()
        #expect(exact > 0.01 && exact < 0.99, "exact p \(exact)")
        #expect(abs(monteCarlo - exact) < 4 * se + 1e-9, "\(key): Monte-Carlo \(monteCarlo) vs exact \(exact) (se \(se))")
    }

    /// p-values are never 0: a bootstrap p is at least 2/(B + 1), McNemar's is kept in logs.
    @Test func pValuesAreNeverZero() {
        let allPositive = [Double](repeating: 0.1, count: 999)
        let test = PairedTests.bootstrapDifference(allPositive, level: 0.95)!
        #expect(test.p == 2.0 / 1000)
        #expect(PairedTests.format(test.p) == "0.0020")
        #expect(PairedTests.format(1.0 / 10_001) == "< 0.001")
        // b = 0, c = n: p = 2·2^−n, far below the smallest double for n = 14,042.
        let log10P = PairedTests.mcnemarExactLog10(b: 0, c: 14_042)
        #expect(abs(log10P - Double(1 - 14_042) * log10(2.0)) < 1e-9)
        #expect(PairedTests.mcnemarExact(b: 0, c: 14_042) == 0)
        #expect(PairedTests.format(0, log10: log10P) == "< 1e-300")
        // Where p is representable the two agree.
        #expect(abs(log10(PairedTests.mcnemarExact(b: 30, c: 70)) - PairedTests.mcnemarExactLog10(b: 30, c: 70)) < 1e-12)
        // Binned differences of a run against itself shifted: p ≥ 1/(B + 1).
        let a = CalibrationAnalyzer(Self.randomSet(500, k: 4, seed: 8))
        var sharp = PredictionSet()
        for i in 0..<a.set.count {
            let row = (0..<4).map { a.set.probabilities[i * 4 + $0] }
            let label = Int(a.set.labels[i])
            sharp.append(id: Int64(i), label: label, probabilities: Probabilities.softmax(row.map { log($0) * 6 }))
        }
        let differences = PairedTests.binnedDifferences(base: a, other: CalibrationAnalyzer(sharp), resamples: 200, seed: 1, level: 0.95)
        #expect(!differences.isEmpty)
        for (key, d) in differences { #expect(d.p >= 1.0 / 201 && d.p <= 1, "\(key)") }
        #expect(differences[.confECE]!.p < 0.05)
    }

    /// A run and a shuffled copy of it get the same binned errors, intervals and tests.
    @Test func shuffledCopyHasTheSameNumbers() {
        let set = Self.randomSet(300, k: 4, seed: 11, ties: true)
        var order = Array(0..<set.count)
        var random = SeededRandom(seed: 12)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, random.nextInt(below: i + 1)) }
        let a = CalibrationAnalyzer(set).metrics(), b = CalibrationAnalyzer(set.subset(order)).metrics()
        for key in CoverageSimulation.keys { #expect(abs(a[key]! - b[key]!) < 1e-12, "\(key)") }
    }

    /// The seeded coverage simulation, small: every binned error's interval contains the true
    /// value in most replicates of a calibrated, a mildly and a strongly miscalibrated run (the
    /// percentile intervals track printed before covered 0% at ECE 0), the test keeps its size
    /// and finds the overconfident run. `make bench` runs the full one.
    @Test func coverageSimulationSmall() {
        for (index, scenario) in [CoverageSimulation.Scenario(curve: .calibrated, n: 500), .init(curve: .mild, n: 500),
                                  .init(curve: .strong, n: 2_000), .init(curve: .calibrated, n: 2_000)].enumerated() {
            let cell = CoverageSimulation.run(scenario, replicates: 30, resamples: 200, seed: UInt64(100 + index))
            for key in CoverageSimulation.keys {
                #expect(cell.covered[key]! >= 0.8, "\(scenario) \(key): covered \(cell.covered[key]!)")
            }
            if scenario.curve == .calibrated {
                #expect(cell.truth[.confECE]! < 1e-12)
                #expect(cell.rejected[.confECE]! <= 0.2, "\(scenario): rejected \(cell.rejected[.confECE]!)")
            }
            if scenario.curve == .strong { #expect(cell.rejected[.confECE]! >= 0.9) }
        }
    }

    /// The quadrature truth: a calibrated curve is 0 for every error; the strong curve's conf-ECE
    /// is 0.2·E|c − 1/K| over bins whose gap has one sign, i.e. 0.2·(E[c] − 1/K).
    @Test func truthByQuadrature() {
        for k in [2, 4, 10] {
            let zero = CoverageSimulation.truth(.init(curve: .calibrated, k: k, n: 1))
            for key in CoverageSimulation.keys { #expect(zero[key]! < 1e-12, "K=\(k) \(key)") }
            // Beta(2, 2) has mean 1/2: E[c] = 1/K + (1 − 1/K)/2.
            let strong = CoverageSimulation.truth(.init(curve: .strong, k: k, n: 1))
            let expected = 0.2 * (1 - 1 / Double(k)) / 2
            #expect(abs(strong[.confECE]! - expected) < 1e-6, "K=\(k): \(strong[.confECE]!) vs \(expected)")
        }
    }
}

/// Equal-mass bins with tie groups kept whole, ACE over non-empty bins, and McNemar's p in logs,
/// held to an independent numpy/scipy computation (Tests/reference/binning_references.py).
@Suite struct BinningReferenceTests {
    nonisolated(unsafe) static let references: [String: Any] = {   // read once, never written
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("TrackStoreTests/Fixtures/binning-references.json")
        return (try? JSONSerialization.jsonObject(with: Data(contentsOf: url))) as? [String: Any] ?? [:]
    }()

    @Test func equalMassMetricsEqualNumpy() throws {
        let cases = try #require(Self.references["cases"] as? [String: [String: Any]])
        #expect(cases.count == 9)
        for (name, values) in cases {
            let probabilities = (values["probs"] as! [[Any]]).map { $0.map { ($0 as! NSNumber).doubleValue } }
            let labels = (values["labels"] as! [Any]).map { ($0 as! NSNumber).intValue }
            var set = PredictionSet()
            for (i, row) in probabilities.enumerated() { set.append(id: Int64(i), label: labels[i], probabilities: row) }
            for bins in [10, 15] {
                let expected = try #require(values["bins\(bins)"] as? [String: Any])
                let m = CalibrationAnalyzer(set, bins: bins).metrics()
                for key in [MetricKey.equalMassECE, .ace, .tace] {
                    let want = (expected[key.rawValue] as! NSNumber).doubleValue
                    #expect(abs(m[key]! - want) < 1e-12, "\(name) B=\(bins) \(key): \(m[key]!) vs numpy \(want)")
                }
            }
        }
    }

    @Test func mcnemarLogEqualsScipy() throws {
        let pairs = try #require(Self.references["mcnemar_log10"] as? [[String: Any]])
        #expect(pairs.count == 6)
        for pair in pairs {
            let b = (pair["b"] as! NSNumber).intValue, c = (pair["c"] as! NSNumber).intValue
            let want = (pair["log10_p"] as! NSNumber).doubleValue
            let got = PairedTests.mcnemarExactLog10(b: b, c: c)
            #expect(abs(got - want) <= 1e-9 * max(1, abs(want)), "b \(b) c \(c): \(got) vs scipy \(want)")
        }
    }
}
