import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import TrackCalibration
import TrackStore

/// One regression test per fault of issue 11 (numbered as there), through the real binary.
@Suite struct HardeningTests {
    static func logged(_ scratch: Scratch, run: String = "r", count: Int = 40, extra: [String] = []) throws -> String {
        let db = scratch.path("t.sqlite")
        let lines = (0..<count).map { StreamingTests.line($0) }.joined(separator: "\n") + "\n"
        let result = try TrackBinary.launch(["log", "--run", run, "--db", db] + extra, input: lines)
        #expect(result.status == 0, "\(result.stderr)")
        return db
    }

    /// 1. A run of exactly one question: metrics, plots and TCE work.
    @Test func oneQuestionRuns() throws {
        let scratch = Scratch()
        let db = scratch.path("one.sqlite")
        #expect(try TrackBinary.launch(["log", "--run", "one", "--db", db], input: #"{"id":"q1","label":0,"probs":[0.9,0.1]}"# + "\n").status == 0)
        let metrics = try TrackBinary.launch(["metrics", "one", "--db", db, "--ci", "--resamples", "50"])
        #expect(metrics.status == 0 && metrics.stdout.contains("one"), "\(metrics.stderr)")
        for command in [["plot", "reliability", "one", "--out", scratch.path("o.png")], ["tce", "one", "--target", "one"],
                        ["plot", "regime", "one", "--target", "one", "--out", scratch.path("g.png")]] {
            let result = try TrackBinary.launch(command + ["--db", db])
            #expect(!result.signaled && (result.status == 0 || result.status == 1), "\(command): \(result.stderr)")
        }
    }

    /// 2. Standard output full: `Error:` on stderr and exit 1, not a trap.
    @Test func fullStandardOutput() throws {
        let scratch = Scratch()
        let db = try Self.logged(scratch)
        let process = Process()
        process.executableURL = TrackBinary.url
        process.arguments = ["sql", "--db", db, "SELECT * FROM option_scores"]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/full")
        try Self.expectStandardOutputError(process)
    }

    /// Runs `process` and expects it to exit 1 saying it cannot write its standard output.
    static func expectStandardOutputError(_ process: Process, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let err = Pipe()
        process.standardError = err
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 1, "\(process.terminationStatus): \(stderr)",
                sourceLocation: sourceLocation)
        #expect(stderr.contains("Error: cannot write to standard output"), sourceLocation: sourceLocation)
    }

    /// 3, 4. Hostile .npy headers and labels are refused with a reason.
    @Test func hostileNPY() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        func npy(_ header: String, payload: [UInt8] = []) -> String {
            var text = header
            while (text.utf8.count + 11) % 64 != 0 { text += " " }
            text += "\n"
            var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(text.utf8.count & 0xFF), UInt8(text.utf8.count >> 8)]
            bytes += Array(text.utf8) + payload
            let path = scratch.path("\(bytes.count)-\(header.count).npy")
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            return path
        }
        let huge = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904), }")
        let labels = scratch.write("labels.txt", "0\n")
        let result = try TrackBinary.launch(["ingest", huge, "--labels", labels, "--db", db])
        #expect(result.status == 1 && !result.signaled && result.stderr.contains("too large"), "\(result.stderr)")
        let probs = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }",
                        payload: [0.5, 0.5].flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) })
        for value in [Double(Int64.max), 1e300] {
            let badLabels = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
                                payload: withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init))
            let refused = try TrackBinary.launch(["ingest", probs, "--labels", badLabels, "--db", db])
            #expect(refused.status == 1 && !refused.signaled && refused.stderr.contains("not an option index"), "\(refused.stderr)")
        }
    }

    /// 9, 14. Derived runs appear whole; an existing one needs --replace; an empty run is not fitted.
    @Test func derivedRunsAndEmptyFits() throws {
        let scratch = Scratch()
        let db = try Self.logged(scratch)
        #expect(try TrackBinary.launch(["calibrate", "temperature", "--fit", "r", "--apply", "r", "--folds", "3", "--db", db]).status == 0)
        let again = try TrackBinary.launch(["calibrate", "temperature", "--fit", "r", "--apply", "r", "--folds", "3", "--db", db])
        #expect(again.status == 1 && again.stderr.contains("--replace"), "\(again.stderr)")
        let replaced = try TrackBinary.launch(["calibrate", "temperature", "--fit", "r", "--apply", "r", "--folds", "3", "--db", db, "--replace"])
        #expect(replaced.status == 0, "\(replaced.stderr)")
        let store = try RunStore(path: db, readOnly: true)
        #expect(try store.database.scalarText("SELECT status FROM runs WHERE name = 'r+TS'") == "finished")
        #expect(try store.database.scalarInt("SELECT n FROM run_summary WHERE run = 'r+TS'") == 40)
        #expect(try TrackBinary.launch(["log", "--run", "empty", "--db", db], input: "").status == 0)
        let empty = try TrackBinary.launch(["calibrate", "temperature", "--fit", "empty", "--db", db])
        #expect(empty.status == 1 && empty.stderr.contains("no questions"), "\(empty.stderr)")
        #expect(try TrackBinary.launch(["tce", "r", "--a-star", "1.5", "--db", db]).status == 64)
        #expect(try TrackBinary.launch(["calibrate", "temperature", "--fit", "r", "--bins", "1000000", "--db", db]).status == 64)
    }

    /// 9 (API). A derived run that fails midway leaves nothing behind.
    @Test func writeRunIsAllOrNothing() throws {
        let scratch = Scratch()
        let store = try RunStore(path: scratch.path("t.sqlite"))
        let good = Prediction(questionID: "a", label: 0, values: .probabilities([0.6, 0.4]))
        let clash = Prediction(questionID: "a", label: 0, values: .probabilities([0.3, 0.7]))
        #expect(throws: ValidationError.self) { try store.writeRun(RunMetadata(name: "d"), predictions: [good, clash]) }
        #expect(try store.runID(named: "d") == nil)
        try store.writeRun(RunMetadata(name: "d"), predictions: [good])
        #expect(try store.runSummaries().first?.n == 1)
    }

    /// 10, 16, 17. Ad-hoc SQL: every statement runs or none is dropped silently; read-only means no file is written.
    @Test func adHocSQL() throws {
        let scratch = Scratch()
        let db = try Self.logged(scratch)
        let two = try TrackBinary.launch(["sql", "--db", db, "--write", "INSERT INTO tags VALUES (1, 'a', '1'); INSERT INTO tags VALUES (1, 'b', '2')"])
        #expect(two.status == 0, "\(two.stderr)")
        #expect(try TrackBinary.launch(["sql", "--db", db, "SELECT count(*) AS n FROM tags", "--format", "csv"]).stdout == "n\n2\n")
        let refused = try TrackBinary.launch(["sql", "--db", db, "DELETE FROM tags; DROP TABLE runs"])
        #expect(refused.status == 1 && refused.stderr.contains("read-only"))
        #expect(try TrackBinary.launch(["sql", "--db", db, "SELECT count(*) AS n FROM tags", "--format", "csv"]).stdout == "n\n2\n")
        #expect(try TrackBinary.launch(["sql", "--db", db, ""]).status == 64)
        let leak = scratch.path("leak.db")
        #expect(try TrackBinary.launch(["sql", "--db", db, "VACUUM INTO '\(leak)'"]).status == 1)
        #expect(!FileManager.default.fileExists(atPath: leak))
        let tokenizer = try TrackBinary.launch(["sql", "--db", db, "SELECT fts3_tokenizer('simple')"])
        #expect(tokenizer.status == 1 && tokenizer.stderr.contains("not authorized"))
        let endless = try TrackBinary.launch(["sql", "--db", db, "--timeout", "0.5",
                                           "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"])
        #expect(endless.status == 1 && endless.stderr.contains("--timeout"), "\(endless.stderr)")
        let journal = try TrackBinary.launch(["sql", "--db", db, "--write", "PRAGMA journal_mode = DELETE"])
        #expect(journal.status == 1 && journal.stderr.contains("not authorized"), "\(journal.stderr)")
    }

    /// 11. NUL and bytes that are not UTF-8 in ids are refused with file:line.
    @Test func nulAndInvalidUTF8() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        let json = scratch.write("nul.jsonl", #"{"id": "q\u00001", "label": 0, "probs": [0.5, 0.5]}"# + "\n")
        let nul = try TrackBinary.launch(["ingest", json, "--db", db])
        #expect(nul.status == 1 && nul.stderr.contains("nul.jsonl:1:") && nul.stderr.contains("NUL"), "\(nul.stderr)")
        let path = scratch.path("bad.csv")
        _ = FileManager.default.createFile(atPath: path, contents: Data("id,p0,p1,label\nok,0.5,0.5,0\nq\u{1}".utf8 + [0xFF, 0xFE] + Array(",0.5,0.5,0\n".utf8)))
        let utf8 = try TrackBinary.launch(["ingest", path, "--db", db])
        #expect(utf8.status == 1 && utf8.stderr.contains("bad.csv:3:") && utf8.stderr.contains("UTF-8"), "\(utf8.stderr)")
    }

    /// 12. Two logs of the same ids without --dataset pair.
    @Test func runsWithoutADatasetPair() throws {
        let scratch = Scratch()
        let db = try Self.logged(scratch, run: "a")
        let b = try TrackBinary.launch(["log", "--run", "b", "--db", db],
                                    input: (0..<40).map { StreamingTests.line($0) }.joined(separator: "\n") + "\n")
        #expect(b.stderr.contains("no --dataset"))
        let compare = try TrackBinary.launch(["compare", "a", "b", "--db", db])
        #expect(compare.status == 0 && !compare.stdout.contains("no shared questions"), "\(compare.stdout)")
        #expect(compare.stdout.contains("40"), "\(compare.stdout)")
    }

    /// 13. Six printed decimals are accepted (and recorded); a row that is clearly not a distribution is refused, saying what was seen.
    @Test func roundedProbabilities() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        let rounded = scratch.write("rounded.csv", "id,p0,p1,p2,label\na,0.333333,0.333333,0.333333,0\nb,0.5,0.5,0,1\nc,-0.000000001,0.5,0.500000001,2\n")
        let accepted = try TrackBinary.launch(["ingest", rounded, "--db", db])
        #expect(accepted.status == 0, "\(accepted.stderr)")
        #expect(try RunStore(path: db, readOnly: true).database.scalarText("SELECT value FROM params WHERE key = 'track.rescaled_rows'") == "2")
        let wrong = scratch.write("wrong.csv", "id,p0,p1,label\na,0.2,0.2,0\n")
        let refused = try TrackBinary.launch(["ingest", wrong, "--db", db])
        #expect(refused.status == 1 && refused.stderr.contains("wrong.csv:2:") && refused.stderr.contains("sum to 0.4"), "\(refused.stderr)")
    }

    /// 18. A damaged store: `track check` says so, and writers refuse it.
    @Test func damagedStore() throws {
        let scratch = Scratch()
        let db = try Self.logged(scratch, count: 2000)
        #expect(try TrackBinary.launch(["check", "--db", db]).stdout.contains("ok"))
        // Damage a leaf page of option_scores.
        let store = try RunStore(path: db, readOnly: true)
        let page = try #require(try store.database.scalarInt("SELECT pageno FROM dbstat WHERE name = 'option_scores' AND pagetype = 'leaf' LIMIT 1 OFFSET 3"))
        let pageSize = try #require(try store.database.scalarInt("PRAGMA page_size"))
        let handle = try #require(FileHandle(forUpdatingAtPath: db))
        try handle.seek(toOffset: UInt64((page - 1) * pageSize + 8))
        handle.write(Data(repeating: 0xFF, count: 64))
        try handle.close()
        let check = try TrackBinary.launch(["check", "--db", db])
        #expect(check.status == 1 && check.stderr.contains("integrity"), "\(check.stderr)")
        // Damage to page 2 (the schema's neighbour): writers refuse the store without writing a byte
        // (issue 23.7: they bumped the change counter and rewrote pages before refusing).
        let other = Scratch()
        let second = try Self.logged(other, count: 500)
        let secondHandle = try #require(FileHandle(forUpdatingAtPath: second))
        try secondHandle.seek(toOffset: UInt64(pageSize + 8))
        secondHandle.write(Data(repeating: 0xFF, count: 64))
        try secondHandle.close()
        #expect(try TrackBinary.launch(["check", "--db", second]).status == 1)
        try checkNothingWritten(second, other)
        try checkNothingWritten(db, scratch)
    }

    func checkNothingWritten(_ db: String, _ scratch: Scratch) throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: db))
        let file = scratch.write("more.jsonl", StreamingTests.line(9998) + "\n")
        for command in [["log", "--run", "more"], ["ingest", file], ["tag", "r", "k=v"], ["rename", "r", "s"], ["set", "r", "--step", "1"]] {
            let write = try TrackBinary.launch(command + ["--db", db], input: StreamingTests.line(9999) + "\n")
            #expect(write.status == 1 && write.stderr.contains("track check"), "\(command): \(write.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: db)) == bytes, "\(command) wrote into the damaged store")
        }
    }

    /// Lesser faults: SVG titles, multi-line CSV fields, a BOM in JSON lines, terminal escapes, clear messages.
    @Test func lesserFaults() throws {
        let scratch = Scratch()
        let db = try Self.logged(scratch, run: "r\u{1B}[31mred")
        let svg = try TrackBinary.launch(["plot", "reliability", "r\u{1B}[31mred", "--db", db, "--out", scratch.path("t.svg"),
                                       "--title", "a\u{7}b\u{1}c"])
        #expect(svg.status == 0, "\(svg.stderr)")
        let parser = XMLParser(contentsOf: URL(fileURLWithPath: scratch.path("t.svg")))!
        #expect(parser.parse(), "the SVG is well-formed XML")
        let runs = try TrackBinary.launch(["runs", "--db", db])
        #expect(!runs.stdout.contains("\u{1B}") && runs.stdout.contains("\\x1b[31mred"), "\(runs.stdout)")

        let multiline = scratch.write("multi.csv", "id,subject,p0,p1,label\n\"q,1\",\"line one\nline two\",0.3,0.7,1\nq2,s,0.6,0.4,0\n")
        let csv = try TrackBinary.launch(["ingest", multiline, "--db", db, "--dataset", "m"])
        #expect(csv.status == 0 && csv.stdout.contains("2 questions"), "\(csv.stderr)")
        let bom = scratch.path("bom.jsonl")
        _ = FileManager.default.createFile(atPath: bom, contents: Data([0xEF, 0xBB, 0xBF] + Array((#"{"id": "x", "label": 0, "probs": [0.6, 0.4]}"# + "\n").utf8)))
        #expect(try TrackBinary.launch(["ingest", bom, "--db", db]).status == 0)

        let directory = try TrackBinary.launch(["runs", "--db", scratch.url.path])
        #expect(directory.status == 1 && directory.stderr.contains("is a directory"))
        let itself = try TrackBinary.launch(["merge", db, "--into", db])
        #expect(itself.status == 1 && itself.stderr.contains("into"), "\(itself.stderr)")
        try FileManager.default.createDirectory(atPath: scratch.path("out.png"), withIntermediateDirectories: true)
        let intoDirectory = try TrackBinary.launch(["plot", "reliability", "r\u{1B}[31mred", "--db", db, "--out", scratch.path("out.png")])
        #expect(intoDirectory.status == 64 && intoDirectory.stderr.contains("is a directory"), "\(intoDirectory.stderr)")
    }
}

/// More of issue 11: a closed standard output, `--write` on a file that cannot be written, a newer shard.
@Suite struct HardeningMessageTests {
    @Test func closedStandardOutputEndsCleanly() throws {
        let scratch = Scratch()
        let db = try HardeningTests.logged(scratch)
        // The shell's `>&-`: the child starts with descriptor 1 closed.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "exec \"$0\" sql --db \"$1\" 'SELECT * FROM option_scores' >&-", TrackBinary.url.path, db]
        try HardeningTests.expectStandardOutputError(process)
    }

    @Test func writeOnAReadOnlyFileAndANewerShard() throws {
        let scratch = Scratch()
        let db = try HardeningTests.logged(scratch)
        let shard = scratch.path("newer.sqlite")
        #expect(try TrackBinary.launch(["init", "--db", shard]).status == 0)
        #expect(try TrackBinary.launch(["sql", "--db", shard, "--write", "PRAGMA user_version = 99"]).status == 0)
        let merge = try TrackBinary.launch(["merge", shard, "--into", db])
        #expect(merge.status == 1 && merge.stderr.contains("newer track") && !merge.stderr.contains("track init"), "\(merge.stderr)")
        guard getuid() != 0 else { return }   // root writes read-only files anyway
        try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: db)
        let write = try TrackBinary.launch(["sql", "--db", db, "--write", "DELETE FROM tags"])
        #expect(write.status == 1 && !write.stderr.contains("pass --write"), "\(write.stderr)")
    }
}

/// Issue 23.3: outputs never destroy the store, an input or a non-regular file, and are written atomically.
@Suite struct OutputSafetyTests {
    @Test func outputsRefuseTheStoreInputsAndNonRegularFiles() throws {
        let scratch = Scratch()
        let db = try HardeningTests.logged(scratch)
        let storeBytes = try Data(contentsOf: URL(fileURLWithPath: db))
        // The store as --out of a report or --data of a plot, also spelled another way.
        let report = try TrackBinary.launch(["report", "--db", db, "--out", db])
        #expect(report.status == 64 && (report.stderr.contains("the store") || report.stderr.contains("written as .html")), "\(report.stderr)")
        // A store whose name a report could have: refused as the store.
        let htmlStore = scratch.path("store.html")
        try FileManager.default.copyItem(atPath: db, toPath: htmlStore)
        let named = try TrackBinary.launch(["report", "--db", htmlStore, "--out", htmlStore])
        #expect(named.status == 64 && named.stderr.contains("the store"), "\(named.stderr)")
        let data = try TrackBinary.launch(["plot", "reliability", "r", "--db", db, "--out", scratch.path("r.png"), "--data", scratch.url.path + "/./t.sqlite"])
        #expect(data.status == 64 && data.stderr.contains("the store"), "\(data.stderr)")
        #expect(try RunStore(path: db, readOnly: true).runSummaries().map(\.n) == [40])
        #expect(try Data(contentsOf: URL(fileURLWithPath: db)) == storeBytes)
        // A hard link to the store is the store.
        let link = scratch.path("alias.sqlite")
        #expect(Foundation.link(db, link) == 0)
        #expect(try TrackBinary.launch(["report", "--db", db, "--out", link]).status == 64)
        // A file named as a positional argument is an input (here the run's name is also a file's).
        #expect(try TrackBinary.launch(["log", "--run", "in.png", "--db", db], input: StreamingTests.line(1) + "\n").status == 0)
        let input = scratch.write("in.png", "an input\n")
        let inCwd = try TrackBinary.launch(["plot", "reliability", "in.png", "--db", db, "--out", "in.png"], directory: scratch.url)
        #expect(inCwd.status == 64 && inCwd.stderr.contains("an input"), "\(inCwd.stderr)")
        #expect(try String(contentsOfFile: input, encoding: .utf8) == "an input\n")
        // A symbolic link, a FIFO, a directory: refused, the target untouched, no hang.
        let target = scratch.write("target.txt", "keep me\n")
        #expect(symlink(target, scratch.path("sym.png")) == 0)
        let viaLink = try TrackBinary.launch(["plot", "reliability", "r", "--db", db, "--out", scratch.path("sym.png")])
        #expect(viaLink.status == 64 && viaLink.stderr.contains("symbolic link"), "\(viaLink.stderr)")
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "keep me\n")
        #expect(mkfifo(scratch.path("fifo.csv"), 0o600) == 0)
        let fifo = try TrackBinary.launch(["table", "--db", db, "--format", "csv", "--out", scratch.path("fifo.csv")])
        #expect(fifo.status == 64 && fifo.stderr.contains("FIFO"), "\(fifo.stderr)")
        try FileManager.default.createDirectory(atPath: scratch.path("dir.png"), withIntermediateDirectories: false)
        #expect(try TrackBinary.launch(["plot", "reliability", "r", "--db", db, "--out", scratch.path("dir.png")]).status == 64)
        // A regular file is replaced whole, and no temporary file is left beside it.
        let png = scratch.write("fig.png", "old")
        #expect(try TrackBinary.launch(["plot", "reliability", "r", "--db", db, "--out", png]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: png)).prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.url.path).filter { $0.hasPrefix(".track-") }.isEmpty)
    }
}

/// Issue 23.4: values written by plain SQL that no input could hold make that run an error naming
/// it — never a trap — and `track check` lists them; the other runs and the store stay usable.
@Suite struct StoredValueTests {
    @Test func hostileStoredValuesAreErrorsNotTraps() throws {
        for (value, column) in [("-5", "prob"), ("-1e-300", "prob"), ("1e308", "prob"), ("'NaN'", "prob"), ("9e999", "score"), ("-9e999", "prob")] {
            let scratch = Scratch()
            let db = try HardeningTests.logged(scratch, extra: ["--dataset", "d"])
            #expect(try TrackBinary.launch(["log", "--run", "good", "--db", db, "--dataset", "e"], input: StreamingTests.line(3) + "\n").status == 0)
            let update = try TrackBinary.launch(["sql", "--write", "--db", db,
                                              "UPDATE option_scores SET \(column) = \(value) WHERE run_id = (SELECT run_id FROM runs WHERE name = 'r') AND question_id = (SELECT MIN(question_id) FROM option_scores) AND option = 1"])
            #expect(update.status == 0, "\(update.stderr)")
            for command in [["metrics", "r"], ["metrics", "r", "--ci", "--resamples", "20"], ["plot", "reliability", "r", "--out", scratch.path("r.png")],
                            ["compare", "r", "good"], ["table", "--out-dir", scratch.path("exports")], ["report", "--out", scratch.path("r.html")], ["runs"], ["show", "r"]] {
                let result = try TrackBinary.launch(command + ["--db", db])
                #expect(!result.signaled && result.status <= 1, "\(value): track \(command.joined(separator: " ")) -> \(result.status)\n\(result.stderr.prefix(300))")
                if result.status == 1 { #expect(result.stderr.contains("run 'r'"), "\(value): \(command): \(result.stderr.prefix(300))") }
            }
            #expect(try TrackBinary.launch(["metrics", "good", "--db", db]).status == 0)
            let check = try TrackBinary.launch(["check", "--db", db])
            #expect(check.status == 1 && check.stderr.contains("run r: question") && check.stderr.contains("invalid stored value"), "\(value): \(check.stderr)")
            // Still writable: the row can be corrected, after which the run reads again.
            #expect(try TrackBinary.launch(["log", "--run", "later", "--db", db, "--dataset", "f"], input: StreamingTests.line(4) + "\n").status == 0)
            #expect(try TrackBinary.launch(["sql", "--write", "--db", db, "DELETE FROM option_scores WHERE NOT (typeof(prob) IN ('real', 'integer') AND prob BETWEEN 0 AND 1) OR abs(score) > 1e308"]).status == 0)
            #expect(try TrackBinary.launch(["sql", "--write", "--db", db, "DELETE FROM runs WHERE name = 'r'"]).status == 0)
            #expect(try TrackBinary.launch(["check", "--db", db]).status == 0)
        }
    }
}

/// Issue 23.5: no input recurses without bound: deep `--where` nesting, long or-chains and
/// `rm --recursive` over parent cycles and long chains are refused or done, never a crash.
@Suite struct DepthTests {
    @Test func deepQueriesAndParentChains() throws {
        let scratch = Scratch()
        let db = try HardeningTests.logged(scratch)
        let nested = String(repeating: "(", count: 30_000) + "n > 1" + String(repeating: ")", count: 30_000)
        let deep = try TrackBinary.launch(["runs", "--db", db, "--where", nested])
        #expect(deep.status == 64 && !deep.signaled && deep.stderr.contains("deep") && deep.stderr.utf8.count < 2_000, "\(deep.stderr.prefix(300))")
        let nots = try TrackBinary.launch(["runs", "--db", db, "--where", String(repeating: "not ", count: 20_000) + "n > 1"])
        #expect(nots.status == 64 && !nots.signaled)
        let ors = (0..<2_000).map { "n = \($0)" }.joined(separator: " or ")
        let wide = try TrackBinary.launch(["runs", "--db", db, "--where", ors])
        #expect(wide.status == 64 && wide.stderr.contains("comparisons") && wide.stderr.utf8.count < 2_000, "\(wide.stderr.prefix(300))")
        // A long list of values is one 'in'.
        let list = "n in (" + (0..<3_000).map(String.init).joined(separator: ", ") + ")"
        let listed = try TrackBinary.launch(["runs", "--db", db, "--where", list, "--format", "csv"])
        #expect(listed.status == 0 && listed.stdout.contains(",40,"), "\(listed.stderr.prefix(300))")
        #expect(try TrackBinary.launch(["runs", "--db", db, "--where", "n not in (40, 41)", "--format", "csv"]).stdout.split(separator: "\n").count == 1)
        // A cycle of parents (plain SQL) and a chain of 3,000 derived runs: rm --recursive ends and deletes them all.
        let setup = """
            INSERT INTO runs(uuid, name, status) VALUES ('u-a', 'a', 'finished'), ('u-b', 'b', 'finished');
            UPDATE runs SET parent_run_id = (SELECT run_id FROM runs WHERE name = 'b') WHERE name = 'a';
            UPDATE runs SET parent_run_id = (SELECT run_id FROM runs WHERE name = 'a') WHERE name = 'b';
            WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 3000)
            INSERT INTO runs(uuid, name, status) SELECT 'c-' || i, 'chain-' || i, 'finished' FROM k;
            UPDATE runs SET parent_run_id = (SELECT p.run_id FROM runs p WHERE p.name = 'chain-' || (CAST(substr(runs.name, 7) AS INTEGER) - 1))
                WHERE name LIKE 'chain-%' AND name != 'chain-1';
            """
        #expect(try TrackBinary.launch(["sql", "--write", "--db", db, setup]).status == 0)
        let refused = try TrackBinary.launch(["rm", "a", "--db", db])
        #expect(refused.status == 1 && refused.stderr.contains("derived runs"))
        let cycle = try TrackBinary.launch(["rm", "a", "--recursive", "--db", db])
        #expect(cycle.status == 0 && !cycle.signaled, "\(cycle.stderr)")
        let chain = try TrackBinary.launch(["rm", "chain-1", "--recursive", "--db", db])
        #expect(chain.status == 0 && !chain.signaled, "\(chain.stderr.prefix(300))")
        #expect(try RunStore(path: db, readOnly: true).runSummaries().map(\.name) == ["r"])
    }
}

/// Issue 23.11, the lesser faults of round 3.
@Suite struct LesserFaultsRound3Tests {
    @Test func pipesHexOptionsMissingStoresAndEmptyRuns() throws {
        let scratch = Scratch()
        let db = try HardeningTests.logged(scratch, count: 3_000)
        // A reader that goes away: an error said as such, never a death by SIGPIPE.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "\"$0\" sql --db \"$1\" 'SELECT * FROM option_scores' 2>\"$2\" | head -c 10 > /dev/null", TrackBinary.url.path, db, scratch.path("err.txt")]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        let stderr = try String(contentsOfFile: scratch.path("err.txt"), encoding: .utf8)
        #expect(stderr.contains("Error: cannot write to standard output") && stderr.contains("Broken pipe"), "\(stderr)")
        // Numbers in decimal notation only.
        for hex in ["0x40", "0x1p6", "inf", "nan", "1e400"] {
            let result = try TrackBinary.launch(["plot", "reliability", "r", "--db", db, "--out", scratch.path("x.png"), "--dpi", hex])
            #expect(result.status == 64 && result.stderr.contains("--dpi expects a number"), "\(hex): \(result.stderr)")
        }
        #expect(try TrackBinary.launch(["plot", "reliability", "r", "--db", db, "--out", scratch.path("x.png"), "--dpi", "1.5e2"]).status == 0)
        // A missing store is said as such, not as "no runs match".
        let missing = try TrackBinary.launch(["table", "--db", scratch.path("missing.sqlite")])
        #expect(missing.status == 1 && missing.stderr.contains("does not exist"), "\(missing.stderr)")
        // An empty run's classwise figure: it has no questions (not "mixes option counts").
        #expect(try TrackBinary.launch(["log", "--run", "empty", "--db", db], input: "\n").status == 0)
        let empty = try TrackBinary.launch(["plot", "classwise", "empty", "--db", db, "--out", scratch.path("c.png")])
        #expect(empty.status == 1 && empty.stderr.contains("has no questions"), "\(empty.stderr)")
        // demo takes --quiet like every command (issue 24).
        #expect(try TrackBinary.launch(["demo", "--db", scratch.path("d.sqlite"), "--out", scratch.path("d"), "--questions", "20", "--quiet"]).status == 0)
        // A failing statement's SQL is shown shortened.
        let long = "SELECT " + (0..<3_000).map { "\($0)" }.joined(separator: " + ") + " FROM nowhere"
        let failed = try TrackBinary.launch(["sql", "--db", db, long])
        #expect(failed.status == 1 && failed.stderr.utf8.count < 1_000, "\(failed.stderr.utf8.count) bytes")
    }
}
