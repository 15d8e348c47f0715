internal import CTrackBLAS
#if canImport(Glibc)
import Glibc
#endif

/// Vector scaling, matrix scaling (Guo et al. 2017) and Dirichlet calibration
/// (Kull et al. 2019): `z' = W·s + b`, `p = softmax(z')`, fitted by minimising
/// `NLL + λ·Σ_{i≠j} W_ij² + μ·Σ_k b_k²` (off-diagonal and intercept L2, "ODIR")
/// with L-BFGS. Vector scaling keeps W diagonal. Dirichlet calibration is
/// matrix scaling of `s = log p`. The forward pass `Z = S·Wᵀ` and the gradient
/// `∂W = Gᵀ·S` are matrix products for OpenBLAS (`cblas_dgemm`); `useBLAS = false`
/// runs the same maths in plain loops, for comparison.
public struct MatrixScaling: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case vector, matrix, dirichlet
    }

    public var kind: Kind
    public var k: Int
    /// Row-major K×K weights and K biases.
    public var weights: [Double]
    public var bias: [Double]
    public var iterations = 0
    public var nllBefore = 0.0
    public var nllAfter = 0.0

    /// Fits on N questions with K options each; `scores` is N×K row-major (for Dirichlet, log p).
    public static func fit(kind: Kind, scores: [Double], labels: [Int32], k: Int, lambda: Double = 0, mu: Double = 0,
                           useBLAS: Bool = true, maxIterations: Int = 500) -> MatrixScaling {
        let n = labels.count
        let problem = Problem(scores: scores, labels: labels, n: n, k: k, kind: kind, lambda: lambda, mu: mu, useBLAS: useBLAS)
        var x = [Double](repeating: 0, count: problem.dimension)
        // Start at the identity.
        if kind == .vector { for c in 0..<k { x[c] = 1 } } else { for c in 0..<k { x[c * k + c] = 1 } }
        let before = problem.nll(x)
        let (solution, iterations) = LBFGS.minimize(x, maxIterations: maxIterations) { problem.valueAndGradient($0) }
        x = solution
        var result = MatrixScaling(kind: kind, k: k, weights: problem.weights(x), bias: problem.bias(x))
        result.iterations = iterations
        result.nllBefore = before
        result.nllAfter = problem.nll(x)
        return result
    }

    /// Scaled scores `W·s + b` of N×K scores.
    public func apply(_ scores: [Double]) -> [Double] {
        let n = scores.count / k
        var out = [Double](repeating: 0, count: n * k)
        for i in 0..<n {
            for r in 0..<k {
                var z = bias[r]
                for c in 0..<k { z += weights[r * k + c] * scores[i * k + c] }
                out[i * k + r] = z
            }
        }
        return out
    }

    /// The objective over a flat parameter vector: diagonal (vector) or full W, then b.
    struct Problem: Sendable {
        let scores: [Double]
        let labels: [Int32]
        let n: Int, k: Int
        let kind: Kind
        let lambda: Double, mu: Double
        let useBLAS: Bool

        var dimension: Int { (kind == .vector ? k : k * k) + k }

        func weights(_ x: [Double]) -> [Double] {
            if kind != .vector { return Array(x[0..<(k * k)]) }
            var w = [Double](repeating: 0, count: k * k)
            for c in 0..<k { w[c * k + c] = x[c] }
            return w
        }

        func bias(_ x: [Double]) -> [Double] { Array(x[(dimension - k)...]) }

        func nll(_ x: [Double]) -> Double {
            let (value, _) = valueAndGradient(x)
            return value - penalty(x)
        }

        func penalty(_ x: [Double]) -> Double {
            var p = 0.0
            if kind != .vector { for r in 0..<k { for c in 0..<k where r != c { p += lambda * x[r * k + c] * x[r * k + c] } } }
            for b in bias(x) { p += mu * b * b }
            return p
        }

        /// Mean NLL (+ penalty) and its gradient.
        func valueAndGradient(_ x: [Double]) -> (Double, [Double]) {
            let w = weights(x), b = bias(x)
            // Z = S·Wᵀ + 1·bᵀ (N×K)
            var z = [Double](repeating: 0, count: n * k)
            for i in 0..<n { for r in 0..<k { z[i * k + r] = b[r] } }
            if useBLAS {
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(k), Int32(k), 1, scores, Int32(k),
                            w, Int32(k), 1, &z, Int32(k))
            } else {
                for i in 0..<n { for r in 0..<k { var sum = 0.0; for c in 0..<k { sum += scores[i * k + c] * w[r * k + c] }; z[i * k + r] += sum } }
            }
            // G = (softmax(Z) − Y) / N, the loss alongside.
            var value = 0.0
            var gb = [Double](repeating: 0, count: k)
            for i in 0..<n {
                let row = i * k
                var maximum = -Double.infinity
                for r in 0..<k where z[row + r] > maximum { maximum = z[row + r] }
                var total = 0.0
                for r in 0..<k { z[row + r] = exp(z[row + r] - maximum); total += z[row + r] }
                let y = Int(labels[i])
                value -= log(z[row + y] / total)
                for r in 0..<k {
                    let g = (z[row + r] / total - (r == y ? 1 : 0)) / Double(n)
                    z[row + r] = g
                    gb[r] += g
                }
            }
            value /= Double(n)
            // ∂W = Gᵀ·S (K×K)
            var gw = [Double](repeating: 0, count: k * k)
            if useBLAS {
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(k), Int32(k), Int32(n), 1, z, Int32(k),
                            scores, Int32(k), 0, &gw, Int32(k))
            } else {
                for i in 0..<n { for r in 0..<k { let g = z[i * k + r]; for c in 0..<k { gw[r * k + c] += g * scores[i * k + c] } } }
            }
            var gradient = [Double](repeating: 0, count: dimension)
            if kind == .vector {
                for c in 0..<k { gradient[c] = gw[c * k + c] }
            } else {
                for r in 0..<k {
                    for c in 0..<k {
                        gradient[r * k + c] = gw[r * k + c] + (r != c ? 2 * lambda * x[r * k + c] : 0)
                    }
                }
            }
            for r in 0..<k { gradient[dimension - k + r] = gb[r] + 2 * mu * b[r] }
            return (value + penalty(x), gradient)
        }
    }
}

/// Limited-memory BFGS (m = 10) with a backtracking Armijo line search; stops when
/// the gradient's largest component falls below 1e-9 or progress stalls.
enum LBFGS {
    static func minimize(_ start: [Double], maxIterations: Int, memory: Int = 10,
                         function: ([Double]) -> (Double, [Double])) -> ([Double], Int) {
        var x = start
        var (value, gradient) = function(x)
        var history: [(s: [Double], y: [Double], rho: Double)] = []
        func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        for iteration in 1...max(1, maxIterations) {
            if gradient.map(abs).max() ?? 0 < 1e-9 { return (x, iteration - 1) }
            // Two-loop recursion for the search direction.
            var q = gradient
            var alphas: [Double] = []
            for entry in history.reversed() {
                let a = entry.rho * dot(entry.s, q)
                alphas.append(a)
                for i in q.indices { q[i] -= a * entry.y[i] }
            }
            if let last = history.last {
                let gamma = dot(last.s, last.y) / dot(last.y, last.y)
                for i in q.indices { q[i] *= gamma }
            }
            for (entry, a) in zip(history, alphas.reversed()) {
                let beta = entry.rho * dot(entry.y, q)
                for i in q.indices { q[i] += (a - beta) * entry.s[i] }
            }
            var direction = q.map { -$0 }
            var slope = dot(direction, gradient)
            if slope >= 0 { direction = gradient.map { -$0 }; slope = -dot(gradient, gradient); history.removeAll() }
            // Backtracking line search (Armijo).
            var step = 1.0
            var next = x, nextValue = value, nextGradient = gradient
            var accepted = false
            for _ in 0..<40 {
                next = zip(x, direction).map { $0 + step * $1 }
                (nextValue, nextGradient) = function(next)
                if nextValue <= value + 1e-4 * step * slope { accepted = true; break }
                step *= 0.5
            }
            if !accepted { return (x, iteration) }
            let s = zip(next, x).map { $0 - $1 }, y = zip(nextGradient, gradient).map { $0 - $1 }
            let sy = dot(s, y)
            if sy > 1e-12 {
                history.append((s, y, 1 / sy))
                if history.count > memory { history.removeFirst() }
            }
            let improvement = value - nextValue
            x = next
            value = nextValue
            gradient = nextGradient
            if improvement < 1e-15 * max(1, abs(value)) { return (x, iteration) }
        }
        return (x, maxIterations)
    }
}
