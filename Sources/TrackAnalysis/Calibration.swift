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

/// How a recalibration keeps its fit questions out of what it reports and derives.
public enum CalibrationSplit: Sendable, Equatable {
    /// Fit on the whole fit run; its derived runs are in-sample where they share its questions.
    case inSample
    /// Hold out this fraction of the fit run's questions (a seeded hash of their ids): the fit
    /// uses the rest, reports on them, and derived runs hold no fitted question.
    case holdout(Double)
    /// Cross-fitting: K folds (a seeded hash); each question is calibrated by the map fitted on
    /// the other folds, so every question is reported and derived, none by its own fit.
    case folds(Int)

    /// The name recorded with derived runs (`<prefix>.split`).
    /// How many groups the split puts the fit run's questions in.
    var foldCount: Int {
        switch self {
        case .inSample: 1
        case .holdout: 2
        case .folds(let k): k
        }
    }

    public var name: String {
        switch self {
        case .inSample: "in-sample"
        case .holdout: "holdout"
        case .folds: "cross-fit"
        }
    }
}

/// `track calibrate`: fit on one run, report on questions the fit did not use, derive runs.
public struct CalibrationRequest: Sendable {
    public var calibrator: any Calibrator
    public var fitRun: String
    public var applyTo: [String] = []
    public var split: CalibrationSplit = .inSample
    /// Allow `split == .inSample` with the fit run among `applyTo` (its derived run then is
    /// scored on the questions the map was fitted on).
    public var allowInSample = false
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

    /// The held-out fraction, if the split is a holdout.
    public var holdout: Double? {
        get { if case .holdout(let f) = split { f } else { nil } }
        set { split = newValue.map(CalibrationSplit.holdout) ?? .inSample }
    }
}

public struct CalibrationResult: Sendable {
    public var request: CalibrationRequest
    /// The fitted maps: one, or one per fold (fold k's fitted on the other folds).
    public var fits: [any FittedCalibrator]
    /// The map of a single fit (the first fold's under cross-fitting).
    public var fitted: any FittedCalibrator { fits[0] }
    public var fitQuestions: Int
    /// The questions the before/after figures are on: the held-out ones, every question
    /// cross-fitted, else the fit questions.
    public var reportQuestions: Int
    public var heldOut: Bool
    public var before: CalibrationMetrics
    public var after: CalibrationMetrics
    public var derivedRuns: [String] = []

    public var json: JSONValue {
        var entries: [JSONObject.Entry] = [.init(key: "fit_run", value: .string(request.fitRun)),
                                           .init(key: "method", value: .string(request.calibrator.name)),
                                           .init(key: "split", value: .string(request.split.name))]
        if case .folds(let k) = request.split {
            entries.append(.init(key: "folds", value: .number(Double(k))))
            entries.append(.init(key: "fold_fits", value: .array(fits.map { fit in
                .object(JSONObject(fit.parameters.map { JSONObject.Entry(key: $0.key, value: $0.value) }))
            })))
        } else {
            entries += fitted.parameters.map { JSONObject.Entry(key: $0.key, value: $0.value) }
        }
        if request.split != .inSample { entries.append(.init(key: "seed", value: .number(Double(request.seed)))) }
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
        var text: String
        if case .folds(let k) = request.split {
            text = "\(request.calibrator.name) of '\(request.fitRun)', cross-fitted over \(k) folds (seed \(request.seed)):\n"
            for (fold, fit) in fits.enumerated() { text += "  fold \(fold), fitted on the other folds: \(fit.summary)\n" }
            text += "on every question, each calibrated by the fit that did not see it (\(reportQuestions)):\n"
        } else {
            text = "\(request.calibrator.name) of '\(request.fitRun)' \(fitted.summary)\n"
            text += heldOut ? "on the held-out questions (\(reportQuestions); fitted on \(fitQuestions)):\n"
                : "on the fit questions (\(reportQuestions); in-sample):\n"
        }
        text += String(format: "  NLL       %.6f -> %.6f\n  conf-ECE  %.6f -> %.6f\n", before.nll ?? .nan, after.nll ?? .nan,
                       before.confECE ?? .nan, after.confECE ?? .nan)
        for name in derivedRuns { text += "wrote derived run '\(name)'\n" }
        return text
    }
}

public enum Calibration {
    /// Fits, reports before/after on questions no fit used (held out, or cross-fitted; else,
    /// said so, the fit questions), and writes each derived run whole in one transaction,
    /// recording its parent, the split (as params and, per question, `calibration_folds`) and
    /// the fit. A derived run never holds a question calibrated by a map fitted on it, unless
    /// asked for in-sample.
    public static func run(_ request: CalibrationRequest, store: any RunWriting) throws -> CalibrationResult {
        let fitRun = try store.loadRun(named: request.fitRun, details: true)
        let set = fitRun.predictions
        guard set.count > 0 else { throw StoreError("run '\(request.fitRun)' has no questions: nothing to fit", kind: .invalidInput) }
        if request.split == .inSample, !request.allowInSample, request.applyTo.contains(request.fitRun) {
            throw StoreError("applying a map to the run it is fitted on would score it on its own fit questions: pass --folds K (cross-fitting: every question calibrated by a fit on the others), --holdout F (the derived run holds the held-out questions only), or fit on a validation run (--fit VAL --apply TEST); --in-sample allows it", kind: .usage)
        }
        let calibrator = request.calibrator
        // Each fit-run question's fold: holdout 0 = fit, 1 = held out; cross-fitting 0..K-1.
        let keys = (0..<set.count).map { holdoutKey(request.seed, fitRun.datasets[$0], fitRun.externalIDs[$0]) }
        var folds = [Int](repeating: 0, count: set.count)
        let order = (0..<set.count).sorted { keys[$0] < keys[$1] }
        switch request.split {
        case .inSample: break
        case .holdout(let holdout):
            // `holdout` is the held-out fraction: the fit uses the rest.
            let cut = Int(((1 - holdout) * Double(order.count)).rounded())
            guard cut > 0, cut < order.count else {
                throw StoreError("a holdout of \(holdout) leaves no questions on one side", kind: .usage)
            }
            for rank in cut..<order.count { folds[order[rank]] = 1 }
        case .folds(let k):
            guard k >= 2, k <= set.count else {
                throw StoreError("\(k) folds need at least \(k) questions; run '\(request.fitRun)' has \(set.count)", kind: .usage)
            }
            for (rank, i) in order.enumerated() { folds[i] = rank * k / order.count }
        }
        // The fits, and each fold's questions of the fit run.
        var fits: [any FittedCalibrator] = []
        var members = [[Int]](repeating: [], count: request.split.foldCount)
        for i in 0..<set.count { members[folds[i]].append(i) }
        switch request.split {
        case .inSample: fits = [try calibrator.fit(set, rows: nil)]
        case .holdout: fits = [try calibrator.fit(set, rows: members[0])]
        case .folds(let k):
            for fold in 0..<k {
                fits.append(try calibrator.fit(set, rows: (0..<set.count).filter { folds[$0] != fold }))
            }
        }
        // Before/after: on the held-out questions; every question cross-fitted; else in-sample.
        let reported: PredictionSet, calibratedReport: PredictionSet
        switch request.split {
        case .inSample:
            reported = set
            calibratedReport = try rescored(set, try fits[0].apply(set))
        case .holdout:
            reported = set.subset(members[1])
            calibratedReport = try rescored(reported, try fits[0].apply(reported))
        case .folds:
            reported = set
            calibratedReport = try rescored(set, try crossFitted(set, folds: folds, fits: fits))
        }
        let before = CalibrationAnalyzer(reported, bins: request.bins).metrics()
        let after = CalibrationAnalyzer(calibratedReport, bins: request.bins).metrics()
        var result = CalibrationResult(request: request, fits: fits,
                                       fitQuestions: request.holdout != nil ? members[0].count : set.count,
                                       reportQuestions: reported.count, heldOut: request.split != .inSample, before: before, after: after)

        // The fit run's questions by identity, with their folds.
        var fitFold: [String: Int] = [:]
        for i in 0..<set.count { fitFold[fitRun.datasets[i] + "\u{1F}" + fitRun.externalIDs[i]] = folds[i] }
        let prefix = calibrator.parameterPrefix
        for name in request.applyTo {
            let source = try store.loadRun(named: name, details: true)
            guard var meta = try store.runMetadata(named: name) else { continue }
            // Each question's fold: the fit run's, else (a question the fit never saw) by its hash.
            var questionFolds = (0..<source.predictions.count).map { i -> Int in
                if let fold = fitFold[source.datasets[i] + "\u{1F}" + source.externalIDs[i]] { return fold }
                switch request.split {
                case .inSample: return 0
                case .holdout: return 1
                case .folds(let k): return Int(holdoutKey(request.seed, source.datasets[i], source.externalIDs[i]) % UInt64(k))
                }
            }
            // A holdout's derived run holds no question the map was fitted on.
            var kept = Array(0..<source.predictions.count)
            if case .holdout = request.split { kept = kept.filter { questionFolds[$0] == 1 } }
            guard !kept.isEmpty else {
                throw StoreError("every question of '\(name)' was among the fit questions: its derived run would be empty", kind: .invalidInput)
            }
            let subset = kept.count == source.predictions.count ? source.predictions : source.predictions.subset(kept)
            questionFolds = kept.map { questionFolds[$0] }
            let calibrated: Calibrated
            if case .folds = request.split {
                calibrated = try crossFitted(subset, folds: questionFolds, fits: fits)
            } else {
                calibrated = try fits[0].apply(subset)
            }
            meta.params["\(prefix).parent_method"] = meta.method ?? ""
            meta.name = request.names[name] ?? name + (request.suffix ?? "+\(calibrator.method)")
            for (key, value) in request.tags { meta.tags[key] = value }
            meta.method = calibrator.method
            meta.parentRunID = source.id
            meta.sourceFormat = "derived"
            meta.params["\(prefix).fit_run"] = request.fitRun
            meta.params["\(prefix).split"] = request.split.name
            switch request.split {
            case .inSample, .holdout:
                for (key, value) in fits[0].parameters where key != "iterations" {
                    meta.params["\(prefix).\(key)"] = value.stringValue ?? value.jsonText
                }
            case .folds(let k):
                meta.params["\(prefix).folds"] = String(k)
                for (fold, fit) in fits.enumerated() {
                    for (key, value) in fit.parameters where key != "iterations" {
                        meta.params["\(prefix).fold.\(fold).\(key)"] = value.stringValue ?? value.jsonText
                    }
                }
            }
            if case .holdout(let holdout) = request.split {
                meta.params["\(prefix).holdout"] = JSONValue.format(holdout)
            }
            if request.split != .inSample { meta.params["\(prefix).seed"] = String(request.seed) }
            let offsets = subset.offsets
            let predictions = (0..<subset.count).map { j in
                source.prediction(kept[j], values: calibrated.option(offsets[j]..<offsets[j + 1]))
            }
            // Membership as data: the derived run's questions and the fit run's, with their folds.
            var membership: [FoldMembership] = []
            if request.split != .inSample {
                func member(_ run: LoadedRun, _ i: Int, fold: Int) -> FoldMembership {
                    FoldMembership(dataset: run.datasets[i], externalID: run.externalIDs[i], subject: run.subjects[i],
                                   label: Int(run.predictions.labels[i]), optionCount: run.predictions.optionCount(i), fold: fold)
                }
                var seen = Set<String>()
                for (j, i) in kept.enumerated() {
                    membership.append(member(source, i, fold: questionFolds[j]))
                    seen.insert(source.datasets[i] + "\u{1F}" + source.externalIDs[i])
                }
                for i in 0..<set.count where !seen.contains(fitRun.datasets[i] + "\u{1F}" + fitRun.externalIDs[i]) {
                    membership.append(member(fitRun, i, fold: folds[i]))
                }
            }
            try store.writeRun(meta, predictions: predictions, replace: request.replace, folds: membership)
            result.derivedRuns.append(meta.name)
        }
        return result
    }

    /// Every question calibrated by the fit of its fold (`fits[folds[i]]`), in the set's order.
    static func crossFitted(_ set: PredictionSet, folds: [Int], fits: [any FittedCalibrator]) throws -> Calibrated {
        var values = [Double](repeating: 0, count: set.offsets[set.count])
        var asScores = true
        for (fold, fit) in fits.enumerated() {
            let rows = (0..<set.count).filter { folds[$0] == fold }
            guard !rows.isEmpty else { continue }
            let calibrated = try fit.apply(set.subset(rows))
            if case .probabilities = calibrated { asScores = false }
            let part = calibrated.values
            var offset = 0
            for i in rows {
                let width = set.offsets[i + 1] - set.offsets[i]
                for k in 0..<width { values[set.offsets[i] + k] = part[offset + k] }
                offset += width
            }
        }
        return asScores ? .scores(values) : .probabilities(values)
    }
    /// The set with the calibrated values in place of its own.
    public static func rescored(_ set: PredictionSet, _ calibrated: Calibrated) throws -> PredictionSet {
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

    /// A portable, seeded hash of a question's identity: FNV-1a (64-bit) of
    /// "<dataset>\u{1F}<id>" from the offset basis XOR the seed, then MurmurHash3's 64-bit
    /// finaliser, so that ids differing in their last characters (row numbers) spread over
    /// the whole range instead of sorting in id order (METHODS §8).
    public static func holdoutKey(_ seed: UInt64, _ dataset: String, _ id: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        for byte in "\(dataset)\u{1F}\(id)".utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        hash ^= hash >> 33
        hash = hash &* 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        hash = hash &* 0xc4ce_b9fe_1a85_ec53
        hash ^= hash >> 33
        return hash
    }
}
