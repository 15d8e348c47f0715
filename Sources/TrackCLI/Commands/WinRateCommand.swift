import Foundation
import TrackCalibration
import TrackStore

/// `track winrate`: win rates from preference pairs or judged comparisons (METHODS §7).
enum WinRateCommand: Command {
    static let spec = CommandSpec(
        name: "winrate", abstract: "Win rates from preference pairs (sequence likelihood) or judged comparisons, with Wilson 95% intervals.",
        usage: "<run>... [--vs <run-or-reference>] [--ties loss|half] [--normalize] [--format table|csv|json|markdown|latex]",
        discussion: """
        Without --vs: the run's preference pairs; a win when the chosen response's sequence
        log-likelihood exceeds the rejected one's (paper Eq. 21). Ties count as losses (the
        paper's convention, default) or as half (--ties half); --normalize compares per-token
        means. With --vs: judged comparisons of the run (A) against that run or reference (B),
        reported as "A vs B" shares as in the paper's Table 3 (ties split unless --ties loss).
        Log pairs and judgments as JSON lines through `track log` or `track ingest`:
          {"pair": "p1", "chosen_logprob": -41.2, "rejected_logprob": -48.9, "chosen_tokens": 37, "rejected_tokens": 44}
          {"judgment": "p1", "verdict": "A", "vs": "gpt-4-turbo"}
        """,
        arguments: [("<run>...", "Runs.")],
        options: SharedOptions.database + [
            .value("vs", "name", "Judged comparisons against this run or reference."),
            .value("ties", "loss|half", "How a tie counts (default: loss for pairs, half for judgments)."),
            .flag("normalize", "Compare per-token mean log-likelihoods (pairs with token counts)."),
            .value("format", "format", "table, csv, json, markdown or latex (default: table)."),
        ])

    static func run(_ arguments: ParsedArguments) throws {
        guard !arguments.positionals.isEmpty else { throw UsageError(message: "expected at least one run") }
        let format = try SharedOptions.outputFormat(arguments)
        let opponent = arguments.value("vs")
        let ties = WinRate.Ties(rawValue: try arguments.choice("ties", ["loss", "half"], default: opponent == nil ? "loss" : "half"))!
        let store = try SharedOptions.openStore(arguments, readOnly: true)
        var rows: [[TextTable.Cell]] = []
        var table: TextTable
        for name in arguments.positionals {
            guard let runID = try store.runID(named: name) else { throw CommandFailure(message: "no run named '\(name)'") }
            if let opponent {
                var verdicts: [String] = []
                try store.database.forEachRow("SELECT verdict FROM judgments WHERE run_id = ? AND opponent = ?",
                                              [.integer(runID), .text(opponent)]) { verdicts.append($0.string(0) ?? "") }
                guard !verdicts.isEmpty else { throw CommandFailure(message: "run '\(name)' has no judgments against '\(opponent)'") }
                let r = WinRate.judged(verdicts, ties: ties)
                let b = Double(verdicts.filter { $0 == "B" }.count) + (ties == .half ? 0.5 * Double(r.ties) : 0)
                rows.append([.text(name), .text(opponent), .integer(Int64(r.n)), .integer(Int64(r.wins)), .integer(Int64(r.ties)),
                             .number(100 * r.rate, digits: 2), .number(100 * b / Double(r.n), digits: 2),
                             .number(100 * r.interval.lower, digits: 2), .number(100 * r.interval.upper, digits: 2)])
            } else {
                var pairs: [PreferencePair] = []
                try store.database.forEachRow(
                    "SELECT prompt_id, chosen_logprob, rejected_logprob, chosen_tokens, rejected_tokens FROM preference_pairs WHERE run_id = ?",
                    [.integer(runID)]) { row in
                    pairs.append(PreferencePair(promptID: row.string(0) ?? "", chosenLogProb: row.double(1), rejectedLogProb: row.double(2),
                                                chosenTokens: row.optionalInt64(3).map(Int.init), rejectedTokens: row.optionalInt64(4).map(Int.init)))
                }
                guard !pairs.isEmpty else { throw CommandFailure(message: "run '\(name)' has no preference pairs") }
                let r = WinRate.sequenceLikelihood(pairs, ties: ties, normalize: arguments.flag("normalize"))
                rows.append([.text(name), .integer(Int64(r.n)), .integer(Int64(r.wins)), .integer(Int64(r.ties)),
                             .number(100 * r.rate, digits: 2), .number(100 * r.interval.lower, digits: 2), .number(100 * r.interval.upper, digits: 2)])
            }
        }
        if opponent != nil {
            table = TextTable(columns: ["run", "vs", "n", "A wins", "ties", "A %", "B %", "A lo %", "A hi %"], rows: rows)
            table.caption = "judged head-to-head, ties \(ties == .half ? "split" : "as losses"); Wilson 95% interval on A"
        } else {
            table = TextTable(columns: ["run", "pairs", "wins", "ties", "win rate %", "lo %", "hi %"], rows: rows)
            table.caption = "sequence likelihood\(arguments.flag("normalize") ? " per token" : ""), ties \(ties == .half ? "as half" : "as losses"); Wilson 95% interval"
        }
        Console.out(table.render(format))
    }
}
