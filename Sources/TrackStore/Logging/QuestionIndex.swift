/// Maps (dataset, external id) to question rows, allocating ids for new ones, in memory that
/// does not grow with the file: a bounded cache of entries and a fixed-size Bloom filter.
///
/// Used inside write transactions only. `begin` must be called at the start
/// of each: holding the write lock, the index can allocate ids itself
/// (`max(question_id) + 1`, …) and insert new questions in multi-row
/// statements. A dataset with few stored questions (≤ `cacheLimit` in all) is loaded whole
/// ("complete": a miss is a new question); a larger one is scanned into the Bloom filter
/// instead, as is every question this index adds once the cache is full: a miss the filter
/// cannot hold is new, one it may hold is looked up in the file (an index seek). `PRAGMA
/// data_version` tells whether another connection has committed since, in which case every
/// miss of the datasets it may have touched is looked up. A rollback empties the cache (the
/// filter's stale members cost a lookup, never a wrong answer).
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

    private struct Key: Hashable {
        var dataset: String
        var externalID: String
    }

    /// Entries cached, by dataset and external id: at most `cacheLimit` in all.
    private var known: [String: [String: Entry]] = [:]
    private var cached = 0
    /// Entries kept at most (tests set a small one to exercise the filter).
    var cacheLimit = 200_000
    /// Datasets whose every stored question is in `known`.
    private var complete: Set<String> = []
    private var loadedDatasets: Set<String> = []
    /// Loaded datasets another connection may have added questions to since.
    private var suspectDatasets: Set<String> = []
    /// Questions allocated and not yet inserted (at most one flush's worth).
    private var newQuestions: [NewQuestion] = []
    private var pending: [Key: Int] = [:]
    /// Questions of large datasets and those added beyond the cache: "maybe known" or "surely new".
    private var seen = BloomFilter()
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
        let key = Key(dataset: dataset, externalID: externalID)
        if let index = pending[key] {
            let queued = newQuestions[index]
            try check(Entry(id: queued.id, optionCount: queued.optionCount, label: queued.label), dataset: dataset,
                      externalID: externalID, optionCount: optionCount, label: label)
            return queued.id
        }
        // Hashed only when the filter is asked (a complete dataset with room in the cache never is).
        var hash: (UInt64, UInt64)?
        func hashed() -> (UInt64, UInt64) {
            if let hash { return hash }
            let value = BloomFilter.hash(dataset, externalID)
            hash = value
            return value
        }
        let mayBeStored = suspectDatasets.contains(dataset) || (!complete.contains(dataset) && seen.mayContain(hashed()))
        if mayBeStored, let found = try find(database, dataset: dataset, externalID: externalID) {
            try check(found, dataset: dataset, externalID: externalID, optionCount: optionCount, label: label)
            cache(found, dataset: dataset, externalID: externalID)
            return found.id
        }
        let entry = Entry(id: nextID, optionCount: optionCount, label: label)
        nextID += 1
        pending[key] = newQuestions.count
        newQuestions.append(NewQuestion(id: entry.id, dataset: dataset, externalID: externalID, subject: subject,
                                        category: category, optionCount: optionCount, label: label))
        if !cache(entry, dataset: dataset, externalID: externalID) { seen.insert(hashed()) }
        if newQuestions.count >= 2048 { try flush(database) }
        return entry.id
    }

    /// Keeps an entry while the cache has room; false (and the dataset no longer complete) when full.
    @discardableResult
    private func cache(_ entry: Entry, dataset: String, externalID: String) -> Bool {
        guard cached < cacheLimit else {
            complete.remove(dataset)
            return false
        }
        if known[dataset, default: [:]].updateValue(entry, forKey: externalID) == nil { cached += 1 }
        return true
    }

    /// Inserts the queued new questions (before any row that refers to them).
    func flush(_ database: Database) throws {
        guard !newQuestions.isEmpty else { return }
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
        pending.removeAll(keepingCapacity: true)
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

    /// A dataset's stored questions: into the cache when they fit (the dataset is then complete),
    /// else their ids into the Bloom filter (a streaming scan, no entry kept).
    private func load(_ database: Database, dataset: String) throws {
        let count = Int(try database.scalarInt("SELECT count(*) FROM questions WHERE dataset = ?", [.text(dataset)]) ?? 0)
        if cached + count <= cacheLimit {
            var entries: [String: Entry] = [:]
            try database.forEachRow(
                "SELECT external_id, question_id, n_options, label FROM questions WHERE dataset = ?",
                [.text(dataset)]) { row in
                entries[row.string(0) ?? ""] = Entry(id: row.int64(1), optionCount: row.int(2), label: row.int(3))
            }
            let before = known[dataset]?.count ?? 0
            known[dataset, default: [:]].merge(entries) { _, new in new }
            cached += (known[dataset]?.count ?? 0) - before
            complete.insert(dataset)
        } else {
            try database.forEachRow("SELECT external_id FROM questions WHERE dataset = ?", [.text(dataset)]) { row in
                seen.insert(BloomFilter.hash(dataset, row.string(0) ?? ""))
            }
            complete.remove(dataset)
        }
        loadedDatasets.insert(dataset)
        suspectDatasets.remove(dataset)
    }

    /// The enclosing transaction committed: keep what it inserted.
    func commit() {
        newQuestions.removeAll()
        pending.removeAll()
    }

    /// The enclosing transaction rolled back: forget every cached entry (some were its own);
    /// datasets are loaded again on their next use.
    func rollback() {
        known.removeAll()
        cached = 0
        complete.removeAll()
        loadedDatasets.removeAll()
        suspectDatasets.removeAll()
        newQuestions.removeAll()
        pending.removeAll()
    }
}

/// A fixed-size Bloom filter of (dataset, external id) pairs: 2²⁶ bits (8 MB), 4 probes, so
/// about 0.2% false positives at 4 million members; never a false negative.
struct BloomFilter {
    private var words = [UInt64](repeating: 0, count: 1 << 20)
    private static let mask: UInt64 = (1 << 26) - 1

    /// The two hashes the probes are made of (computed once per question).
    static func hash(_ dataset: String, _ externalID: String) -> (UInt64, UInt64) {
        var hasher = Hasher()
        hasher.combine(dataset)
        hasher.combine(externalID)
        let h = UInt64(bitPattern: Int64(hasher.finalize()))
        // Two independent-enough halves for double hashing (the second odd).
        return (h, (h >> 29 | h << 35) | 1)
    }

    mutating func insert(_ hash: (UInt64, UInt64)) {
        for i in 0..<UInt64(4) {
            let bit = (hash.0 &+ i &* hash.1) & Self.mask
            words[Int(bit >> 6)] |= 1 << (bit & 63)
        }
    }

    func mayContain(_ hash: (UInt64, UInt64)) -> Bool {
        for i in 0..<UInt64(4) {
            let bit = (hash.0 &+ i &* hash.1) & Self.mask
            if words[Int(bit >> 6)] & (1 << (bit & 63)) == 0 { return false }
        }
        return true
    }
}
