import Foundation
import TrackStore

/// `track demo`: the embedded default job on simulated data.
enum DemoCommand: Command {
    static let spec = CommandSpec(
        name: "demo", abstract: "Build a demo database of SIMULATED runs and its exports.",
        usage: "[--db <path>] [--out <dir>] [--seed <n>] [--questions <n>]",
        discussion: """
        Simulates the papers' setting — 3 models x SFT / DPO / TS / CFT / RCFT (3 epochs each)
        x in-domain and out-domain — with aligned (DPO) runs overconfident as the papers report,
        plus preference pairs. The data are simulated; no model is run. The same seed gives the
        same database on every machine.
        """,
        options: [
            .value("db", "path", "Where to write the demo database (default: demo.sqlite; replaced if it is a demo)."),
            .value("out", "dir", "Where to write exports (default: exports)."),
            .value("seed", "n", "Random seed (default: 42)."),
            .value("questions", "n", "Questions per domain (default: 1000)."),
        ])

    static func run(_ arguments: ParsedArguments) throws {
        guard arguments.positionals.isEmpty else { throw UsageError(message: "unexpected argument '\(arguments.positionals[0])'") }
        let path = arguments.value("db") ?? "demo.sqlite"
        let out = arguments.value("out") ?? "exports"
        var simulator = DemoSimulator()
        if let seed = try arguments.int("seed") { simulator.seed = UInt64(bitPattern: Int64(seed)) }
        if let n = try arguments.int("questions") { simulator.questionsPerDomain = n }
        let start = Date()
        let fileManager = FileManager.default
        if fileManager.fileExists(atPath: path) {
            let existing = try RunStore(path: path)
            guard try existing.database.scalarText("SELECT value FROM track_meta WHERE key = 'demo'") != nil else {
                throw CommandFailure(message: "\(path) exists and is not a demo database; choose another --db")
            }
        }
        // Build beside the target, then move it into place.
        let temporary = path + ".building"
        for suffix in ["", "-wal", "-shm"] { try? fileManager.removeItem(atPath: temporary + suffix) }
        let runs: Int
        do {
            let store = try RunStore(path: temporary)
            try store.database.execute("INSERT INTO track_meta(key, value) VALUES ('demo', 'simulated')")
            runs = try simulator.populate(store)
            try store.database.executeScript("PRAGMA wal_checkpoint(TRUNCATE)")
        }
        for suffix in ["-wal", "-shm"] { try? fileManager.removeItem(atPath: path + suffix) }
        try? fileManager.removeItem(atPath: path)
        try fileManager.moveItem(atPath: temporary, toPath: path)
        for suffix in ["-wal", "-shm"] { try? fileManager.removeItem(atPath: temporary + suffix) }

        let store = try RunStore(path: path)
        try fileManager.createDirectory(atPath: out, withIntermediateDirectories: true)
        let summaries = try store.runSummaries()
        let table = TextTable(
            columns: ["run", "model", "method", "split", "epoch", "n", "accuracy", "mean_conf", "overconfidence"],
            rows: summaries.map { run in
                [.text(run.name), .text(run.model), .text(run.method), .text(run.split),
                 .number(run.epoch, digits: 0), .integer(Int64(run.n)), .number(run.accuracy, digits: 4),
                 .number(run.meanConfidence, digits: 4),
                 .number(run.meanConfidence.flatMap { c in run.accuracy.map { c - $0 } }, digits: 4)]
            })
        let csvPath = (out as NSString).appendingPathComponent("demo_runs.csv")
        try table.render(.csv).write(toFile: csvPath, atomically: true, encoding: .utf8)

        // The paper's Table 2 shape from the simulated runs (latest epoch per cell).
        let tableArguments = try ArgumentParser.parse(
            ["--db", path, "--out-dir", out, "--name", "demo_table2", "--percent",
             "--caption", "Simulated demo: conf-ECE, cw-ECE and accuracy (x100) by model and method"],
            spec: TableCommand.spec)
        let paperTable = try captureOutput { try TableCommand.run(tableArguments) }

        // The figure gallery.
        let llama = "Llama-3.1-8B-Tulu-sim"
        let gallery: [[String]] = [
            ["reliability", "\(llama)/DPO/in-domain", "--out", "\(out)/gallery_reliability_dpo.png"],
            ["grid", "\(llama)/DPO/in-domain", "\(llama)/TS/in-domain", "\(llama)/CFT/e3/in-domain", "\(llama)/RCFT/e3/in-domain",
             "--out", "\(out)/gallery_methods_grid.png", "--title", "Simulated \(llama), in-domain: DPO / TS / CFT / RCFT"],
            ["classwise", "\(llama)/DPO/out-domain", "--out", "\(out)/gallery_classwise_dpo.png", "--columns", "5",
             "--width", "220", "--height", "260", "--no-histogram"],
            ["curve"] + (1...3).flatMap { ["\(llama)/CFT/e\($0)/in-domain", "\(llama)/RCFT/e\($0)/in-domain"] }
                + ["--out", "\(out)/gallery_curve_epochs.png", "--ci", "--family", "method", "--title", "Simulated \(llama): conf-ECE over epochs (95% bootstrap bands)"],
            ["regime"] + ["SFT", "DPO", "TS", "CFT/e3", "RCFT/e3"].map { "\(llama)/\($0)/in-domain" }
                + ["--target", "\(llama)/SFT/in-domain", "--out", "\(out)/gallery_regimes.png",
                   "--title", "Simulated \(llama): conf-ECE vs accuracy, A* = the SFT model's accuracy"],
        ]
        var figures: [String] = []
        for arguments in gallery {
            let parsed = try ArgumentParser.parse(arguments + ["--db", path], spec: PlotCommand.spec)
            _ = try captureOutput { try PlotCommand.run(parsed) }
            // (plot regime also reports A* on stderr, which the demo leaves to its CSV)
            figures.append(arguments[arguments.firstIndex(of: "--out")! + 1])
        }

        let seconds = Date().timeIntervalSince(start)
        var text = "track demo — SIMULATED DATA (seeded simulator, seed \(simulator.seed); no model was run)\n\n"
        text += table.render(.table)
        text += "\n\(runs) runs, \(summaries.reduce(0) { $0 + $1.n }) predictions written to \(path) in \(String(format: "%.1f", seconds)) s\n"
        text += "\nPaper-style table (Table 2 shape; simulated):\n" + paperTable
        text += "exports: \(csvPath), \(out)/demo_table2.{csv,tex,md}\n"
        text += "figures: \(figures.joined(separator: ", ")) (each with the CSV of its numbers)\n"
        text += "next: track runs --db \(path) --method DPO   |   track sql --db \(path) \"SELECT * FROM run_summary\"\n"
        Console.out(text)
    }
}
