import Foundation
import Testing
@testable import TrackCalibration

@Suite struct MatrixScalingTests {
    /// Scores from a known linear distortion of calibrated logits.
    static func data(n: Int, k: Int, seed: UInt64) -> (scores: [Double], labels: [Int32]) {
        var random = SeededRandom(seed: seed)
        var scores: [Double] = [], labels: [Int32] = []
        for _ in 0..<n {
            let u = (0..<k).map { _ in random.nextGaussian() * 1.5 }
            let p = Probabilities.softmax(u)
            var draw = random.nextDouble(), label = k - 1
            for c in 0..<k { draw -= p[c]; if draw < 0 { label = c; break } }
            // The model's scores: sharpened, with a class bias and a little mixing.
            let distorted = (0..<k).map { r in 2.5 * u[r] + (r == 0 ? 1.0 : 0) + 0.3 * u[(r + 1) % k] }
            scores += distorted
            labels.append(Int32(label))
        }
        return (scores, labels)
    }

    @Test func gradientMatchesFiniteDifferences() {
        let (scores, labels) = Self.data(n: 200, k: 3, seed: 1)
        for kind in MatrixScaling.Kind.allCases {
            let problem = MatrixScaling.Problem(scores: scores, labels: labels, n: 200, k: 3, kind: kind, lambda: 0.01, mu: 0.02, useBLAS: true)
            var random = SeededRandom(seed: 2)
            let x = (0..<problem.dimension).map { _ in random.nextGaussian() * 0.5 }
            let (_, gradient) = problem.valueAndGradient(x)
            for i in 0..<problem.dimension {
                var plus = x, minus = x
                plus[i] += 1e-6
                minus[i] -= 1e-6
                let numeric = (problem.valueAndGradient(plus).0 - problem.valueAndGradient(minus).0) / 2e-6
                #expect(abs(numeric - gradient[i]) < 1e-6, "\(kind) parameter \(i)")
            }
        }
    }

    @Test func blasAndLoopsAgree() {
        let (scores, labels) = Self.data(n: 500, k: 5, seed: 3)
        let blas = MatrixScaling.fit(kind: .matrix, scores: scores, labels: labels, k: 5, lambda: 0.001)
        let loops = MatrixScaling.fit(kind: .matrix, scores: scores, labels: labels, k: 5, lambda: 0.001, useBLAS: false)
        #expect(abs(blas.nllAfter - loops.nllAfter) < 1e-9)
        for (a, b) in zip(blas.weights, loops.weights) { #expect(abs(a - b) < 1e-5) }
    }

    @Test func fitsImproveNLLInOrderOfFlexibility() {
        let (scores, labels) = Self.data(n: 5000, k: 4, seed: 4)
        var set = PredictionSet()
        for i in 0..<labels.count {
            let row = Array(scores[(4 * i)..<(4 * i + 4)])
            set.append(id: Int64(i), label: Int(labels[i]), probabilities: Probabilities.softmax(row), scores: row)
        }
        let temperature = TemperatureScaling(set).fit()
        let vector = MatrixScaling.fit(kind: .vector, scores: scores, labels: labels, k: 4)
        let matrix = MatrixScaling.fit(kind: .matrix, scores: scores, labels: labels, k: 4)
        #expect(abs(vector.nllBefore - temperature.nllBefore) < 1e-12)
        #expect(vector.nllAfter <= temperature.nllAfter + 1e-9)
        #expect(matrix.nllAfter <= vector.nllAfter + 1e-9)
        #expect(matrix.nllAfter < matrix.nllBefore - 0.1)
        // The applied map reproduces the fitted NLL.
        let applied = matrix.apply(scores)
        var nll = 0.0
        for i in 0..<labels.count {
            let row = Array(applied[(4 * i)..<(4 * i + 4)])
            nll -= log(Probabilities.softmax(row)[Int(labels[i])])
        }
        #expect(abs(nll / Double(labels.count) - matrix.nllAfter) < 1e-9)
        // Strong off-diagonal regularisation pushes matrix scaling towards vector scaling.
        let regularised = MatrixScaling.fit(kind: .dirichlet, scores: scores, labels: labels, k: 4, lambda: 100)
        let offDiagonal = (0..<4).flatMap { r in (0..<4).filter { $0 != r }.map { regularised.weights[r * 4 + $0] } }
        #expect(offDiagonal.allSatisfy { abs($0) < 0.01 })
    }
}
