import Foundation
import PackagePlugin

/// Embeds every `sql/*.sql` file of the package into the target as
/// `EmbeddedSQL.files`, regenerated whenever one of them changes.
@main
struct EmbedSQL: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let sqlDirectory = context.package.directoryURL.appending(path: "sql")
        // sql/*.sql (SQLite) and sql/postgres/*.sql (PostgreSQL's dialect), the latter named `postgres/…`.
        var names: [String] = []
        for directory in ["", "postgres/"] {
            let url = directory.isEmpty ? sqlDirectory : sqlDirectory.appending(path: directory)
            guard let files = try? FileManager.default.contentsOfDirectory(atPath: url.path) else { continue }
            names += files.filter { $0.hasSuffix(".sql") }.sorted().map { directory + $0 }
        }
        let inputs = names.map { sqlDirectory.appending(path: $0) }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedSQL.swift")
        return [
            .buildCommand(
                displayName: "Embedding sql/*.sql",
                executable: try context.tool(named: "embed-sql").url,
                arguments: [output.path] + inputs.map(\.path),
                inputFiles: inputs,
                outputFiles: [output]
            )
        ]
    }
}
