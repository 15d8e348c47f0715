import Foundation
import Testing
import TrackCalibration
@testable import TrackStore

@Suite struct SchemaTests {
    @Test func freshStoreHasCurrentVersionAndWAL() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        #expect(try store.database.schemaVersion == Schema.currentVersion)
        #expect(try store.database.scalarText("PRAGMA journal_mode") == "wal")
        #expect(try store.database.scalarInt("PRAGMA foreign_keys") == 1)
    }

    @Test func embeddedSQLIsTheSQLFolder() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("sql")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }
            + FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("postgres").path)
                .filter { $0.hasSuffix(".sql") }.map { "postgres/" + $0 }
        #expect(Set(names) == Set(Schema.files.keys))
        #expect(names.contains("postgres/schema.sql") && names.contains("postgres/views.sql"))
        for name in names {
            #expect(try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8) == Schema.files[name])
        }
    }

    /// A database written by schema version 1 opens, is migrated, keeps its rows,
    /// and ends with the same tables as a fresh one.
    @Test func migratesVersion1Forward() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("v1.sqlite")
        do {
            let database = try Database(path: path)
            try database.executeScript(try String(contentsOfFile: Fixtures.path("schema-v1.sql"), encoding: .utf8))
            #expect(try database.schemaVersion == 1)
        }
        let store = try RunStore(path: path)
        #expect(try store.database.schemaVersion == Schema.currentVersion)
        let run = try #require(try store.summary("v1-run"))
        #expect(run.n == 3)
        #expect(abs(run.accuracy! - 2.0 / 3.0) < 1e-12)
        #expect(try store.keyValues("params", runID: run.id).first! == ("lr", "1e-5"))

        let fresh = try RunStore(path: directory.path("fresh.sqlite"))
        func tables(_ store: RunStore) throws -> [String] {
            try store.query("SELECT type || ' ' || name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY 1")
                .rows.map { "\($0[0])" }
        }
        #expect(try tables(store) == tables(fresh))
        // Still writable after migration.
        let logger = try store.startRun(RunMetadata(name: "after", dataset: "d"))
        try logger.append(Prediction(questionID: "q0", label: 0, values: .probabilities([0.6, 0.4])))
        try logger.finish()
        #expect(try store.summary("after")?.n == 1)
    }

    @Test func refusesNewerVersionAndLeavesTheFile() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("new.sqlite")
        do {
            let store = try RunStore(path: path)
            try store.database.execute("PRAGMA user_version = \(Schema.currentVersion + 1)")
            try store.database.executeScript("PRAGMA wal_checkpoint(TRUNCATE)")
        }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            _ = try RunStore(path: path)
            Issue.record("expected a refusal")
        } catch {
            #expect("\(error)".contains("newer than this track"))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test func refusesAFileThatIsNotADatabase() throws {
        let directory = TemporaryDirectory()
        let path = directory.write("notes.sqlite", String(repeating: "this is not a database\n", count: 100))
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            _ = try RunStore(path: path)
            Issue.record("expected a refusal")
        } catch {
            #expect("\(error)".contains("is not a track database"))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test func refusesAForeignSQLiteDatabase() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("other.sqlite")
        do {
            let database = try Database(path: path)
            try database.executeScript("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
        }
        #expect(throws: StoreError.self) { try RunStore(path: path) }
        let database = try Database(path: path)
        #expect(try database.scalarInt("SELECT count(*) FROM sqlite_master WHERE name = 'runs'") == 0)
    }

    @Test func lockedPastTheTimeoutFailsClearly() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("locked.sqlite")
        let holder = try RunStore(path: path)
        try holder.database.executeScript("BEGIN IMMEDIATE")
        defer { try? holder.database.executeScript("ROLLBACK") }
        let store = try RunStore(path: path, busyTimeout: 0.2)
        let csv = directory.write("x.csv", "p0,p1,label\n0.5,0.5,0\n")
        do {
            _ = try Ingestor(store: store).ingest(csv, options: IngestOptions())
            Issue.record("expected a lock error")
        } catch {
            #expect("\(error)".contains("locked"))
        }
    }
}

@Suite struct RunOwnershipTests {
    /// `Schema.runOwnedTables` must name every table that refers to runs, or deleting a run leaves orphans.
    @Test func everyTableReferringToRunsIsListed() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        var referring: Set<String> = []
        for table in try store.query("SELECT name FROM sqlite_master WHERE type = 'table'").rows {
            guard case .text(let name) = table[0] else { continue }
            for key in try store.query("PRAGMA foreign_key_list(\(name))").rows where key[2] == .text("runs") {
                if key[3] == .text("run_id") { referring.insert(name) }
            }
        }
        referring.remove("runs") // parent_run_id: set to NULL, not deleted
        #expect(referring == Set(Schema.runOwnedTables))
    }
}

@Suite struct ReadOnlyMigrationTests {
    @Test func readingAnOlderFileMigratesItFirst() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("v1.sqlite")
        do {
            let database = try Database(path: path)
            try database.executeScript(try String(contentsOfFile: Fixtures.path("schema-v1.sql"), encoding: .utf8))
        }
        let store = try RunStore(path: path, readOnly: true)
        #expect(try store.database.schemaVersion == Schema.currentVersion)
        #expect(try store.summary("v1-run")?.n == 3)
    }
}
