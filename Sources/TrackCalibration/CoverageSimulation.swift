#if canImport(Glibc)
import Glibc
#endif

/// The coverage simulation of METHODS §3: runs drawn from known calibration curves, the true
/// value of every binned error by numerical integration, and how often each interval track
/// prints contains it (and how often the calibration test rejects).
///
/// The model: a question's confidence is `c = 1/K + (1 − 1/K)·x`, x ~ Beta(a, b) (the
/// confidence shape); its top option is uniform over the K, every other option gets
/// `(1 − c)/(K − 1)`. The answer is the top option with probability `g(c)` (the calibration
/// curve), else uniform over the others. So `P(y = k | p)` is `g(c)` for the top option and
/// `(1 − g(c))/(K − 1)` for each other one, and every population quantity is an integral over
/// c, computed by the midpoint rule on 200,000 points.
public enum CoverageSimulation {
    public enum Curve: String, Sendable, CaseIterable {
        /// g(c) = c.
        case calibrated
        /// g(c) = c − 0.02 − 0.05·(c − 0.6): a little overconfident, more so at high confidence.
        case mild
        /// g(c) = 1/K + 0.8·(c − 1/K): overconfident, as preference alignment leaves models.
        case strong

        func accuracy(_ c: Double, k: Int) -> Double {
            switch self {
            case .calibrated: c
            case .mild: Swift.min(1, Swift.max(0, c - 0.02 - 0.05 * (c - 0.6)))
            case .strong: 1 / Double(k) + 0.8 * (c - 1 / Double(k))
            }
        }
    }

    public enum Shape: String, Sendable, CaseIterable {
        /// x ~ Beta(2, 2): confidences spread over the range.
        case spread
        /// x ~ Beta(5, 1.5): most confidences high, as an instruction-tuned model's.
        case high
        /// x ~ Beta(1, 1).
        case uniform

        var parameters: (Double, Double) {
            switch self {
            case .spread: (2, 2)
            case .high: (5, 1.5)
            case .uniform: (1, 1)
            }
        }
    }

    public struct Scenario: Sendable, CustomStringConvertible {
        public var curve: Curve
        public var shape: Shape
        public var k: Int
        public var n: Int
        public init(curve: Curve, shape: Shape = .spread, k: Int = 4, n: Int) {
            self.curve = curve
            self.shape = shape
            self.k = k
            self.n = n
        }
        public var description: String { "\(curve.rawValue), \(shape.rawValue), K = \(k), n = \(n)" }
    }

    /// The binned errors whose intervals are simulated.
    public static let keys: [MetricKey] = [.confECE, .cwECE, .pooledECE, .rmsce, .mce, .equalMassECE, .ace, .tace]

    /// The population value of every binned error (B bins, TACE's ε), and the accuracy.
    public static func truth(_ s: Scenario, bins: Int = 10, epsilon: Double = 0.01, points: Int = 200_000) -> [MetricKey: Double] {
        let (a, b) = s.shape.parameters
        let k = Double(s.k)
        let logBeta = lgamma(a) + lgamma(b) - lgamma(a + b)
        // Entries (value, expected hit, mass) of the top label, and of one class (by symmetry every class).
        var top: [(v: Double, e: Double, w: Double)] = [], cls: [(v: Double, e: Double, w: Double)] = []
        top.reserveCapacity(points)
        cls.reserveCapacity(2 * points)
        var accuracy = 0.0
        for j in 0..<points {
            let x = (Double(j) + 0.5) / Double(points)
            let density = exp((a - 1) * log(x) + (b - 1) * log(1 - x) - logBeta) / Double(points)
            let c = 1 / k + (1 - 1 / k) * x
            let g = s.curve.accuracy(c, k: s.k)
            accuracy += density * g
            top.append((c, g, density))
            cls.append((c, g, density / k))
            cls.append(((1 - c) / (k - 1), (1 - g) / (k - 1), density * (k - 1) / k))
        }
        var result: [MetricKey: Double] = [.accuracy: accuracy]
        func widthBins(_ entries: [(v: Double, e: Double, w: Double)]) -> (gap: [Double], mass: [Double]) {
            var gap = [Double](repeating: 0, count: bins), mass = gap
            for x in entries {
                let m = equalWidthBin(x.v, bins: bins)
                gap[m] += x.w * (x.e - x.v)
                mass[m] += x.w
            }
            return (gap, mass)
        }
        func massBins(_ entries: [(v: Double, e: Double, w: Double)], threshold: Double) -> [(gap: Double, mass: Double)] {
            let kept = entries.filter { $0.v > threshold }.sorted { $0.v < $1.v }
            let total = kept.reduce(0) { $0 + $1.w }
            var out = [(gap: Double, mass: Double)](repeating: (0, 0), count: bins)
            var cumulative = 0.0
            for x in kept {
                let r = Swift.min(bins - 1, Int((cumulative + x.w / 2) / total * Double(bins)))
                out[r].gap += x.w * (x.e - x.v) / total
                out[r].mass += x.w / total
                cumulative += x.w
            }
            return out
        }
        let confidence = widthBins(top)
        result[.confECE] = confidence.gap.reduce(0) { $0 + abs($1) }
        result[.rmsce] = zip(confidence.gap, confidence.mass).reduce(0) { $0 + ($1.1 > 0 ? $1.0 * $1.0 / $1.1 : 0) }.squareRoot()
        result[.mce] = zip(confidence.gap, confidence.mass).reduce(0) { Swift.max($0, $1.1 > 0 ? abs($1.0 / $1.1) : 0) }
        result[.cwECE] = widthBins(cls).gap.reduce(0) { $0 + abs($1) }
        // Pooled: every question's K values, one class's entries K times over K values each.
        result[.pooledECE] = result[.cwECE]
        result[.equalMassECE] = massBins(top, threshold: -1).reduce(0) { $0 + abs($1.gap) }
        for (key, threshold) in [(MetricKey.ace, -1.0), (.tace, epsilon)] {
            let binsOfClass = massBins(cls, threshold: threshold).filter { $0.mass > 0 }
            result[key] = binsOfClass.reduce(0) { $0 + abs($1.gap / $1.mass) } / Double(binsOfClass.count)
        }
        return result
    }

    /// One simulated run of the scenario.
    public static func draw(_ s: Scenario, random: inout SeededRandom) -> PredictionSet {
        let (a, b) = s.shape.parameters
        var set = PredictionSet()
        set.reserve(questions: s.n, options: s.k)
        let k = Double(s.k)
        var row = [Double](repeating: 0, count: s.k)
        for _ in 0..<s.n {
            let x = beta(a, b, &random)
            let c = 1 / k + (1 - 1 / k) * x
            let top = random.nextInt(below: s.k)
            for j in 0..<s.k { row[j] = j == top ? c : (1 - c) / (k - 1) }
            var label = top
            if random.nextDouble() >= s.curve.accuracy(c, k: s.k) {
                label = random.nextInt(below: s.k - 1)
                if label >= top { label += 1 }
            }
            set.append(label: label, probabilities: row)
        }
        return set
    }

    /// Beta(a, b) from two gamma variates (Marsaglia & Tsang 2000).
    static func beta(_ a: Double, _ b: Double, _ random: inout SeededRandom) -> Double {
        let x = gamma(a, &random), y = gamma(b, &random)
        return x / (x + y)
    }

    static func gamma(_ shape: Double, _ random: inout SeededRandom) -> Double {
        if shape < 1 { return gamma(shape + 1, &random) * pow(Swift.max(random.nextDouble(), 1e-300), 1 / shape) }
        let d = shape - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            var x = 0.0, v = 0.0
            repeat {
                x = random.nextGaussian()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = random.nextDouble()
            if u < 1 - 0.0331 * x * x * x * x { return d * v }
            if log(Swift.max(u, 1e-300)) < 0.5 * x * x + d * (1 - v + log(v)) { return d * v }
        }
    }

    /// What the replicates of one scenario gave, per metric.
    public struct Cell: Sendable {
        public var scenario: Scenario
        public var replicates: Int
        public var truth: [MetricKey: Double]
        /// Fraction of intervals that contain the truth, that lie entirely above it, and entirely below.
        public var covered: [MetricKey: Double] = [:]
        public var above: [MetricKey: Double] = [:]
        public var below: [MetricKey: Double] = [:]
        public var meanWidth: [MetricKey: Double] = [:]
        /// Mean estimate − truth.
        public var bias: [MetricKey: Double] = [:]
        /// Fraction of replicates whose calibration test (statistic conf-ECE / cw-ECE) rejected at 1 − level.
        public var rejected: [MetricKey: Double] = [:]
        /// Accuracy's percentile interval, for comparison.
        public var accuracyCovered = 0.0
    }

    /// Runs `replicates` simulated runs of the scenario through `CalibrationAnalyzer.intervals`.
    public static func run(_ scenario: Scenario, replicates: Int, resamples: Int, seed: UInt64, level: Double = 0.95,
                           bins: Int = 10) -> Cell {
        let truth = Self.truth(scenario, bins: bins)
        var cell = Cell(scenario: scenario, replicates: replicates, truth: truth)
        var random = SeededRandom(seed: seed)
        let trueAccuracy = truth[.accuracy]!
        for replicate in 0..<replicates {
            let set = draw(scenario, random: &random)
            let analyzer = CalibrationAnalyzer(set, bins: bins)
            let metrics = analyzer.metrics()
            let report = analyzer.intervals(resamples: resamples, seed: seed &+ UInt64(replicate) &* 7919, level: level)
            for key in keys {
                guard let interval = report.intervals[key], let t = truth[key], let estimate = metrics[key] else { continue }
                // Quadrature error of the truth is ~1e-6: a bound equal to it within that counts as containing it.
                let tolerance = 1e-6
                if interval.lower <= t + tolerance && t - tolerance <= interval.upper { cell.covered[key, default: 0] += 1 }
                if interval.lower > t + tolerance { cell.above[key, default: 0] += 1 }
                if interval.upper < t - tolerance { cell.below[key, default: 0] += 1 }
                cell.meanWidth[key, default: 0] += interval.upper - interval.lower
                cell.bias[key, default: 0] += estimate - t
            }
            for key in [MetricKey.confECE, .cwECE] where (report.tests[key]?.p ?? 1) < 1 - level {
                cell.rejected[key, default: 0] += 1
            }
            if let interval = report.intervals[.accuracy], interval.lower <= trueAccuracy && trueAccuracy <= interval.upper {
                cell.accuracyCovered += 1
            }
        }
        let r = Double(replicates)
        for key in keys {
            cell.covered[key] = (cell.covered[key] ?? 0) / r
            cell.above[key] = (cell.above[key] ?? 0) / r
            cell.below[key] = (cell.below[key] ?? 0) / r
            cell.meanWidth[key] = (cell.meanWidth[key] ?? 0) / r
            cell.bias[key] = (cell.bias[key] ?? 0) / r
        }
        for key in [MetricKey.confECE, .cwECE] { cell.rejected[key] = (cell.rejected[key] ?? 0) / r }
        cell.accuracyCovered /= r
        return cell
    }
}
