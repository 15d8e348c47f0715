import Foundation
import TrackStore

/// `track merge`: combine shard databases written on several machines.
enum MergeCommand: Command {
    static let spec = CommandSpec(
        name: "merge", abstract: "Merge shard databases into one: nothing collides or duplicates; merging again changes nothing.",
        usage: "<shard.sqlite>... --into <all.sqlite>",
        discussion: """
        Runs are keyed by their uuid, questions by (dataset, external id), experiments by name; each
        shard is merged in one transaction. A run already in the target is skipped, so repeating a
        merge changes nothing; a run whose name is taken by another run is renamed 'name [uuid]'.
        Shards of another schema version, or whose questions contradict the target's (other
        label or option count), are refused and nothing of them is merged.
        """,
        arguments: [("<shard.sqlite>...", "Shard databases.")],
        options: [
            .value("into", "path", "The database to merge into (created if missing)."),
            .value("busy-timeout", "seconds", "How long to wait for another writer's lock (default: 10)."),
        ])

    static func run(_ arguments: ParsedArguments) throws {
        guard !arguments.positionals.isEmpty else { throw UsageError(message: "expected shard databases") }
        guard let into = arguments.value("into") else { throw UsageError(message: "--into <all.sqlite> is required") }
        let store = try RunStore(path: into, busyTimeout: try arguments.double("busy-timeout") ?? 10)
        var failures = 0
        for shard in arguments.positionals {
            do {
                let report = try store.merge(shard: shard)
                var text = "\(shard): \(report.newRuns.count) new runs, \(report.newQuestions) new questions"
                if report.skippedRuns > 0 { text += ", \(report.skippedRuns) runs already merged" }
                Console.out(text + "\n")
                for (from, to) in report.renamedRuns { Console.out("  renamed '\(from)' -> '\(to)' (the name was taken)\n") }
            } catch {
                failures += 1
                Console.err("Error: \(error)\n")
            }
        }
        if failures > 0 { throw CommandFailure(message: "", status: 1) }
    }
}
