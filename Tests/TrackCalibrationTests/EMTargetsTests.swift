import Foundation
import Testing
import TrackCalibration

@Suite struct EMTargetsTests {
    @Test func targetsSumToOneAndFollowTheFormula() throws {
        let set = try loadFixture("synthetic-seed0-n1000.csv")
        for gamma in EMTargets.Gamma.allCases {
            let em = EMTargets(set, bins: 10, gamma: gamma)
            for i in 0..<set.count {
                let t = em.targets(of: i)
                #expect(abs(t.reduce(0, +) - 1) < 1e-12)
                #expect(t.allSatisfy { $0 >= 0 && $0 <= 1 })
            }
        }
        // One question by hand: p = (0.1, 0.6, 0.2, 0.1), alone in bin 6, right (acc 1 → others 0).
        var one = PredictionSet()
        one.append(label: 1, probabilities: [0.1, 0.6, 0.2, 0.1])
        #expect(Array(EMTargets(one).targets(of: 0)) == [0, 1, 0, 0])
        // Wrong (acc 0): top target 0; γ = ln3/0.2; T = tanh(ln 3) + 2·tanh(ln3/2); α = β = 1/(T + 3).
        one = PredictionSet()
        one.append(label: 0, probabilities: [0.1, 0.6, 0.2, 0.1])
        let t = Array(EMTargets(one).targets(of: 0))
        let g = log(3.0) / 0.2, big = tanh(g * 0.2), small = tanh(g * 0.1)
        let alpha = 1 / (big + 2 * small + 3)
        #expect(abs(big - 0.8) < 1e-12)
        #expect(t[1] == 0 && abs(t[2] - (alpha * big + alpha)) < 1e-15 && abs(t[0] - (alpha * small + alpha)) < 1e-15)
        #expect(t[0] == t[3])
    }

    @Test func rankOrderIsKeptWhereTheConditionHolds() throws {
        let set = try loadFixture("synthetic-seed0-n1000.csv")
        let em = EMTargets(set, bins: 10)
        var checked = 0
        for i in 0..<set.count {
            let p = Array(set.probabilities[set.offsets[i]..<set.offsets[i + 1]])
            let t = Array(em.targets(of: i))
            let accuracy = em.binAccuracy[em.bins[i]]!
            let top = p.indices.max { p[$0] < p[$1] || (p[$0] == p[$1] && $0 > $1) }!
            let others = (0..<4).filter { $0 != top }
            // Among non-top options, order is always kept (tanh is increasing).
            for a in others { for b in others where p[a] > p[b] { #expect(t[a] >= t[b]) } }
            // The rank-order condition (METHODS §6): 2(1 − acc)/(T + K − 1) ≤ acc, with T = Σ_{j≥2} tanh(γ p_(j)), γ = ln 3 / p_(2).
            let second = others.map { p[$0] }.max()!
            let tSum = others.reduce(0.0) { $0 + tanh(log(3.0) / second * p[$1]) }
            if 2 * (1 - accuracy) / (tSum + 3) <= accuracy {
                checked += 1
                #expect(others.allSatisfy { t[top] >= t[$0] })
            }
        }
        #expect(checked > 500)
        #expect(em.rankViolations >= 0 && em.rankViolations < set.count)
    }

    @Test func edgeCases() {
        // p_(2) = 0: the rest share 1 − acc evenly. Two questions in one bin, one right.
        var set = PredictionSet()
        set.append(label: 0, probabilities: [1, 0, 0])
        set.append(label: 1, probabilities: [1, 0, 0])
        let em = EMTargets(set)
        #expect(em.binAccuracy[9] == 0.5)
        #expect(Array(em.targets(of: 0)) == [0.5, 0.25, 0.25])
        // The code variant differs from the paper's γ where 0 < acc < 1.
        var mixed = PredictionSet()
        mixed.append(label: 0, probabilities: [0.5, 0.3, 0.2])
        mixed.append(label: 1, probabilities: [0.5, 0.3, 0.2])
        #expect(Array(EMTargets(mixed, gamma: .paper).targets(of: 0)) != Array(EMTargets(mixed, gamma: .code).targets(of: 0)))
        // L_cal of a run that already equals its targets is 0.
        var exact = PredictionSet()
        exact.append(label: 0, probabilities: [1, 0])
        #expect(EMTargets(exact).calibrationLoss == 0)
        #expect(EMTargets(PredictionSet()).calibrationLoss == 0)
    }
}

@Suite struct WinRateTests {
    @Test func countsWinsAndTiesBothWays() {
        let pairs = [PreferencePair(promptID: "a", chosenLogProb: -1, rejectedLogProb: -2),
                     PreferencePair(promptID: "b", chosenLogProb: -3, rejectedLogProb: -2),
                     PreferencePair(promptID: "c", chosenLogProb: -2, rejectedLogProb: -2),
                     PreferencePair(promptID: "d", chosenLogProb: -10, rejectedLogProb: -4, chosenTokens: 10, rejectedTokens: 2)]
        let loss = WinRate.sequenceLikelihood(pairs)
        #expect(loss.n == 4 && loss.wins == 1 && loss.ties == 1 && loss.rate == 0.25)
        #expect(WinRate.sequenceLikelihood(pairs, ties: .half).rate == 0.375)
        // Per token: only d has counts; -1 per token beats -2 per token.
        let normalized = WinRate.sequenceLikelihood(pairs, normalize: true)
        #expect(normalized.n == 1 && normalized.wins == 1)
        let judged = WinRate.judged(["A", "B", "tie", "A"])
        #expect(judged.rate == 0.625 && WinRate.judged(["A", "B", "tie", "A"], ties: .loss).rate == 0.5)
    }

    @Test func wilsonInterval() {
        let interval = WinRate.wilson(successes: 5, n: 10)
        #expect(abs(interval.lower - 0.2366) < 5e-5 && abs(interval.upper - 0.7634) < 5e-5)
        let all = WinRate.wilson(successes: 10, n: 10)
        #expect(abs(all.upper - 1) < 1e-12 && abs(all.lower - 0.7225) < 5e-5)
        #expect(WinRate.wilson(successes: 0, n: 0) == Interval(lower: 0, upper: 1, method: .wilson))
    }
}
