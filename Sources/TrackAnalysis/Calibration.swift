import Foundation
import TrackCalibration
import TrackStore

/// A post-hoc calibration method: fitted on one run's questions, applied to any
/// run as new scores. A new method is one type conforming to this protocol;
/// fitting, held-out reporting and derived runs are shared (`Calibration`).
public protocol Calibrator: Sendable {
    /// Its name in messages, e.g. "temperature scaling".
    var name: String { get }
    /// The method of the runs it derives, e.g. "TS"; also their name suffix ("/TS").
    var method: String { get }
    /// The prefix of the parameters derived runs record, e.g. "ts".
    var parameterPrefix: String { get }
    /// Fits on the questions `rows` of `set` (all when nil).
    func fit(_ set: PredictionSet, rows: [Int]?) throws -> any FittedCalibrator
}

/// What a calibrator fitted: the map from a run's scores to calibrated scores.
public protocol FittedCalibrator: Sendable {
    /// One line on what was fitted, e.g. "T = 2.030513 (6 Newton steps)".
    var summary: String { get }
    /// The fitted values, recorded with each derived run (keys without the prefix) and in JSON.
    var parameters: [(key: String, value: JSONValue)] { get }
    /// Calibrated values of every question of `set`, row by row as `set.offsets`.
    func apply(_ set: PredictionSet) throws -> Calibrated
}

/// What a fitted calibrator gives: raw scores (softmax gives the probabilities) or probabilities.
public enum Calibrated: Sendable {
    case scores([Double])
    case probabilities([Double])

    var values: [Double] {
        switch self {
        case .scores(let v), .probabilities(let v): v
        }
    }

    func option(_ range: Range<Int>) -> OptionValues {
        switch self {
        case .scores(let v): .scores(Array(v[range]))
        case .probabilities(let v): .probabilities(Array(v[range]))
        }
    }
}

/// Temperature scaling: `softmax(s / T)` with T fitted by NLL or by conf-ECE (METHODS §8).
public struct TemperatureCalibrator: Calibrator {
    public var criterion: TemperatureFit.Criterion
    public var bins: Int
    public init(criterion: TemperatureFit.Criterion = .nll, bins: Int = 10) {
        self.criterion = criterion
        self.bins = bins
    }
    public var name: String { "temperature scaling" }
    public var method: String { "TS" }
    public var parameterPrefix: String { "ts" }

    public struct Fitted: FittedCalibrator {
        public var temperature: Double
        public var criterion: TemperatureFit.Criterion
        public var iterations: Int
        public var summary: String {
            "by \(criterion.rawValue): T = \(String(format: "%.6f", temperature)) (\(iterations) \(criterion == .nll ? "Newton steps" : "grid points"))"
        }
        public var parameters: [(key: String, value: JSONValue)] {
            [("temperature", .number(temperature)), ("criterion", .string(criterion.rawValue)),
             ("iterations", .number(Double(iterations)))]
        }
        public func apply(_ set: PredictionSet) -> Calibrated {
            let beta = 1 / temperature
            return .scores(TemperatureScaling(set).scores.map { $0 * beta })
        }
    }

    public func fit(_ set: PredictionSet, rows: [Int]?) -> any FittedCalibrator {
        let (temperature, iterations) = TemperatureScaling(set).fitTemperature(criterion: criterion, rows: rows, bins: bins)
        return Fitted(temperature: temperature, criterion: criterion, iterations: iterations)
    }
}

/// Vector / matrix scaling (Guo et al.) and Dirichlet calibration (Kull et al.): `W·s + b`,
/// fitted by L-BFGS on NLL with off-diagonal and bias L2 (METHODS §8).
public struct MatrixCalibrator: Calibrator {
    public var kind: MatrixScaling.Kind
    public var lambda: Double
    public var mu: Double
    public init(_ kind: MatrixScaling.Kind, lambda: Double = 0, mu: Double = 0) {
        self.kind = kind
        self.lambda = lambda
        self.mu = mu
    }
    public var name: String { "\(kind.rawValue) scaling" }
    public var method: String { ["vector": "VS", "matrix": "MS", "dirichlet": "DIR"][kind.rawValue]! }
    public var parameterPrefix: String { "ms" }

    /// The inputs: raw scores (else log p), or log p for Dirichlet; every question with K options.
    func inputs(_ set: PredictionSet) throws -> (scores: [Double], k: Int) {
        guard let k = set.uniformOptionCount else {
            throw StoreError("the questions differ in option count; \(name) needs one", kind: .invalidInput)
        }
        let scores = kind == .dirichlet ? set.probabilities.map { log(max($0, Double.leastNormalMagnitude)) }
            : TemperatureScaling(set).scores
        return (scores, k)
    }

    public struct Fitted: FittedCalibrator {
        public var calibrator: MatrixCalibrator
        public var scaling: MatrixScaling
        public var summary: String {
            "(K = \(scaling.k), λ = \(calibrator.lambda), μ = \(calibrator.mu)): \(scaling.iterations) L-BFGS iterations"
        }
        public var parameters: [(key: String, value: JSONValue)] {
            [("kind", .string(scaling.kind.rawValue)), ("lambda", .number(calibrator.lambda)), ("mu", .number(calibrator.mu)),
             ("weights", .array(scaling.weights.map(JSONValue.number))), ("bias", .array(scaling.bias.map(JSONValue.number))),
             ("iterations", .number(Double(scaling.iterations)))]
        }
        public func apply(_ set: PredictionSet) throws -> Calibrated {
            let (scores, k) = try calibrator.inputs(set)
            guard k == scaling.k else { throw StoreError("the run has \(k) options, the fit \(scaling.k)", kind: .conflict) }
            return .scores(scaling.apply(scores))
        }
    }

    public func fit(_ set: PredictionSet, rows: [Int]?) throws -> any FittedCalibrator {
        let subset = rows.map { set.subset($0) } ?? set
        let (scores, k) = try inputs(subset)
        return Fitted(calibrator: self, scaling: MatrixScaling.fit(kind: kind, scores: scores, labels: subset.labels, k: k,
                                                                   lambda: lambda, mu: mu))
    }
}

/// One map per class fitted one-vs-rest on (p_ik, [y_i = k]), renormalised per question:
/// isotonic regression (scikit-learn's) or histogram binning (netcal's) (METHODS §4).
public struct ClasswiseCalibrator: Calibrator {
    public enum Method: Sendable, Equatable {
        case isotonic
        case histogram(bins: Int, equalMass: Bool)
    }
    public var methodKind: Method
    public init(_ method: Method) { methodKind = method }

    public var name: String {
        switch methodKind {
        case .isotonic: "isotonic regression"
        case .histogram(_, let equalMass): "histogram binning (\(equalMass ? "equal-mass" : "equal-width"))"
        }
    }
    public var method: String { methodKind == .isotonic ? "ISO" : "HB" }
    public var parameterPrefix: String { methodKind == .isotonic ? "iso" : "hb" }

    public struct Fitted: FittedCalibrator {
        public var k: Int
        public var isotonic: [IsotonicRegression]
        public var histogram: [HistogramBinning]
        public var summary: String {
            isotonic.isEmpty ? "(K = \(k), \(histogram.first?.values.count ?? 0) bins per class)"
                : "(K = \(k), \(isotonic.map(\.x.count).reduce(0, +)) fitted points over the classes)"
        }
        public var parameters: [(key: String, value: JSONValue)] {
            if !isotonic.isEmpty {
                return [("x", .array(isotonic.map { .array($0.x.map(JSONValue.number)) })),
                        ("y", .array(isotonic.map { .array($0.y.map(JSONValue.number)) }))]
            }
            return [("edges", .array(histogram.map { .array($0.edges.map(JSONValue.number)) })),
                    ("values", .array(histogram.map { .array($0.values.map(JSONValue.number)) }))]
        }
        public func apply(_ set: PredictionSet) throws -> Calibrated {
            guard set.uniformOptionCount == k else {
                throw StoreError("the run's questions do not all have the fit's \(k) options", kind: .conflict)
            }
            return .probabilities(OneVsRest.apply(set, optionCount: k) { c, p in
                isotonic.isEmpty ? histogram[c].predict(p) : isotonic[c].predict(p)
            })
        }
    }

    public func fit(_ set: PredictionSet, rows: [Int]?) throws -> any FittedCalibrator {
        guard let k = set.uniformOptionCount else {
            throw StoreError("the questions differ in option count; \(name) needs one", kind: .invalidInput)
        }
        switch methodKind {
        case .isotonic:
            return Fitted(k: k, isotonic: OneVsRest.fit(set, rows: rows, optionCount: k) { IsotonicRegression.fit(x: $0, y: $1) },
                          histogram: [])
        case .histogram(let bins, let equalMass):
            return Fitted(k: k, isotonic: [], histogram: OneVsRest.fit(set, rows: rows, optionCount: k) {
                HistogramBinning.fit(x: $0, y: $1, bins: bins, equalMass: equalMass)
            })
        }
    }
}

/// `track calibrate`: fit on one run, report on its held-out questions, derive runs.
public struct CalibrationRequest: Sendable {
    public var calibrator: any Calibrator
    public var fitRun: String
    public var applyTo: [String] = []
    /// Hold out this fraction of the questions (chosen by a seeded hash of their ids) and report
    /// on them; the fit uses the rest.
    public var holdout: Double?
    public var seed: UInt64 = 0
    /// Bins of the reported conf-ECE.
    public var bins = 10
    /// Name suffix of derived runs (default "/" + the calibrator's method).
    public var suffix: String?
    /// Replace derived runs of the same name.
    public var replace = false
    /// Names of derived runs by applied run (default: the run's name + suffix).
    public var names: [String: String] = [:]
    /// Tags added to derived runs.
    public var tags: [String: String] = [:]

    public init(calibrator: any Calibrator, fitRun: String) {
        self.calibrator = calibrator
        self.fitRun = fitRun
    }
}

public struct CalibrationResult: Sendable {
    public var request: CalibrationRequest
    public var fitted: any FittedCalibrator
    public var fitQuestions: Int
    /// The questions the before/after figures are on: the held-out ones, else the fit questions.
    public var reportQuestions: Int
    public var heldOut: Bool
    public var before: CalibrationMetrics
    public var after: CalibrationMetrics
    public var derivedRuns: [String] = []

    public var json: JSONValue {
        var entries: [JSONObject.Entry] = [.init(key: "fit_run", value: .string(request.fitRun)),
                                           .init(key: "method", value: .string(request.calibrator.name))]
        entries += fitted.parameters.map { JSONObject.Entry(key: $0.key, value: $0.value) }
        entries += [
            .init(key: "fit_questions", value: .number(Double(fitQuestions))),
            .init(key: "report_questions", value: .number(Double(reportQuestions))),
            .init(key: "nll_before", value: before.nll.map(JSONValue.number) ?? .null),
            .init(key: "nll_after", value: after.nll.map(JSONValue.number) ?? .null),
            .init(key: "conf_ece_before", value: before.confECE.map(JSONValue.number) ?? .null),
            .init(key: "conf_ece_after", value: after.confECE.map(JSONValue.number) ?? .null),
            .init(key: "derived_runs", value: .array(derivedRuns.map(JSONValue.string))),
        ]
        return .object(JSONObject(entries))
    }

    public var text: String {
        var text = "\(request.calibrator.name) of '\(request.fitRun)' \(fitted.summary)\n"
        text += "on the \(heldOut ? "held-out" : "fit") questions (\(reportQuestions)):\n"
        text += String(format: "  NLL       %.6f -> %.6f\n  conf-ECE  %.6f -> %.6f\n", before.nll ?? .nan, after.nll ?? .nan,
                       before.confECE ?? .nan, after.confECE ?? .nan)
        for name in derivedRuns { text += "wrote derived run '\(name)'\n" }
        return text
    }
}

public enum Calibration {
    /// Fits, reports before/after on the held-out (else fit) questions, and writes each
    /// derived run whole in one transaction, recording its parent and the fit.
    public static func run(_ request: CalibrationRequest, store: RunStore) throws -> CalibrationResult {
        let fitRun = try store.loadRun(named: request.fitRun, details: true)
        let set = fitRun.predictions
        guard set.count > 0 else { throw StoreError("run '\(request.fitRun)' has no questions: nothing to fit", kind: .invalidInput) }
        var fitRows: [Int]?, reportRows: [Int]?
        if let holdout = request.holdout {
            let keys = (0..<set.count).map { holdoutKey(request.seed, fitRun.datasets[$0], fitRun.externalIDs[$0]) }
            let order = (0..<set.count).sorted { keys[$0] < keys[$1] }
            // `holdout` is the held-out fraction: the fit uses the rest.
            let cut = Int(((1 - holdout) * Double(order.count)).rounded())
            guard cut > 0, cut < order.count else {
                throw StoreError("a holdout of \(holdout) leaves no questions on one side", kind: .usage)
            }
            fitRows = order[..<cut].sorted()
            reportRows = order[cut...].sorted()
        }
        let calibrator = request.calibrator
        let fitted = try calibrator.fit(set, rows: fitRows)
        let reported = reportRows.map { set.subset($0) } ?? set
        let before = CalibrationAnalyzer(reported, bins: request.bins).metrics()
        let after = CalibrationAnalyzer(try rescored(reported, try fitted.apply(reported)), bins: request.bins).metrics()
        var result = CalibrationResult(request: request, fitted: fitted, fitQuestions: fitRows?.count ?? set.count,
                                       reportQuestions: reported.count, heldOut: reportRows != nil, before: before, after: after)

        for name in request.applyTo {
            let source = try store.loadRun(named: name, details: true)
            guard var meta = try store.runMetadata(named: name) else { continue }
            let calibrated = try fitted.apply(source.predictions)
            meta.params["\(calibrator.parameterPrefix).parent_method"] = meta.method ?? ""
            meta.name = request.names[name] ?? name + (request.suffix ?? "+\(calibrator.method)")
            for (key, value) in request.tags { meta.tags[key] = value }
            meta.method = calibrator.method
            meta.parentRunID = source.id
            meta.sourceFormat = "derived"
            meta.params["\(calibrator.parameterPrefix).fit_run"] = request.fitRun
            for (key, value) in fitted.parameters where key != "iterations" {
                meta.params["\(calibrator.parameterPrefix).\(key)"] = value.stringValue ?? value.jsonText
            }
            if let holdout = request.holdout {
                meta.params["\(calibrator.parameterPrefix).holdout"] = JSONValue.format(holdout)
                meta.params["\(calibrator.parameterPrefix).seed"] = String(request.seed)
            }
            let offsets = source.predictions.offsets
            let predictions = (0..<source.predictions.count).map { i in
                source.prediction(i, values: calibrated.option(offsets[i]..<offsets[i + 1]))
            }
            try store.writeRun(meta, predictions: predictions, replace: request.replace)
            result.derivedRuns.append(meta.name)
        }
        return result
    }

    /// The set with the calibrated values in place of its own.
    static func rescored(_ set: PredictionSet, _ calibrated: Calibrated) throws -> PredictionSet {
        var result = PredictionSet()
        for i in 0..<set.count {
            let range = set.offsets[i]..<set.offsets[i + 1]
            switch calibrated.option(range) {
            case .scores(let row):
                result.append(id: set.questionIDs[i], label: Int(set.labels[i]), probabilities: Probabilities.softmax(row), scores: row)
            case .probabilities(let row):
                result.append(id: set.questionIDs[i], label: Int(set.labels[i]), probabilities: row)
            }
        }
        return result
    }

    /// A portable, seeded hash of a question's identity (FNV-1a, 64-bit).
    public static func holdoutKey(_ seed: UInt64, _ dataset: String, _ id: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        for byte in "\(dataset)\u{1F}\(id)".utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}
