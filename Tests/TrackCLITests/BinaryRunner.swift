import Foundation
import TrackCLI

/// Runs `track`: in this process (the CLI module is linked: parse → validate → run, output
/// captured) when the command needs nothing of a process — no standard input, environment or
/// working directory of its own; else, and for the tests of traps, signals, pipes and terminals
/// (`launch`), the real binary. TRACK_TEST_PROCESS=1 runs every command as a process.
struct TrackBinary {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var url: URL {
        if let path = ProcessInfo.processInfo.environment["TRACK_BINARY"] { return URL(fileURLWithPath: path) }
        return packageRoot.appendingPathComponent(".build/debug/track")
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        /// Ended by a signal (a trap, an abort) rather than exiting.
        var signaled = false
    }

    static let alwaysLaunch = ProcessInfo.processInfo.environment["TRACK_TEST_PROCESS"] == "1"

    /// Runs `track arguments…` (with `input` on stdin), in-process when it can.
    @discardableResult
    static func run(_ arguments: [String], input: String? = nil, environment: [String: String] = [:],
                    directory: URL? = nil) throws -> Result {
        // `log` reads standard input even when given none: always a process.
        if input == nil, environment.isEmpty, directory == nil, !alwaysLaunch, arguments.first != "log" {
            let result = TrackCLI.runCaptured(arguments)
            return Result(status: result.status, stdout: result.stdout, stderr: result.stderr)
        }
        return try launch(arguments, input: input, environment: environment, directory: directory)
    }

    /// Runs the real `track` binary with `input` on stdin, reading its pipes before waiting on it.
    @discardableResult
    static func launch(_ arguments: [String], input: String? = nil, environment: [String: String] = [:],
                       directory: URL? = nil) throws -> Result {
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "TRACK_DB")
        for (key, value) in environment { env[key] = value }
        process.environment = env
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe(), inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = inPipe
        try process.run()
        if let input {
            inPipe.fileHandleForWriting.write(Data(input.utf8))
        }
        try inPipe.fileHandleForWriting.close()
        // Drain both pipes concurrently so that neither fills and blocks the child.
        let group = DispatchGroup()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self),
                      signaled: process.terminationReason == .uncaughtSignal)
    }

    /// Starts `track` with a writable stdin, for streaming tests.
    static func start(_ arguments: [String]) throws -> (Process, FileHandle) {
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        let inPipe = Pipe()
        process.standardInput = inPipe
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return (process, inPipe.fileHandleForWriting)
    }
}

/// A fresh temporary folder, removed when released.
final class Scratch {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("track-cli-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    @discardableResult
    func write(_ name: String, _ text: String) -> String {
        try! text.write(toFile: path(name), atomically: true, encoding: .utf8)
        return path(name)
    }
}

enum StoreFixtures {
    static func path(_ name: String) -> String {
        TrackBinary.packageRoot.appendingPathComponent("Tests/TrackStoreTests/Fixtures/\(name)").path
    }
}
