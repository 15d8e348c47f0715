import Foundation
import TrackCalibration
import TrackStore

/// `track tce`: target calibration error, its bounds, and each run's regime (METHODS §5).
enum TCECommand: Command {
    static let spec = CommandSpec(
        name: "tce", abstract: "TCE against a target run, the regime bounds and each run's regime.",
        usage: "<run>... [--target <run>] [--a-star <x>] [--c-lower <c>] [--ece-tolerance <x>] [--format table|csv|json]",
        discussion: """
        TCE(p) = (1/N) Σ_i (1/K) Σ_k |p_ik − p*_ik| over the questions a run shares with --target.
        Theorem 4.6 says cw-ECE ≤ TCE; the output checks it on the shared questions.
        A* (the critical accuracy) is --a-star if given, else the --target run's accuracy, else
        estimated as the highest accuracy among all stored runs whose conf-ECE is at most
        --ece-tolerance (default 0.02); the output says which. Bounds on TCE:
        c·|acc − A*| ≤ TCE ≤ (2/K)·|acc − A*| with c = --c-lower (default 0). Regime:
        acc ≤ A* calibratable, acc > A* non-calibratable. The upper bound is the TCE some model
        of that accuracy reaches (Theorem 4.4); tce_excess = TCE − upper bound is what calibration
        could still remove at that accuracy.
        """,
        arguments: [("<run>...", "Runs to place.")],
        options: SharedOptions.database + [
        ] + regimeOptions + [
            .value("bins", "n", "Bins of ECE and cw-ECE (default: 10)."),
            .value("format", "format", "table, csv or json (default: table)."),
        ])

    static func run(_ arguments: ParsedArguments) throws {
        guard !arguments.positionals.isEmpty else { throw UsageError(message: "expected at least one run") }
        let format = try SharedOptions.outputFormat(arguments, allowed: [.table, .csv, .json])
        let bins = try arguments.int("bins") ?? 10
        let lowerConstant = try arguments.double("c-lower") ?? 0
        let store = try SharedOptions.openStore(arguments, readOnly: true)
        let target = try arguments.value("target").map { try store.loadRun(named: $0) }
        let targetMetrics = target.map { CalibrationAnalyzer($0.predictions, bins: bins).metrics() }

        let (aStar, source) = try resolveAStar(store: store, arguments: arguments, target: target.map { ($0.name, targetMetrics?.accuracy) }, bins: bins)

        var rows: [[TextTable.Cell]] = []
        for name in arguments.positionals {
            let run = try store.loadRun(named: name)
            let m = CalibrationAnalyzer(run.predictions, bins: bins).metrics()
            guard let accuracy = m.accuracy, let k = run.predictions.uniformOptionCount else {
                throw CommandFailure(message: "run '\(name)' is empty or mixes option counts")
            }
            let bounds = Regimes.bounds(accuracy: accuracy, aStar: aStar, optionCount: k, lowerConstant: lowerConstant)
            var tce: Double?, paired: Int?, sharedCW: Double?
            if let target, let result = Regimes.tce(run.predictions, target: target.predictions) {
                tce = result.value
                paired = result.paired
                // cw-ECE on the same (shared) questions, for Theorem 4.6.
                let shared = Set(target.predictions.questionIDs)
                let indices = run.predictions.questionIDs.indices.filter { shared.contains(run.predictions.questionIDs[$0]) }
                sharedCW = CalibrationAnalyzer(run.predictions.subset(indices), bins: bins).metrics().cwECE
            }
            let holds = tce.flatMap { t in sharedCW.map { $0 <= t + 1e-12 } }
            // Theorem 4.4 bounds the best TCE reachable at this accuracy; the excess is what
            // calibration could still remove without changing accuracy.
            let excess = tce.map { $0 - bounds.upper }
            rows.append([.text(name), .integer(Int64(m.n)), .number(accuracy, digits: 4), .number(m.confECE, digits: 4),
                         .number(m.cwECE, digits: 4), .number(tce, digits: 4), .integer(paired.map(Int64.init)),
                         .text(holds.map { $0 ? "yes" : "NO" }), .number(bounds.lower, digits: 4), .number(bounds.upper, digits: 4),
                         .number(excess, digits: 4), .text(Regimes.regime(accuracy: accuracy, aStar: aStar).rawValue)])
        }
        var table = TextTable(columns: ["run", "n", "accuracy", "conf_ece", "cw_ece", "tce", "paired", "cw_ece<=tce",
                                        "tce_lower", "tce_upper", "tce_excess", "regime"], rows: rows)
        table.caption = "A* = \(String(format: "%.4f", aStar)) (\(source)); bounds c·|acc − A*| ≤ TCE ≤ (2/K)·|acc − A*|, c = \(lowerConstant)"
        if format == .json {
            Console.out("{\"a_star\":\(JSONValue.format(aStar)),\"a_star_source\":\(JSONValue.string(source).jsonText),\"runs\":" + table.render(.json).trimmingCharacters(in: .newlines) + "}\n")
        } else {
            Console.out(table.render(format))
        }
    }
}

/// The options that place runs in the regimes, shared by `track tce` and `track plot regime`.
let regimeOptions: [OptionSpec] = [
    .value("target", "run", "The target run p* (a calibrated, most accurate model); its accuracy is A*."),
    .value("a-star", "x", "The critical accuracy A*."),
    .value("c-lower", "c", "The lower-bound constant c (default: 0)."),
    .value("ece-tolerance", "x", "ECE counted as zero when estimating A* (default: 0.02)."),
]

/// A* from --a-star, else the target run's accuracy, else estimated from the stored runs
/// (the highest accuracy among runs with conf-ECE ≤ --ece-tolerance); with a sentence saying which.
func resolveAStar(store: RunStore, arguments: ParsedArguments, target: (name: String, accuracy: Double?)?,
                  bins: Int) throws -> (Double, String) {
    if let given = try arguments.double("a-star") {
        return (given, "given by --a-star")
    }
    if let target, let accuracy = target.accuracy {
        return (accuracy, "accuracy of the target run '\(target.name)'")
    }
    let tolerance = try arguments.double("ece-tolerance") ?? 0.02
    var candidates: [(name: String, accuracy: Double, ece: Double)] = []
    for summary in try store.runSummaries() where summary.n > 0 {
        let m = try store.metrics(named: summary.name, bins: bins, keys: ["accuracy", "conf_ece"]).metrics
        if let a = m.accuracy, let e = m.confECE { candidates.append((summary.name, a, e)) }
    }
    guard let estimate = Regimes.estimateAStar(candidates.map { ($0.accuracy, $0.ece) }, tolerance: tolerance),
          let best = candidates.first(where: { $0.ece <= tolerance && $0.accuracy == estimate }) else {
        throw CommandFailure(message: "cannot estimate A*: no stored run has conf-ECE ≤ \(tolerance); give --a-star or --target")
    }
    let count = candidates.filter { $0.ece <= tolerance }.count
    return (estimate, "estimated: highest accuracy among the \(count) stored runs with conf-ECE ≤ \(tolerance) ('\(best.name)')")
}
