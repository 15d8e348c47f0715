import Foundation
import Testing
@testable import TrackCalibration

@Suite struct TemperatureScalingTests {
    /// METHODS §4: on synthetic-seed0-n1000.csv with s = log p: T = 2.030513, NLL 1.100437 → 0.925981.
    @Test func specCheckedValue() throws {
        let scaling = TemperatureScaling(try loadFixture("synthetic-seed0-n1000.csv"))
        let fit = scaling.fit(criterion: .nll)
        #expect(abs(fit.temperature - 2.030513) < 5e-7)
        #expect(abs(fit.nllBefore - 1.100437) < 5e-7)
        #expect(abs(fit.nllAfter - 0.925981) < 5e-7)
        #expect(fit.iterations < 30)
        // A minimum: the NLL is higher on both sides.
        #expect(scaling.nll(temperature: fit.temperature * 1.001) > fit.nllAfter)
        #expect(scaling.nll(temperature: fit.temperature / 1.001) > fit.nllAfter)
        #expect(fit.eceAfter < fit.eceBefore)
    }

    @Test func recoversAKnownTemperature() {
        // Labels drawn from softmax(u); the model reports u * 3: the best T is near 3.
        var random = SeededRandom(seed: 8)
        var set = PredictionSet()
        for i in 0..<20_000 {
            let u = (0..<4).map { _ in random.nextGaussian() }
            let p = Probabilities.softmax(u)
            var draw = random.nextDouble(), label = 3
            for k in 0..<4 { draw -= p[k]; if draw < 0 { label = k; break } }
            let logits = u.map { $0 * 3 }
            set.append(id: Int64(i), label: label, probabilities: Probabilities.softmax(logits), scores: logits)
        }
        let fit = TemperatureScaling(set).fit()
        #expect(abs(fit.temperature - 3) < 0.1)
    }

    @Test func eceCriterionLowersECE() throws {
        let scaling = TemperatureScaling(try loadFixture("synthetic-seed0-n1000.csv"))
        let fit = scaling.fit(criterion: .ece)
        #expect(fit.eceAfter < fit.eceBefore / 2)
        #expect(fit.eceAfter <= scaling.fit(criterion: .nll).eceAfter + 1e-12)
    }

    @Test func scaledSetIsTheSoftmaxOfScaledScores() {
        var set = PredictionSet()
        set.append(id: 0, label: 0, probabilities: Probabilities.softmax([2, 0]), scores: [2, 0])
        let scaled = TemperatureScaling(set).scaled(temperature: 2)
        #expect(abs(scaled.probabilities[0] - 1 / (1 + exp(-1))) < 1e-15)
        #expect(scaled.scores == [1, 0])
    }
}

@Suite struct TemperatureECEFastPathTests {
    /// The grid's conf-ECE shortcut equals the analyzer's conf-ECE of the scaled set.
    @Test func shortcutEqualsTheAnalyzer() throws {
        let scaling = TemperatureScaling(try loadFixture("synthetic-seed0-n1000.csv"))
        for t in [0.5, 1, 2.03, 7] {
            let direct = CalibrationAnalyzer(scaling.scaled(temperature: t)).metrics().confECE!
            #expect(abs(direct - scaling.ece(temperature: t, rows: nil, bins: 10)) < 1e-12, "T = \(t)")
            let rows = Array(stride(from: 0, to: 1000, by: 3))
            let subset = CalibrationAnalyzer(scaling.scaled(temperature: t, rows: rows)).metrics().confECE!
            #expect(abs(subset - scaling.ece(temperature: t, rows: rows, bins: 10)) < 1e-12, "T = \(t), subset")
        }
    }
}

@Suite struct RegimeTests {
    @Test func tceOnHandBuiltRuns() throws {
        var target = PredictionSet(), run = PredictionSet()
        target.append(id: 1, label: 0, probabilities: [0.6, 0.4])
        target.append(id: 2, label: 1, probabilities: [0.5, 0.5])
        run.append(id: 1, label: 0, probabilities: [0.9, 0.1])   // |0.3| + |0.3| → 0.3 per question after ÷K
        run.append(id: 2, label: 1, probabilities: [0.5, 0.5])   // 0
        run.append(id: 3, label: 1, probabilities: [0.2, 0.8])   // unpaired: left out
        let result = try #require(Regimes.tce(run, target: target))
        #expect(result.paired == 2 && abs(result.value - 0.15) < 1e-15)
        #expect(Regimes.tce(run, target: PredictionSet()) == nil)
        // A run equal to its target has TCE 0.
        #expect(Regimes.tce(target, target: target)!.value == 0)
    }

    @Test func boundsAndRegimes() {
        let b = Regimes.bounds(accuracy: 0.7, aStar: 0.6, optionCount: 4, lowerConstant: 0.1)
        #expect(abs(b.lower - 0.01) < 1e-15 && abs(b.upper - 0.05) < 1e-15)
        #expect(Regimes.regime(accuracy: 0.6, aStar: 0.6) == .calibratable)
        #expect(Regimes.regime(accuracy: 0.61, aStar: 0.6) == .nonCalibratable)
        #expect(Regimes.estimateAStar([(0.5, 0.01), (0.7, 0.05), (0.6, 0.015)], tolerance: 0.02) == 0.6)
        #expect(Regimes.estimateAStar([(0.5, 0.1)], tolerance: 0.02) == nil)
    }

    /// Theorem 4.6 (cw-ECE ≤ TCE) checked empirically: a calibrated target (labels drawn from
    /// its own probabilities) against a sharpened model of it.
    @Test func classwiseECEIsBelowTCE() {
        var random = SeededRandom(seed: 12)
        var target = PredictionSet(), sharp = PredictionSet()
        for i in 0..<5000 {
            let u = (0..<4).map { _ in random.nextGaussian() }
            let p = Probabilities.softmax(u)
            var draw = random.nextDouble(), label = 3
            for k in 0..<4 { draw -= p[k]; if draw < 0 { label = k; break } }
            target.append(id: Int64(i), label: label, probabilities: p)
            sharp.append(id: Int64(i), label: label, probabilities: Probabilities.softmax(u.map { $0 * 2.5 }))
        }
        let tce = Regimes.tce(sharp, target: target)!.value
        let cw = CalibrationAnalyzer(sharp).metrics().cwECE!
        #expect(cw <= tce)
        #expect(cw > 0.02)
    }
}
