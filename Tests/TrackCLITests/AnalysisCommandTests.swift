import Foundation
import Testing
import TrackStore

@Suite struct AnalysisCommandTests {
    /// Two paired runs over one question bank, plus the synthetic fixture.
    static func store(_ scratch: Scratch) throws -> String {
        let db = scratch.path("t.sqlite")
        var base = "", aligned = ""
        for i in 0..<40 {
            let label = i % 4
            // Base: right on 3 of 4 questions, moderate confidence. Aligned: same answers, sharper.
            let right = i % 4 != 3
            let pred = right ? label : (label + 1) % 4
            func row(_ top: Double) -> String {
                let rest = (1 - top) / 3
                return (0..<4).map { $0 == pred ? String(top) : String(rest) }.joined(separator: ", ")
            }
            let subject = i < 20 ? "anatomy" : "physics"
            base += #"{"id": "q\#(i)", "label": \#(label), "probs": [\#(row(0.7))], "subject": "\#(subject)"}"# + "\n"
            // The aligned model flips question 0 to wrong.
            let alignedPred = i == 0 ? (label + 2) % 4 : pred
            let alignedRow = (0..<4).map { $0 == alignedPred ? "0.97" : "0.01" }.joined(separator: ", ")
            aligned += #"{"id": "q\#(i)", "label": \#(label), "probs": [\#(alignedRow)], "subject": "\#(subject)"}"# + "\n"
        }
        #expect(try TrackBinary.run(["log", "--run", "base", "--db", db, "--dataset", "bank", "--model", "m", "--method", "SFT", "--split", "test"], input: base).status == 0)
        #expect(try TrackBinary.run(["log", "--run", "aligned", "--db", db, "--dataset", "bank", "--model", "m", "--method", "DPO", "--split", "test"], input: aligned).status == 0)
        #expect(try TrackBinary.run(["ingest", StoreFixtures.path("synthetic-seed0-n1000.csv"), "--db", db, "--run", "syn",
                                     "--model", "m", "--method", "TS", "--split", "test"]).status == 0)
        return db
    }

    @Test func metricsJSONHasStableKeysAndTheCheckedValues() throws {
        let scratch = Scratch()
        let db = try Self.store(scratch)
        let result = try TrackBinary.run(["metrics", "syn", "--db", db, "--format", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let row = try #require(try JSONParser.parse(result.stdout).arrayValue?.first)
        for key in ["run", "n", "bins", "accuracy", "mean_confidence", "overconfidence", "conf_ece", "mce", "rmsce",
                    "cw_ece", "eq_mass_ece", "ace", "tace", "brier", "nll", "nll_from_scores"] {
            #expect(row[key] != nil, "missing \(key)")
        }
        let expected = ["accuracy": 0.614, "conf_ece": 0.169247, "cw_ece": 0.089048, "brier": 0.558263, "nll": 1.100437]
        for (key, value) in expected { #expect(abs(row[key]!.doubleValue! - value) < 5e-7, "\(key)") }
        #expect(row["bins"] == .number(10))
        // Another bin count changes conf-ECE; --ci adds intervals that are reproducible.
        let fourteen = try JSONParser.parse(try TrackBinary.run(["metrics", "syn", "--db", db, "--bins", "14", "--format", "json"]).stdout)
        #expect(fourteen.arrayValue![0]["conf_ece"] != row["conf_ece"])
        let ci1 = try TrackBinary.run(["metrics", "syn", "--db", db, "--ci", "--resamples", "50", "--seed", "3", "--format", "json"]).stdout
        let ci2 = try TrackBinary.run(["metrics", "syn", "--db", db, "--ci", "--resamples", "50", "--seed", "3", "--format", "json"]).stdout
        #expect(ci1 == ci2)
        #expect(try JSONParser.parse(ci1).arrayValue![0]["ci"]?["conf_ece"]?.arrayValue?.count == 2)
    }

    @Test func metricsBySubjectAndReliabilityTables() throws {
        let scratch = Scratch()
        let db = try Self.store(scratch)
        let json = try JSONParser.parse(try TrackBinary.run(["metrics", "base", "--db", db, "--by", "subject", "--format", "json"]).stdout)
        let rows = try #require(json.arrayValue)
        #expect(rows.map { $0["subject"]?.stringValue } == ["anatomy", "physics"])
        #expect(rows.allSatisfy { $0["n"] == .number(20) && $0["accuracy"] == .number(0.75) })
        let text = try TrackBinary.run(["metrics", "base", "--db", db, "--reliability"]).stdout
        #expect(text.contains("reliability (top label): base") && text.contains("classwise, option D: base"))
        // All 40 base confidences are 0.7: bin 7 holds them all.
        let bin7 = try #require(text.split(separator: "\n").first { $0.hasPrefix("[0.70, 0.80)") })
        #expect(bin7.split(separator: " ").dropFirst(2).first == "40")
    }

    @Test func compareGivesDeltasChangeRatesAndFlips() throws {
        let scratch = Scratch()
        let db = try Self.store(scratch)
        let result = try TrackBinary.run(["compare", "base", "aligned", "--db", db, "--format", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let row = try #require(try JSONParser.parse(result.stdout).arrayValue?.first)
        let accuracy = try #require(row["metrics"]?["accuracy"])
        #expect(accuracy["base"] == .number(0.75) && abs(accuracy["other"]!.doubleValue! - 0.725) < 1e-12)
        #expect(abs(accuracy["delta"]!.doubleValue! + 0.025) < 1e-12)
        #expect(abs(accuracy["change_rate_percent"]!.doubleValue! - (-0.025 / 0.75 * 100)) < 1e-9)
        let paired = try #require(row["paired"])
        #expect(paired["n"] == .number(40) && paired["right_to_wrong"] == .number(1) && paired["wrong_to_right"] == .number(0))
        #expect(abs(paired["mean_abs_delta_confidence"]!.doubleValue! - 0.27) < 1e-12)
        #expect(row["paired_by_subject"]?["anatomy"]?["right_to_wrong"] == .number(1))
        #expect(row["paired_by_subject"]?["physics"]?["right_to_wrong"] == .number(0))
        // No shared questions: metric comparison only.
        let unpaired = try TrackBinary.run(["compare", "base", "syn", "--db", db]).stdout
        #expect(unpaired.contains("no shared questions"))
    }

    @Test func tableWritesCSVLaTeXAndMarkdownWithTheBestInBold() throws {
        let scratch = Scratch()
        let db = try Self.store(scratch)
        let result = try TrackBinary.run(["table", "--db", db, "--out-dir", scratch.path("exports"), "--name", "t2"])
        #expect(result.status == 0, "\(result.stderr)")
        let latex = try String(contentsOfFile: scratch.path("exports/t2.tex"), encoding: .utf8)
        #expect(latex.contains("\\toprule") && latex.contains("\\midrule") && latex.contains("\\bottomrule"))
        #expect(latex.contains("\\multicolumn{3}{c}{test}"))
        // conf-ECE: base 0.05 (|0.75 - 0.7|), aligned |0.725 - 0.97| = 0.245, syn 0.1692: base is best and bold.
        // cw-ECE of base is 0.15 (each class: 0.15 by hand), syn's 0.0890 is the best. Accuracy: base 0.75 highest.
        let baseLine = try #require(latex.split(separator: "\n").first { $0.hasPrefix("m & SFT") })
        #expect(baseLine == "m & SFT & \\textbf{0.0500} & 0.1500 & \\textbf{0.7500} \\\\")
        let synLine = try #require(latex.split(separator: "\n").first { $0.hasPrefix("m & TS") })
        #expect(synLine == "m & TS & 0.1692 & \\textbf{0.0890} & 0.6140 \\\\")
        let csv = try String(contentsOfFile: scratch.path("exports/t2.csv"), encoding: .utf8)
        #expect(csv.hasPrefix("model,method,test.conf_ece,test.cw_ece,test.accuracy\n"))
        let dpo = try #require(csv.split(separator: "\n").first { $0.hasPrefix("m,DPO,") }).split(separator: ",")
        #expect(abs(Double(dpo[2])! - 0.245) < 1e-12 && abs(Double(dpo[4])! - 0.725) < 1e-12)
        let markdown = try String(contentsOfFile: scratch.path("exports/t2.md"), encoding: .utf8)
        #expect(markdown.contains("| m | SFT | **0.0500** |"))
    }

    @Test func tableSweepsAParameterAndBinCounts() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        for (lambda, top) in [("0.5", 0.9), ("0.1", 0.8), ("1", 0.6)] {
            let lines = (0..<10).map { i in
                #"{"id": "q\#(i)", "label": 0, "probs": [\#(top), \#(1 - top)]}"#
            }.joined(separator: "\n")
            #expect(try TrackBinary.run(["log", "--run", "cft-\(lambda)", "--db", db, "--dataset", "d", "--model", "m",
                                         "--method", "CFT", "--param", "lambda=\(lambda)"], input: lines).status == 0)
        }
        let result = try TrackBinary.run(["table", "--db", db, "--sweep", "lambda", "--columns", "none",
                                          "--metrics", "conf_ece", "--bins-sweep", "10,14", "--format", "csv", "--out", scratch.path("t4.csv")])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines[0] == "model,method,params.lambda,B=10.conf_ece,B=14.conf_ece")
        // Rows in numeric order of lambda; all answers right, so conf-ECE = 1 - top.
        let rows = lines.dropFirst().map { $0.split(separator: ",").map(String.init) }
        #expect(rows.map { $0[2] } == ["0.1", "0.5", "1"])
        for (row, want) in zip(rows, [0.2, 0.1, 0.4]) {
            #expect(abs(Double(row[3])! - want) < 1e-12 && abs(Double(row[4])! - want) < 1e-12)
        }
        #expect(FileManager.default.fileExists(atPath: scratch.path("t4.csv")))
    }

    @Test func unknownMetricIsAUsageError() throws {
        #expect(try TrackBinary.run(["metrics", "x", "--metrics", "ece2"]).status == 64)
        #expect(try TrackBinary.run(["table", "--rows", "colour"]).status == 64)
        #expect(try TrackBinary.run(["compare", "only-one"]).status == 64)
    }
}
