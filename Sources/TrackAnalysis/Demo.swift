import Foundation
import TrackCalibration
import TrackStore

extension TextTable {
    /// Writes the table as CSV, LaTeX and Markdown into `directory` as `name.{csv,tex,md}`; returns the paths.
    public func writeExports(to directory: String, name: String) throws -> [String] {
        try [OutputFormat.csv, .latex, .markdown].map { format in
            let path = (directory as NSString).appendingPathComponent("\(name).\(format.fileExtension)")
            try writeExport(render(format), to: path)
            return path
        }
    }
}

/// `track demo`: a store of SIMULATED runs (the papers' setting), its tables and figure gallery.
public struct DemoRequest: Sendable {
    public var path = "demo.sqlite"
    public var out = "exports"
    public var seed: UInt64 = 0
    public var questionsPerDomain = 1000
    public init() {}
}

public struct DemoReport: Sendable {
    public var path: String
    public var seed: UInt64
    public var runs: Int
    public var predictions: Int
    public var seconds: Double
    public var runTable: TextTable
    public var paperTable: TextTable
    public var exports: [String]
    public var figures: [String]

    public var text: String {
        var text = "track demo — SIMULATED DATA (seeded simulator, seed \(seed); no model was run)\n"
        text += DemoSimulator.provenance + "\n\n"
        text += runTable.render(.table)
        text += "\n\(runs) runs, \(predictions) predictions written to \(path) in \(String(format: "%.1f", seconds)) s\n"
        text += "\nPaper-style table (Table 2 shape; simulated):\n" + paperTable.render(.table)
        text += "exports: \(exports.joined(separator: ", "))\n"
        text += "figures: \(figures.joined(separator: ", ")) (each with the CSV of its numbers)\n"
        return text
    }
}

public enum Demo {
    /// Builds the demo store beside its target and moves it into place (a store that is
    /// not a demo is never replaced), then writes the run table, Table 2 and the gallery.
    public static func build(_ request: DemoRequest) throws -> DemoReport {
        let path = request.path, out = request.out
        var simulator = DemoSimulator()
        simulator.seed = request.seed
        simulator.questionsPerDomain = request.questionsPerDomain
        let start = Date()
        let fileManager = FileManager.default
        if fileManager.fileExists(atPath: path) {
            guard try RunStore(path: path).metaValue("demo") != nil else {
                throw StoreError("\(path) exists and is not a demo database; choose another path", kind: .conflict)
            }
        }
        let temporary = path + ".building"
        for suffix in ["", "-wal", "-shm"] { try? fileManager.removeItem(atPath: temporary + suffix) }
        let runs: Int
        do {
            let store = try RunStore(path: temporary)
            try store.setMetaValue("demo", "simulated")
            runs = try simulator.populate(store)
            try store.truncateLog()
        }
        for suffix in ["-wal", "-shm"] { try? fileManager.removeItem(atPath: path + suffix) }
        try? fileManager.removeItem(atPath: path)
        try fileManager.moveItem(atPath: temporary, toPath: path)
        for suffix in ["-wal", "-shm"] { try? fileManager.removeItem(atPath: temporary + suffix) }

        let store = try RunStore(path: path)
        defer { store.checkpoint() }
        let reader = RunReader(store)
        try fileManager.createDirectory(atPath: out, withIntermediateDirectories: true)
        let summaries = try store.runSummaries()
        let runTable = TextTable(
            columns: ["run", "model", "method", "split", "epoch", "n", "accuracy", "mean_confidence", "overconfidence"],
            rows: summaries.map { run in
                [.text(run.name), .text(run.model), .text(run.method), .text(run.split),
                 .number(run.epoch, digits: 0), .integer(Int64(run.n)), .number(run.accuracy, digits: 4),
                 .number(run.meanConfidence, digits: 4),
                 .number(run.meanConfidence.flatMap { c in run.accuracy.map { c - $0 } }, digits: 4)]
            })
        let csvPath = (out as NSString).appendingPathComponent("demo_runs.csv")
        try writeExport(runTable.render(.csv), to: csvPath)

        // The paper's Table 2 shape from the simulated runs (latest epoch per cell).
        var tableRequest = PaperTableRequest()
        tableRequest.percent = true
        tableRequest.digits = 2
        tableRequest.caption = "Simulated demo: conf-ECE, cw-ECE and accuracy (x100) by model and method"
        let paperTable = try reader.paperTable(tableRequest).table
        _ = try paperTable.writeExports(to: out, name: "demo_table2")

        // The figure gallery.
        let llama = "Llama-3.1-8B-Tulu-sim"
        func figure(_ kind: FigureRequest.Kind, _ runs: [String], _ name: String, title: String? = nil,
                    _ adjust: (inout FigureRequest) -> Void = { _ in }) -> FigureRequest {
            var request = FigureRequest(kind: kind, runs: runs, out: "\(out)/\(name)")
            request.title = title
            request.provenance = "track demo"
            adjust(&request)
            return request
        }
        let gallery = [
            figure(.reliability, ["\(llama)/DPO/in-domain"], "gallery_reliability_dpo.png"),
            figure(.grid, ["\(llama)/DPO/in-domain", "\(llama)/TS/in-domain", "\(llama)/CFT/e3/in-domain", "\(llama)/RCFT/e3/in-domain"],
                   "gallery_methods_grid.png", title: "Simulated \(llama), in-domain: DPO / TS / CFT / RCFT"),
            figure(.classwise, ["\(llama)/DPO/out-domain"], "gallery_classwise_dpo.png") {
                $0.columns = 5
                $0.panelWidth = 220
                $0.panelHeight = 260
                $0.histogram = false
            },
            figure(.curve, (1...3).flatMap { ["\(llama)/CFT/e\($0)/in-domain", "\(llama)/RCFT/e\($0)/in-domain"] }, "gallery_curve_epochs.png",
                   title: "Simulated \(llama): conf-ECE over epochs (95% bootstrap bands)") {
                $0.bands = 200
                $0.family = [.method]
            },
            figure(.smooth, ["DPO", "TS", "RCFT/e3"].map { "\(llama)/\($0)/in-domain" }, "gallery_smooth.png",
                   title: "Simulated \(llama), in-domain: smooth reliability (smECE, 95% bootstrap band)") {
                $0.bands = 200
                $0.columns = 3
            },
            figure(.reliability, ["DPO", "TS", "CFT/e3"].map { "\(llama)/\($0)/in-domain" }, "gallery_overlay.png") {
                $0.overlay = true
            },
            figure(.regime, ["SFT", "DPO", "TS", "CFT/e3", "RCFT/e3"].map { "\(llama)/\($0)/in-domain" }, "gallery_regimes.png",
                   title: "Simulated \(llama): conf-ECE vs accuracy, A* = the SFT model's accuracy") {
                $0.aStar.target = "\(llama)/SFT/in-domain"
            },
        ]
        var figures: [String] = []
        for request in gallery { figures.append(try reader.figure(request).path) }

        return DemoReport(path: path, seed: request.seed, runs: runs, predictions: summaries.reduce(0) { $0 + $1.n },
                          seconds: Date().timeIntervalSince(start), runTable: runTable, paperTable: paperTable,
                          exports: [csvPath, "\(out)/demo_table2.{csv,tex,md}"], figures: figures)
    }
}
