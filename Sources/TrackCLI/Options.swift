import Foundation
import TrackAnalysis
import TrackCalibration
import TrackStore

/// A command-line option, declared once — name, value type with its allowed
/// range or choices, default and help — and shared by every command that
/// takes it. The parser checks every given value against its declaration
/// before the command runs, so a bad value is a usage error (exit 64) in
/// every command alike.
struct Option: Sendable {
    enum Kind: Sendable {
        case flag
        case text
        case integer(ClosedRange<Int64>)
        case number(ClosedRange<Double>)
        case choice([String])
    }

    var name: String          // without dashes, e.g. "db"
    var valueName: String
    var help: String
    var kind: Kind
    var defaultValue: String?
    var repeatable = false

    static func flag(_ name: String, _ help: String) -> Option {
        Option(name: name, valueName: "", help: help, kind: .flag)
    }
    static func text(_ name: String, _ valueName: String, _ help: String, default value: String? = nil, repeatable: Bool = false) -> Option {
        Option(name: name, valueName: valueName, help: help, kind: .text, defaultValue: value, repeatable: repeatable)
    }
    static func integer(_ name: String, _ valueName: String, _ range: ClosedRange<Int64>, _ help: String, default value: Int64? = nil) -> Option {
        Option(name: name, valueName: valueName, help: help, kind: .integer(range), defaultValue: value.map(String.init))
    }
    static func number(_ name: String, _ valueName: String, _ range: ClosedRange<Double>, _ help: String, default value: Double? = nil) -> Option {
        Option(name: name, valueName: valueName, help: help, kind: .number(range), defaultValue: value.map { JSONValue.format($0) })
    }
    static func choice(_ name: String, _ choices: [String], _ help: String, default value: String? = nil) -> Option {
        Option(name: name, valueName: choices.joined(separator: "|"), help: help, kind: .choice(choices), defaultValue: value)
    }
    static func choice<T: RawRepresentable & CaseIterable>(_ name: String, _ type: T.Type, _ help: String, default value: T? = nil) -> Option where T.RawValue == String {
        choice(name, T.allCases.map(\.rawValue), help, default: value?.rawValue)
    }

    var takesValue: Bool {
        if case .flag = kind { return false }
        return true
    }

    /// The help line's text: the help, the allowed values and the default.
    var fullHelp: String {
        var text = help
        switch kind {
        case .integer(let range): text += " [\(Self.describe(range))]"
        case .number(let range): text += " [\(Self.describe(range))]"
        default: break
        }
        if let defaultValue { text += " (default: \(defaultValue))" }
        return text + (repeatable ? " (repeatable)" : "")
    }

    static func describe(_ range: ClosedRange<Int64>) -> String {
        range.upperBound == .max ? "≥ \(range.lowerBound)" : "\(range.lowerBound)…\(range.upperBound)"
    }
    static func describe(_ range: ClosedRange<Double>) -> String {
        "\(JSONValue.format(range.lowerBound))…\(JSONValue.format(range.upperBound))"
    }

    /// Checks one value against the declaration; the error names the option and what it accepts.
    func check(_ text: String) throws {
        switch kind {
        case .flag, .text: return
        case .integer(let range):
            guard let value = Int64(text), range.contains(value) else {
                throw UsageError(message: "--\(name) expects an integer \(range.upperBound == .max ? "" : "in ")\(Self.describe(range)), got '\(text)'")
            }
        case .number(let range):
            // Decimal notation only: Double("0x10") reads a hexadecimal float, "inf" and "nan" read too.
            guard let value = decimalNumber(text, trimming: false), range.contains(value) else {
                throw UsageError(message: "--\(name) expects a number in \(Self.describe(range)), got '\(text)'")
            }
        case .choice(let choices):
            guard choices.contains(text) else {
                throw UsageError(message: "--\(name) must be one of \(choices.joined(separator: ", ")), got '\(text)'")
            }
        }
    }
}

/// What a command's option list holds: a plain option, or one read back as its type.
protocol Declared: Sendable {
    var option: Option { get }
}

extension Option: Declared {
    var option: Option { self }
}

extension Defaulted: Declared {}

/// An option with a default, read back as its type: the parser checked the text against the
/// declaration, and the default is a value of the type itself, so a read cannot fail and never
/// needs unwrapping (`arguments[BootstrapOptions.resamples]` is an `Int`).
struct Defaulted<Value: Sendable>: Sendable {
    let option: Option
    let read: @Sendable (String) -> Value?
    let fallback: Value
}

extension Defaulted where Value == Int {
    static func integer(_ name: String, _ valueName: String, _ range: ClosedRange<Int>, _ help: String, default value: Int) -> Self {
        Self(option: .integer(name, valueName, Int64(range.lowerBound)...Int64(range.upperBound), help, default: Int64(value)),
             read: { Int($0) }, fallback: value)
    }
}

extension Defaulted where Value == Int64 {
    static func integer(_ name: String, _ valueName: String, _ range: ClosedRange<Int64>, _ help: String, default value: Int64) -> Self {
        Self(option: .integer(name, valueName, range, help, default: value), read: { Int64($0) }, fallback: value)
    }
}

extension Defaulted where Value == Double {
    static func number(_ name: String, _ valueName: String, _ range: ClosedRange<Double>, _ help: String, default value: Double) -> Self {
        Self(option: .number(name, valueName, range, help, default: value), read: { Double($0) }, fallback: value)
    }
}

extension Defaulted where Value == String {
    static func text(_ name: String, _ valueName: String, _ help: String, default value: String) -> Self {
        Self(option: .text(name, valueName, help, default: value), read: { $0 }, fallback: value)
    }
}

extension Defaulted where Value: RawRepresentable & CaseIterable, Value.RawValue == String {
    /// A choice among `allowed` (default: every case), parsed into the enum.
    static func choice(_ name: String, _ help: String, default value: Value, allowed: [Value] = Array(Value.allCases)) -> Self {
        Self(option: .choice(name, allowed.map(\.rawValue), help, default: value.rawValue), read: { Value(rawValue: $0) }, fallback: value)
    }
}

/// The bootstrap's and the splits' settings, declared once with one default each for every
/// command that resamples or splits (metrics --ci, compare, table --significance, plot bands,
/// report, calibrate's holdout and folds, the demo's simulation).
struct BootstrapOptions {
    static let resamples = Defaulted.integer("resamples", "n", 1...100_000, "Bootstrap resamples.", default: 1000)
    static let seed = Defaulted<Int64>.integer("seed", "n", Int64.min...Int64.max, "Random seed (bootstrap resampling, holdout split, folds, simulation).", default: 0)
    static let level = Defaulted.number("level", "x", 0.01...0.999_999, "Interval level.", default: 0.95)

    var resamples: Int
    var seed: Int64
    var level: Double

    init(_ arguments: ParsedArguments) {
        resamples = arguments[Self.resamples]
        seed = arguments[Self.seed]
        level = arguments[Self.level]
    }

    var settings: BootstrapSettings { BootstrapSettings(resamples: resamples, seed: seed, level: level) }
}

/// The binning every binned metric shares.
struct BinningOptions {
    static let bins = Defaulted.integer("bins", "n", 1...10_000, "Number of confidence bins.", default: 10)
    static let epsilon = Defaulted.number("epsilon", "x", 0...0.999_999, "TACE threshold: only p > x count.", default: 0.01)
    static let options: [any Declared] = [bins, epsilon]

    static func settings(_ arguments: ParsedArguments) -> BinSettings {
        BinSettings(bins: arguments[bins], epsilon: arguments[epsilon])
    }
}

/// Every option of every command. An option with one meaning is declared once here;
/// a flag name with two meanings (e.g. `--columns` of `plot` and of `table`) is two options.
enum Options {
    // The store
    static let db = Option.text("db", "path", "The track database: a SQLite file or a PostgreSQL URI (postgresql://…) (default: $TRACK_DB, else ./track.sqlite).")
    static let busyTimeout = Option.number("busy-timeout", "seconds", 0...86_400, "How long to wait for another writer's lock (on PostgreSQL: to connect).", default: 10)
    static let quiet = Option.flag("quiet", "No progress on standard error (shown only on a terminal anyway).")
    static let database: [any Declared] = [db, busyTimeout, quiet]

    // Run metadata
    static let run = Option.text("run", "name", "Run name (log: required; ingest: default derived from the input).")
    static let experiment = Option.text("experiment", "name", "Experiment the run belongs to.")
    static let model = Option.text("model", "name", "Model checkpoint, e.g. Llama-3.1-8B-Tulu.")
    static let method = Option.text("method", "name", "Method, e.g. base, SFT, DPO, TS, CFT, RCFT.")
    static let dataset = Option.text("dataset", "name", "Dataset, e.g. mmlu, medmcqa.")
    static let split = Option.text("split", "name", "Split, e.g. in-domain, out-domain, test.")
    static let step = Option.integer("step", "n", 0...Int64.max, "Training step.")
    static let epoch = Option.number("epoch", "x", 0...1e9, "Training epoch.")
    static let extraction = Option.choice("extraction", RunMetadata.extractionMethods, "Confidence extraction.")
    static let param = Option.text("param", "key=value", "A run parameter.", repeatable: true)
    static let tag = Option.text("tag", "key=value", "A run tag.", repeatable: true)
    static let metadata: [any Declared] = [run, experiment, model, method, dataset, split, step, epoch, extraction, param, tag]

    // Filters of listed runs
    static let filters: [any Declared] = [
        Option.text("model", "name", "Only runs of this model."), Option.text("method", "name", "Only runs of this method."),
        Option.text("dataset", "name", "Only runs on this dataset."), Option.text("split", "name", "Only runs on this split."),
        Option.text("tag", "key=value", "Only runs with this tag.", repeatable: true),
    ]

    // Input validation
    static let renormalize = Option.flag("renormalize", "Rescale probability rows that do not sum to 1 instead of refusing them.")
    static let skipInvalid = Option.flag("skip-invalid", "Skip bad rows and report each, instead of refusing the input.")
    static let validation: [any Declared] = [renormalize, skipInvalid]

    // Metrics
    static let analysis = BinningOptions.options
    static let metrics = Option.text("metrics", "keys", "Comma-separated metric keys (\(MetricKey.allCases.map(\.rawValue).joined(separator: ", "))).")
    static let metric = Defaulted.choice("metric", "The metric drawn.", default: MetricKey.confECE)
    static let by = Option.choice("by", GroupKey.self, "Break down by question subject, category or dataset.")

    // Regimes
    static let target = Option.text("target", "run", "The target run p* (a calibrated, most accurate model); its accuracy is A*.")
    static let aStar = Option.number("a-star", "x", 0...1, "The critical accuracy A*.")
    static let cLower = Defaulted.number("c-lower", "c", 0...1, "The lower-bound constant c.", default: 0)
    static let eceTolerance = Defaulted.number("ece-tolerance", "x", 0...1, "conf-ECE counted as zero when estimating A*.", default: 0.02)
    static let regime: [any Declared] = [target, aStar, cLower, eceTolerance]

    // Output
    static let out = Option.text("out", "file", "Also write the output to this file.")
    static func format(_ allowed: [OutputFormat]) -> Defaulted<OutputFormat> {
        .choice("format", "Output format.", default: .table, allowed: allowed)
    }
    static let digits = Option.integer("digits", "n", 0...15, "Decimals (default: 4, or 2 with --percent).")
    static let ciStyle = Defaulted.choice("ci-style", "How a cell writes its interval: brackets (0.118 [0.111, 0.126]) or pm (0.118 ± 0.007, half the width).",
                                          default: TextTable.IntervalStyle.brackets)
}

/// "; did you mean 'x'?" for the candidate within two edits of `text` (or whose name it starts), else "".
/// The items of a comma-separated option value (`a, b,c` → a, b, c), empty ones dropped.
func commaList(_ text: String?) -> [String] {
    (text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

/// A text output (a table, a report) named like an image or a PDF is a usage error (exit 64), said
/// before any work; `expected`: the only extensions allowed (a report's .html).
func checkTextOutput(_ path: String?, option: String = "--out", what: String, expected: [String]? = nil) throws {
    guard let path else { return }
    let ext = (path as NSString).pathExtension.lowercased()
    if let expected, !expected.contains(ext) {
        throw UsageError(message: "\(option) \(path): \(what) is written as .\(expected[0])")
    }
    if ["png", "jpg", "jpeg", "gif", "webp", "bmp", "tif", "tiff", "pdf", "svg", "sqlite", "db"].contains(ext) {
        throw UsageError(message: "\(option) \(path): \(what) is text; name it .csv, .tex, .md, .json or .txt (figures: track plot)")
    }
}

func suggestion(_ text: String, among candidates: [String]) -> String {
    let scored = candidates.map { ($0, $0.hasPrefix(text) && !text.isEmpty ? 0 : editDistance($0, text)) }
    guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= 2 else { return "" }
    return "; did you mean '\(best.0)'?"
}

/// A usage error: printed with the command's usage, exit status 64.
struct UsageError: Error, CustomStringConvertible {
    var message: String
    var command: String?
    var description: String { message }
}

/// A subcommand's interface: what help prints and what the parser accepts.
struct CommandSpec {
    var name: String
    var abstract: String
    var usage: String
    var discussion: String = ""
    var arguments: [(String, String)] = []
    var options: [any Declared] = []
    /// The options as the parser and help read them.
    var declared: [Option] { options.map(\.option) }

    var helpText: String {
        var text = "OVERVIEW: \(abstract)\n\n"
        if !discussion.isEmpty { text += discussion + "\n\n" }
        text += "USAGE: track \(name) \(usage)\n"
        if !arguments.isEmpty {
            text += "\nARGUMENTS:\n"
            for (name, help) in arguments { text += Self.row(name, help) }
        }
        text += "\nOPTIONS:\n"
        for option in declared {
            text += Self.row("--\(option.name)" + (option.takesValue ? " <\(option.valueName)>" : ""), option.fullHelp)
        }
        return text + Self.row("-h, --help", "Show help information.")
    }

    static func row(_ left: String, _ help: String) -> String {
        let pad = 28
        if left.count + 2 >= pad { return "  \(left)\n" + String(repeating: " ", count: pad) + help + "\n" }
        return "  " + left + String(repeating: " ", count: pad - 2 - left.count) + help + "\n"
    }
}

/// What the parser found: positional arguments, option values (already checked), flags.
struct ParsedArguments {
    var positionals: [String] = []
    var values: [String: [String]] = [:]
    var flags: Set<String> = []
    var helpRequested = false

    /// The given value, else the option's default.
    func value(_ option: Option) -> String? { values[option.name]?.last ?? option.defaultValue }
    func given(_ option: Option) -> Bool { values[option.name] != nil || flags.contains(option.name) }
    func all(_ option: Option) -> [String] { values[option.name] ?? [] }
    func flag(_ option: Option) -> Bool { flags.contains(option.name) }
    // Values were checked against their declarations by the parser: conversions cannot fail.
    func int(_ option: Option) -> Int? { value(option).flatMap { Int($0) } }
    func double(_ option: Option) -> Double? { value(option).flatMap { Double($0) } }
    func choice<T: RawRepresentable>(_ option: Option, as type: T.Type) -> T? where T.RawValue == String {
        value(option).flatMap(T.init(rawValue:))
    }
    /// An option with a default, as its type.
    subscript<Value>(_ declared: Defaulted<Value>) -> Value {
        values[declared.option.name]?.last.flatMap(declared.read) ?? declared.fallback
    }
    func given<Value>(_ declared: Defaulted<Value>) -> Bool { values[declared.option.name] != nil }

    /// `key=value` pairs of a repeatable option.
    func pairs(_ option: Option) throws -> [String: String] {
        var result: [String: String] = [:]
        for item in all(option) {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                throw UsageError(message: "--\(option.name) expects key=value, got '\(item)'")
            }
            result[String(item[..<equals])] = String(item[item.index(after: equals)...])
        }
        return result
    }

    /// Positional argument `index` as one of an enum's cases; else a usage error naming them, with
    /// the closest as a suggestion.
    func positional<T: RawRepresentable & CaseIterable>(_ index: Int, as type: T.Type, _ what: String) throws -> T where T.RawValue == String {
        let names = T.allCases.map(\.rawValue)
        guard index < positionals.count else { throw UsageError(message: "expected \(what): \(names.joined(separator: ", "))") }
        let text = positionals[index]
        if let value = T(rawValue: text) { return value }
        throw UsageError(message: "unknown \(what) '\(text)': use \(names.joined(separator: ", "))\(suggestion(text, among: names))")
    }

    /// Exactly `count` positional arguments (nil: at least one), else a usage error saying `what`.
    func positionals(_ count: Int?, _ what: String) throws -> [String] {
        guard count.map({ positionals.count == $0 }) ?? !positionals.isEmpty else { throw UsageError(message: "expected \(what)") }
        return positionals
    }
}

enum ArgumentParser {
    /// Parses `--name value`, `--name=value`, `--flag`, `--` and positionals against `spec`,
    /// checking each value against its option's declaration.
    static func parse(_ arguments: [String], spec: CommandSpec) throws -> ParsedArguments {
        var parsed = ParsedArguments()
        var index = 0
        var onlyPositionals = false
        func fail(_ message: String) -> UsageError { UsageError(message: message, command: spec.name) }
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if onlyPositionals || !argument.hasPrefix("-") || argument == "-" {
                parsed.positionals.append(argument)
                continue
            }
            if argument == "--" { onlyPositionals = true; continue }
            if argument == "-h" || argument == "--help" { parsed.helpRequested = true; continue }
            guard argument.hasPrefix("--") else { throw fail("unknown option '\(argument)'") }
            var name = String(argument.dropFirst(2))
            var inlineValue: String?
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard let option = spec.declared.first(where: { $0.name == name }) else {
                throw fail("unknown option '--\(name)'\(suggestion(name, among: spec.declared.map(\.name)).replacingOccurrences(of: "mean '", with: "mean '--"))")
            }
            guard option.takesValue else {
                if inlineValue != nil { throw fail("--\(name) takes no value") }
                parsed.flags.insert(name)
                continue
            }
            let value: String
            if let inlineValue {
                value = inlineValue
            } else {
                guard index < arguments.count else { throw fail("missing value for '--\(name) <\(option.valueName)>'") }
                value = arguments[index]
                index += 1
            }
            do { try option.check(value) } catch let error as UsageError { throw fail(error.message) }
            if !option.repeatable, parsed.values[name] != nil { throw fail("--\(name) given more than once") }
            parsed.values[name, default: []].append(value)
        }
        return parsed
    }
}
