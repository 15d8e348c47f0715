import Foundation
import Synchronization
import Testing
import TrackCalibration
import TrackStore

@Suite struct StreamingTests {
    static func line(_ id: Int, k: Int = 4) -> String {
        let logits = (0..<k).map { String(Double(($0 * 7 + id) % 5) - 2) }.joined(separator: ", ")
        return #"{"id": "q\#(id)", "label": \#(id % k), "logits": [\#(logits)]}"#
    }

    @Test func logStreamsAndFinishes() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        var input = (0..<50).map { Self.line($0) }.joined(separator: "\n")
        input += "\n{\"metric\": \"loss\", \"value\": 0.5, \"step\": 3}\n"
        input += #"{"ids": ["b1", "b2"], "labels": [0, 1], "probs": [[0.7, 0.3], [0.4, 0.6]]}"# + "\n"
        let result = try TrackBinary.run(["log", "--run", "r1", "--db", db, "--model", "m", "--dataset", "d"], input: input)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("logged 52 questions"))
        let store = try RunStore(path: db, readOnly: true)
        var filter = RunFilter(); filter.names = ["r1"]
        let run = try #require(try store.runSummaries(filter).first)
        #expect(run.n == 52 && run.status == .finished)
        #expect(try store.database.scalarDouble("SELECT value FROM metrics WHERE key = 'loss'") == 0.5)
    }

    @Test func badLineStopsTheStreamKeepsValidRowsAndMarksTheRunFailed() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        let input = [Self.line(0), Self.line(1), #"{"id": "x", "label": 9, "logits": [1, 2]}"#, Self.line(3)].joined(separator: "\n")
        let result = try TrackBinary.run(["log", "--run", "r", "--db", db], input: input)
        #expect(result.status == 1)
        #expect(result.stderr.contains("<stdin>:3: label 9 is out of range"))
        let store = try RunStore(path: db, readOnly: true)
        var filter = RunFilter(); filter.names = ["r"]
        let run = try #require(try store.runSummaries(filter).first)
        #expect(run.n == 2 && run.status == .failed)
        // With --skip-invalid the stream goes on.
        let skipping = try TrackBinary.run(["log", "--run", "r2", "--db", db, "--skip-invalid"], input: input)
        #expect(skipping.status == 0 && skipping.stderr.contains("<stdin>:3:") && skipping.stdout.contains("logged 3 questions"))
    }

    /// Four processes log into one file at once, over the same questions: nothing is lost.
    @Test func fourConcurrentWritersLoseNothing() throws {
        let scratch = Scratch()
        let db = scratch.path("shared.sqlite")
        #expect(try TrackBinary.run(["init", "--db", db]).status == 0)
        let perWriter = 3000
        let results = Mutex<[Int32]>([-1, -1, -1, -1])
        DispatchQueue.concurrentPerform(iterations: 4) { writer in
            // Batches of 8 questions per line, as forward passes.
            var lines: [String] = []
            for start in stride(from: 0, to: perWriter, by: 8) {
                let items = (start..<min(start + 8, perWriter)).map { Self.line($0) }
                lines.append("{\"batch\": [\(items.joined(separator: ", "))]}")
            }
            let result = try? TrackBinary.run(["log", "--run", "gpu\(writer)", "--db", db, "--dataset", "shared",
                                               "--busy-timeout", "60"], input: lines.joined(separator: "\n") + "\n")
            results.withLock { $0[writer] = result?.status ?? -1 }
        }
        #expect(results.withLock { $0 } == [0, 0, 0, 0])
        let store = try RunStore(path: db, readOnly: true)
        #expect(try store.database.scalarInt("SELECT count(*) FROM option_scores") == Int64(4 * perWriter * 4))
        #expect(try store.database.scalarInt("SELECT count(*) FROM questions") == Int64(perWriter))
        for summary in try store.runSummaries() {
            #expect(summary.n == perWriter && summary.status == .finished)
        }
    }

    /// A writer killed with SIGKILL keeps every committed row; its run stays unfinished.
    @Test func writerKilledMidStreamKeepsCommittedRows() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        let (process, stdin) = try TrackBinary.start(["log", "--run", "killed", "--db", db, "--dataset", "d"])
        let sent = 200
        stdin.write(Data(((0..<sent).map { Self.line($0) }.joined(separator: "\n") + "\n").utf8))
        // The writer commits at least every second while its producer is quiet: wait for the rows.
        var committed: Int64 = 0
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: db),
               let store = try? RunStore(path: db, readOnly: true),
               let n = try? store.database.scalarInt("SELECT count(*) FROM option_scores") {
                committed = n
                if committed == Int64(sent * 4) { break }
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(committed == Int64(sent * 4))
        // Half a line in flight, then SIGKILL.
        stdin.write(Data(#"{"id": "late", "label": 0, "#.utf8))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        let store = try RunStore(path: db)
        var filter = RunFilter(); filter.names = ["killed"]
        let run = try #require(try store.runSummaries(filter).first)
        #expect(run.n == sent)
        #expect(run.status == .running)
        #expect(try store.database.scalarText("PRAGMA integrity_check") == "ok")
    }

    /// Issue 23.1: a run removed under its stream: the stream stops with an error saying so, and
    /// no row of it lands in a run made afterwards (run ids are never reused).
    @Test func aStreamWhoseRunIsRemovedStopsAndWritesNowhereElse() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        let (process, stdin) = try TrackBinary.start(["log", "--run", "victim", "--db", db, "--dataset", "a"])
        stdin.write(Data(((0..<20).map { Self.line($0) }.joined(separator: "\n") + "\n").utf8))
        let deadline = Date().addingTimeInterval(30)
        var committed: Int64 = 0
        while Date() < deadline, committed < 80 {
            committed = (try? RunStore(path: db, readOnly: true).database.scalarInt("SELECT count(*) FROM option_scores")) ?? 0
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(committed == 80)
        let victimID = try RunStore(path: db, readOnly: true).runID(named: "victim")
        #expect(try TrackBinary.run(["rm", "victim", "--db", db]).status == 0)
        #expect(try TrackBinary.run(["log", "--run", "innocent", "--db", db, "--dataset", "b"], input: Self.line(500) + "\n").status == 0)
        // The victim's stream goes on, then ends.
        stdin.write(Data(((20..<40).map { Self.line($0) }.joined(separator: "\n") + "\n").utf8))
        try stdin.close()
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        let store = try RunStore(path: db, readOnly: true)
        let innocent = try #require(try store.runID(named: "innocent"))
        #expect(innocent != victimID && innocent > victimID!)
        #expect(try store.database.scalarInt("SELECT count(*) FROM _track_top_labels") == 1)
        #expect(try store.database.scalarText("SELECT group_concat(DISTINCT q.dataset) FROM _track_top_labels t JOIN questions q USING (question_id)") == "b")
    }
}

/// Schema v5 summaries through the real binary: several processes appending to
/// one run, a derived (temperature-scaled) run, and the `track log` faults of
/// issue 11 (rows lost on --skip-invalid, lines misnamed).
@Suite struct StoredSummaryCommandTests {
    static func expectStoredEqualsAnalyzer(_ db: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let store = try RunStore(path: db, readOnly: true)
        let stored = try store.storedMetrics()
        #expect(try store.database.scalarInt("SELECT count(*) FROM _track_stale_runs") == 0, sourceLocation: sourceLocation)
        for run in try store.runSummaries() where run.n > 0 {
            let fresh = CalibrationAnalyzer(try store.loadRun(named: run.name).predictions).metrics()
            let s = try #require(stored[run.id])
            #expect(s.n == fresh.n, "\(run.name)", sourceLocation: sourceLocation)
            for key in RunStore.storedMetricKeys {
                let difference = abs((s[key] ?? .nan) - (fresh[key] ?? .nan))
                #expect(difference <= 1e-12 || (s[key] == nil && fresh[key] == nil), "\(run.name) \(key)", sourceLocation: sourceLocation)
            }
        }
    }

    @Test func appendFromSeveralProcessesAndDerivedRuns() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        #expect(try TrackBinary.run(["init", "--db", db]).status == 0)
        let statuses = Mutex<[Int32]>([-1, -1, -1])
        DispatchQueue.concurrentPerform(iterations: 3) { shard in
            let lines = stride(from: shard, to: 900, by: 3).map { StreamingTests.line($0) }
            let result = try? TrackBinary.run(["log", "--run", "sharded", "--append", "--db", db, "--dataset", "d",
                                               "--busy-timeout", "60"], input: lines.joined(separator: "\n") + "\n")
            statuses.withLock { $0[shard] = result?.status ?? -1 }
        }
        #expect(statuses.withLock { $0 } == [0, 0, 0])
        let calibrated = try TrackBinary.run(["calibrate", "temperature", "--fit", "sharded", "--apply", "sharded", "--folds", "5", "--db", db])
        #expect(calibrated.status == 0, "\(calibrated.stderr)")
        let store = try RunStore(path: db, readOnly: true)
        #expect(try store.runSummaries().map(\.n) == [900, 900])
        try Self.expectStoredEqualsAnalyzer(db)
    }

    /// Issue 11 #8: a duplicate with --skip-invalid keeps the valid rows and records
    /// the reject; a conflicting line stops the stream naming its own line and keeps what came before.
    @Test func logKeepsValidRowsAndNamesTheLine() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        let valid = (0..<6).map { StreamingTests.line($0) }
        let skipping = try TrackBinary.run(["log", "--run", "dup", "--db", db, "--dataset", "d", "--skip-invalid"],
                                           input: (valid + [StreamingTests.line(0)]).joined(separator: "\n") + "\n")
        #expect(skipping.status == 0, "\(skipping.stderr)")
        #expect(skipping.stdout.contains("logged 6 questions") && skipping.stdout.contains("1 rows skipped"), "\(skipping.stdout)")
        let store = try RunStore(path: db, readOnly: true)
        #expect(try store.database.scalarInt("SELECT n FROM run_summary WHERE run = 'dup'") == 6)
        let reject = try store.query("SELECT source, line, reason FROM ingest_rejects").rows
        #expect(reject.count == 1 && reject.first?[1] == .integer(7), "\(reject)")

        // Line 4 gives question q1 of dataset d another option count: lines 1-3 stay, the error names line 4.
        let conflicting = try TrackBinary.run(["log", "--run", "conflict", "--db", db, "--dataset", "d"],
                                              input: [StreamingTests.line(20), StreamingTests.line(21), StreamingTests.line(22),
                                                      StreamingTests.line(1, k: 3)].joined(separator: "\n") + "\n")
        #expect(conflicting.status == 1)
        #expect(conflicting.stderr.contains("<stdin>:4:") && conflicting.stderr.contains("options"), "\(conflicting.stderr)")
        #expect(try store.database.scalarInt("SELECT n FROM run_summary WHERE run = 'conflict'") == 3)
        #expect(try store.database.scalarText("SELECT status FROM runs WHERE name = 'conflict'") == "failed")
        try Self.expectStoredEqualsAnalyzer(db)
    }
}
