import Foundation
import Testing
@testable import TrackCalibration

/// Smooth ECE, the ℓ2 calibration error, isotonic regression and McNemar's test held
/// to the values relplot 1.0.3, uncertainty-calibration 0.1.4, scikit-learn and scipy
/// compute on the same cases (Tests/reference/calibration_references.py writes them).
@Suite struct CalibrationReferenceTests {
    struct Case {
        var name: String
        var set: PredictionSet
        var probabilities: [[Double]]
        var labels: [Int]
        var values: [String: Any]
    }

    nonisolated(unsafe) static let references: [String: Any] = {   // read once, never written
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("TrackStoreTests/Fixtures/calibration-references.json")
        return (try? JSONSerialization.jsonObject(with: Data(contentsOf: url))) as? [String: Any] ?? [:]
    }()

    static var cases: [Case] {
        let all = references["cases"] as? [String: [String: Any]] ?? [:]
        return all.keys.sorted().map { name in
            let values = all[name]!
            let probabilities = (values["probs"] as! [[Any]]).map { $0.map { ($0 as! NSNumber).doubleValue } }
            let labels = (values["labels"] as! [Any]).map { ($0 as! NSNumber).intValue }
            var set = PredictionSet()
            for (i, row) in probabilities.enumerated() { set.append(id: Int64(i), label: labels[i], probabilities: row) }
            return Case(name: name, set: set, probabilities: probabilities, labels: labels, values: values)
        }
    }

    static func number(_ value: Any?) -> Double { (value as! NSNumber).doubleValue }

    @Test func everyCaseIsThere() {
        #expect(Self.cases.map(\.name) == ["all-equal-n50", "bin-edges-n160", "k10-seed10-n500", "k2-n300", "one-question",
                                           "synthetic-seed0-n1000", "ties-n200"])
    }

    @Test(arguments: CalibrationReferenceTests.cases.map(\.name))
    func smoothECEEqualsRelplot(_ name: String) throws {
        let c = try #require(Self.cases.first { $0.name == name })
        let m = CalibrationAnalyzer(c.set, bins: 15).metrics(smooth: true)
        #expect(abs(m.smECE! - Self.number(c.values["smece"])) < 1e-9, "\(name): \(m.smECE!)")
        #expect(m.smECEBandwidth == Self.number(c.values["smece_sigma"]))
        #expect(abs(m.cwSmECE! - Self.number(c.values["cw_smece"])) < 1e-9, "\(name): \(m.cwSmECE!)")
        // At a fixed bandwidth (relplot.smECE_sigma).
        let analyzer = CalibrationAnalyzer(c.set)
        let fixed = SmoothECE.value(analyzer.confidences, analyzer.correctness.map { $0 ? 1 : 0 }, sigma: 0.05)
        #expect(abs(fixed - Self.number(c.values["smece_at_0.05"])) < 1e-9, "\(name): \(fixed)")
    }

    @Test(arguments: CalibrationReferenceTests.cases.map(\.name))
    func l2CalibrationErrorEqualsUncertaintyCalibration(_ name: String) throws {
        let c = try #require(Self.cases.first { $0.name == name })
        let analyzer = CalibrationAnalyzer(c.set)
        for bins in [10, 15] {
            for debiased in [false, true] {
                let value = try #require(L2CalibrationError.value(confidences: analyzer.confidences, correct: analyzer.correctness,
                                                                 bins: bins, debiased: debiased))
                let expected = Self.number(c.values["\(debiased ? "debiased_" : "")l2_ece_\(bins)"])
                #expect(abs(value - expected) < 1e-9, "\(name) \(bins) \(debiased): \(value)")
            }
        }
        // The analyzer reports them with its own bin count.
        let m = CalibrationAnalyzer(c.set, bins: 15).metrics(smooth: true)
        #expect(m.l2ECE == L2CalibrationError.value(confidences: analyzer.confidences, correct: analyzer.correctness, bins: 15, debiased: false))
    }

    @Test(arguments: CalibrationReferenceTests.cases.map(\.name))
    func isotonicRegressionEqualsScikitLearn(_ name: String) throws {
        let c = try #require(Self.cases.first { $0.name == name })
        let expected = (c.values["isotonic"] as! [[Any]]).map { $0.map(Self.number) }
        for k in expected.indices {
            let x = c.probabilities.map { $0[k] }, y = c.labels.map { $0 == k ? 1.0 : 0.0 }
            let fit = IsotonicRegression.fit(x: x, y: y)
            let worst = zip(x, expected[k]).map { abs(fit.predict($0) - $1) }.max() ?? 0
            #expect(worst < 1e-12, "\(name) class \(k): \(worst)")
            #expect(zip(fit.y, fit.y.dropFirst()).allSatisfy { $0 <= $1 } && fit.y.allSatisfy { (0...1).contains($0) })
        }
    }

    @Test func mcnemarEqualsScipyBinomtest() {
        for entry in Self.references["mcnemar"] as? [[String: Any]] ?? [] {
            let b = (entry["b"] as! NSNumber).intValue, c = (entry["c"] as! NSNumber).intValue
            let p = PairedTests.mcnemarExact(b: b, c: c)
            #expect(abs(p - Self.number(entry["p"])) < 1e-12, "b \(b) c \(c): \(p)")
        }
    }

    /// Histogram binning by hand: equal-width bins, an empty bin at its centre, the edge rule of netcal.
    @Test func histogramBinningByHand() {
        // Scores 0.05 (y 1), 0.15 (0), 0.15 (1), 0.95 (1); 4 bins of width 0.25.
        let fit = HistogramBinning.fit(x: [0.05, 0.15, 0.15, 0.95], y: [1, 0, 1, 1], bins: 4, equalMass: false)
        #expect(fit.values == [2.0 / 3.0, 0.375, 0.625, 1])   // bins 2 and 3 empty: their centres
        #expect(fit.predict(0.2) == 2.0 / 3.0 && fit.predict(0.25) == 2.0 / 3.0 && fit.predict(0.26) == 0.375)
        #expect(fit.predict(0) == 2.0 / 3.0 && fit.predict(1) == 1)
        // Equal-mass: edges at the scores' linear quantiles, ends 0 and 1.
        let mass = HistogramBinning.fit(x: [0.1, 0.2, 0.3, 0.4, 0.5], y: [0, 0, 1, 1, 1], bins: 2, equalMass: true)
        #expect(mass.edges == [0, 0.3, 1] && mass.values == [0, 1])
        // One-vs-rest then renormalised; all-zero rows become uniform.
        var set = PredictionSet()
        set.append(id: 0, label: 0, probabilities: [0.9, 0.1])
        set.append(id: 1, label: 1, probabilities: [0.2, 0.8])
        let out = OneVsRest.apply(set, optionCount: 2) { c, p in c == 0 ? p : 0 }
        #expect(out == [1, 0, 1, 0])
        let zero = OneVsRest.apply(set, optionCount: 2) { _, _ in 0 }
        #expect(zero == [0.5, 0.5, 0.5, 0.5])
    }
}
