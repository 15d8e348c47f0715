import Foundation
import TrackCalibration
import TrackStore

/// `track em`: EM targets of the ECE regulariser (Algorithm 1).
enum EMCommand: Command {
    static let spec = CommandSpec(
        name: "em", abstract: "Compute EM targets (Algorithm 1) of a run, write and store them; compare a later run with them.",
        usage: "<run> [--bins <n>] [--gamma paper|code] --out <file.jsonl|.csv|.npy> | <run> --against <run>",
        discussion: """
        Targets per question in the original option order: the bin accuracy for the top option,
        α·tanh(γ·p)+β for the others (γ = ln 3 / p_(2), or the authors' code variant
        ln 3 / (p_(2)·(1 − acc_m)) with --gamma code). Prints per-bin accuracies, L_cal (the
        per-bin weighted MSE of the run's probabilities to its targets) and how many questions
        may break the rank order. The targets are stored with the run; `track em NEXT --against
        RUN` computes L_cal of NEXT's probabilities against RUN's stored targets and bins.
        """,
        arguments: [("<run>", "The run (training questions of one epoch).")],
        options: SharedOptions.database + [
            .value("bins", "n", "Confidence bins (default: 10)."),
            .value("gamma", "paper|code", "The γ of the paper (default) or of the authors' code."),
            .value("out", "file", "Where to write the targets: .jsonl, .csv or .npy."),
            .value("against", "run", "Compare this run with the stored targets of another run."),
        ])

    static func run(_ arguments: ParsedArguments) throws {
        guard arguments.positionals.count == 1 else { throw UsageError(message: "expected one run") }
        let name = arguments.positionals[0]
        let store = try SharedOptions.openStore(arguments)
        if let against = arguments.value("against") {
            try compare(store: store, run: name, against: against)
            return
        }
        let bins = try arguments.int("bins") ?? 10
        let gamma = EMTargets.Gamma(rawValue: try arguments.choice("gamma", ["paper", "code"], default: "paper"))!
        let run = try store.loadRun(named: name, details: true)
        let em = EMTargets(run.predictions, bins: bins, gamma: gamma)
        let set = run.predictions

        if let out = arguments.value("out") {
            let ext = (out as NSString).pathExtension.lowercased()
            switch ext {
            case "jsonl":
                var text = ""
                for i in 0..<set.count {
                    text += JSONValue.object(JSONObject([
                        .init(key: "id", value: .string(run.externalIDs[i])), .init(key: "dataset", value: .string(run.datasets[i])),
                        .init(key: "bin", value: .number(Double(em.bins[i]))),
                        .init(key: "targets", value: .array(em.targets(of: i).map(JSONValue.number))),
                    ])).jsonText + "\n"
                }
                try writeExport(text, to: out)
            case "csv":
                let k = set.uniformOptionCount ?? (0..<set.count).map(set.optionCount).max() ?? 0
                var text = CSV.line(["id", "dataset", "bin"] + (0..<k).map { "t\($0)" }) + "\n"
                for i in 0..<set.count {
                    text += CSV.line([run.externalIDs[i], run.datasets[i], String(em.bins[i])] + em.targets(of: i).map { JSONValue.format($0) }) + "\n"
                }
                try writeExport(text, to: out)
            case "npy":
                guard let k = set.uniformOptionCount else { throw CommandFailure(message: ".npy needs one option count; use .jsonl") }
                try NPYArray.write(rows: set.count, columns: k, values: em.targets, to: out)
            default:
                throw UsageError(message: "--out must end in .jsonl, .csv or .npy")
            }
        }
        try store.storeEMTargets(runID: run.id, questionIDs: set.questionIDs, offsets: set.offsets, bins: em.bins,
                                 targets: em.targets, settings: ["em.bins": String(bins), "em.gamma": gamma.rawValue])

        var rows: [[TextTable.Cell]] = []
        for m in 0..<bins {
            rows.append([.integer(Int64(m)), .text(String(format: "[%.2f, %.2f%@", Double(m) / Double(bins),
                                                            Double(m + 1) / Double(bins), m == bins - 1 ? "]" : ")")),
                         .integer(Int64(em.binCount[m])), .number(em.binAccuracy[m], digits: 4)])
        }
        var text = "EM targets of '\(name)' (\(set.count) questions, \(bins) bins, γ: \(gamma.rawValue))\n"
        text += TextTable(columns: ["bin", "confidence", "n", "accuracy"], rows: rows).render(.table)
        text += String(format: "L_cal = %.6f\n", em.calibrationLoss)
        text += "questions that may break the rank order (2(1 − acc)/(T + K − 1) > acc): \(em.rankViolations)\n"
        text += "stored with the run" + (arguments.value("out").map { "; written to \($0)" } ?? "") + "\n"
        Console.out(text)
    }

    /// L_cal of `run`'s probabilities against the targets stored for `against`, with its bins.
    static func compare(store: RunStore, run name: String, against: String) throws {
        let run = try store.loadRun(named: name)
        guard let source = try store.runID(named: against) else { throw CommandFailure(message: "no run named '\(against)'") }
        let stored = try store.emTargets(runID: source)
        guard !stored.isEmpty else { throw CommandFailure(message: "no EM targets stored for '\(against)'; run `track em \(against)` first") }
        var lossByBin: [Int: (sum: Double, count: Int)] = [:]
        var paired = 0
        for i in 0..<run.predictions.count {
            guard let entry = stored[run.predictions.questionIDs[i]], entry.targets.count == run.predictions.optionCount(i) else { continue }
            let start = run.predictions.offsets[i]
            var squared = 0.0
            for (c, target) in entry.targets.enumerated() {
                let d = run.predictions.probabilities[start + c] - target
                squared += d * d
            }
            lossByBin[entry.bin, default: (0, 0)].sum += squared
            lossByBin[entry.bin, default: (0, 0)].count += 1
            paired += 1
        }
        let loss = lossByBin.values.reduce(0.0) { $0 + $1.sum / Double($1.count) }
        Console.out(String(format: "L_cal of '%@' against the EM targets of '%@': %.6f (%d paired questions)\n", name, against, loss, paired))
    }
}
