import Foundation
import Testing
import TrackFigures
import TrackStore

@Suite struct PlotCommandTests {
    static func demo(_ scratch: Scratch) throws -> String {
        let db = scratch.path("demo.sqlite")
        let result = try TrackBinary.run(["demo", "--db", db, "--out", scratch.path("demo-exports"), "--questions", "400"])
        #expect(result.status == 0, "\(result.stderr)")
        return db
    }

    @Test func sameInputSameBytesInEveryFormat() throws {
        let scratch = Scratch()
        let db = try Self.demo(scratch)
        for ext in ["png", "pdf", "svg"] {
            let first = scratch.path("a.\(ext)"), second = scratch.path("b.\(ext)")
            for out in [first, second] {
                let result = try TrackBinary.run(["plot", "reliability", "Vicuna-7B-sim/DPO/in-domain", "--db", db, "--out", out, "--dpi", "100"])
                #expect(result.status == 0, "\(result.stderr)")
            }
            let a = try Data(contentsOf: URL(fileURLWithPath: first)), b = try Data(contentsOf: URL(fileURLWithPath: second))
            #expect(a.count > 1000 && a == b, "\(ext) differs between renders")
        }
    }

    @Test func writesTheDrawnNumbersAndRecordsProvenance() throws {
        let scratch = Scratch()
        let db = try Self.demo(scratch)
        let out = scratch.path("figs/grid.png")
        let runs = ["Llama-3.1-8B-Tulu-sim/DPO/in-domain", "Llama-3.1-8B-Tulu-sim/TS/in-domain"]
        let result = try TrackBinary.run(["plot", "grid"] + runs + ["--db", db, "--out", out, "--bins", "10"])
        #expect(result.status == 0, "\(result.stderr)")
        let image = try PNGImage(path: out)
        #expect(image.width == 2 * 260 * 200 / 72 + 1 || image.width == 2 * 260 * 200 / 72)
        // The CSV holds each run's bins; counts add up to the run's questions.
        let csv = try String(contentsOfFile: scratch.path("figs/grid.png.csv"), encoding: .utf8).split(separator: "\n")
        #expect(csv[0] == "run,panel,bin,lower,upper,n,accuracy,confidence,gap")
        #expect(csv.count == 1 + 2 * 10)
        let dpoCounts = csv.dropFirst().filter { $0.hasPrefix(runs[0]) }.map { Int($0.split(separator: ",")[5])! }
        #expect(dpoCounts.reduce(0, +) == 400)
        // Provenance: file, SHA-256, runs, command line.
        let store = try RunStore(path: db, readOnly: true)
        let row = try #require(try store.query("SELECT path, kind, format, sha256, data_path, command, export_id FROM exports WHERE path = '\(out)'").rows.first)
        #expect(row[0] == .text(out) && row[1] == .text("grid") && row[2] == .text("png"))
        var hasher = SHA256()
        hasher.update([UInt8](try Data(contentsOf: URL(fileURLWithPath: out))))
        #expect(row[3] == .text(hasher.finalizeHex()))
        if case .text(let command) = row[5] { #expect(command.contains("plot grid")) } else { Issue.record("no command") }
        guard case .integer(let exportID) = row[6] else { Issue.record("no export id"); return }
        let linked = try store.query("SELECT r.name FROM export_runs e JOIN runs r USING (run_id) WHERE e.export_id = \(exportID) ORDER BY r.name").rows
        #expect(linked.map { $0[0] } == runs.sorted().map { .text($0) })
    }

    @Test func classwisePanelsAndCurves() throws {
        let scratch = Scratch()
        let db = try Self.demo(scratch)
        let classwise = try TrackBinary.run(["plot", "classwise", "Vicuna-7B-sim/DPO/in-domain", "--db", db, "--out", scratch.path("cw.svg")])
        #expect(classwise.status == 0, "\(classwise.stderr)")
        let panels = Set(try String(contentsOfFile: scratch.path("cw.svg.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
            .map { $0.split(separator: ",")[1] })
        #expect(panels == ["option A", "option B", "option C", "option D", "pooled"])
        let runs = (1...3).map { "Vicuna-7B-sim/CFT/e\($0)/in-domain" }
        let curve = try TrackBinary.run(["plot", "curve"] + runs + ["--db", db, "--out", scratch.path("curve.pdf"), "--metric", "cw_ece"])
        #expect(curve.status == 0, "\(curve.stderr)")
        let rows = try String(contentsOfFile: scratch.path("curve.pdf.csv"), encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 4 && rows[1].hasPrefix("Vicuna-7B-sim / CFT / in-domain,Vicuna-7B-sim/CFT/e1/in-domain,1,"))
        // A run without an epoch cannot be on an epoch curve.
        let bad = try TrackBinary.run(["plot", "curve", "Vicuna-7B-sim/DPO/in-domain", "--db", db, "--out", scratch.path("x.png")])
        #expect(bad.status == 1 && bad.stderr.contains("has no epoch"))
        #expect(try TrackBinary.run(["plot", "pie", "x", "--db", db]).status == 64)
        // An unknown figure format is a usage error, said before the store is read.
        let gif = try TrackBinary.run(["plot", "reliability", "x", "--db", db, "--out", scratch.path("x.gif")])
        #expect(gif.status == 64 && gif.stderr.contains("use .png, .pdf or .svg"), "\(gif.stderr)")
    }
}

@Suite struct FontTests {
    /// Without any font fontconfig can find, plotting fails with a clear message instead of drawing with a fallback.
    @Test func missingFontsFailClearly() throws {
        let scratch = Scratch()
        let db = try PlotCommandTests.demo(scratch)
        let config = scratch.write("fonts.conf", """
            <?xml version="1.0"?>
            <!DOCTYPE fontconfig SYSTEM "fonts.dtd">
            <fontconfig><cachedir>\(scratch.path("fc-cache"))</cachedir></fontconfig>
            """)
        let result = try TrackBinary.run(["plot", "reliability", "Vicuna-7B-sim/DPO/in-domain", "--db", db, "--out", scratch.path("x.png")],
                                         environment: ["FONTCONFIG_FILE": config])
        #expect(result.status == 1)
        #expect(result.stderr.contains("no usable font"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("x.png")))
    }
}

/// Issue 11 #15: a figure's CSV never replaces a file the user did not name.
@Suite struct FigureSidecarTests {
    @Test func theCSVBesideAFigureIsNamedAfterIt() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        let lines = (0..<40).map { StreamingTests.line($0) }.joined(separator: "\n") + "\n"
        #expect(try TrackBinary.run(["log", "--run", "r", "--db", db], input: lines).status == 0)
        try FileManager.default.createDirectory(atPath: scratch.path("o"), withIntermediateDirectories: true)
        let keep = scratch.write("o/r.csv", "keep\n")
        for format in ["png", "svg", "pdf"] {
            let result = try TrackBinary.run(["plot", "reliability", "r", "--db", db, "--out", scratch.path("o/r.\(format)")])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(FileManager.default.fileExists(atPath: scratch.path("o/r.\(format).csv")))
        }
        #expect(try String(contentsOfFile: keep, encoding: .utf8) == "keep\n")
        let chosen = try TrackBinary.run(["plot", "reliability", "r", "--db", db, "--out", scratch.path("o/x.png"),
                                          "--data", scratch.path("o/numbers.csv")])
        #expect(chosen.status == 0 && FileManager.default.fileExists(atPath: scratch.path("o/numbers.csv")))
    }
}

/// Issue 16: per-subject small multiples, per-bin intervals in the CSV, the pooled panel's own ECE.
@Suite struct SubjectGridTests {
    @Test func onePanelPerSubjectOrderedByECE() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        // Three subjects: "calibrated" (p = 0.7, 70% right), "over" (p = 0.9, 50% right), "under" (p = 0.6, 90% right).
        var lines: [String] = []
        for (subject, p, right) in [("calibrated", 0.7, 7), ("over", 0.9, 5), ("under", 0.6, 9)] {
            for i in 0..<10 {
                let label = i < right ? 0 : 1
                lines.append(#"{"id": "\#(subject)\#(i)", "label": \#(label), "probs": [\#(p), \#(1 - p)], "subject": "\#(subject)"}"#)
            }
        }
        #expect(try TrackBinary.run(["log", "--run", "r", "--db", db, "--dataset", "d"], input: lines.joined(separator: "\n") + "\n").status == 0)
        let out = scratch.path("subjects.png")
        let result = try TrackBinary.run(["plot", "grid", "r", "--by", "subject", "--bin-ci", "--db", db, "--out", out,
                                          "--width", "200", "--height", "220", "--dpi", "72"])
        #expect(result.status == 0, "\(result.stderr)")
        let image = try PNGImage(path: out)
        #expect(image.width == 3 * 200 || image.width == 3 * 200 + 1, "three panels side by side: \(image.width)")
        // Each panel draws a blue bar: its one non-empty bin (the whiskers are read back in BinIntervalTests).
        for panel in 0..<3 {
            var blue = 0
            for x in stride(from: panel * 200 + 50, to: panel * 200 + 195, by: 1) {
                for y in stride(from: 45, to: image.height - 30, by: 2) {
                    let c = image.color(x: x, y: y)
                    if c.blue > c.red + 0.15, c.blue > 0.5 { blue += 1 }
                }
            }
            #expect(blue > 50, "panel \(panel): \(blue) bar pixels")
        }
        let csv = try String(contentsOfFile: out + ".csv", encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(csv[0].hasSuffix("ci_low,ci_high,ci_method"))
        var order: [String] = []
        for row in csv.dropFirst() {
            let panel = String(row.split(separator: ",", omittingEmptySubsequences: false)[1])
            if order.last != panel { order.append(panel) }
        }
        #expect(order == ["over", "under", "calibrated"], "worst conf-ECE first: \(order)")
        let filled = csv.dropFirst().filter { $0.hasSuffix("wilson95") }
        #expect(filled.count == 3, "one non-empty bin per subject, each with its interval")
        let byName = try TrackBinary.run(["plot", "grid", "r", "--by", "subject", "--order", "name", "--db", db, "--out", scratch.path("n.png")])
        #expect(byName.status == 0)
        let names = try String(contentsOfFile: scratch.path("n.png.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
            .map { String($0.split(separator: ",", omittingEmptySubsequences: false)[1]) }
        #expect(names.first == "calibrated" && names.last == "under")
        // The numbers behind the panels.
        let metrics = try TrackBinary.run(["metrics", "r", "--by", "subject", "--format", "csv", "--db", db])
        #expect(metrics.status == 0 && metrics.stdout.contains("over") && metrics.stdout.contains("pooled_ece"), "\(metrics.stdout)")
    }
}

/// Issue 25: several runs in one panel, labels that say what differs, the top K subjects.
@Suite struct PaperFigureCommandTests {
    @Test func overlayLabelsAndTheirErrors() throws {
        let scratch = Scratch()
        let db = try PlotCommandTests.demo(scratch)
        let runs = ["DPO", "TS", "CFT/e3"].map { "Llama-3.1-8B-Tulu-sim/\($0)/in-domain" }
        // Several runs in a reliability diagram need --overlay (said before the store is read).
        let refused = try TrackBinary.run(["plot", "reliability"] + runs + ["--db", db, "--out", scratch.path("r.png")])
        #expect(refused.status == 64 && refused.stderr.contains("--overlay"), "\(refused.stderr)")
        let out = scratch.path("overlay.svg")
        let overlay = try TrackBinary.run(["plot", "reliability"] + runs + ["--overlay", "--db", db, "--out", out])
        #expect(overlay.status == 0, "\(overlay.stderr)")
        let svg = try String(contentsOfFile: out, encoding: .utf8)
        // Default labels: what differs; what the names share is the figure's title.
        #expect(svg.contains(">Llama-3.1-8B-Tulu-sim/…/in-domain</text>"), "shared part as the title")
        for label in ["DPO", "TS", "CFT/e3"] { #expect(svg.contains(">\(label): conf-ECE = "), "legend names \(label)") }
        let csv = try String(contentsOfFile: out + ".csv", encoding: .utf8).split(separator: "\n").dropFirst()
        #expect(Set(csv.map { String($0.split(separator: ",")[0]) }) == Set(runs) && csv.allSatisfy { $0.split(separator: ",")[1] == "overlay" })
        // Each run's conf-ECE in the legend is `track metrics`'.
        let metrics = try TrackBinary.run(["metrics", runs[0], "--db", db, "--format", "json"])
        let value = try #require(String(metrics.stdout.firstMatch(of: /"conf_ece" *: *([0-9.]+)/)?.output.1 ?? ""))
        #expect(svg.contains(">DPO: conf-ECE = \(String(format: "%.4f", Double(value)!)), n = 400</text>"))
        // --labels, one per run; a wrong count is a usage error.
        let labelled = try TrackBinary.run(["plot", "grid"] + runs + ["--labels", "aligned,+TS,calibration-aware", "--db", db, "--out", scratch.path("g.svg")])
        #expect(labelled.status == 0, "\(labelled.stderr)")
        let grid = try String(contentsOfFile: scratch.path("g.svg"), encoding: .utf8)
        #expect(grid.contains(">calibration-aware</text>") && grid.contains(">+TS</text>") && !grid.contains("Tulu"))
        let wrong = try TrackBinary.run(["plot", "grid"] + runs + ["--labels", "a,b", "--db", db, "--out", scratch.path("w.png")])
        #expect(wrong.status == 64 && wrong.stderr.contains("2 labels for 3 runs"), "\(wrong.stderr)")
        #expect(try TrackBinary.run(["plot", "grid"] + runs + ["--overlay", "--db", db]).status == 64)
    }

    @Test func intervalsInTheCellsOfPaperTables() throws {
        let scratch = Scratch()
        let db = try PlotCommandTests.demo(scratch)
        let run = "Vicuna-7B-sim/DPO/in-domain"
        let markdown = try TrackBinary.run(["metrics", run, "--ci", "--resamples", "200", "--format", "markdown", "--db", db])
        #expect(markdown.status == 0 && !markdown.stdout.contains("_lo") && markdown.stdout.contains(/\| 0\.[0-9]{4} \[0\.[0-9]{4}, 0\.[0-9]{4}\] \|/),
                "\(markdown.stdout)")
        let csv = try TrackBinary.run(["metrics", run, "--ci", "--resamples", "200", "--format", "csv", "--db", db])
        #expect(csv.stdout.contains("conf_ece_lo,conf_ece_hi"), "machine formats keep one column per quantity")
        let table = try TrackBinary.run(["table", "--ci", "--ci-style", "pm", "--resamples", "200", "--methods", "DPO,TS", "--order", "Vicuna-7B-sim",
                                         "--format", "latex", "--out", scratch.path("t.tex"), "--db", db])
        #expect(table.status == 0, "\(table.stderr)")
        let rows = table.stdout.split(separator: "\n").filter { $0.contains(" & ") && $0.contains("$\\pm$") }
        #expect(rows.count == 6 && rows[0].hasPrefix("Vicuna-7B-sim & DPO") && rows[1].hasPrefix("Vicuna-7B-sim & TS"), "\(rows)")
        let unknown = try TrackBinary.run(["table", "--methods", "dpo", "--db", db, "--out-dir", scratch.path("x")])
        #expect(unknown.status == 64 && unknown.stderr.contains("did you mean 'DPO'"), "\(unknown.stderr)")
    }

    @Test func theTopKSubjectsInTheirOrder() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        // Four subjects of 5, 20, 10 and 15 questions; "big" (20) is calibrated, "small" (5) overconfident.
        var lines: [String] = []
        for (subject, size, p, right) in [("small", 5, 0.95, 1), ("big", 20, 0.7, 14), ("mid", 10, 0.8, 5), ("large", 15, 0.6, 12)] {
            for i in 0..<size {
                lines.append(#"{"id": "\#(subject)\#(i)", "label": \#(i < right ? 0 : 1), "probs": [\#(p), \#(1 - p)], "subject": "\#(subject)"}"#)
            }
        }
        #expect(try TrackBinary.run(["log", "--run", "r", "--db", db], input: lines.joined(separator: "\n") + "\n").status == 0)
        func panels(_ extra: [String]) throws -> [String] {
            let out = scratch.path("s\(extra.joined()).png")
            let result = try TrackBinary.run(["plot", "grid", "r", "--by", "subject", "--db", db, "--out", out, "--dpi", "40"] + extra)
            #expect(result.status == 0, "\(result.stderr)")
            var order: [String] = []
            for row in try String(contentsOfFile: out + ".csv", encoding: .utf8).split(separator: "\n").dropFirst() {
                let panel = String(row.split(separator: ",", omittingEmptySubsequences: false)[1])
                if order.last != panel { order.append(panel) }
            }
            return order
        }
        #expect(try panels(["--top", "2", "--order", "n"]) == ["big", "large"])
        #expect(try panels(["--top", "3", "--order", "name"]) == ["big", "large", "mid"])
        #expect(try panels(["--top", "1"]) == ["small"], "highest conf-ECE first")
        #expect(try panels(["--top", "10", "--order", "n"]) == ["big", "large", "mid", "small"])
        let top = try TrackBinary.run(["plot", "grid", "r", "--top", "2", "--db", db])
        #expect(top.status == 64 && top.stderr.contains("--by"), "\(top.stderr)")
    }
}
