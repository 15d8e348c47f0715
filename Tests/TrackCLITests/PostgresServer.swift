import Foundation

/// A real PostgreSQL server for the tests: Debian's `postgresql` package, initialised in a
/// temporary folder (initdb as an unprivileged user when the tests run as root), listening
/// only on a Unix socket there, with password authentication. One server serves every test of
/// the process (`shared()`), each test in a database of its own; it is stopped when the tests end.
final class PostgresServer: @unchecked Sendable {   // its fields are constants
    private static let sharedServer = Result { try PostgresServer() }

    /// The server every test shares, started by the first that asks (and stopped at exit).
    static func shared() throws -> PostgresServer {
        let server = try sharedServer.get()
        _ = stopAtExit
        return server
    }

    private static let stopAtExit: Void = {
        atexit {
            if case .success(let server) = PostgresServer.sharedServer { server.stop() }
        }
    }()

    static let user = "track"
    static let password = "pg-s3cret-Pw"
    let directory: URL
    let port: Int
    let binaries: URL

    /// The URI of database `name` (created on demand), without the password.
    func uri(_ database: String = "postgres") -> String {
        "postgresql://\(Self.user)@/\(database)?host=\(directory.path)&port=\(port)"
    }

    /// What `track` needs to connect: the password where libpq looks for it.
    var environment: [String: String] { ["PGPASSWORD": Self.password] }

    static func findBinaries() throws -> URL {
        let root = URL(fileURLWithPath: "/usr/lib/postgresql")
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        for version in versions.sorted(by: >) {
            let bin = root.appendingPathComponent(version).appendingPathComponent("bin")
            if FileManager.default.isExecutableFile(atPath: bin.appendingPathComponent("initdb").path) { return bin }
        }
        throw TestFailure("PostgreSQL server binaries not found under /usr/lib/postgresql (`make test` installs Debian's postgresql)")
    }

    init() throws {
        binaries = try Self.findBinaries()
        directory = URL(fileURLWithPath: "/tmp/track-pg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = Int.random(in: 20_000...60_000)
        let passwordFile = directory.appendingPathComponent("pw")
        try Self.password.write(to: passwordFile, atomically: true, encoding: .utf8)
        if getuid() == 0 {
            // initdb and postgres refuse to run as root: the package's unprivileged user does.
            try Self.shell(["chown", "-R", "postgres", directory.path])
        }
        try run("initdb", ["-D", directory.appendingPathComponent("data").path, "-U", Self.user, "--auth=scram-sha-256",
                           "--pwfile=\(passwordFile.path)", "-E", "UTF8", "--locale=C", "-N"])
        try run("pg_ctl", ["-D", directory.appendingPathComponent("data").path, "-l", directory.appendingPathComponent("log").path, "-w",
                           "-o", "-k \(directory.path) -c listen_addresses='' -p \(port) -c fsync=off -c max_connections=120", "start"])
    }

    func stop() {
        try? run("pg_ctl", ["-D", directory.appendingPathComponent("data").path, "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs a server tool as the unprivileged user when the tests are root.
    func run(_ tool: String, _ arguments: [String]) throws {
        let path = binaries.appendingPathComponent(tool).path
        try Self.shell(getuid() == 0 ? ["runuser", "-u", "postgres", "--", path] + arguments : [path] + arguments)
    }

    /// Runs a command to its end (posix_spawn and waitpid: `pg_ctl start` leaves a daemon behind,
    /// which Foundation's Process does not always see past), its output in a file.
    @discardableResult
    static func shell(_ command: [String], environment: [String: String] = [:]) throws -> String {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("track-pg-out-\(UUID().uuidString)").path
        defer { unlink(log) }
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = command.map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0)=\($1)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, command[0], &actions, nil, argv, envp)
        guard spawned == 0 else { throw TestFailure("cannot start \(command[0]): error \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard status == 0 else { throw TestFailure("\(command.joined(separator: " ")) failed (\(status)): \(text)") }
        return text
    }

    /// `psql` on database `name`: one value per line, fields separated by `|`.
    func psql(_ sql: String, database: String = "postgres") throws -> String {
        try Self.shell(["psql", uri(database), "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql], environment: environment)
    }

    /// Creates a database of its own for one test.
    func createDatabase(_ name: String) throws -> String {
        _ = try psql("CREATE DATABASE \"\(name)\"")
        return uri(name)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
