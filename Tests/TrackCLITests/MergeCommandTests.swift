import Foundation
import Synchronization
import Testing
import TrackStore

@Suite struct MergeCommandTests {
    static func lines(_ range: Range<Int>, k: Int = 4) -> String {
        range.map { i in #"{"id": "q\#(i)", "label": \#(i % k), "logits": [\#((0..<k).map { String(Double(($0 * 3 + i) % 7) - 3) }.joined(separator: ", "))]}"# }
            .joined(separator: "\n") + "\n"
    }

    /// Two machines log into their own shard files at once; the merge holds everything once.
    @Test func shardsWrittenConcurrentlyMergeExactlyAndIdempotently() throws {
        let scratch = Scratch()
        let shards = [scratch.path("gpu0.sqlite"), scratch.path("gpu1.sqlite")]
        let statuses = Mutex<[Int32]>([-1, -1, -1, -1])
        DispatchQueue.concurrentPerform(iterations: 4) { job in
            // Per shard: a run over questions 0..<600 and one over 300..<900 (overlap across shards).
            let shard = shards[job % 2], run = "shard\(job % 2)-run\(job / 2)"
            let range = job / 2 == 0 ? 0..<600 : 300..<900
            let result = try? TrackBinary.run(["log", "--run", run, "--db", shard, "--dataset", "mmlu", "--busy-timeout", "60",
                                               "--tag", "gpu=\(job % 2)"], input: Self.lines(range))
            statuses.withLock { $0[job] = result?.status ?? -1 }
        }
        #expect(statuses.withLock { $0 } == [0, 0, 0, 0])
        // Shard 0 also has a derived run, so that parents travel.
        #expect(try TrackBinary.run(["calibrate", "temperature", "--fit", "shard0-run0", "--apply", "shard0-run0", "--folds", "4", "--db", shards[0]]).status == 0)
        let all = scratch.path("all.sqlite")
        let merge = try TrackBinary.run(["merge"] + shards + ["--into", all])
        #expect(merge.status == 0, "\(merge.stderr)")
        let store = try RunStore(path: all, readOnly: true)
        #expect(try store.database.scalarInt("SELECT count(*) FROM runs") == 5)
        #expect(try store.database.scalarInt("SELECT count(*) FROM questions") == 900)
        let expectedRows: Int64 = 5 * 600 * 4   // five runs of 600 questions × 4 options
        #expect(try store.database.scalarInt("SELECT count(*) FROM option_scores") == expectedRows)
        #expect(try store.database.scalarInt("SELECT count(*) FROM tags WHERE key = 'gpu'") == 5)   // the TS run keeps its parent's tags
        #expect(try store.query("SELECT p.name FROM runs r JOIN runs p ON p.run_id = r.parent_run_id WHERE r.name = 'shard0-run0+TS'").rows.first?[0] == .text("shard0-run0"))
        // The folds travel with the derived run, on the merged store's question ids.
        #expect(try store.database.scalarInt("SELECT count(*) FROM calibration_folds f JOIN runs r USING (run_id) JOIN questions q USING (question_id) WHERE r.name = 'shard0-run0+TS' AND q.dataset = 'mmlu'") == 600)
        // Metrics survive the merge: the same accuracy as in the shard.
        let shardAccuracy = try RunStore(path: shards[1], readOnly: true).summary("shard1-run1")?.accuracy
        #expect(try store.summary("shard1-run1")?.accuracy == shardAccuracy)
        // Merging again changes nothing.
        let before = try store.contents()
        let again = try TrackBinary.run(["merge"] + shards + ["--into", all])
        #expect(again.status == 0 && again.stdout.contains("0 new runs"))
        #expect(try RunStore(path: all, readOnly: true).contents() == before)
    }

    @Test func nameClashesAreRenamedAndContradictionsRefused() throws {
        let scratch = Scratch()
        let a = scratch.path("a.sqlite"), b = scratch.path("b.sqlite"), c = scratch.path("c.sqlite"), all = scratch.path("all.sqlite")
        #expect(try TrackBinary.run(["log", "--run", "eval", "--db", a, "--dataset", "d"], input: Self.lines(0..<10)).status == 0)
        #expect(try TrackBinary.run(["log", "--run", "eval", "--db", b, "--dataset", "d"], input: Self.lines(0..<10)).status == 0)
        let merged = try TrackBinary.run(["merge", a, b, "--into", all])
        #expect(merged.status == 0 && merged.stdout.contains("renamed 'eval' -> 'eval ["))
        #expect(try RunStore(path: all, readOnly: true).database.scalarInt("SELECT count(*) FROM runs") == 2)
        // A shard whose question q0 has another label is refused, and nothing of it lands.
        #expect(try TrackBinary.run(["log", "--run", "other", "--db", c, "--dataset", "d"],
                                    input: #"{"id": "q0", "label": 3, "probs": [0.1, 0.2, 0.3, 0.4]}"# + "\n" + #"{"id": "new", "label": 0, "probs": [0.7, 0.1, 0.1, 0.1]}"# + "\n").status == 0)
        let before = try RunStore(path: all, readOnly: true).contents()
        let refused = try TrackBinary.run(["merge", c, "--into", all])
        #expect(refused.status == 1 && refused.stderr.contains("question 'q0' of dataset 'd' has 4 options and label 3 there but 4 options and label 0 here"))
        #expect(try RunStore(path: all, readOnly: true).contents() == before)
        // A shard of another schema version is refused.
        let old = scratch.path("old.sqlite")
        let fixture = try String(contentsOfFile: StoreFixtures.path("schema-v1.sql"), encoding: .utf8)
        let made = try TrackBinary.run(["sql", "--db", all, "SELECT 1"])   // keep `all` open-able
        #expect(made.status == 0)
        let sqlite = Process()
        sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        sqlite.arguments = [old]
        let pipe = Pipe()
        sqlite.standardInput = pipe
        try sqlite.run()
        pipe.fileHandleForWriting.write(Data(fixture.utf8))
        try pipe.fileHandleForWriting.close()
        sqlite.waitUntilExit()
        let mismatch = try TrackBinary.run(["merge", old, "--into", all])
        #expect(mismatch.status == 1 && mismatch.stderr.contains("has schema version 1"))
        #expect(try RunStore(path: all, readOnly: true).contents() == before)
    }
}

extension RunStore {
    /// Every row of the tables a merge writes, as text.
    func contents() throws -> String {
        var text = ""
        for table in ["experiments", "runs", "params", "tags", "metrics", "questions", "option_scores", "preference_pairs",
                      "judgments", "ingest_rejects", "em_targets", "exports", "export_runs"] {
            text += "\(table): \(try query("SELECT * FROM \(table) ORDER BY 1, 2").rows)\n"
        }
        return text
    }

    func summary(_ name: String) throws -> RunSummary? {
        var filter = RunFilter()
        filter.names = [name]
        return try runSummaries(filter).first
    }
}
