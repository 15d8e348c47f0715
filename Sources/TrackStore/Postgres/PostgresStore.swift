import Foundation

/// A track store on a PostgreSQL server: the same tables and views as the SQLite store
/// (sql/postgres/), read and written on the server directly (`RunReading`, `RunWriting`,
/// `RunManaging`). Whole runs arrive by push (`track push`, `track merge --into`, and the runs
/// that `log`, `ingest` and `calibrate` validate in a private staging file first), each in
/// one transaction.
public final class PostgresStore {
    public let connection: PostgresConnection
    /// The URI as given (with any password): for the further connections of parallel readers.
    let uri: String
    let connectTimeout: Int
    /// The URI without its password, for messages and provenance.
    public var displayName: String { connection.displayName }

    /// The version of sql/postgres/schema.sql this binary writes.
    public static var currentVersion: Int {
        let text = Schema.sql("postgres/schema.sql")
        guard let range = text.range(of: #"'schema_version', '(\d+)'"#, options: .regularExpression),
              let version = Int(text[range].filter(\.isNumber)) else { return 0 }
        return version
    }

    /// Connects and makes sure the schema exists and is current (created, migrated forward, views
    /// rebuilt when they changed), under an advisory lock so that concurrent first users agree.
    public init(uri: String, connectTimeout: Int = 10) throws {
        // What a killed track left behind is removed by the next one.
        TemporaryFolders.sweep(prefix: TemporaryFolders.postgresStaging)
        connection = try PostgresConnection(uri, connectTimeout: connectTimeout)
        self.uri = uri
        self.connectTimeout = connectTimeout
        // A push stages a run's questions in a temporary table and joins them with the server's:
        // room for a million in memory (the defaults, 8 MB and 4 MB, spill to disk).
        try connection.execute("SET temp_buffers = '256MB'; SET work_mem = '128MB'")
        // track's own queries are short: compiling them (the views' plans cost enough to trigger
        // JIT) took longer than running them. Users' ad-hoc SQL gets the server's setting.
        try connection.execute("SET jit = off")
        try prepareSchema()
    }

    /// Another connection to a store already opened (its schema checked), for a parallel reader.
    init(sibling other: PostgresStore) throws {
        connection = try PostgresConnection(other.uri, connectTimeout: other.connectTimeout)
        try connection.execute("SET jit = off")
        uri = other.uri
        connectTimeout = other.connectTimeout
    }

    static let viewsKey = "views_sha256"

    func prepareSchema() throws {
        try connection.execute("BEGIN; SELECT pg_advisory_xact_lock(7283110501)")
        do {
            let exists = try connection.query("SELECT to_regclass('track_meta') IS NOT NULL").rows.first?.first == .integer(1)
            if !exists {
                try connection.execute(Schema.sql("postgres/schema.sql"))
            }
            let stored = try connection.query("SELECT value FROM track_meta WHERE key = 'schema_version'").rows.first?.first
            guard case .text(let text)? = stored, var version = Int(text) else {
                throw PostgresError("\(displayName) has a track_meta table without a schema version: not a track store", kind: .invalidInput)
            }
            if version > Self.currentVersion {
                throw PostgresError("\(displayName) holds a track store of version \(version), newer than this track (\(Self.currentVersion)); update track", kind: .invalidInput)
            }
            while version < Self.currentVersion {
                version += 1
                guard let migration = Schema.files[String(format: "postgres/migrate-%03d.sql", version)] else {
                    throw PostgresError("no migration to version \(version) of the PostgreSQL store", kind: .storage)
                }
                try connection.execute(migration)
                try connection.query("UPDATE track_meta SET value = $1 WHERE key = 'schema_version'", [.text(String(version))])
            }
            let views = Schema.sql("postgres/views.sql")
            let fingerprint = SHA256.hex(of: Array(views.utf8))
            let installed = try connection.query("SELECT value FROM track_meta WHERE key = $1", [.text(Self.viewsKey)]).rows.first?.first
            if installed != .text(fingerprint) {
                try connection.execute(views)
                try connection.query("INSERT INTO track_meta(key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                     [.text(Self.viewsKey), .text(fingerprint)])
            }
            // _track_stale_runs is almost always empty, and PostgreSQL plans a never-analysed table as
            // thousands of rows: the views' anti-join on it was then estimated at one run and
            // planned as a nested loop (52 ms instead of 2.6 ms for `track runs` at 1,000 runs).
            if case .real(let tuples)? = try connection.query("SELECT reltuples FROM pg_class WHERE oid = '_track_stale_runs'::regclass").rows.first?.first,
               tuples < 0 {
                try connection.execute("ANALYZE _track_stale_runs")
            }
            try connection.execute("COMMIT")
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }

    // MARK: - Push

    /// What became of one run pushed.
    public enum PushOutcome: Sendable, Equatable {
        /// Copied, with this many option rows.
        case pushed(rows: Int)
        /// The server already holds a run with its uuid: nothing written.
        case present
    }

    /// Copies the run `runID` of `store` (its rows, questions, metadata, logged metrics,
    /// summaries, derived-run link and export records) in one transaction. Idempotent by the
    /// run's uuid; a question the server holds with another label or option count refuses the
    /// run with nothing written, as `track merge` does; so does a different run of the same name,
    /// unless its uuid is in `replacing` (runs the local command replaced), which are deleted
    /// in the same transaction.
    public func push(runID: Int64, from store: RunStore, replacing: [String] = [], parent serverParent: Int64? = nil) throws -> PushOutcome {
        let local = store.database
        var run: [String: SQLValue] = [:]
        let runColumns = Self.runColumns
        try local.forEachRow("SELECT \(runColumns.joined(separator: ", ")), experiment_id, parent_run_id FROM runs WHERE run_id = ?", [.integer(runID)]) { row in
            for (index, column) in (runColumns + ["experiment_id", "parent_run_id"]).enumerated() { run[column] = row.value(Int32(index)) }
        }
        guard case .text(let uuid)? = run["uuid"], case .text(let name)? = run["name"] else {
            throw StoreError("no run with id \(runID) in \(local.path)", kind: .notFound)
        }
        return try withRetry {
            try connection.transaction { () throws -> PushOutcome in
                if try !connection.query("SELECT 1 FROM runs WHERE uuid = $1", [.text(uuid)]).rows.isEmpty { return .present }
                for old in replacing {
                    try connection.query("DELETE FROM runs WHERE uuid = $1", [.text(old)])
                }
                if try !connection.query("SELECT 1 FROM runs WHERE name = $1", [.text(name)]).rows.isEmpty {
                    throw StoreError("\(displayName) already holds a different run named '\(name)'; nothing was pushed for it: rename the local run (track rename '\(name)' NEW) and push again", kind: .conflict)
                }
                // Experiment by name, parent by uuid (absent on the server: no link).
                var experiment = SQLValue.null
                if case .integer(let id)? = run["experiment_id"] {
                    var values: [SQLValue] = []
                    try local.forEachRow("SELECT name, description FROM experiments WHERE experiment_id = ?", [.integer(id)]) { values = [$0.value(0), $0.value(1)] }
                    if values.count == 2 {
                        experiment = try connection.query("""
                            INSERT INTO experiments(name, description) VALUES ($1, $2)
                            ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING experiment_id
                            """, values).rows[0][0]
                    }
                }
                var parent = serverParent.map(SQLValue.integer) ?? .null
                if case .integer(let id)? = run["parent_run_id"], let parentUUID = try local.scalarText("SELECT uuid FROM runs WHERE run_id = ?", [.integer(id)]) {
                    parent = try connection.query("SELECT run_id FROM runs WHERE uuid = $1", [.text(parentUUID)]).rows.first?.first ?? .null
                }
                let values = runColumns.map { run[$0] ?? .null } + [experiment, parent]
                let placeholders = (1...values.count).map { "$\($0)" }.joined(separator: ", ")
                let remote = try connection.query("INSERT INTO runs(\(runColumns.joined(separator: ", ")), experiment_id, parent_run_id) VALUES (\(placeholders)) RETURNING run_id", values).rows[0][0]
                guard case .integer(let remoteID) = remote else { throw PostgresError("the server returned no run id") }
                let questionMap = try pushQuestions(runID: runID, from: local)
                let rows = try pushRows(runID: runID, remoteID: remoteID, questionMap: questionMap, from: local)
                try pushExports(runID: runID, remoteID: remoteID, from: local)
                if try local.scalarInt("SELECT count(*) FROM _track_stale_runs WHERE run_id IN (?, 0)", [.integer(runID)]) ?? 0 > 0 {
                    try connection.query("INSERT INTO _track_stale_runs(run_id) VALUES ($1) ON CONFLICT DO NOTHING", [.integer(remoteID)])
                }
                return .pushed(rows: rows)
            }
        }
    }

    /// The questions of runs already on the server (a temporary table of the local connection).
    static let pushedTable = "CREATE TEMP TABLE IF NOT EXISTS track_pushed (run_id INTEGER, question_id INTEGER, PRIMARY KEY (run_id, question_id))"
    /// Questions of a run already sent by `pushIncrement` (a temporary table of the local connection).
    static func notPushed(_ column: String = "question_id") -> String {
        " AND \(column) NOT IN (SELECT question_id FROM temp.track_pushed WHERE run_id = ?1)"
    }

    /// Brings the server's copy of run `runID` of `store` up to date, in one transaction: the
    /// whole run the first time, then only the questions added since, with what its summaries
    /// grew, the metrics logged since, and its status. What a `track log` stream into PostgreSQL calls after each of
    /// its local commits, so that a writer killed mid-stream leaves on the server what it had
    /// committed (its run marked running), as on SQLite.
    public func pushIncrement(runID: Int64, from store: RunStore) throws {
        let local = store.database
        try local.executeScript(Self.pushedTable)
        guard let uuid = try local.scalarText("SELECT uuid FROM runs WHERE run_id = ?", [.integer(runID)]) else { return }
        let onServer = try connection.query("SELECT run_id FROM runs WHERE uuid = $1", [.text(uuid)]).rows.first?.first
        if case .integer(let remoteID)? = onServer {
            try withRetry {
                try connection.transaction {
                    let map = try pushQuestions(runID: runID, from: local, newOnly: true)
                    _ = try pushRows(runID: runID, remoteID: remoteID, questionMap: map, from: local, newOnly: true)
                    var status: [SQLValue] = []
                    try local.forEachRow("SELECT status, finished_at FROM runs WHERE run_id = ?", [.integer(runID)]) { status = [$0.value(0), $0.value(1)] }
                    try connection.query("UPDATE runs SET status = $1, finished_at = $2 WHERE run_id = $3", status + [.integer(remoteID)])
                }
            }
        } else {
            _ = try push(runID: runID, from: store)
        }
        try local.execute("INSERT OR IGNORE INTO temp.track_pushed(run_id, question_id) SELECT run_id, question_id FROM _track_top_labels WHERE run_id = ?",
                          [.integer(runID)])
        try recordSent(runID: runID, in: local)
    }

    /// Records every question of the runs of `store` (pulled from the server) as already on the
    /// server, so that increments pushed from it send only what is added after.
    public func markPushed(in store: RunStore) throws {
        try store.database.executeScript("""
            \(Self.pushedTable);
            INSERT OR IGNORE INTO temp.track_pushed(run_id, question_id) SELECT run_id, question_id FROM _track_top_labels;
            """)
        var runs: [Int64] = []
        try store.database.forEachRow("SELECT run_id FROM runs") { runs.append($0.int64(0)) }
        for run in runs { try recordSent(runID: run, in: store.database) }
    }

    /// Retries a transaction that lost a deadlock or a serialization race to another writer.
    func withRetry<T>(_ body: () throws -> T) throws -> T {
        var attempt = 0
        while true {
            do { return try body() } catch let error as PostgresError where error.isRetryable && attempt < 20 {
                attempt += 1
                usleep(useconds_t(Int.random(in: 5_000...20_000) * min(attempt, 5)))
            }
        }
    }

    /// (The run's questions are those of its top labels, one row per question, kept exact by
    /// every writer and by the triggers for plain SQL, and those of its EM targets.)
    /// Inserts the run's questions the server lacks (in the local store's order, so that the
    /// server keeps their order and paired resampling draws the same questions on both stores;
    /// concurrent writers of one dataset insert in one order), refuses a contradiction, and maps
    /// local question ids to the server's.
    func pushQuestions(runID: Int64, from local: Database, newOnly: Bool = false) throws -> [Int64: Int64] {
        // The questions of its top labels, in question order by a join along their key (a set
        // of every id, as `IN (… UNION …)` builds, cost the local read 4x), merged with those only
        // its EM targets or folds name (usually none, so held in memory).
        let only = newOnly ? Self.notPushed("q.question_id") : ""
        let columns = "q.question_id, q.dataset, q.external_id, q.subject, q.n_options, q.label, q.category"
        var others: [[SQLValue]] = []
        try local.forEachRow("""
            SELECT \(columns) FROM questions q
            WHERE q.question_id IN (SELECT question_id FROM em_targets WHERE run_id = ?1
                                    UNION SELECT question_id FROM calibration_folds WHERE run_id = ?1)
              AND NOT EXISTS (SELECT 1 FROM _track_top_labels t WHERE t.run_id = ?1 AND t.question_id = q.question_id)\(only)
            ORDER BY q.question_id
            """, [.integer(runID)]) { row in
            others.append((0..<7).map { row.value(Int32($0)) })
        }
        /// Each question (id, dataset, external id, subject, options, label, category), in local order.
        func forEachQuestion(_ body: ([SQLValue]) throws -> Void) throws {
            var next = 0
            try local.forEachRow("""
                SELECT \(columns) FROM _track_top_labels t JOIN questions q ON q.question_id = t.question_id
                WHERE t.run_id = ?1\(only) ORDER BY t.question_id
                """, [.integer(runID)]) { row in
                while next < others.count, case .integer(let id) = others[next][0], id < row.int64(0) {
                    try body(others[next])
                    next += 1
                }
                try body((0..<7).map { row.value(Int32($0)) })
            }
            for other in others[next...] { try body(other) }
        }
        // Datasets the server holds no question of (a new evaluation: the common first push) need
        // no staging, no anti-join and no mapping sent back: ids are drawn from the questions'
        // sequence (in one statement, increasing) and the rows copied straight in, in local order.
        // A writer that inserts one of them first makes the copy fail with a unique violation;
        // the transaction is then retried and takes the general path below (`withRetry`).
        var counts: [String: Int] = [:]
        try local.forEachRow("""
            SELECT q.dataset, count(*) FROM _track_top_labels t JOIN questions q ON q.question_id = t.question_id
            WHERE t.run_id = ?1\(only) GROUP BY q.dataset
            """, [.integer(runID)]) { counts[$0.string(0) ?? "", default: 0] += Int($0.int64(1)) }
        for other in others { if case .text(let dataset) = other[1] { counts[dataset, default: 0] += 1 } }
        let total = counts.values.reduce(0, +)
        if total > 0, try counts.keys.allSatisfy({ try connection.query("SELECT 1 FROM questions WHERE dataset = $1 LIMIT 1", [.text($0)]).rows.isEmpty }) {
            return try copyNewQuestions(count: total, forEachQuestion)
        }
        try connection.execute("""
            CREATE TEMP TABLE IF NOT EXISTS track_push_questions (
                local_id BIGINT, dataset TEXT, external_id TEXT, subject TEXT, n_options BIGINT, label BIGINT, category TEXT) ON COMMIT DELETE ROWS
            """)
        try connection.copyIn("COPY track_push_questions FROM STDIN") { buffer in
            try forEachQuestion { try buffer.row($0) }
        }
        // The questions the server lacks, by an anti-join (a plain insert: ON CONFLICT's speculative
        // insertion cost 1.8x here). A writer that inserts one of them first makes this fail with a
        // unique violation; the whole transaction is then retried and finds it (`withRetry`).
        try connection.execute("""
            INSERT INTO questions(dataset, external_id, subject, n_options, label, category)
            SELECT t.dataset, t.external_id, t.subject, t.n_options, t.label, t.category FROM track_push_questions t
            WHERE NOT EXISTS (SELECT 1 FROM questions q WHERE q.dataset = t.dataset AND q.external_id = t.external_id)
            ORDER BY t.local_id
            """)
        // The server's id of each question, and whether its option count and label agree: a
        // contradiction refuses the run (found in the same pass as the mapping, described after).
        var map: [Int64: Int64] = [:]
        var clash: Int64?
        try connection.copyOut("""
            COPY (SELECT t.local_id, q.question_id, t.n_options = q.n_options AND t.label = q.label
                  FROM track_push_questions t JOIN questions q USING (dataset, external_id)) TO STDOUT
            """) { row in
            map[row.int64(0)] = row.int64(1)
            if clash == nil, row.string(2) != "t" { clash = row.int64(0) }
        }
        if let clash {
            let found = try connection.query("""
                SELECT t.dataset, t.external_id, t.n_options, t.label, q.n_options, q.label
                FROM track_push_questions t JOIN questions q USING (dataset, external_id) WHERE t.local_id = $1
                """, [.integer(clash)]).rows[0]
            func text(_ i: Int) -> String { if case .text(let s) = found[i] { return s }; return "" }
            func number(_ i: Int) -> String { if case .integer(let n) = found[i] { return String(n) }; return "?" }
            let dataset = text(0).isEmpty ? "" : text(0) + "/"
            throw StoreError("question \(dataset)\(text(1)) has \(number(4)) options and label \(number(5)) on the server but \(number(2)) options and label \(number(3)) here; nothing was pushed for this run", kind: .conflict)
        }
        return map
    }

    /// Copies `count` questions none of whose datasets the server holds straight into
    /// `questions`, with ids drawn from its sequence in local order; returns local → server ids.
    private func copyNewQuestions(count: Int, _ forEachQuestion: (([SQLValue]) throws -> Void) throws -> Void) throws -> [Int64: Int64] {
        var ids: [Int64] = []
        ids.reserveCapacity(count)
        // The sequence by oid, looked up once (`pg_get_serial_sequence` per row cost 2.4 s a million).
        guard case .integer(let sequence)? = try connection.query(
            "SELECT pg_get_serial_sequence('questions', 'question_id')::regclass::oid::bigint").rows.first?.first else {
            throw PostgresError("the server's questions table has no id sequence")
        }
        try connection.copyOut("""
            COPY (SELECT nextval(\(sequence)::oid) FROM generate_series(1, \(count))) TO STDOUT
            """) { ids.append($0.int64(0)) }
        ids.sort()
        var map: [Int64: Int64] = [:]
        map.reserveCapacity(count)
        try connection.copyIn("COPY questions(question_id, dataset, external_id, subject, n_options, label, category) FROM STDIN WITH (FORMAT binary)") { buffer in
            buffer.binaryHeader()
            try forEachQuestion { values in
                guard map.count < ids.count, case .integer(let local) = values[0] else {
                    throw StoreError("the local store gained questions during the push; nothing was pushed for this run: push again", kind: .conflict)
                }
                let id = ids[map.count]
                map[local] = id
                try buffer.binaryRow(fields: 7)
                buffer.binaryInt(id)
                for value in values[1...] {
                    switch value {
                    case .integer(let i): buffer.binaryInt(i)
                    case .text(let text): buffer.binaryText(text)
                    default: buffer.binaryNull()
                    }
                }
            }
            buffer.binaryTrailer()
        }
        return map
    }

    /// The run's own rows, by COPY, with the server's run and question ids.
    func pushRows(runID: Int64, remoteID: Int64, questionMap: [Int64: Int64], from local: Database, newOnly: Bool = false) throws -> Int {
        let only = newOnly ? Self.notPushed() : ""
        // Rows come question by question: the last question's id is looked up once for all its rows.
        var last: (local: Int64, remote: Int64) = (-1, -1)
        func mapped(_ id: Int64) throws -> Int64 {
            if id == last.local { return last.remote }
            guard let remote = questionMap[id] else { throw StoreError("question \(id) of run \(runID) has no row in questions", kind: .storage) }
            last = (id, remote)
            return remote
        }
        var optionRows = 0
        // The two large tables in COPY's binary format: exact doubles, nothing for the server to parse.
        try connection.copyIn("COPY option_scores(run_id, question_id, option, prob, score) FROM STDIN WITH (FORMAT binary)") { buffer in
            buffer.binaryHeader()
            try local.forEachRow("SELECT question_id, option, prob, score FROM option_scores WHERE run_id = ?1\(only) ORDER BY question_id, option", [.integer(runID)]) { row in
                try buffer.binaryRow(fields: 5)
                buffer.binaryInt(remoteID); buffer.binaryInt(try mapped(row.int64(0))); buffer.binaryInt(row.int64(1))
                buffer.binaryDouble(row.double(2))
                if row.isNull(3) { buffer.binaryNull() } else { buffer.binaryDouble(row.double(3)) }
                optionRows += 1
            }
            buffer.binaryTrailer()
        }
        try connection.copyIn("COPY _track_top_labels(run_id, question_id, pred) FROM STDIN WITH (FORMAT binary)") { buffer in
            buffer.binaryHeader()
            try local.forEachRow("SELECT question_id, pred FROM _track_top_labels WHERE run_id = ?1\(only)", [.integer(runID)]) { row in
                try buffer.binaryRow(fields: 3)
                buffer.binaryInt(remoteID); buffer.binaryInt(try mapped(row.int64(0))); buffer.binaryInt(row.int64(1))
            }
            buffer.binaryTrailer()
        }
        try connection.copyIn("COPY em_targets(run_id, question_id, option, bin, target) FROM STDIN") { buffer in
            try local.forEachRow("SELECT question_id, option, bin, target FROM em_targets WHERE run_id = ?1\(only)", [.integer(runID)]) { row in
                try buffer.row([.integer(remoteID), .integer(try mapped(row.int64(0))), row.value(1), row.value(2), row.value(3)])
            }
        }
        try connection.copyIn("COPY calibration_folds(run_id, question_id, fold) FROM STDIN") { buffer in
            try local.forEachRow("SELECT question_id, fold FROM calibration_folds WHERE run_id = ?1\(only)", [.integer(runID)]) { row in
                try buffer.row([.integer(remoteID), .integer(try mapped(row.int64(0))), row.value(1)])
            }
        }
        // Tables whose rows carry only the run id: copied column for column; an increment adds to
        // what the server holds (another writer may be appending to the same run).
        if newOnly {
            try pushAdditions(runID: runID, remoteID: remoteID, from: local)
            return optionRows
        }
        for (table, columns) in Self.runTables {
            try connection.copyIn("COPY \(table)(run_id, \(columns.joined(separator: ", "))) FROM STDIN") { buffer in
                try local.forEachRow("SELECT \(columns.joined(separator: ", ")) FROM \(table) WHERE run_id = ?", [.integer(runID)]) { row in
                    try buffer.row([.integer(remoteID)] + columns.indices.map { row.value(Int32($0)) })
                }
            }
        }
        return optionRows
    }

    /// What this connection has sent of each run's summaries and logged rows (temporary tables
    /// of the local connection): the baseline of the next increment's additions.
    static let sentTables = """
        CREATE TEMP TABLE IF NOT EXISTS track_sent_stats (run_id INTEGER PRIMARY KEY, n, n_correct, sum_conf, sum_brier, sum_nll,
                                                          sum_nll_scores, n_scored);
        CREATE TEMP TABLE IF NOT EXISTS track_sent_bins (run_id INTEGER, class INTEGER, bin INTEGER, n, hits, sum_p,
                                                         PRIMARY KEY (run_id, class, bin));
        CREATE TEMP TABLE IF NOT EXISTS track_sent_rows (run_id INTEGER, tbl TEXT, last INTEGER, PRIMARY KEY (run_id, tbl));
        """
    static let sumColumns = ["n", "n_correct", "sum_conf", "sum_brier", "sum_nll", "sum_nll_scores", "n_scored"]

    /// Records the run's summaries and logged rows of `local` as on the server (after a whole
    /// push, a pull, or an increment).
    func recordSent(runID: Int64, in local: Database) throws {
        try local.executeScript(Self.sentTables)
        let id = [SQLValue.integer(runID)]
        try local.execute("DELETE FROM temp.track_sent_stats WHERE run_id = ?", id)
        try local.execute("INSERT INTO temp.track_sent_stats SELECT run_id, \(Self.sumColumns.joined(separator: ", ")) FROM _track_run_stats WHERE run_id = ?", id)
        try local.execute("DELETE FROM temp.track_sent_bins WHERE run_id = ?", id)
        try local.execute("INSERT INTO temp.track_sent_bins SELECT run_id, class, bin, n, hits, sum_p FROM _track_run_bins WHERE run_id = ?", id)
        for table in ["metrics", "ingest_rejects"] {
            try local.execute("INSERT OR REPLACE INTO temp.track_sent_rows VALUES (?1, ?2, (SELECT COALESCE(MAX(rowid), 0) FROM \(table) WHERE run_id = ?1))",
                              [.integer(runID), .text(table)])
        }
    }

    /// An increment's additions to a run the server holds, in the caller's transaction: its
    /// summaries by what they grew since the last send (added on the server, so that writers
    /// appending to one run concurrently add up, as on SQLite), logged metrics and rejects added
    /// since, and keyed rows (params, tags, pairs, judgments) inserted or updated by key.
    func pushAdditions(runID: Int64, remoteID: Int64, from local: Database) throws {
        try local.executeScript(Self.sentTables)
        let ids: [SQLValue] = [.integer(runID)]
        var delta: [SQLValue] = []
        var options: [SQLValue] = []
        try local.forEachRow("""
            SELECT \(Self.sumColumns.map { "s.\($0) - COALESCE(t.\($0), 0)" }.joined(separator: ", ")), s.min_options, s.max_options
            FROM _track_run_stats s LEFT JOIN temp.track_sent_stats t USING (run_id) WHERE s.run_id = ?
            """, ids) { row in
            delta = (0..<7).map { row.value(Int32($0)) }
            options = [row.value(7), row.value(8)]
        }
        if !delta.isEmpty {
            let sums = Self.sumColumns.enumerated().map { "\($1) = _track_run_stats.\($1) + $\($0 + 1)" }.joined(separator: ", ")
            try connection.query("""
                INSERT INTO _track_run_stats(run_id, \(Self.sumColumns.joined(separator: ", ")), min_options, max_options)
                VALUES ($10, $1, $2, $3, $4, $5, $6, $7, $8, $9)
                ON CONFLICT (run_id) DO UPDATE SET \(sums),
                    min_options = LEAST(_track_run_stats.min_options, $8), max_options = GREATEST(_track_run_stats.max_options, $9)
                """, delta + options + [.integer(remoteID)])
        }
        var bins: [[SQLValue]] = []
        try local.forEachRow("""
            SELECT b.class, b.bin, b.n - COALESCE(t.n, 0), b.hits - COALESCE(t.hits, 0), b.sum_p - COALESCE(t.sum_p, 0)
            FROM _track_run_bins b LEFT JOIN temp.track_sent_bins t USING (run_id, class, bin) WHERE b.run_id = ?
            """, ids) { row in
            if row.int64(2) != 0 { bins.append((0..<5).map { row.value(Int32($0)) }) }
        }
        for bin in bins {
            try connection.query("""
                INSERT INTO _track_run_bins(run_id, class, bin, n, hits, sum_p) VALUES ($6, $1, $2, $3, $4, $5)
                ON CONFLICT (run_id, class, bin) DO UPDATE SET n = _track_run_bins.n + excluded.n, hits = _track_run_bins.hits + excluded.hits,
                                                              sum_p = _track_run_bins.sum_p + excluded.sum_p
                """, bin + [.integer(remoteID)])
        }
        for (table, columns) in Self.runTables {
            let list = columns.joined(separator: ", ")
            switch table {
            case "metrics", "ingest_rejects":
                try connection.copyIn("COPY \(table)(run_id, \(list)) FROM STDIN") { buffer in
                    try local.forEachRow("""
                        SELECT \(list) FROM \(table) WHERE run_id = ?1
                        AND rowid > COALESCE((SELECT last FROM temp.track_sent_rows WHERE run_id = ?1 AND tbl = '\(table)'), 0)
                        """, ids) { row in
                        try buffer.row([.integer(remoteID)] + columns.indices.map { row.value(Int32($0)) })
                    }
                }
            case "params", "tags", "preference_pairs", "judgments":
                let key = ["params": "run_id, key", "tags": "run_id, key", "preference_pairs": "run_id, prompt_id",
                           "judgments": "run_id, opponent, prompt_id"][table] ?? ""
                let update = table == "params" || table == "tags" ? "DO UPDATE SET value = excluded.value" : "DO NOTHING"
                // One COPY into a scratch table and one statement, whatever the number of rows.
                let scratch = "track_keyed_\(table)"
                try connection.execute("CREATE TEMP TABLE IF NOT EXISTS \(scratch) (LIKE \(table)) ON COMMIT DELETE ROWS")
                try connection.copyIn("COPY \(scratch)(run_id, \(list)) FROM STDIN") { buffer in
                    try local.forEachRow("SELECT \(list) FROM \(table) WHERE run_id = ?", ids) { row in
                        try buffer.row([.integer(remoteID)] + columns.indices.map { row.value(Int32($0)) })
                    }
                }
                try connection.execute("INSERT INTO \(table)(run_id, \(list)) SELECT run_id, \(list) FROM \(scratch) ON CONFLICT (\(key)) \(update)")
            default: break   // _track_run_stats and _track_run_bins: added above
            }
        }
    }

    /// The columns of a run a push copies as they are (its id, experiment and parent are the server's).
    static let runColumns = ["uuid", "name", "model", "method", "dataset", "split", "step", "epoch", "extraction", "status",
                             "started_at", "finished_at", "source_file", "source_sha256", "source_format"]
    /// The columns of an export record but its id.
    static let exportColumns = ["path", "kind", "format", "sha256", "data_path", "data_sha256", "command", "created_at"]

    /// Tables keyed by run alone, with their other columns (the same on both stores).
    static let runTables: [(String, [String])] = [
        ("params", ["key", "value"]), ("tags", ["key", "value"]), ("metrics", ["key", "value", "step", "timestamp"]),
        ("ingest_rejects", ["source", "line", "reason"]),
        ("preference_pairs", ["prompt_id", "chosen_logprob", "rejected_logprob", "chosen_tokens", "rejected_tokens"]),
        ("judgments", ["prompt_id", "opponent", "verdict"]),
        ("_track_run_stats", ["n", "n_correct", "sum_conf", "sum_brier", "sum_nll", "sum_nll_scores", "n_scored", "min_options", "max_options"]),
        ("_track_run_bins", ["class", "bin", "n", "hits", "sum_p"]),
    ]

    /// The run's export records: one server row per (path, sha256, created_at), linked to the run.
    func pushExports(runID: Int64, remoteID: Int64, from local: Database) throws {
        let columns = Self.exportColumns
        var exports: [[SQLValue]] = []
        try local.forEachRow("SELECT \(columns.map { "e." + $0 }.joined(separator: ", ")) FROM exports e JOIN export_runs x USING (export_id) WHERE x.run_id = ?", [.integer(runID)]) { row in
            exports.append(columns.indices.map { row.value(Int32($0)) })
        }
        for export in exports {
            let existing = try connection.query("SELECT export_id FROM exports WHERE path = $1 AND sha256 = $2 AND created_at = $3 ORDER BY export_id LIMIT 1",
                                                [export[0], export[3], export[7]]).rows.first?.first
            let id = try existing ?? connection.query("INSERT INTO exports(\(columns.joined(separator: ", "))) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING export_id", export).rows[0][0]
            try connection.query("INSERT INTO export_runs(export_id, run_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", [id, .integer(remoteID)])
        }
    }

    // MARK: - Mirror (reading)

    /// The tables a local copy holds, with their columns, ids kept: the runs and what is keyed by
    /// run alone (as a push copies them), export records, stale marks and EM targets.
    static let mirrorTables: [(String, [String])] =
        [("experiments", ["experiment_id", "name", "description", "created_at"]),
         ("runs", ["run_id"] + runColumns + ["experiment_id", "parent_run_id"])]
        + runTables.map { ($0.0, ["run_id"] + $0.1) }
        + [("exports", ["export_id"] + exportColumns), ("export_runs", ["export_id", "run_id"]), ("_track_stale_runs", ["run_id"]),
           ("em_targets", ["run_id", "question_id", "option", "bin", "target"]),
           ("calibration_folds", ["run_id", "question_id", "fold"])]

    /// The server's run catalogue — experiments, runs, params and tags, ids kept — copied into
    /// `staging` (a fresh file) in one snapshot: what a writer of whole runs (`log`, `ingest`)
    /// consults to name its runs, find a file ingested before and refuse a name in use. No
    /// question, option row, summary or EM target is copied: its size is that of the catalogue.
    public func copyCatalogue(into staging: RunStore) throws {
        try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        defer { try? connection.execute("COMMIT") }
        let types = try columnTypes()
        try staging.database.transaction {
            for (table, columns) in Self.mirrorTables where ["experiments", "runs", "params", "tags"].contains(table) {
                try copyRows(of: table, columns: columns, types: types, into: staging.database)
            }
        }
    }

    /// Deletes runs by uuid, in one transaction (what a writer replaced without a run of the same name).
    public func deleteRuns(uuids: [String]) throws {
        guard !uuids.isEmpty else { return }
        try withRetry {
            try connection.transaction {
                for uuid in uuids { try connection.query("DELETE FROM runs WHERE uuid = $1", [.text(uuid)]) }
            }
        }
    }

    /// The metadata of the runs `runFilter` selects (a WHERE clause on run_id) — their rows of
    /// every table keyed by run, logged metrics, summaries, EM targets, folds and export records —
    /// and every experiment, ids kept, inside the caller's snapshot (what a pull starts from).
    private func copyMetadataInSnapshot(into mirror: RunStore, runFilter: String) throws {
        let database = mirror.database
        try database.transaction {
            let types = try columnTypes()
            for (table, columns) in Self.mirrorTables {
                let filter: String? = switch table {
                case "experiments": nil
                case "exports": "export_id IN (SELECT export_id FROM export_runs WHERE \(runFilter))"
                case "_track_stale_runs": "\(runFilter) OR run_id = 0"   // 0: every run stale
                default: runFilter
                }
                try copyRows(of: table, columns: columns, types: types, filter: filter, into: database)
            }
            // A parent not pulled: no link (as a push links a parent the server lacks).
            try database.execute("UPDATE runs SET parent_run_id = NULL WHERE parent_run_id NOT IN (SELECT run_id FROM runs)")
        }
    }

    /// Copies the rows of the server's `table` that `filter` selects (a WHERE clause, or all) into
    /// the same table of a local SQLite file, ids kept, each value bound by its server type.
    func copyRows(of table: String, columns: [String], types: [String: [String: String]], filter: String? = nil,
                  into database: Database) throws {
        let list = columns.joined(separator: ", ")
        let kinds = columns.map { types[table]?[$0] ?? "text" }
        let insert = try database.makeStatement("INSERT INTO \(table)(\(list)) VALUES (\(columns.map { _ in "?" }.joined(separator: ", ")))")
        var failure: Error?
        try connection.copyOut("COPY (SELECT \(list) FROM \(table)\(filter.map { " WHERE \($0)" } ?? "")) TO STDOUT") { row in
            for index in 0..<row.count {
                let position = Int32(index + 1)
                if row.isNull(index) { insert.bindNull(at: position); continue }
                switch kinds[index] {
                case "bigint", "integer", "smallint": insert.bind(row.int64(index), at: position)
                case "double precision", "real": insert.bind(row.double(index), at: position)
                default: insert.bind(row.string(index), at: position)
                }
            }
            do { _ = try insert.step() } catch { failure = failure ?? error }
            insert.reset()
        }
        if let failure { throw failure }
    }

    /// Each table's columns' types on the server (`bigint`, `double precision`, `text`), in one query.
    func columnTypes() throws -> [String: [String: String]] {
        var types: [String: [String: String]] = [:]
        for row in try connection.query("SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema()").rows {
            if case .text(let table) = row[0], case .text(let name) = row[1], case .text(let type) = row[2] { types[table, default: [:]][name] = type }
        }
        return types
    }

    // MARK: - Ad-hoc SQL and run listing

    /// Runs a script of statements on the server. Without `write`, in a read-only transaction
    /// (a statement that would change the store is refused by the server); with it, all
    /// statements in one transaction. `timeout` bounds each statement (seconds).
    public func adHocSQL(_ script: String, write: Bool, timeout: Double?) throws -> [QueryResult] {
        if !write {
            // A read-only script runs in one read-only transaction that its own statements cannot
            // end or reconfigure; the session defaults to read-only too, should one slip through.
            for statement in SQLStatements.split(script) {
                let word = SQLStatements.firstWord(statement)
                if SQLStatements.transactionControl.contains(word) {
                    throw StoreError("\(word) is not allowed in read-only SQL on PostgreSQL (it would end or change the read-only transaction the statements run in); pass --write to run statements that change the store", kind: .usage)
                }
            }
            try connection.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        }
        try connection.execute(write ? "BEGIN READ WRITE" : "BEGIN READ ONLY")
        do {
            try connection.execute("SET LOCAL jit TO DEFAULT")
            if let timeout { try connection.execute("SET LOCAL statement_timeout = \(Int((timeout * 1000).rounded()))") }
            let results = try connection.script(script)
            try connection.execute("COMMIT")
            return results
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }

    /// Every run's uuid and name.
    public func runUUIDs() throws -> [String: String] {
        var result: [String: String] = [:]
        for row in try connection.query("SELECT uuid, name FROM runs").rows {
            if case .text(let uuid) = row[0], case .text(let name) = row[1] { result[uuid] = name }
        }
        return result
    }
}

// MARK: - Pull

extension PostgresStore {
    /// Copies runs of the server into the SQLite store `target` for offline work — every run, or
    /// those named — with all they own, as `track merge` brings a shard in: a run the target
    /// already holds (same uuid) is skipped, so pulling again changes nothing; questions are shared
    /// by (dataset, external id) and a contradiction refuses the whole pull with nothing written.
    /// The server is read in one repeatable-read snapshot into a complete store in a private
    /// folder (0700, removed on every way out), which is then merged in one transaction.
    public func pull(runs names: [String]?, into target: RunStore) throws -> MergeReport {
        let folder = try TemporaryFolders.make(prefix: TemporaryFolders.postgresStaging)
        defer { TemporaryFolders.remove(folder) }
        let scratch = folder.appendingPathComponent("pulled.sqlite").path
        let shard = try RunStore(path: scratch)
        try shard.database.executeScript("PRAGMA foreign_keys = OFF")
        try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        do {
            // The runs asked for, by name, in the snapshot.
            var selected: Set<Int64> = []
            var present: Set<String> = []
            for row in try connection.query("SELECT run_id, name FROM runs").rows {
                guard case .integer(let id) = row[0], case .text(let name) = row[1] else { continue }
                present.insert(name)
                if names?.contains(name) ?? true { selected.insert(id) }
            }
            for name in names ?? [] where !present.contains(name) {
                throw StoreError("no run named '\(name)' on \(displayName); nothing was pulled", kind: .notFound)
            }
            let list = selected.sorted().map(String.init).joined(separator: ",")
            let runFilter = selected.isEmpty ? "FALSE" : "run_id IN (\(list))"
            try copyMetadataInSnapshot(into: shard, runFilter: runFilter)
            try shard.database.transaction {
                // The questions the selected runs answer (or their EM targets and folds name), and
                // their option rows and top labels, with the server's ids.
                let types = try columnTypes()
                try copyRows(of: "questions", columns: ["question_id", "dataset", "external_id", "subject", "n_options", "label", "category"],
                             types: types, filter: """
                                question_id IN (SELECT question_id FROM _track_top_labels WHERE \(runFilter)
                                                UNION SELECT question_id FROM em_targets WHERE \(runFilter)
                                                UNION SELECT question_id FROM calibration_folds WHERE \(runFilter))
                                """, into: shard.database)
                try copyRows(of: "option_scores", columns: ["run_id", "question_id", "option", "prob", "score"], types: types,
                             filter: runFilter, into: shard.database)
                try copyRows(of: "_track_top_labels", columns: ["run_id", "question_id", "pred"], types: types, filter: runFilter, into: shard.database)
            }
            try connection.execute("COMMIT")
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
        try shard.database.executeScript("PRAGMA foreign_keys = ON")
        try shard.refreshStaleSummaries()
        shard.checkpoint()
        return try target.merge(shard: scratch)
    }
}

// MARK: - Merge into the server

extension PostgresStore {
    /// Merges a SQLite shard into the server as `track merge` merges into a file, in one
    /// transaction: runs keyed by uuid (one already here is skipped), questions by identity (a
    /// contradiction refuses the shard, nothing of it written), a run whose name another run
    /// holds here renamed `name [uuid prefix]`. The shard is read through a consistent copy in a
    /// private folder (removed on every way out), where such renames happen.
    public func merge(shard path: String) throws -> MergeReport {
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError("\(path): no such file") }
        let folder = try TemporaryFolders.make(prefix: TemporaryFolders.postgresStaging)
        defer { TemporaryFolders.remove(folder) }
        let scratch = folder.appendingPathComponent("shard.sqlite").path
        // A consistent copy (and the checks of a merge: schema version, a track store): the shard
        // merged into an empty file.
        let copy = try RunStore(path: scratch)
        _ = try copy.merge(shard: path)
        var report = MergeReport(shard: path)
        let held = try runUUIDs()
        let heldNames = Set(held.values)
        var runs: [(id: Int64, uuid: String, name: String)] = []
        try copy.database.forEachRow("SELECT run_id, uuid, name FROM runs ORDER BY run_id") {
            runs.append(($0.int64(0), $0.string(1) ?? "", $0.string(2) ?? ""))
        }
        // Names another run holds on the server: renamed in the copy, once, before any push.
        var names = heldNames
        var pending: [(id: Int64, name: String)] = []
        for run in runs {
            if held[run.uuid] != nil { report.skippedRuns += 1; continue }
            var name = run.name
            if names.contains(name) {
                name = "\(run.name) [\(run.uuid.prefix(8))]"
                try copy.renameRun(run.name, to: name)
                report.renamedRuns.append((run.name, name))
            }
            names.insert(name)
            pending.append((run.id, name))
        }
        try withRetry {
            try connection.transaction {
                for run in pending { _ = try push(runID: run.id, from: copy) }
            }
        }
        report.newRuns = pending.map(\.name)
        return report
    }
}
