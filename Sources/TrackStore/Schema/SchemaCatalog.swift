import Foundation

/// The tables and views of a track store as `sql/schema.sql` and `sql/views.sql` document them
/// (the comments above each statement and beside each column, embedded in the binary), with
/// every column as SQLite reports it: what `track schema` prints, so that a user finds
/// `runs.run_id` without reading the repository.
public struct SchemaCatalog: Sendable {
    public struct Column: Sendable, Equatable {
        public var name: String
        /// The declared type (a view's computed column has none).
        public var type: String
        /// The comment beside the column in sql/, if any.
        public var note: String
    }

    public struct Object: Sendable {
        public var name: String
        /// "table" or "view".
        public var kind: String
        /// The `-- MARK:` section of sql/ it is in.
        public var section: String
        /// The comment above its CREATE statement.
        public var description: String
        /// Kept by track for its own work (summaries, bookkeeping; named `_track_…` since schema
        /// version 7): listed with `--all` only.
        public var isInternal: Bool
        public var columns: [Column]
    }

    public var objects: [Object]

    /// Sections of sql/ whose tables and views are track's own machinery.
    static let internalSections = ["summaries kept as data (since version 5)", "summaries, stored or computed for stale runs"]
    static let internalNames: Set<String> = ["track_meta", "runs_autoincrement"]

    /// The catalogue of this binary's schema: statements and comments from the embedded sql/, the
    /// columns from a scratch store made with them (in a private temporary folder, removed after).
    public static func current() throws -> SchemaCatalog {
        var objects = parse(Schema.sql("schema.sql"), kind: "table") + parse(Schema.sql("views.sql"), kind: "view")
        let folder = try TemporaryFolders.make(prefix: "track-schema")
        defer { TemporaryFolders.remove(folder) }
        let store = try RunStore(path: folder.appendingPathComponent("schema.sqlite").path)
        for index in objects.indices {
            var columns: [Column] = []
            try store.database.forEachRow("SELECT name, type FROM pragma_table_info(?)", [.text(objects[index].name)]) { row in
                let name = row.string(0) ?? ""
                let note = objects[index].columns.first { $0.name == name }?.note ?? ""
                columns.append(Column(name: name, type: row.string(1) ?? "", note: note))
            }
            objects[index].columns = columns
        }
        return SchemaCatalog(objects: objects)
    }

    /// The CREATE TABLE / CREATE VIEW statements of an sql/ file with the comment block above each
    /// and the comments beside their columns (`name TYPE … -- note`, `… AS name, -- note`).
    static func parse(_ text: String, kind: String) -> [Object] {
        var objects: [Object] = []
        var section = "", comment: [String] = []
        var current: Int?
        let create = kind == "table" ? /^CREATE TABLE ([a-z_]+) \(/ : /^CREATE VIEW ([a-z_]+) AS/
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if let index = current {
                // Inside the statement: a column's comment.
                if let dash = line.range(of: "--") {
                    let note = line[dash.upperBound...].trimmingCharacters(in: .whitespaces)
                    let code = line[..<dash.lowerBound]
                    let name = kind == "table" ? code.firstMatch(of: /^\s+([a-z_0-9]+)\s+[A-Z]+/)?.output.1
                                               : code.firstMatch(of: /AS ([a-z_0-9]+),?\s*$/)?.output.1
                    if let name { objects[index].columns.append(Column(name: String(name), type: "", note: note)) }
                }
                if trimmed.hasSuffix(";") { current = nil }
                continue
            }
            if let match = line.firstMatch(of: create) {
                let name = String(match.output.1)
                objects.append(Object(name: name, kind: kind, section: section, description: comment.joined(separator: " "),
                                      isInternal: name.hasPrefix("_track_") || internalSections.contains(section) || internalNames.contains(name),
                                      columns: []))
                current = trimmed.hasSuffix(";") ? nil : objects.count - 1
                comment = []
            } else if trimmed.hasPrefix("--") {
                let body = trimmed.dropFirst(2).trimmingCharacters(in: .whitespaces)
                if body.hasPrefix("MARK:") {
                    section = body.dropFirst(5).trimmingCharacters(in: .whitespaces)
                    comment = []
                } else {
                    comment.append(body)
                }
            } else {
                comment = []   // a blank line or another statement ends a comment block
            }
        }
        return objects
    }

    /// The public objects (and, with `all`, track's own).
    public func listed(all: Bool) -> [Object] { objects.filter { all || !$0.isInternal } }
}
