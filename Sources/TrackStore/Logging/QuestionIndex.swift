/// Maps (dataset, external id) to question rows, allocating ids for new ones.
///
/// Used inside write transactions only. `begin` must be called at the start
/// of each: holding the write lock, the index can allocate ids itself
/// (`max(question_id) + 1`, …) and insert new questions in multi-row
/// statements. Known questions are cached; `PRAGMA data_version` tells whether
/// another connection has committed since, in which case a cache miss is
/// looked up in the file before it counts as new. Entries added inside a
/// transaction are kept apart until it commits, so a rollback leaves no stale ids.
final class QuestionIndex {
    struct Entry {
        var id: Int64
        var optionCount: Int
        var label: Int
    }

    private struct NewQuestion {
        var id: Int64
        var dataset: String
        var externalID: String
        var subject: String?
        var category: String?
        var optionCount: Int
        var label: Int
    }

    /// Known questions by dataset and external id, including those added by
    /// the open transaction (listed in `added`, so that a rollback can drop them).
    private var known: [String: [String: Entry]] = [:]
    private var added: [(dataset: String, externalID: String)] = []
    private var loadedDatasets: Set<String> = []
    /// Loaded datasets another connection may have added questions to since.
    private var suspectDatasets: Set<String> = []
    private var newQuestions: [NewQuestion] = []
    private var nextID: Int64 = 1
    private var lastDataVersion: Int64?
    private var lookup: Statement?
    private var inserter: ChunkedInsert?

    /// Call at the start of every write transaction that resolves questions.
    func begin(_ database: Database) throws {
        let version = try database.scalarInt("PRAGMA data_version")
        if version != lastDataVersion { suspectDatasets = loadedDatasets }
        lastDataVersion = version
        nextID = (try database.scalarInt("SELECT MAX(question_id) FROM questions") ?? 0) + 1
    }

    /// The question's row id; allocates one (and queues the row) when new.
    /// Throws when the stored question has a different option count or label.
    func resolve(_ database: Database, dataset: String, externalID: String, subject: String?, category: String? = nil,
                 optionCount: Int, label: Int) throws -> Int64 {
        if !loadedDatasets.contains(dataset) { try load(database, dataset: dataset) }
        if let entry = known[dataset]?[externalID] {
            try check(entry, dataset: dataset, externalID: externalID, optionCount: optionCount, label: label)
            return entry.id
        }
        if suspectDatasets.contains(dataset), let found = try find(database, dataset: dataset, externalID: externalID) {
            try check(found, dataset: dataset, externalID: externalID, optionCount: optionCount, label: label)
            known[dataset, default: [:]][externalID] = found
            return found.id
        }
        let entry = Entry(id: nextID, optionCount: optionCount, label: label)
        nextID += 1
        known[dataset, default: [:]][externalID] = entry
        added.append((dataset, externalID))
        newQuestions.append(NewQuestion(id: entry.id, dataset: dataset, externalID: externalID, subject: subject,
                                        category: category, optionCount: optionCount, label: label))
        if newQuestions.count >= 2048 { try flush(database) }
        return entry.id
    }

    /// Inserts the queued new questions (before any row that refers to them).
    func flush(_ database: Database) throws {
        let insert = inserter ?? ChunkedInsert(
            database: database, prefix: "INSERT INTO questions(question_id, dataset, external_id, subject, n_options, label, category)", columns: 7)
        inserter = insert
        try insert.insert(count: newQuestions.count) { row, statement, first in
            let question = newQuestions[row]
            statement.bind(question.id, at: first)
            statement.bind(question.dataset, at: first + 1)
            statement.bind(question.externalID, at: first + 2)
            statement.bind(question.subject, at: first + 3)
            statement.bind(question.optionCount, at: first + 4)
            statement.bind(question.label, at: first + 5)
            statement.bind(question.category, at: first + 6)
        }
        newQuestions.removeAll(keepingCapacity: true)
    }

    private func check(_ entry: Entry, dataset: String, externalID: String, optionCount: Int, label: Int) throws {
        let name = dataset.isEmpty ? "question '\(externalID)'" : "question '\(externalID)' of dataset '\(dataset)'"
        if entry.optionCount != optionCount {
            throw ValidationError("\(name) has \(entry.optionCount) options in the store but \(optionCount) here")
        }
        if entry.label != label {
            throw ValidationError("\(name) has label \(entry.label) in the store but \(label) here")
        }
    }

    private func find(_ database: Database, dataset: String, externalID: String) throws -> Entry? {
        let statement = try lookup ?? database.makeStatement(
            "SELECT question_id, n_options, label FROM questions WHERE dataset = ? AND external_id = ?")
        lookup = statement
        statement.bind(dataset, at: 1)
        statement.bind(externalID, at: 2)
        defer { statement.reset() }
        guard try statement.step() else { return nil }
        return Entry(id: statement.int64(0), optionCount: statement.int(1), label: statement.int(2))
    }

    private func load(_ database: Database, dataset: String) throws {
        var entries: [String: Entry] = [:]
        try database.forEachRow(
            "SELECT external_id, question_id, n_options, label FROM questions WHERE dataset = ?",
            [.text(dataset)]) { row in
            entries[row.string(0) ?? ""] = Entry(id: row.int64(1), optionCount: row.int(2), label: row.int(3))
        }
        known[dataset, default: [:]].merge(entries) { _, new in new }
        loadedDatasets.insert(dataset)
        suspectDatasets.remove(dataset)
    }

    /// The enclosing transaction committed: keep what it inserted.
    func commit() {
        added.removeAll(keepingCapacity: true)
        newQuestions.removeAll()
    }

    /// The enclosing transaction rolled back: forget what it inserted.
    func rollback() {
        for (dataset, externalID) in added { known[dataset]?[externalID] = nil }
        added.removeAll()
        newQuestions.removeAll()
    }
}
