import Foundation
import TrackCalibration
import TrackStore

/// How the critical accuracy A* is chosen (METHODS §5): given, the accuracy of a
/// target run, or estimated from the stored runs.
public struct AStarRequest: Sendable {
    public var given: Double?
    public var target: String?
    /// conf-ECE at most this counts as calibrated when estimating A*.
    public var eceTolerance = 0.02
    public init(given: Double? = nil, target: String? = nil) {
        self.given = given
        self.target = target
    }
}

/// A* and a sentence saying where it came from.
public struct AStar: Sendable {
    public var value: Double
    public var source: String
    public enum Origin: Sendable { case given, target, estimated }
    public var origin: Origin
}

extension RunReader {
    /// A* from the request: the given value, else the target run's accuracy, else the highest
    /// accuracy among stored runs with conf-ECE ≤ the tolerance.
    public func aStar(_ request: AStarRequest, bins: Int) throws -> AStar {
        if let given = request.given { return AStar(value: given, source: "given", origin: .given) }
        if let target = request.target, let accuracy = try metrics(named: target, BinSettings(bins: bins), keys: [.accuracy]).metrics.accuracy {
            return AStar(value: accuracy, source: "accuracy of the target run '\(target)'", origin: .target)
        }
        let tolerance = request.eceTolerance
        var candidates: [(name: String, accuracy: Double, ece: Double)] = []
        for summary in try store.runSummaries() where summary.n > 0 {
            let m = try metrics(named: summary.name, BinSettings(bins: bins), keys: [.accuracy, .confECE]).metrics
            if let a = m.accuracy, let e = m.confECE { candidates.append((summary.name, a, e)) }
        }
        guard let estimate = Regimes.estimateAStar(candidates.map { ($0.accuracy, $0.ece) }, tolerance: tolerance),
              let best = candidates.first(where: { $0.ece <= tolerance && $0.accuracy == estimate }) else {
            throw StoreError("cannot estimate A*: no stored run has conf-ECE ≤ \(tolerance); give A* or a target run", kind: .notFound)
        }
        let count = candidates.filter { $0.ece <= tolerance }.count
        return AStar(value: estimate, source: "estimated: highest accuracy among the \(count) stored runs with conf-ECE ≤ \(tolerance) ('\(best.name)')",
                     origin: .estimated)
    }
}

/// `track tce`: each run's TCE against a target, the bounds of Theorem 4.4 and its regime.
public struct TCERequest: Sendable {
    public var runs: [String]
    public var aStar = AStarRequest()
    public var bins = 10
    /// The lower-bound constant c.
    public var lowerConstant = 0.0
    public init(runs: [String]) { self.runs = runs }
}

public struct TCERow: Sendable {
    public var run: String
    public var n: Int
    public var accuracy: Double
    public var confECE: Double?
    public var cwECE: Double?
    public var tce: Double?
    public var paired: Int?
    /// Theorem 4.6 on the shared questions: cw-ECE ≤ TCE.
    public var boundHolds: Bool?
    public var bounds: (lower: Double, upper: Double)
    public var regime: Regimes.Regime

    /// Where the run's TCE lies against the bounds on the lowest reachable TCE.
    public var band: String? {
        guard let tce else { return nil }
        if tce > bounds.upper + 1e-12 { return "above" }
        return tce < bounds.lower - 1e-12 ? "below" : "inside"
    }
}

public struct TCEReport: Sendable {
    public var aStar: AStar
    public var lowerConstant: Double
    public var rows: [TCERow]

    public var table: TextTable {
        TextTable(columns: ["run", "n", "accuracy", "conf_ece", "cw_ece", "tce", "paired", "cw_ece<=tce",
                            "tce_lower", "tce_upper", "tce_excess", "band", "regime"],
                  rows: rows.map { r in
                      // Theorem 4.4 bounds the best TCE reachable at this accuracy; the excess is what
                      // calibration could still remove without changing accuracy.
                      let excess = r.tce.map { $0 - r.bounds.upper }
                      return [.text(r.run), .integer(Int64(r.n)), .number(r.accuracy, digits: 4), .number(r.confECE, digits: 4),
                              .number(r.cwECE, digits: 4), .number(r.tce, digits: 4), .integer(r.paired.map(Int64.init)),
                              .text(r.boundHolds.map { $0 ? "yes" : "NO" }), .number(r.bounds.lower, digits: 4),
                              .number(r.bounds.upper, digits: 4), .number(excess, digits: 4), .text(r.band),
                              .text(r.regime.rawValue)]
                  },
                  caption: "A* = \(String(format: "%.4f", aStar.value)) (\(aStar.source)); the lowest TCE reachable at a run's accuracy lies between c·|acc − A*| and (2/K)·|acc − A*| (Theorems 4.4, 4.5; c = \(lowerConstant)); band: a run's TCE inside those bounds, or above them (not yet well trained: fine-tuning can bring it toward the band)")
    }

    public var json: String {
        "{\"a_star\":\(JSONValue.format(aStar.value)),\"a_star_source\":\(JSONValue.string(aStar.source).jsonText),\"runs\":"
            + table.render(.json).trimmingCharacters(in: .newlines) + "}\n"
    }
}

extension RunReader {
    public func tce(_ request: TCERequest) throws -> TCEReport {
        let target = try request.aStar.target.map { try store.loadRun(named: $0) }
        return try tce(request, target: target, aStar: try aStar(request.aStar, bins: request.bins))
    }

    func tce(_ request: TCERequest, target: LoadedRun?, aStar: AStar) throws -> TCEReport {
        var rows: [TCERow] = []
        for name in request.runs {
            let run = try store.loadRun(named: name)
            let m = CalibrationAnalyzer(run.predictions, bins: request.bins).metrics()
            guard let accuracy = m.accuracy, let k = run.predictions.uniformOptionCount else {
                throw StoreError("run '\(name)' is empty or mixes option counts", kind: .invalidInput)
            }
            let bounds = Regimes.bounds(accuracy: accuracy, aStar: aStar.value, optionCount: k, lowerConstant: request.lowerConstant)
            var row = TCERow(run: name, n: m.n, accuracy: accuracy, confECE: m.confECE, cwECE: m.cwECE,
                             bounds: (bounds.lower, bounds.upper), regime: Regimes.regime(accuracy: accuracy, aStar: aStar.value))
            if let target, let result = Regimes.tce(run.predictions, target: target.predictions) {
                row.tce = result.value
                row.paired = result.paired
                // cw-ECE on the same (shared) questions, for Theorem 4.6.
                let shared = Set(target.predictions.questionIDs)
                let indices = run.predictions.questionIDs.indices.filter { shared.contains(run.predictions.questionIDs[$0]) }
                let sharedCW = CalibrationAnalyzer(run.predictions.subset(indices), bins: request.bins).metrics().cwECE
                row.boundHolds = sharedCW.map { $0 <= result.value + 1e-12 }
            }
            rows.append(row)
        }
        return TCEReport(aStar: aStar, lowerConstant: request.lowerConstant, rows: rows)
    }
}
