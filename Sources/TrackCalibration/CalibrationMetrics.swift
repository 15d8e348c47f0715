/// Every calibration metric of one run (METHODS §3). A value is nil where it is
/// undefined: for an empty run, or classwise metrics when questions differ in
/// option count. JSON keys (`key`) are stable; see the README.
public struct CalibrationMetrics: Sendable, Equatable {
    public var n: Int = 0
    public var bins: Int = 10
    public var accuracy: Double?
    public var meanConfidence: Double?
    /// Mean confidence − accuracy.
    public var overconfidence: Double?
    /// conf-ECE: `Σ_m (n_m/N)·|acc(B_m) − conf(B_m)|`, equal-width bins over the top-label confidence.
    public var confECE: Double?
    /// MCE: `max_m |acc(B_m) − conf(B_m)|` over non-empty bins.
    public var mce: Double?
    /// RMSCE: `sqrt(Σ_m (n_m/N)·(acc − conf)²)`.
    public var rmsce: Double?
    /// cw-ECE = SCE: `(1/K) Σ_k Σ_m (n_km/N)·|freq_km − meanp_km|`, every class binned over all N values.
    public var cwECE: Double?
    /// Pooled ECE: every question × option is one binary prediction (p_ik against [y_i = k]),
    /// `Σ_m (n_m/ΣK)·|freq_m − meanp_m|` with equal-width bins over all ΣK_i predictions.
    public var pooledECE: Double?
    /// conf-ECE with equal-mass bins.
    public var equalMassECE: Double?
    /// ACE: `(1/(K·B)) Σ_k Σ_r |freq_kr − meanp_kr|`, equal-mass bins per class; empty bins add 0.
    public var ace: Double?
    /// TACE: ACE over the values `p_ik > ε` only.
    public var tace: Double?
    /// Brier: `(1/N) Σ_i Σ_k (p_ik − [y_i = k])²` (0…2).
    public var brier: Double?
    /// NLL: `−(1/N) Σ_i log p_i,y_i`, exact log-softmax from raw scores when stored, else p clipped at 1e-15.
    public var nll: Double?
    /// Whether `nll` came from raw scores.
    public var nllFromScores = false
    /// Smooth ECE of the top label (Błasiok & Nakkiran 2023, relplot's bandwidth search), and its bandwidth σ.
    public var smECE: Double?
    public var smECEBandwidth: Double?
    /// Smooth ECE of each class (every question's p_ik against [y_i = k]), averaged over classes, as cw-ECE.
    public var cwSmECE: Double?
    /// ℓ2 calibration error with equal-mass bins (Kumar et al. 2019), plug-in and debiased.
    public var l2ECE: Double?
    public var debiasedL2ECE: Double?

    public init() {}

    /// Metric keys in report order, as JSON, CSV and tables name them.
    public static var keys: [MetricKey] { MetricKey.allCases }

    public subscript(key: MetricKey) -> Double? { self[keyPath: key.definition.value] }
}

/// Everything that identifies a metric, in one place: its field, its table label, which way is
/// better, whether a bootstrap resample recomputes it and whether per-bin totals (the stored
/// summaries, 10 bins) answer it. How it is computed from totals is `CalibrationMetrics.set…`.
public struct MetricDefinition: Sendable {
    public let value: KeyPath<CalibrationMetrics, Double?> & Sendable
    public let label: String
    /// Higher accuracy, lower error; nil for descriptive values (mean confidence, overconfidence).
    public let higherIsBetter: Bool?
    public let resampled: Bool
    public let fromTotals: Bool
    /// Whether its value depends on a binning (equal-width or equal-mass).
    public let usesBins: Bool
}

/// A metric's stable key (JSON, CSV, SQL columns, `--metrics`), in report order.
public enum MetricKey: String, CaseIterable, Sendable, Hashable, Comparable, CustomStringConvertible {
    case accuracy, meanConfidence = "mean_confidence", overconfidence, confECE = "conf_ece", mce, rmsce,
         cwECE = "cw_ece", pooledECE = "pooled_ece", equalMassECE = "eq_mass_ece", ace, tace, brier, nll,
         smECE = "smece", cwSmECE = "cw_smece", l2ECE = "l2_ece", debiasedL2ECE = "debiased_l2_ece"

    public var description: String { rawValue }

    /// The metric's definition: the one switch over metrics.
    public var definition: MetricDefinition {
        func define(_ value: KeyPath<CalibrationMetrics, Double?> & Sendable, _ label: String, better: Bool? = false,
                    resampled: Bool = true, fromTotals: Bool, bins: Bool = true) -> MetricDefinition {
            MetricDefinition(value: value, label: label, higherIsBetter: better, resampled: resampled, fromTotals: fromTotals, usesBins: bins)
        }
        return switch self {
        case .accuracy: define(\.accuracy, "Acc", better: true, fromTotals: true, bins: false)
        case .meanConfidence: define(\.meanConfidence, "Conf", better: nil, fromTotals: true, bins: false)
        case .overconfidence: define(\.overconfidence, "OverConf", better: nil, fromTotals: true, bins: false)
        case .confECE: define(\.confECE, "conf-ECE", fromTotals: true)
        case .mce: define(\.mce, "MCE", fromTotals: true)
        case .rmsce: define(\.rmsce, "RMSCE", fromTotals: true)
        case .cwECE: define(\.cwECE, "cw-ECE", fromTotals: true)
        case .pooledECE: define(\.pooledECE, "pooled-ECE", fromTotals: true)
        case .equalMassECE: define(\.equalMassECE, "eqmass-ECE", fromTotals: false)
        case .ace: define(\.ace, "ACE", fromTotals: false)
        case .tace: define(\.tace, "TACE", fromTotals: false)
        case .brier: define(\.brier, "Brier", fromTotals: true, bins: false)
        case .nll: define(\.nll, "NLL", fromTotals: true, bins: false)
        case .smECE: define(\.smECE, "smECE", resampled: false, fromTotals: false, bins: false)
        case .cwSmECE: define(\.cwSmECE, "cw-smECE", resampled: false, fromTotals: false, bins: false)
        case .l2ECE: define(\.l2ECE, "L2-ECE", resampled: false, fromTotals: false)
        case .debiasedL2ECE: define(\.debiasedL2ECE, "dL2-ECE", resampled: false, fromTotals: false)
        }
    }

    /// Short label for tables.
    public var label: String { definition.label }

    /// Which way is better in a table: higher accuracy, lower error; nil for
    /// descriptive values (mean confidence, overconfidence).
    public var higherIsBetter: Bool? { definition.higherIsBetter }

    /// The metrics a bootstrap resample recomputes (all but the smooth and ℓ2 ones, of the estimate only).
    public static var resampled: [MetricKey] { allCases.filter { $0.definition.resampled } }

    /// The metrics no stored summary holds: equal-mass, smooth and ℓ2 (they need every question's value).
    public var needsEveryQuestion: Bool { !definition.fromTotals }

    /// The metrics per-bin totals answer (the stored summaries, with their 10 bins).
    public static var fromTotals: Set<MetricKey> { Set(allCases.filter { $0.definition.fromTotals }) }

    /// Parses a comma-separated list (`conf_ece,accuracy`); nil names the first unknown key.
    public static func list(_ text: String) -> Result<[MetricKey], UnknownMetric> {
        var keys: [MetricKey] = []
        for part in text.split(separator: ",") {
            let name = part.trimmingCharacters(in: " ")
            guard let key = MetricKey(rawValue: name) else { return .failure(UnknownMetric(name: name)) }
            keys.append(key)
        }
        return .success(keys)
    }

    public static func < (a: MetricKey, b: MetricKey) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// A metric name that is not a `MetricKey`.
public struct UnknownMetric: Error, Sendable, CustomStringConvertible {
    public var name: String
    public var description: String {
        "unknown metric '\(name)'; known: \(MetricKey.allCases.map(\.rawValue).joined(separator: ", "))"
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        String(drop(while: { $0 == set }).reversed().drop(while: { $0 == set }).reversed())
    }
}

/// One bin of a reliability table.
public struct BinRow: Sendable, Equatable {
    public var bin: Int
    public var lower: Double
    public var upper: Double
    public var count: Int
    /// Accuracy (top label) or label frequency (classwise); nil when empty.
    public var accuracy: Double?
    /// Mean confidence (top label) or mean probability (classwise); nil when empty.
    public var confidence: Double?
    /// accuracy − confidence: negative where the model is overconfident.
    public var gap: Double? { accuracy.flatMap { a in confidence.map { a - $0 } } }

    public init(bin: Int, lower: Double, upper: Double, count: Int, accuracy: Double?, confidence: Double?) {
        self.bin = bin
        self.lower = lower
        self.upper = upper
        self.count = count
        self.accuracy = accuracy
        self.confidence = confidence
    }
}

/// An interval estimate, with how it was computed.
public struct Interval: Sendable, Equatable {
    public var lower: Double
    public var upper: Double
    public var method: IntervalMethod
    /// The lower end is 0 because the test of calibration did not reject (a binned error).
    public var atBoundary = false

    public init(lower: Double, upper: Double, method: IntervalMethod = .percentile) {
        self.lower = lower
        self.upper = upper
        self.method = method
    }
}

/// One bin's totals: its (weighted) count, hits (correct answers, or label matches) and the
/// sum of its values.
public struct BinTotal: Sendable {
    public var count: Double
    public var hits: Double
    public var sum: Double
    @inline(__always)
    public init(count: Double, hits: Double, sum: Double) {
        self.count = count
        self.hits = hits
        self.sum = sum
    }
}

/// The one definition of every metric computed from totals (METHODS §3): the analyzer, the
/// bootstrap's lanes and the store's summaries hand their totals here, so that a metric is
/// written once whatever the totals were accumulated from.
extension CalibrationMetrics {
    /// Accuracy, mean confidence, overconfidence, Brier and NLL from their sums over `total`
    /// questions (each sum over questions of: hit, top confidence, Brier term, NLL term).
    public mutating func setMeans(total: Double, correct: Double, confidence: Double, brier: Double, nll: Double) {
        accuracy = correct / total
        meanConfidence = confidence / total
        overconfidence = meanConfidence! - accuracy!
        self.brier = brier / total
        self.nll = nll / total
    }

    /// conf-ECE, MCE and RMSCE from the top-label bins `0..<bins` of `total` questions.
    public mutating func setTopLabelErrors(total: Double, bins: Int, _ bin: (Int) -> BinTotal) {
        var gaps = BinGaps(total: total)
        for b in 0..<bins { gaps.add(bin(b)) }
        confECE = gaps.ece
        mce = gaps.mce
        rmsce = gaps.rmsce
    }

    /// cw-ECE from the per-class bins (slot `class · bins + bin`, K classes; nil unless every
    /// question has K options, `classes == 0`) over `total` questions.
    public mutating func setClasswiseError(total: Double, classes k: Int, bins: Int, _ slot: (Int) -> BinTotal) {
        guard k > 0 else { cwECE = nil; return }
        var gaps = BinGaps(total: total)
        for index in 0..<(k * bins) { gaps.add(slot(index)) }
        cwECE = gaps.ece / Double(k)
    }

    /// The pooled ECE: every question × option one prediction, over its own total (ΣK_i).
    public mutating func setPooledError(bins: Int, _ bin: (Int) -> BinTotal) {
        var total = 0.0
        for b in 0..<bins { total += bin(b).count }
        var gaps = BinGaps(total: total)
        for b in 0..<bins { gaps.add(bin(b)) }
        pooledECE = gaps.ece
    }
}

/// The binned calibration errors of one set of bins, accumulated from each
/// bin's sums: count, hits (correct answers, or label matches) and the sum of
/// its values. conf-ECE, MCE and RMSCE of the top label, the classwise and the
/// pooled ECE all add the same term, `(n_m/total)·|hits_m/n_m − sum_m/n_m|`.
public struct BinGaps: Sendable {
    public let total: Double
    /// `Σ_m (n_m/total)·gap_m`.
    public private(set) var ece = 0.0
    /// `max_m gap_m` over non-empty bins.
    public private(set) var mce = 0.0
    /// `Σ_m (n_m/total)·gap_m²` (RMSCE is its square root).
    public private(set) var squared = 0.0

    public init(total: Double) { self.total = total }

    /// Adds one bin; an empty bin adds nothing.
    @inline(__always)
    public mutating func add(count: Double, hits: Double, sum: Double) {
        guard count > 0 else { return }
        let gap = abs(hits / count - sum / count)
        ece += count / total * gap
        squared += count / total * gap * gap
        mce = max(mce, gap)
    }

    public var rmsce: Double { squared.squareRoot() }

    @inline(__always)
    public mutating func add(_ bin: BinTotal) { add(count: bin.count, hits: bin.hits, sum: bin.sum) }
}
