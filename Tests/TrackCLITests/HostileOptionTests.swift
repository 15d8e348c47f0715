import Foundation
import Synchronization
import Testing
import TrackStore

/// Every value option of every command, given hostile values: the command
/// exits 0, 1 or 64 — never by a signal (issue 11, the flag sweep).
@Suite struct HostileOptionTests {
    static let hostile = ["0", "-1", "1e300", "nan", "inf", "123456789012345678901234567890", "0x10", "\u{1B}[2J"]

    /// `--name <value>` options from a command's help.
    static func valueOptions(_ command: String) throws -> [String] {
        let help = try TrackBinary.launch([command, "--help"]).stdout
        return help.split(separator: "\n").compactMap { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("--"), let space = trimmed.firstIndex(of: " "),
                  trimmed[space...].trimmingCharacters(in: .whitespaces).hasPrefix("<") else { return nil }
            return String(trimmed[trimmed.index(trimmed.startIndex, offsetBy: 2)..<space])
        }
    }

    @Test func everyOptionWithHostileValuesExitsCleanly() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        let lines = (0..<60).map { StreamingTests.line($0) }.joined(separator: "\n") + "\n"
        #expect(try TrackBinary.launch(["log", "--run", "a", "--db", db, "--dataset", "d", "--epoch", "1"], input: lines).status == 0)
        #expect(try TrackBinary.launch(["log", "--run", "b", "--db", db, "--dataset", "d", "--epoch", "2"], input: lines).status == 0)
        let csv = scratch.write("c.csv", "id,p0,p1,label\nx1,0.3,0.7,1\nx2,0.6,0.4,0\n")
        let shard = scratch.path("shard.sqlite")
        #expect(try TrackBinary.launch(["log", "--run", "s", "--db", shard], input: lines).status == 0)
        let bases: [String: [String]] = [
            "init": ["init"], "log": ["log", "--run", "z"], "ingest": ["ingest", csv], "runs": ["runs"],
            "show": ["show", "a"], "sql": ["sql", "SELECT 1"], "metrics": ["metrics", "a"], "compare": ["compare", "a", "b"],
            "table": ["table"], "plot": ["plot", "reliability", "a", "--out", scratch.path("p.png")],
            "calibrate": ["calibrate", "temperature", "--fit", "a", "--apply", "a", "--folds", "3"], "tce": ["tce", "a", "--target", "b"],
            "em": ["em", "a", "--out", scratch.path("t.jsonl")], "winrate": ["winrate", "a"], "merge": ["merge", shard, "--into", db],
            "demo": ["demo", "--out", scratch.path("demo-exports")],
            "set": ["set", "a"], "report": ["report", "--out", scratch.path("r.html")], "rm": ["rm", "zz"],
            "tag": ["tag", "a", "k=v"], "rename": ["rename", "zz", "yy"], "check": ["check"],
        ]
        var cases: [[String]] = []
        for (command, base) in bases.sorted(by: { $0.key < $1.key }) {
            for option in try Self.valueOptions(command) where option != "db" {
                for value in Self.hostile where !(command == "demo" && value == "0") {
                    cases.append(base + ["--\(option)", value] + (command == "demo" ? ["--db", scratch.path("demo.sqlite")] : ["--db", db]))
                }
            }
        }
        #expect(cases.count > 300)
        let failures = Mutex<[String]>([])
        let all = cases, directory = scratch.url
        DispatchQueue.concurrentPerform(iterations: all.count) { index in
            let arguments = all[index]
            let result = try? TrackBinary.launch(arguments, input: "", directory: directory)
            guard let result, !result.signaled, [0, 1, 64].contains(result.status) else {
                failures.withLock { $0.append("track \(arguments.joined(separator: " ")) -> \(result.map { "\($0.status)\($0.signaled ? " (signal)" : "")" } ?? "did not run"): \(result?.stderr.prefix(200) ?? "")") }
                return
            }
        }
        let found = failures.withLock { $0 }
        #expect(found.isEmpty, "\(found.count) of \(cases.count):\n\(found.prefix(20).joined(separator: "\n"))")
    }

    /// Options whose help declares a numeric range ("[1…10000]", "[≥ 0]").
    static func numericOptions(_ command: String) throws -> [String] {
        let help = try TrackBinary.launch([command, "--help"]).stdout
        return help.split(separator: "\n").compactMap { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("--"), let space = trimmed.firstIndex(of: " "), trimmed.contains("…") || trimmed.contains("[≥") else { return nil }
            return String(trimmed[trimmed.index(trimmed.startIndex, offsetBy: 2)..<space])
        }
    }

    /// Every numeric option is declared once with its range and checked by the parser
    /// before any work: NaN, 1e300 and a huge integer are usage errors in every command.
    @Test func numericOptionsRefuseOutOfRangeValuesBeforeAnyWork() throws {
        let scratch = Scratch()
        let db = scratch.path("never-created.sqlite")
        var checked = 0
        for command in ["log", "ingest", "runs", "sql", "metrics", "compare", "table", "plot", "calibrate", "tce", "em", "merge", "demo"] {
            let options = try Self.numericOptions(command)
            for option in options {
                for value in ["nan", "1e300", "123456789012345678901234567890"] {
                    let result = try TrackBinary.launch([command, "--\(option)", value, "--db", db], input: "", directory: scratch.url)
                    #expect(result.status == 64 && result.stderr.hasPrefix("Error: --\(option)"), "\(command) --\(option) \(value): \(result.stderr)")
                    checked += 1
                }
            }
        }
        #expect(checked > 80)
        // Nothing ran: not even the database was created.
        #expect(!FileManager.default.fileExists(atPath: db))
    }
}
