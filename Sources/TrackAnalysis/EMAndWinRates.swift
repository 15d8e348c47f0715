import Foundation
import TrackCalibration
import TrackStore

// MARK: - EM targets (Algorithm 1)

/// `track em`: a run's EM targets, stored with it and optionally written to a file.
public struct EMRequest: Sendable {
    public var run: String
    public var bins = 10
    public var gamma: EMTargets.Gamma = .paper
    /// .jsonl, .csv or .npy.
    public var out: String?
    public init(run: String) { self.run = run }
}

public struct EMReport: Sendable {
    public var run: String
    public var questions: Int
    public var bins: Int
    public var gamma: EMTargets.Gamma
    public var targets: EMTargets
    public var out: String?

    public var text: String {
        var rows: [[TextTable.Cell]] = []
        for m in 0..<bins {
            rows.append([.integer(Int64(m)), .text(String(format: "[%.2f, %.2f%@", Double(m) / Double(bins),
                                                            Double(m + 1) / Double(bins), m == bins - 1 ? "]" : ")")),
                         .integer(Int64(targets.binCount[m])), .number(targets.binAccuracy[m], digits: 4)])
        }
        var text = "EM targets of '\(run)' (\(questions) questions, \(bins) bins, γ: \(gamma.rawValue))\n"
        text += TextTable(columns: ["bin", "confidence", "n", "accuracy"], rows: rows).render(.table)
        text += String(format: "L_cal = %.6f\n", targets.calibrationLoss)
        text += "questions that may break the rank order (2(1 − acc)/(T + K − 1) > acc): \(targets.rankViolations)\n"
        text += "stored with the run" + (out.map { "; written to \($0)" } ?? "") + "\n"
        return text
    }
}

/// L_cal of a later run against a run's stored targets.
public struct EMComparison: Sendable {
    public var run: String
    public var against: String
    public var loss: Double
    public var paired: Int
}

extension RunReader {
    public func emTargets(_ request: EMRequest) throws -> EMReport {
        let run = try store.loadRun(named: request.run, details: true)
        let set = run.predictions
        let em = EMTargets(set, bins: request.bins, gamma: request.gamma)
        if let out = request.out {
            switch (out as NSString).pathExtension.lowercased() {
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
                guard let k = set.uniformOptionCount else {
                    throw StoreError(".npy needs one option count; write .jsonl instead", kind: .invalidInput)
                }
                try NPYArray.write(rows: set.count, columns: k, values: em.targets, to: out)
            default:
                throw StoreError("the targets file must end in .jsonl, .csv or .npy", kind: .usage)
            }
        }
        try store.storeEMTargets(runID: run.id, questionIDs: set.questionIDs, offsets: set.offsets.array(questions: set.count), bins: em.bins,
                                 targets: em.targets, settings: ["em.bins": String(request.bins), "em.gamma": request.gamma.rawValue])
        return EMReport(run: request.run, questions: set.count, bins: request.bins, gamma: request.gamma, targets: em, out: request.out)
    }

    /// L_cal of `run`'s probabilities against the targets stored for `against`, with its bins.
    public func emLoss(run name: String, against: String) throws -> EMComparison {
        let run = try store.loadRun(named: name)
        let source = try store.requireRun(against)
        let stored = try store.emTargets(runID: source)
        guard !stored.isEmpty else { throw StoreError("no EM targets stored for '\(against)'; compute them first", kind: .notFound) }
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
        return EMComparison(run: name, against: against, loss: loss, paired: paired)
    }
}

// MARK: - Win rates (METHODS §7)

/// `track winrate`: sequence-likelihood win rates of preference pairs, or judged head-to-heads.
public struct WinRateRequest: Sendable {
    public var runs: [String]
    /// Judged comparisons against this run or reference; nil for preference pairs.
    public var opponent: String?
    /// Default: losses for pairs, half for judgments.
    public var ties: WinRate.Ties?
    /// Per-token mean log-likelihoods.
    public var normalize = false
    public init(runs: [String]) { self.runs = runs }
}

extension RunReader {
    public func winRates(_ request: WinRateRequest) throws -> TextTable {
        let ties = request.ties ?? (request.opponent == nil ? .loss : .half)
        var rows: [[TextTable.Cell]] = []
        for name in request.runs {
            let runID = try store.requireRun(name)
            if let opponent = request.opponent {
                let verdicts = try store.verdicts(runID: runID, opponent: opponent)
                guard !verdicts.isEmpty else { throw StoreError("run '\(name)' has no judgments against '\(opponent)'", kind: .notFound) }
                let r = WinRate.judged(verdicts, ties: ties)
                let b = Double(verdicts.filter { $0 == "B" }.count) + (ties == .half ? 0.5 * Double(r.ties) : 0)
                rows.append([.text(name), .text(opponent), .integer(Int64(r.n)), .integer(Int64(r.wins)), .integer(Int64(r.ties)),
                             .number(100 * r.rate, digits: 2), .number(100 * b / Double(r.n), digits: 2),
                             .number(100 * r.interval.lower, digits: 2), .number(100 * r.interval.upper, digits: 2)])
            } else {
                let pairs = try store.preferencePairs(runID: runID)
                guard !pairs.isEmpty else { throw StoreError("run '\(name)' has no preference pairs", kind: .notFound) }
                let r = WinRate.sequenceLikelihood(pairs, ties: ties, normalize: request.normalize)
                rows.append([.text(name), .integer(Int64(r.n)), .integer(Int64(r.wins)), .integer(Int64(r.ties)),
                             .number(100 * r.rate, digits: 2), .number(100 * r.interval.lower, digits: 2), .number(100 * r.interval.upper, digits: 2)])
            }
        }
        if request.opponent != nil {
            return TextTable(columns: ["run", "vs", "n", "A wins", "ties", "A %", "B %", "A lo %", "A hi %"], rows: rows,
                             caption: "judged head-to-head, ties \(ties == .half ? "split" : "as losses"); Wilson 95% interval on A")
        }
        return TextTable(columns: ["run", "pairs", "wins", "ties", "win rate %", "lo %", "hi %"], rows: rows,
                         caption: "sequence likelihood\(request.normalize ? " per token" : ""), ties \(ties == .half ? "as half" : "as losses"); Wilson 95% interval")
    }
}
