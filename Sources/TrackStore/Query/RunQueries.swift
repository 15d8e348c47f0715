/// A run with its top-label summary, as `track runs` lists it.
public struct RunSummary: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var model: String?
    public var method: String?
    public var dataset: String?
    public var split: String?
    public var step: Int?
    public var epoch: Double?
    public var extraction: String?
    public var status: RunStatus
    public var n: Int
    public var accuracy: Double?
    public var meanConfidence: Double?
}

/// Which runs to list; nil fields match anything.
public struct RunFilter: Sendable {
    public var model: String?
    public var method: String?
    public var dataset: String?
    public var split: String?
    public var tags: [String: String] = [:]
    public var names: [String] = []
    public var experiment: String?
    /// A `--where` expression.
    public var query: RunQuery?
    /// Sort by this field (see `RunQuery.fieldSQL`), then by run id; nil: by run id.
    public var sort: String?
    public var descending = false
    public var limit: Int?
    public init() {}
}

/// The rows of an ad-hoc query: column names and dynamically typed values.
public struct QueryResult: Sendable {
    public var columns: [String]
    public var rows: [[SQLValue]]
}

extension RunReading {
    /// When a filter matched no run: the stored values that equal a --model, --method, --dataset or
    /// --split given up to case (filters compare exactly), e.g. "--method 'Instruct' matches no
    /// run; did you mean 'instruct'?"; nil when there is none.
    public func caseHint(_ filter: RunFilter) throws -> String? {
        var hints: [String] = []
        for (option, column, value) in [("--model", "model", filter.model), ("--method", "method", filter.method),
                                        ("--dataset", "dataset", filter.dataset), ("--split", "split", filter.split)] {
            guard let value else { continue }
            var stored: [String] = []
            try sql.eachRow("SELECT DISTINCT \(column) FROM runs WHERE lower(\(column)) = lower(?) AND \(column) <> ? ORDER BY 1",
                            [.text(value), .text(value)]) { row in if let text = row.string(column) { stored.append(text) } }
            if !stored.isEmpty {
                hints.append("\(option) '\(value)' matches no run exactly; did you mean \(stored.map { "'\($0)'" }.joined(separator: " or "))? (filters compare case)")
            }
        }
        return hints.isEmpty ? nil : hints.joined(separator: "; ")
    }

    public func runSummaries(_ filter: RunFilter = RunFilter()) throws -> [RunSummary] {
        var conditions: [String] = []
        var values: [SQLValue] = []
        for (column, value) in [("model", filter.model), ("method", filter.method),
                                ("dataset", filter.dataset), ("split", filter.split)] {
            if let value { conditions.append("s.\(column) = ?"); values.append(.text(value)) }
        }
        for (key, value) in filter.tags.sorted(by: { $0.key < $1.key }) {
            conditions.append("EXISTS (SELECT 1 FROM tags t WHERE t.run_id = s.run_id AND t.key = ? AND t.value = ?)")
            values += [.text(key), .text(value)]
        }
        if let experiment = filter.experiment {
            conditions.append("EXISTS (SELECT 1 FROM runs r JOIN experiments e USING (experiment_id) WHERE r.run_id = s.run_id AND e.name = ?)")
            values.append(.text(experiment))
        }
        if let query = filter.query {
            conditions.append(query.sql(sql.dialect))
            values += query.values
        }
        if !filter.names.isEmpty {
            conditions.append("s.run IN (\(filter.names.map { _ in "?" }.joined(separator: ", ")))")
            values += filter.names.map(SQLValue.text)
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        var order = "s.run_id"
        if let sort = filter.sort {
            guard let field = RunQuery.fieldSQL(sort) else {
                throw StoreError("unknown sort field '\(sort)' (fields: \(RunQuery.fieldNames.joined(separator: ", ")))", kind: .usage)
            }
            // Missing values last either way; a parameter or tag (stored as text) sorts as a number
            // when it is one, the numbers before the other values, those as text.
            let direction = filter.descending ? "DESC" : "ASC"
            if sort.contains(".") {
                let number = sql.dialect.number(field.sql)
                order = "\(field.sql) IS NULL, \(number) IS NULL, \(number) \(direction), \(field.sql) \(direction), s.run_id"
                values += field.values + field.values + field.values + field.values
            } else {
                order = "\(field.sql) IS NULL, \(field.sql) \(direction), s.run_id"
                values += field.values + field.values
            }
        }
        let limit = filter.limit.map { " LIMIT \($0)" } ?? ""
        var result: [RunSummary] = []
        try sql.eachRow("""
            SELECT s.run_id, s.run, s.model, s.method, s.dataset, s.split, s.step, s.epoch, s.extraction,
                   s.status, s.n, s.accuracy, s.mean_confidence
            FROM run_summary AS s \(whereClause) ORDER BY \(order)\(limit)
            """, values) { row in
            result.append(RunSummary(
                id: row.int64("run_id"), name: row.string("run") ?? "", model: row.string("model"), method: row.string("method"),
                dataset: row.string("dataset"), split: row.string("split"), step: row.optionalInt64("step").map(Int.init),
                epoch: row.optionalDouble("epoch"), extraction: row.string("extraction"),
                status: RunStatus(rawValue: row.string("status") ?? "") ?? .running,
                n: row.int("n"), accuracy: row.optionalDouble("accuracy"), meanConfidence: row.optionalDouble("mean_confidence")))
        }
        return result
    }

    /// Key–value pairs of every run in one of the tables (`params` or `tags`), by run id: one query for all runs.
    public func keyValuesByRun(_ table: String) throws -> [Int64: [String: String]] {
        precondition(table == "params" || table == "tags")
        var result: [Int64: [String: String]] = [:]
        try sql.eachRow("SELECT run_id, key, value FROM \(table)") {
            result[$0.int64(0), default: [:]][$0.string(1) ?? ""] = $0.string(2) ?? ""
        }
        return result
    }

    /// Key–value pairs of one of the run's tables (`params` or `tags`).
    public func keyValues(_ table: String, runID: Int64) throws -> [(String, String)] {
        precondition(table == "params" || table == "tags")
        var pairs: [(String, String)] = []
        try sql.eachRow("SELECT key, value FROM \(table) WHERE run_id = ? ORDER BY key", [.integer(runID)]) {
            pairs.append(($0.string(0) ?? "", $0.string(1) ?? ""))
        }
        return pairs
    }
}

extension RunReading {
    /// A run's metadata, params and tags, e.g. to derive a new run from it.
    public func runMetadata(named name: String) throws -> RunMetadata? {
        var found: (id: Int64, meta: RunMetadata)?
        try sql.eachRow("""
            SELECT r.run_id, r.model, r.method, r.dataset, r.split, r.step, r.epoch, r.extraction, e.name AS experiment
            FROM runs r LEFT JOIN experiments e USING (experiment_id) WHERE r.name = ?
            """, [.text(name)]) { row in
            var meta = RunMetadata(name: name, experiment: row.string("experiment"), model: row.string("model"),
                                   method: row.string("method"), dataset: row.string("dataset"), split: row.string("split"),
                                   extraction: row.string("extraction"))
            meta.step = row.optionalInt64("step").map(Int.init)
            meta.epoch = row.optionalDouble("epoch")
            found = (row.int64("run_id"), meta)
        }
        guard let found else { return nil }
        let id = found.id
        var meta = found.meta
        meta.params = Dictionary(try keyValues("params", runID: id), uniquingKeysWith: { $1 })
        meta.tags = Dictionary(try keyValues("tags", runID: id), uniquingKeysWith: { $1 })
        return meta
    }
}

extension RunStore {
    /// Runs any SQL and collects its rows.
    public func query(_ sql: String) throws -> QueryResult {
        try database.makeStatement(sql).allRows()
    }
}
