/// What went wrong, as callers branch on it: the command line maps each kind to
/// an exit status and a hint, a service to its own response.
public enum ErrorKind: String, Sendable, Equatable {
    /// The request itself is wrong (a value out of range, a missing name).
    case usage
    /// A named run, file or stored value does not exist.
    case notFound
    /// The request contradicts what the store holds (a run name taken, a question with another label).
    case conflict
    /// An input file or stream is refused, with its file and line.
    case invalidInput
    /// The database failed (locked, damaged, of another version).
    case storage
    /// Reading or writing a file failed.
    case io
}

/// What the caller can do about an error, named without any interface's
/// vocabulary: the command line renders it as a flag, another caller as it likes.
public enum Remedy: Sendable, Equatable {
    /// Rescale rows that do not sum to 1.
    case renormalize
    /// Ingest the same file again, replacing its runs.
    case force
    /// Continue the existing run.
    case append
    /// Replace the existing derived run.
    case replace
    /// Choose another run name.
    case rename
    /// Say the input's format.
    case format
    /// Give the labels of label-less input.
    case labels
    /// Wait longer for another writer's lock.
    case waitLonger
    /// Create a store at this path.
    case create(path: String)
    /// Open the store once with a writing command, which migrates it.
    case migrate(path: String)
    /// Check the store for damage.
    case check(path: String)
    /// Open the store for writing.
    case allowWrites
    /// Include what depends on it (derived runs).
    case recursive
}

/// Every error track's libraries throw: a kind, a message meant for people, and
/// optionally a remedy. Messages name no command-line flags; the remedy does.
public protocol TrackFailure: Error, CustomStringConvertible {
    var kind: ErrorKind { get }
    var message: String { get }
    var remedy: Remedy? { get }
}

/// An input that `track` refuses, located as `file:line: reason`.
public struct InputError: TrackFailure, Sendable, Equatable {
    public var source: String
    public var line: Int?
    public var reason: String
    public var remedy: Remedy?
    public var kind: ErrorKind

    public init(source: String, line: Int? = nil, reason: String, kind: ErrorKind = .invalidInput, remedy: Remedy? = nil) {
        self.source = source
        self.line = line
        self.reason = reason
        self.kind = kind
        self.remedy = remedy
    }

    public var message: String { description }
    public var description: String {
        if let line { return "\(source):\(line): \(reason)" }
        return "\(source): \(reason)"
    }
}

/// A reason a value is invalid, before it is known where it came from.
public struct ValidationError: TrackFailure, Sendable {
    public var reason: String
    public var kind: ErrorKind
    public var remedy: Remedy?
    public init(_ reason: String, kind: ErrorKind = .invalidInput, remedy: Remedy? = nil) {
        self.reason = reason
        self.kind = kind
        self.remedy = remedy
    }
    public var message: String { reason }
    public var description: String { reason }
}

/// A runtime error of the store or a service, with a message meant for the user.
public struct StoreError: TrackFailure, Sendable {
    public var message: String
    public var kind: ErrorKind
    public var remedy: Remedy?
    public init(_ message: String, kind: ErrorKind = .storage, remedy: Remedy? = nil) {
        self.message = message
        self.kind = kind
        self.remedy = remedy
    }
    public var description: String { message }
}
