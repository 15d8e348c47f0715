import Foundation
import Testing

/// Progress goes to standard error on a terminal only: `script` gives the binary a
/// pseudo-terminal, as a user's shell would.
@Suite struct ProgressTests {
    static func underTerminal(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        let command = ([TrackBinary.url.path] + arguments).map { "'\($0)'" }.joined(separator: " ")
        process.arguments = ["-qec", command, "/dev/null"]
        let output = Pipe()
        process.standardOutput = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script")))
    func ingestShowsBytesOnATerminalAndNothingOtherwise() throws {
        let scratch = Scratch()
        var csv = "id,p0,p1,label\n"
        for i in 0..<120_000 { csv += "q\(i),0.25,0.75,\(i % 2)\n" }
        let path = scratch.write("big.csv", csv)
        let terminal = try Self.underTerminal(["ingest", path, "--db", scratch.path("a.sqlite")])
        #expect(terminal.contains("ingest big.csv: ") && terminal.contains(" MB/"), "\(terminal.prefix(300))")
        let quiet = try Self.underTerminal(["ingest", path, "--db", scratch.path("b.sqlite"), "--quiet"])
        #expect(!quiet.contains("ingest big.csv: ") && quiet.contains("120000 questions"))
        // Not a terminal: nothing, on either stream.
        let piped = try TrackBinary.run(["ingest", path, "--db", scratch.path("c.sqlite")])
        #expect(piped.status == 0 && !piped.stderr.contains("MB/") && !piped.stdout.contains("MB/"))
    }
}
