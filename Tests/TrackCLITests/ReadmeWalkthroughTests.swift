import Foundation
import Testing
import TrackStore

/// The README's walkthrough, run as printed.
@Suite struct ReadmeWalkthroughTests {
    static func walkthrough() throws -> String {
        let readme = try String(contentsOf: TrackBinary.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        guard let marker = readme.range(of: "<!-- walkthrough: tested -->"),
              let open = readme.range(of: "```sh\n", range: marker.upperBound..<readme.endIndex),
              let close = readme.range(of: "\n```", range: open.upperBound..<readme.endIndex) else {
            throw CancellationError()
        }
        return String(readme[open.upperBound..<close.lowerBound])
    }

    @Test func walkthroughRunsAsPrinted() throws {
        let scratch = Scratch()
        // The repository layout the commands refer to, and `track` on PATH.
        let fixtures = scratch.url.appendingPathComponent("Tests/TrackStoreTests")
        try FileManager.default.createDirectory(at: fixtures, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: TrackBinary.packageRoot.appendingPathComponent("Tests/TrackStoreTests/Fixtures"),
                                         to: fixtures.appendingPathComponent("Fixtures"))
        let bin = scratch.url.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: bin.appendingPathComponent("track"), withDestinationURL: TrackBinary.url)
        let script = scratch.write("walkthrough.sh", "set -euo pipefail\n" + (try Self.walkthrough()))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script]
        process.currentDirectoryURL = scratch.url
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = bin.path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        environment.removeValue(forKey: "TRACK_DB")
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let group = DispatchGroup()
        nonisolated(unsafe) var errText = Data()
        group.enter()
        DispatchQueue.global().async { errText = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        group.wait()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(String(decoding: errText, as: UTF8.self))\n\(output)")
        // What each step should have produced.
        #expect(output.contains("logged 200 questions to run 'llama-dpo'"))
        #expect(output.contains("2 questions -> run 'Qwen/Qwen3-8B/casino_belief'"))
        #expect(output.contains("wrote derived run 'llama-dpo+TS'"))
        let store = try RunStore(path: scratch.path("walkthrough.sqlite"), readOnly: true)
        #expect(try store.runSummaries().map(\.name).sorted() == ["Qwen/Qwen3-8B/casino_belief", "llama-dpo", "llama-dpo+TS"])
        for file in ["exports/walkthrough/table2.tex", "exports/walkthrough/reliability.png", "exports/walkthrough/reliability.png.csv"] {
            #expect(FileManager.default.fileExists(atPath: scratch.path(file)), "\(file)")
        }
        #expect(try store.database.scalarInt("SELECT count(*) FROM exports") == 1)
    }
}
