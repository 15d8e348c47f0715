import Foundation

/// `track rm`, `rename`, `tag` and `set` on the server itself, each in one transaction (the
/// PostgreSQL half of `RunManaging`; the per-question tables follow a deleted run through the
/// `runs_deleted` trigger, the rest through ON DELETE CASCADE).
extension PostgresStore: RunManaging {
    private func runID(_ name: String) throws -> Int64? {
        if case .integer(let id)? = try connection.query("SELECT run_id FROM runs WHERE name = $1", [.text(name)]).rows.first?.first { return id }
        return nil
    }

    private func unknownRun(_ name: String, _ consequence: String) -> StoreError {
        StoreError("no run named '\(name)' on \(displayName); \(consequence)", kind: .notFound)
    }

    /// The run and the runs derived from it, to any depth (a cycle written by plain SQL ends:
    /// UNION keeps each run once), derived-only when `derived`.
    private func family(of id: Int64, derivedOnly: Bool) throws -> [(id: Int64, name: String, parent: Int64?)] {
        try connection.query("""
            WITH RECURSIVE family(run_id) AS (
                SELECT $1::bigint
                UNION
                SELECT r.run_id FROM runs r JOIN family f ON r.parent_run_id = f.run_id\(derivedOnly ? " WHERE r.source_format = 'derived'" : "")
            )
            SELECT r.run_id, r.name, r.parent_run_id FROM runs r JOIN family USING (run_id) ORDER BY r.run_id
            """, [.integer(id)]).rows.compactMap { row in
            guard case .integer(let id) = row[0], case .text(let name) = row[1] else { return nil }
            if case .integer(let parent) = row[2] { return (id, name, parent) }
            return (id, name, nil)
        }
    }

    public func deleteRuns(named names: [String], recursive: Bool) throws -> [String] {
        try withRetry {
            try connection.transaction {
                var deleted: [String] = []
                for name in names {
                    guard let id = try runID(name) else {
                        if deleted.contains(name) { continue }
                        throw unknownRun(name, "nothing was deleted")
                    }
                    let members = try family(of: id, derivedOnly: false)
                    let children = members.filter { $0.id != id }
                    if !children.isEmpty, !recursive {
                        throw StoreError("run '\(name)' has derived runs (\(children.prefix(5).map { "'\($0.name)'" }.joined(separator: ", "))\(children.count > 5 ? ", …" : "")); nothing was deleted",
                                         kind: .conflict, remedy: .recursive)
                    }
                    let ids = members.map { String($0.id) }.joined(separator: ",")
                    try connection.query("UPDATE runs SET parent_run_id = NULL WHERE parent_run_id IN (\(ids))")
                    try connection.query("DELETE FROM runs WHERE run_id IN (\(ids))")
                    deleted += members.reversed().map(\.name)
                }
                return deleted
            }
        }
    }

    public func renameRun(_ old: String, to new: String) throws {
        guard !new.isEmpty else { throw StoreError("a run needs a name", kind: .usage) }
        try withRetry {
            try connection.transaction {
                guard let id = try runID(old) else { throw unknownRun(old, "nothing was renamed") }
                if try runID(new) != nil { throw StoreError("a run named '\(new)' already exists on \(displayName)", kind: .conflict) }
                try connection.query("UPDATE runs SET name = $1 WHERE run_id = $2", [.text(new), .integer(id)])
            }
        }
    }

    public func tagRun(_ name: String, set tags: [String: String], remove keys: [String]) throws {
        try withRetry {
            try connection.transaction {
                guard let id = try runID(name) else { throw unknownRun(name, "nothing was tagged") }
                for key in keys { try connection.query("DELETE FROM tags WHERE run_id = $1 AND key = $2", [.integer(id), .text(key)]) }
                for (key, value) in tags.sorted(by: { $0.key < $1.key }) {
                    try connection.query("INSERT INTO tags(run_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                                         [.integer(id), .text(key), .text(value)])
                }
            }
        }
    }

    @discardableResult
    public func setRunMetadata(_ name: String, _ changes: RunMetadataChanges) throws -> [String] {
        try changes.validate()
        return try withRetry {
            try connection.transaction {
                guard let id = try runID(name) else { throw unknownRun(name, "nothing was set") }
                let row = try connection.query("SELECT p.name, r.source_format FROM runs r LEFT JOIN runs p ON p.run_id = r.parent_run_id WHERE r.run_id = $1",
                                               [.integer(id)]).rows.first
                if case .text(let parentName)? = row?[0], row?[1] == .text("derived") {
                    throw StoreError("'\(name)' is derived from '\(parentName)' (derived): its model, split, epoch and step are its parent's and its method names how it was derived; set them on '\(parentName)' (its derived runs follow)", kind: .conflict)
                }
                let members = try family(of: id, derivedOnly: true)
                let assignments = changes.sharedAssignments
                if !assignments.isEmpty {
                    let set = assignments.enumerated().map { "\($1.column) = $\($0 + 1)" }.joined(separator: ", ")
                    try connection.query("UPDATE runs SET \(set) WHERE run_id IN (\(members.map { String($0.id) }.joined(separator: ",")))",
                                         assignments.map(\.value))
                }
                if let method = changes.method {
                    try connection.query("UPDATE runs SET method = $1 WHERE run_id = $2", [.text(method), .integer(id)])
                    try connection.query("UPDATE params SET value = $1 WHERE key LIKE '%.parent_method' AND run_id IN (SELECT run_id FROM runs WHERE parent_run_id = $2 AND source_format = 'derived')",
                                         [.text(method), .integer(id)])
                }
                return assignments.isEmpty ? [name] : members.map(\.name)
            }
        }
    }
}
