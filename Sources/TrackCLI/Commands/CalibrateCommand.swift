import Foundation
import TrackCalibration
import TrackStore

/// `track calibrate temperature`: post-hoc temperature scaling of stored runs.
enum CalibrateCommand: Command {
    static let spec = CommandSpec(
        name: "calibrate", abstract: "Fit temperature scaling on a run and apply it to runs, as new derived runs.",
        usage: "temperature|vector|matrix|dirichlet --fit <run> [--apply <run>]... [--criterion nll|ece] [--holdout <fraction>] [--seed <n>] [--lambda <x>] [--mu <x>]",
        discussion: """
        Fits T > 0 on the --fit run's questions: by NLL (solved to 1e-9 in log T) or by conf-ECE
        over a fine log-spaced grid (--criterion ece). Scores are the stored raw scores, else
        log p. With --holdout F, T is fitted on a seeded fraction F of the questions (chosen by
        hashing their ids with --seed) and the before/after figures are for the rest.
        Each --apply run gets a derived run '<run>/TS' (method TS) with scores s/T and
        probabilities softmax(s/T); it records its parent run and the fit in params ts.*.
        vector / matrix: s' = W·s + b with W diagonal / full (Guo et al.); dirichlet: the same on
        s = log p (Kull et al.); fitted by L-BFGS on NLL + --lambda·Σ off-diagonal W² + --mu·Σ b²,
        with OpenBLAS. Derived runs '<run>/VS', '/MS', '/DIR' record W and b in params ms.*.
        """,
        arguments: [("<method>", "temperature, vector, matrix or dirichlet.")],
        options: SharedOptions.database + [
            .value("fit", "run", "The run to fit T on."),
            .value("apply", "run", "A run to apply T to (default: none, just report the fit).", repeatable: true),
            .value("criterion", "nll|ece", "What T minimises (default: nll)."),
            .value("holdout", "fraction", "Fit on this fraction of the questions, report on the rest."),
            .value("seed", "n", "Seed of the holdout split (default: 0)."),
            .value("bins", "n", "Bins of the ECE figures and criterion (default: 10)."),
            .value("suffix", "text", "Name suffix of derived runs (default: /TS)."),
            .flag("replace", "Replace derived runs of the same name (e.g. a run left by an earlier fit)."),
            .value("format", "format", "table or json (default: table)."),
            .value("lambda", "x", "vector/matrix/dirichlet: L2 on off-diagonal weights (default: 0)."),
            .value("mu", "x", "vector/matrix/dirichlet: L2 on the biases (default: 0)."),
        ])

    static func run(_ arguments: ParsedArguments) throws {
        guard arguments.positionals.count == 1, let method = arguments.positionals.first,
              ["temperature", "vector", "matrix", "dirichlet"].contains(method) else {
            throw UsageError(message: "expected: track calibrate temperature|vector|matrix|dirichlet --fit RUN …")
        }
        guard let fitName = arguments.value("fit") else { throw UsageError(message: "--fit <run> is required") }
        if method != "temperature" {
            try matrixScaling(MatrixScaling.Kind(rawValue: method)!, fitName: fitName, arguments: arguments)
            return
        }
        let criterion = TemperatureFit.Criterion(rawValue: try arguments.choice("criterion", ["nll", "ece"], default: "nll"))!
        let bins = try arguments.int("bins") ?? 10
        let seed = UInt64(bitPattern: Int64(try arguments.int("seed") ?? 0))
        let holdout = try arguments.double("holdout")
        let format = try SharedOptions.outputFormat(arguments, allowed: [.table, .json])
        let suffix = arguments.value("suffix") ?? "/TS"

        let store = try SharedOptions.openStore(arguments)
        let fitRun = try store.loadRun(named: fitName, details: true)
        guard fitRun.predictions.count > 0 else { throw CommandFailure(message: "run '\(fitName)' has no questions: nothing to fit") }
        let scaling = TemperatureScaling(fitRun.predictions)
        var fitRows: [Int]? = nil, reportRows: [Int]? = nil
        if let holdout {
            let order = (0..<fitRun.predictions.count).sorted {
                holdoutKey(seed, fitRun.datasets[$0], fitRun.externalIDs[$0]) < holdoutKey(seed, fitRun.datasets[$1], fitRun.externalIDs[$1])
            }
            let cut = Int((holdout * Double(order.count)).rounded())
            guard cut > 0, cut < order.count else { throw UsageError(message: "--holdout \(holdout) leaves no questions on one side") }
            fitRows = order[..<cut].sorted()
            reportRows = order[cut...].sorted()
        }
        let fit = scaling.fit(criterion: criterion, rows: fitRows, bins: bins)
        let reportNLL = (reportRows.map { scaling.nll(temperature: 1, rows: $0) } ?? fit.nllBefore,
                         reportRows.map { scaling.nll(temperature: fit.temperature, rows: $0) } ?? fit.nllAfter)
        let reportECE = (reportRows.map { scaling.ece(temperature: 1, rows: $0, bins: bins) } ?? fit.eceBefore,
                         reportRows.map { scaling.ece(temperature: fit.temperature, rows: $0, bins: bins) } ?? fit.eceAfter)

        var derived: [String] = []
        for name in arguments.all("apply") {
            let source = try store.loadRun(named: name, details: true)
            guard let metadata = try store.runMetadata(named: name) else { continue }
            var meta = metadata
            meta.name = name + suffix
            meta.method = "TS"
            meta.parentRunID = source.id
            meta.sourceFormat = "derived"
            meta.params["ts.temperature"] = JSONValue.format(fit.temperature)
            meta.params["ts.criterion"] = criterion.rawValue
            meta.params["ts.fit_run"] = fitName
            meta.params["ts.parent_method"] = metadata.method ?? ""
            if let holdout { meta.params["ts.holdout"] = JSONValue.format(holdout); meta.params["ts.seed"] = String(seed) }
            let scaled = TemperatureScaling(source.predictions).scaled(temperature: fit.temperature)
            var batch: [Prediction] = []
            for i in 0..<scaled.count {
                let range = scaled.offsets[i]..<scaled.offsets[i + 1]
                batch.append(Prediction(questionID: source.externalIDs[i], label: Int(scaled.labels[i]),
                                        values: .scores(Array(scaled.scores![range])), subject: source.subjects[i],
                                        dataset: source.datasets[i]))
            }
            try writeDerivedRun(store, meta, batch, arguments)
            derived.append(meta.name)
        }

        let on = reportRows == nil ? "fit questions (\(fitRun.predictions.count))" : "held-out questions (\(reportRows!.count))"
        if format == .json {
            Console.out(JSONValue.object(JSONObject([
                .init(key: "fit_run", value: .string(fitName)), .init(key: "criterion", value: .string(criterion.rawValue)),
                .init(key: "temperature", value: .number(fit.temperature)), .init(key: "iterations", value: .number(Double(fit.iterations))),
                .init(key: "fit_questions", value: .number(Double(fitRows?.count ?? fitRun.predictions.count))),
                .init(key: "report_questions", value: .number(Double(reportRows?.count ?? fitRun.predictions.count))),
                .init(key: "nll_before", value: .number(reportNLL.0)), .init(key: "nll_after", value: .number(reportNLL.1)),
                .init(key: "conf_ece_before", value: .number(reportECE.0)), .init(key: "conf_ece_after", value: .number(reportECE.1)),
                .init(key: "derived_runs", value: .array(derived.map(JSONValue.string))),
            ])).jsonText + "\n")
            return
        }
        var text = "temperature scaling of '\(fitName)' by \(criterion.rawValue): T = \(String(format: "%.6f", fit.temperature))"
        text += " (\(fit.iterations) \(criterion == .nll ? "Newton steps" : "grid points"))\n"
        text += "on the \(on):\n"
        text += String(format: "  NLL       %.6f -> %.6f\n  conf-ECE  %.6f -> %.6f\n", reportNLL.0, reportNLL.1, reportECE.0, reportECE.1)
        for name in derived { text += "wrote derived run '\(name)'\n" }
        Console.out(text)
    }

    /// Vector / matrix scaling and Dirichlet calibration: fit, report, derived runs.
    static func matrixScaling(_ kind: MatrixScaling.Kind, fitName: String, arguments: ParsedArguments) throws {
        let lambda = try arguments.double("lambda") ?? 0, mu = try arguments.double("mu") ?? 0
        let store = try SharedOptions.openStore(arguments)
        func inputs(_ run: LoadedRun) throws -> (scores: [Double], k: Int) {
            guard let k = run.predictions.uniformOptionCount else { throw CommandFailure(message: "run '\(run.name)' mixes option counts") }
            let scores = kind == .dirichlet ? run.predictions.probabilities.map { log(max($0, Double.leastNormalMagnitude)) }
                : TemperatureScaling(run.predictions).scores
            return (scores, k)
        }
        let fitRun = try store.loadRun(named: fitName, details: true)
        guard fitRun.predictions.count > 0 else { throw CommandFailure(message: "run '\(fitName)' has no questions: nothing to fit") }
        let (scores, k) = try inputs(fitRun)
        let fit = MatrixScaling.fit(kind: kind, scores: scores, labels: fitRun.predictions.labels, k: k, lambda: lambda, mu: mu)
        let suffix = arguments.value("suffix") ?? ["vector": "/VS", "matrix": "/MS", "dirichlet": "/DIR"][kind.rawValue]!
        var text = "\(kind.rawValue) scaling of '\(fitName)' (K = \(k), λ = \(lambda), μ = \(mu)): \(fit.iterations) L-BFGS iterations\n"
        text += String(format: "  NLL %.6f -> %.6f on the fit questions (%d)\n", fit.nllBefore, fit.nllAfter, fitRun.predictions.count)
        for name in arguments.all("apply") {
            let source = try store.loadRun(named: name, details: true)
            let (sourceScores, sourceK) = try inputs(source)
            guard sourceK == k else { throw CommandFailure(message: "run '\(name)' has \(sourceK) options, the fit \(k)") }
            guard var meta = try store.runMetadata(named: name) else { continue }
            meta.params["ms.parent_method"] = meta.method ?? ""
            meta.name = name + suffix
            meta.method = ["vector": "VS", "matrix": "MS", "dirichlet": "DIR"][kind.rawValue]
            meta.parentRunID = source.id
            meta.sourceFormat = "derived"
            meta.params["ms.kind"] = kind.rawValue
            meta.params["ms.fit_run"] = fitName
            meta.params["ms.lambda"] = JSONValue.format(lambda)
            meta.params["ms.mu"] = JSONValue.format(mu)
            meta.params["ms.weights"] = JSONValue.array(fit.weights.map(JSONValue.number)).jsonText
            meta.params["ms.bias"] = JSONValue.array(fit.bias.map(JSONValue.number)).jsonText
            let scaled = fit.apply(sourceScores)
            try writeDerivedRun(store, meta, (0..<source.predictions.count).map { i in
                Prediction(questionID: source.externalIDs[i], label: Int(source.predictions.labels[i]),
                           values: .scores(Array(scaled[(i * k)..<((i + 1) * k)])), subject: source.subjects[i], dataset: source.datasets[i])
            }, arguments)
            text += "wrote derived run '\(meta.name)'\n"
        }
        Console.out(text)
    }

    /// Writes a derived run whole, in one transaction (`--replace` replaces one of that name).
    static func writeDerivedRun(_ store: RunStore, _ meta: RunMetadata, _ predictions: [Prediction],
                                _ arguments: ParsedArguments) throws {
        do {
            try store.writeRun(meta, predictions: predictions, replace: arguments.flag("replace"))
        } catch let error as ValidationError {
            throw CommandFailure(message: error.reason + (arguments.flag("replace") ? "" : "; pass --replace to replace it, or choose another --suffix"))
        }
    }

    /// A portable, seeded hash of a question's identity (FNV-1a, 64-bit).
    static func holdoutKey(_ seed: UInt64, _ dataset: String, _ id: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        for byte in "\(dataset)\u{1F}\(id)".utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}
