#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// Smooth ECE (Błasiok & Nakkiran 2023), computed as relplot 1.0.3 computes it
/// (METHODS §3): the residuals `f − y` and the weights are spread linearly onto a
/// grid of P points, smoothed with a Gaussian kernel of width σ reflected at 0 and
/// 1 (discrete convolution over the grid, as numpy's), read back by linear
/// interpolation at an evaluation mesh of `max(200, round(10/σ))` points, and
///
///     smECE_σ = Σ_t |r̂(t)| ŵ(t) / Σ_t ŵ(t),   r̂ = smoothed residual / (ŵ),  ŵ = smoothed weight + 1e-4,
///
/// with `P = max(2000, round(20/σ)) / 2 + 1`. The bandwidth is relplot's fixed point
/// σ* with σ* = smECE_σ*, found by bisection from 1 with 10 refinements (σ = 1 when
/// smECE_1 ≥ 1, else the left end of the last bracket). Kernel terms below the
/// smallest double (beyond ~38σ) are exactly 0 in numpy too, so they are skipped:
/// the same sums in O(P·σP) instead of O(P²).
public enum SmoothECE {
    /// smECE at bandwidth `sigma` of predictions `f` (in [0, 1]) and outcomes `y` (0 or 1),
    /// optionally weighted (bootstrap multiplicities).
    public static func value(_ f: [Double], _ y: [Double], sigma: Double, weights: [Double]? = nil) -> Double {
        value(ArrayPoints(f: f, y: y), sigma: sigma, weights: weights)
    }

    static func value<S: SmoothPoints>(_ points: S, sigma: Double, weights: [Double]? = nil) -> Double {
        let smoothed = smooth(points, sigma: sigma, weights: weights, mesh: mesh(sigma: sigma))
        return value(smoothed)
    }

    /// The evaluation mesh at bandwidth σ: `max(200, round(10/σ))` points.
    static func mesh(sigma: Double) -> Int { max(Int((10 / sigma).rounded(.toNearestOrEven)), 200) }

    /// `Σ_t |r̂(t)| ŵ(t) / Σ_t ŵ(t)` over the mesh.
    static func value(_ smoothed: (residual: [Double], density: [Double])) -> Double {
        let mesh = smoothed.residual.count
        var numerator = 0.0, denominator = 0.0
        for t in 0..<mesh {
            numerator += abs(smoothed.residual[t]) * smoothed.density[t]
            denominator += smoothed.density[t]
        }
        return numerator / denominator
    }

    /// smECE with relplot's bandwidth: (value, σ).
    public static func automatic(_ f: [Double], _ y: [Double], weights: [Double]? = nil) -> (value: Double, sigma: Double) {
        automatic(ArrayPoints(f: f, y: y), weights: weights)
    }

    /// smECE with relplot's bandwidth of points read where they are (no copy of the run).
    static func automatic<S: SmoothPoints>(_ points: S, weights: [Double]? = nil) -> (value: Double, sigma: Double) {
        let sigma = bandwidth { value(points, sigma: $0, weights: weights) }
        return (value(points, sigma: sigma, weights: weights), sigma)
    }

    /// relplot's `search_param`: σ = 1 if it already satisfies σ < smECE_σ (or σ < 0.001),
    /// else bisection on [0, 1] with 10 refinements, returning the bracket's upper end.
    static func bandwidth(_ smece: (Double) -> Double) -> Double {
        func check(_ alpha: Double) -> Bool { alpha < 0.001 || alpha < smece(alpha) }
        if check(1) { return 1 }
        var start = 1.0, end = 0.0
        for _ in 0..<10 {
            let midpoint = (start + end) / 2
            if check(midpoint) { end = midpoint } else { start = midpoint }
        }
        return start
    }

    /// The smoothed residual `r̂` (of `f − y`; of `y` itself when not `residual`: relplot's
    /// kernel regression, the smooth reliability curve) and density `ŵ` at `mesh` evenly
    /// spaced points of [0, 1].
    public static func smooth(_ f: [Double], _ y: [Double], sigma: Double, weights: [Double]? = nil,
                              mesh: Int, residual centred: Bool = true) -> (residual: [Double], density: [Double]) {
        smooth(ArrayPoints(f: f, y: y), sigma: sigma, weights: weights, mesh: mesh, residual: centred)
    }

    static func smooth<S: SmoothPoints>(_ source: S, sigma: Double, weights: [Double]? = nil,
                                        mesh: Int, residual centred: Bool = true) -> (residual: [Double], density: [Double]) {
        let points = gridPoints(sigma: sigma)
        // Spread f − y and 1 (times the weight) onto the grid.
        var residualGrid = [Double](repeating: 0, count: points), weightGrid = [Double](repeating: 0, count: points)
        for i in 0..<source.count {
            let w = weights?[i] ?? 1
            if w == 0 { continue }
            let f = source.prediction(i), y = source.outcome(i)
            let (bin, fraction) = gridPosition(f, points: points)
            let r = (centred ? f - y : y) * w
            residualGrid[bin] += (1 - fraction) * r
            residualGrid[bin + 1] += fraction * r
            weightGrid[bin] += (1 - fraction) * w
            weightGrid[bin + 1] += fraction * w
        }
        return finish(residualGrid: residualGrid, weightGrid: weightGrid, sigma: sigma, mesh: mesh)
    }

    /// relplot's grid size at bandwidth σ: `max(2000, round(20/σ)) / 2 + 1` points.
    static func gridPoints(sigma: Double) -> Int { max(2000, Int((20 / sigma).rounded(.toNearestOrEven))) / 2 + 1 }

    /// Where a prediction falls on a grid of `points` over [0, 1]: its lower point and the
    /// fraction of the way to the next.
    @inline(__always)
    static func gridPosition(_ f: Double, points: Int) -> (bin: Int, fraction: Double) {
        let position = f * Double(points - 1)
        let bin = min(max(Int(position), 0), points - 2)
        return (bin, position - Double(bin))
    }

    /// The smoothed residual and density at the `mesh` points from the spread grids.
    static func finish(residualGrid: [Double], weightGrid: [Double], sigma: Double, mesh: Int) -> (residual: [Double], density: [Double]) {
        let points = residualGrid.count
        let kernel = Self.kernel(points: points, sigma: sigma)
        // Only the grid values the mesh interpolates between are needed: two per mesh point.
        var lower = [Int](repeating: 0, count: mesh)
        var needed = [Bool](repeating: false, count: points)
        for j in 0..<mesh {
            let index = min(max(Int(linspace(j, mesh) * Double(points - 1)), 0), points - 2)
            lower[j] = index
            needed[index] = true
            needed[index + 1] = true
        }
        let (residualSmooth, weightSmooth) = reflectedConvolution(residualGrid, weightGrid, kernel, needed: needed)
        var residual = [Double](repeating: 0, count: mesh), density = [Double](repeating: 0, count: mesh)
        for j in 0..<mesh {
            let t = linspace(j, mesh)
            let ys = interpolate(t, residualSmooth, index: lower[j])
            let dens = interpolate(t, weightSmooth, index: lower[j]) + 0.0001
            residual[j] = ys / dens
            density[j] = dens
        }
        return (residual, density)
    }

    /// The smooth reliability diagram (relplot's, METHODS §9): on a `mesh`-point grid of [0, 1],
    /// the kernel regression of `y` on `f` at smECE's bandwidth, its 95% band from `resamples`
    /// Poisson-bootstrap resamples (track's resampling, `seed`), and the density of `f` (summing to 1).
    public struct Diagram: Sendable {
        public var mesh: [Double]
        public var curve: [Double] = []
        public var lower: [Double] = []
        public var upper: [Double] = []
        public var density: [Double] = []
        public var smECE: Double?
        public var sigma: Double?
    }

    public static func diagram(_ f: [Double], _ y: [Double], mesh: Int = 200, resamples: Int, seed: UInt64 = 0) -> Diagram {
        var result = Diagram(mesh: (0..<mesh).map { linspace($0, mesh) })
        guard !f.isEmpty else { return result }
        let (value, sigma) = automatic(f, y)
        let main = smooth(f, y, sigma: sigma, mesh: mesh, residual: false)
        let lanes = CalibrationAnalyzer.lanes
        let samples = Slots<[Double]>(repeating: [], count: resamples)
        DispatchQueue.concurrentPerform(iterations: (resamples + lanes - 1) / lanes) { batch in
            let weights = CalibrationAnalyzer.poissonWeights(n: f.count, seed: seed, firstResample: batch * lanes)
            for lane in 0..<lanes where batch * lanes + lane < resamples {
                let w = (0..<f.count).map { Double(weights[$0 * lanes + lane]) }
                samples.store(batch * lanes + lane, smooth(f, y, sigma: sigma, weights: w, mesh: mesh, residual: false).residual)
            }
        }
        let curves = samples.values.filter { !$0.isEmpty }
        result.lower = [Double](repeating: 0, count: mesh)
        result.upper = [Double](repeating: 0, count: mesh)
        for j in 0..<mesh where !curves.isEmpty {
            let sorted = curves.map { $0[j] }.sorted()
            result.lower[j] = quantile(sorted, 0.025)
            result.upper[j] = quantile(sorted, 0.975)
        }
        let total = main.density.reduce(0, +)
        result.curve = main.residual
        result.density = main.density.map { $0 / total }
        result.smECE = value
        result.sigma = sigma
        return result
    }

    /// numpy's `linspace(0, 1, count)[index]`.
    @inline(__always) static func linspace(_ index: Int, _ count: Int) -> Double {
        index == count - 1 ? 1 : Double(index) * (1 / Double(count - 1))
    }

    /// Gaussian density of width σ at `linspace(0, 1, points) − 0.5`.
    static func kernel(points: Int, sigma: Double) -> [Double] {
        let variance = sigma * sigma
        let norm = (2 * Double.pi).squareRoot() * sigma
        return (0..<points).map { i in
            let t = linspace(i, points) - 0.5
            return exp(-t * t / (2 * variance)) / norm
        }
    }

    /// relplot's reflected convolution of two grids with one kernel: each grid mirrored at
    /// both ends (without repeating the end points), `np.convolve(…, "valid")`, the P central
    /// values; computed where `needed` (the rest are left 0).
    static func reflectedConvolution(_ a: [Double], _ b: [Double], _ kernel: [Double],
                                     needed: [Bool]) -> ([Double], [Double]) {
        let p = a.count
        func extend(_ values: [Double]) -> [Double] {
            Array(values.reversed().dropLast()) + values + Array(values.reversed().dropFirst())
        }
        let ea = extend(a), eb = extend(b)
        // Kernel terms that underflowed to 0 add nothing (in numpy either): skip them.
        guard let first = kernel.firstIndex(where: { $0 != 0 }), let last = kernel.lastIndex(where: { $0 != 0 }) else {
            return ([Double](repeating: 0, count: p), [Double](repeating: 0, count: p))
        }
        var outA = [Double](repeating: 0, count: p), outB = [Double](repeating: 0, count: p)
        let offset = p / 2
        ea.withUnsafeBufferPointer { ea in
            eb.withUnsafeBufferPointer { eb in
                kernel.withUnsafeBufferPointer { k in
                    for o in 0..<p where needed[o] {
                        // valid[n] = Σ_m e[n + m] · k[p − 1 − m] = Σ_j e[n + p − 1 − j] · k[j], n = o + p/2.
                        let base = o + offset + p - 1
                        var sumA = 0.0, sumB = 0.0
                        for j in first...last {
                            sumA += ea[base - j] * k[j]
                            sumB += eb[base - j] * k[j]
                        }
                        outA[o] = sumA
                        outB[o] = sumB
                    }
                }
            }
        }
        return (outA, outB)
    }

    /// relplot's `interpolate`: linear between grid points `i/(len − 1)`; `index` is the lower one.
    @inline(__always) static func interpolate(_ t: Double, _ y: [Double], index: Int) -> Double {
        let size = 1 / Double(y.count - 1)
        let residual = (t - Double(index) * size) / size
        return y[index] * (1 - residual) + y[index + 1] * residual
    }
}

/// The smECE grids of eight bootstrap resamples at one bandwidth, side by side in SIMD lanes:
/// each lane spreads `f − y` and 1 times its weight exactly as `SmoothECE.smooth` does.
final class SmoothGridLanes {
    let sigma: Double
    let points: Int
    /// Per grid point its residual sum, then its weight sum (interleaved: the two points a
    /// prediction spreads onto are four neighbouring vectors), written through a pointer (no
    /// copy-on-write check or bounds check in the resampling pass).
    private let grid: UnsafeMutablePointer<SIMD8<Double>>

    init(sigma: Double) {
        self.sigma = sigma
        points = SmoothECE.gridPoints(sigma: sigma)
        grid = .allocate(capacity: 2 * points)
        grid.initialize(repeating: .zero, count: 2 * points)
    }

    deinit { grid.deallocate() }

    @inline(__always)
    func add(prediction f: Double, outcome y: Double, weights w: SIMD8<Double>) {
        let (bin, fraction) = SmoothECE.gridPosition(f, points: points)
        add(prediction: f, outcome: y, weights: w, bin: bin, fraction: fraction)
    }

    /// Each prediction's grid position (`SmoothECE.gridPosition`), for passes that add the same
    /// predictions many times.
    static func positions(_ predictions: UnsafeBufferPointer<Double>, sigma: Double) -> (bins: [Int32], fractions: [Double]) {
        let points = SmoothECE.gridPoints(sigma: sigma)
        var bins = [Int32](repeating: 0, count: predictions.count), fractions = [Double](repeating: 0, count: predictions.count)
        for (i, f) in predictions.enumerated() {
            let (bin, fraction) = SmoothECE.gridPosition(f, points: points)
            bins[i] = Int32(bin)
            fractions[i] = fraction
        }
        return (bins, fractions)
    }

    @inline(__always)
    func add(prediction f: Double, outcome y: Double, weights w: SIMD8<Double>, bin: Int, fraction: Double) {
        let r = (f - y) * w
        let at = grid + 2 * bin
        at[0] += (1 - fraction) * r
        at[2] += fraction * r
        at[1] += (1 - fraction) * w
        at[3] += fraction * w
    }

    /// smECE of one lane's resample.
    func value(lane: Int) -> Double {
        let residual = (0..<points).map { grid[2 * $0][lane] }, weight = (0..<points).map { grid[2 * $0 + 1][lane] }
        let smoothed = SmoothECE.finish(residualGrid: residual, weightGrid: weight, sigma: sigma, mesh: SmoothECE.mesh(sigma: sigma))
        return SmoothECE.value(smoothed)
    }
}

/// Predictions and 0/1 outcomes as SmoothECE reads them, one point at a time.
protocol SmoothPoints {
    var count: Int { get }
    func prediction(_ i: Int) -> Double
    func outcome(_ i: Int) -> Double
}

struct ArrayPoints: SmoothPoints {
    let f: [Double]
    let y: [Double]
    var count: Int { f.count }
    @inline(__always) func prediction(_ i: Int) -> Double { f[i] }
    @inline(__always) func outcome(_ i: Int) -> Double { y[i] }
}

/// Top-label confidences and correctness (valid while the buffers are).
struct TopLabelPoints: SmoothPoints {
    let confidence: UnsafeBufferPointer<Double>
    let correct: UnsafeBufferPointer<Bool>
    var count: Int { confidence.count }
    @inline(__always) func prediction(_ i: Int) -> Double { confidence[i] }
    @inline(__always) func outcome(_ i: Int) -> Double { correct[i] ? 1 : 0 }
}

/// Class c's column of a run's probabilities (every question with K options) and `[y_i = c]`.
struct ClassPoints: SmoothPoints {
    let probabilities: UnsafeBufferPointer<Double>
    let labels: UnsafeBufferPointer<Int32>
    let options: Int
    let option: Int
    var count: Int { labels.count }
    @inline(__always) func prediction(_ i: Int) -> Double { probabilities[i * options + option] }
    @inline(__always) func outcome(_ i: Int) -> Double { Int(labels[i]) == option ? 1 : 0 }
}

/// The ℓ2 calibration error of Kumar, Liang & Ma (2019), as uncertainty-calibration
/// 0.1.4's `lower_bound_scaling_ce(probs, labels, p=2, mode='top-label')` computes it
/// (METHODS §3): equal-mass bins over the top-label confidences (the sorted values split
/// as `np.array_split` into B parts, boundaries halfway between neighbouring parts, the
/// last 1.0, duplicates removed; a value goes to the first bin whose boundary is ≥ it),
/// then `sqrt(Σ_b (n_b/N)·(mean conf − accuracy)²)`; debiased, each bin's square less
/// `acc_b(1 − acc_b)/(n_b − 1)` (0 for a bin of one), and the sum floored at 0.
public enum L2CalibrationError {
    public static func value(confidences: [Double], correct: [Bool], bins requested: Int, debiased: Bool) -> Double? {
        values(confidences: confidences, correct: correct, bins: requested).map { debiased ? $0.debiased : $0.plugIn }
    }

    /// The plug-in and debiased values from one sort of the confidences.
    public static func values(confidences: [Double], correct: [Bool], bins requested: Int) -> (plugIn: Double, debiased: Double)? {
        let n = confidences.count
        guard n > 0, requested > 0 else { return nil }
        let sorted = confidences.sorted()
        let parts = min(requested, n)
        // np.array_split: the first n % parts parts have one more element.
        var boundaries: [Double] = []
        var start = 0
        for part in 0..<parts {
            let size = n / parts + (part < n % parts ? 1 : 0)
            let end = start + size
            if part < parts - 1 { boundaries.append((sorted[end - 1] + sorted[end]) / 2) }
            start = end
        }
        boundaries.append(1)
        boundaries = Array(Set(boundaries)).sorted()
        var count = [Int](repeating: 0, count: boundaries.count)
        var sumConfidence = [Double](repeating: 0, count: boundaries.count)
        var sumCorrect = [Double](repeating: 0, count: boundaries.count)
        for i in 0..<n {
            // searchsorted(side="left"): the first boundary ≥ the value.
            let bin = min(searchSorted(boundaries, confidences[i]), boundaries.count - 1)
            count[bin] += 1
            sumConfidence[bin] += confidences[i]
            sumCorrect[bin] += correct[i] ? 1 : 0
        }
        var plugIn = 0.0, debiased = 0.0
        for b in count.indices where count[b] > 0 {
            let size = Double(count[b])
            let accuracy = sumCorrect[b] / size
            let gap = sumConfidence[b] / size - accuracy
            let error = gap * gap
            plugIn += size / Double(n) * error
            debiased += size / Double(n) * (count[b] < 2 ? 0 : error - accuracy * (1 - accuracy) / (size - 1))
        }
        return (max(plugIn, 0).squareRoot(), max(debiased, 0).squareRoot())
    }
}
