/// Maps (dataset, external id) to stored question rows, inserting new ones.
///
/// The index caches what it has seen; entries added inside a transaction are
/// kept apart until it commits, so that a rolled-back ingest leaves no stale
/// ids behind. Another process may insert the same question concurrently:
/// `ON CONFLICT DO NOTHING` then a lookup handles that race.
final class QuestionIndex {
    struct Entry {
        var id: Int64
        var optionCount: Int
        var label: Int
    }

    private var committed: [String: [String: Entry]] = [:]
    private var pending: [String: [String: Entry]] = [:]
    private var loadedDatasets: Set<String> = []

    /// The question's row id; inserts it when new. Throws when the stored
    /// question has a different option count or label.
    func resolve(_ database: Database, dataset: String, externalID: String, subject: String?,
                 optionCount: Int, label: Int) throws -> Int64 {
        if !loadedDatasets.contains(dataset) { try load(database, dataset: dataset) }
        if let entry = committed[dataset]?[externalID] ?? pending[dataset]?[externalID] {
            try check(entry, dataset: dataset, externalID: externalID, optionCount: optionCount, label: label)
            return entry.id
        }
        let insert = try database.cachedStatement("""
            INSERT INTO questions(dataset, external_id, subject, n_options, label) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT(dataset, external_id) DO NOTHING RETURNING question_id
            """)
        insert.bind(dataset, at: 1)
        insert.bind(externalID, at: 2)
        insert.bind(subject, at: 3)
        insert.bind(optionCount, at: 4)
        insert.bind(label, at: 5)
        var entry: Entry
        if try insert.step() {
            entry = Entry(id: insert.int64(0), optionCount: optionCount, label: label)
            while try insert.step() {}
            insert.reset()
        } else {
            insert.reset()
            // Inserted meanwhile by another writer.
            let select = try database.cachedStatement(
                "SELECT question_id, n_options, label FROM questions WHERE dataset = ? AND external_id = ?")
            select.bind(dataset, at: 1)
            select.bind(externalID, at: 2)
            defer { select.reset() }
            guard try select.step() else { throw StoreError("question \(externalID) vanished while inserting") }
            entry = Entry(id: select.int64(0), optionCount: select.int(1), label: select.int(2))
            try check(entry, dataset: dataset, externalID: externalID, optionCount: optionCount, label: label)
        }
        pending[dataset, default: [:]][externalID] = entry
        return entry.id
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

    private func load(_ database: Database, dataset: String) throws {
        var entries: [String: Entry] = [:]
        try database.forEachRow(
            "SELECT external_id, question_id, n_options, label FROM questions WHERE dataset = ?",
            [.text(dataset)]) { row in
            entries[row.string(0) ?? ""] = Entry(id: row.int64(1), optionCount: row.int(2), label: row.int(3))
        }
        committed[dataset, default: [:]].merge(entries) { _, new in new }
        loadedDatasets.insert(dataset)
    }

    /// The enclosing transaction committed: keep what it inserted.
    func commit() {
        for (dataset, entries) in pending { committed[dataset, default: [:]].merge(entries) { _, new in new } }
        pending.removeAll(keepingCapacity: true)
    }

    /// The enclosing transaction rolled back: forget what it inserted.
    func rollback() {
        pending.removeAll(keepingCapacity: true)
        // A rollback may also have undone rows another call loaded; reload lazily.
        loadedDatasets.removeAll()
        committed.removeAll()
    }
}
