/// A command-line option of a subcommand.
struct OptionSpec {
    var name: String          // without dashes, e.g. "db"
    var valueName: String?    // nil for a flag
    var help: String
    var repeatable = false

    static func flag(_ name: String, _ help: String) -> OptionSpec { OptionSpec(name: name, valueName: nil, help: help) }
    static func value(_ name: String, _ valueName: String, _ help: String, repeatable: Bool = false) -> OptionSpec {
        OptionSpec(name: name, valueName: valueName, help: help, repeatable: repeatable)
    }
}

/// A subcommand's interface: what help prints and what the parser accepts.
struct CommandSpec {
    var name: String
    var abstract: String
    var usage: String
    var discussion: String = ""
    var arguments: [(String, String)] = []
    var options: [OptionSpec] = []

    var helpText: String {
        var text = "OVERVIEW: \(abstract)\n\n"
        if !discussion.isEmpty { text += discussion + "\n\n" }
        text += "USAGE: track \(name) \(usage)\n"
        if !arguments.isEmpty {
            text += "\nARGUMENTS:\n"
            for (name, help) in arguments { text += Self.row(name, help) }
        }
        text += "\nOPTIONS:\n"
        for option in options + [.flag("help", "Show help information.")] {
            var left = "--\(option.name)"
            if option.name == "help" { left = "-h, --help" }
            if let valueName = option.valueName { left += " <\(valueName)>" }
            text += Self.row(left, option.help + (option.repeatable ? " (repeatable)" : ""))
        }
        return text
    }

    static func row(_ left: String, _ help: String) -> String {
        let pad = 28
        if left.count + 2 >= pad { return "  \(left)\n" + String(repeating: " ", count: pad) + help + "\n" }
        return "  " + left + String(repeating: " ", count: pad - 2 - left.count) + help + "\n"
    }
}

/// Every numeric option of every command, declared once: whether it is an
/// integer and the values it accepts. The parser checks each given value
/// against this before any work, so a value out of range is a usage error
/// (exit 64) in every command that takes the option.
enum NumericOptions {
    struct Rule {
        var integer: Bool
        var range: ClosedRange<Double>
    }

    static let rules: [String: Rule] = [
        "bins": Rule(integer: true, range: 1...10_000),
        "resamples": Rule(integer: true, range: 1...100_000),
        "seed": Rule(integer: true, range: Double(Int64.min)...Double(Int64.max)),
        "step": Rule(integer: true, range: 0...Double(Int64.max)),
        "plot.columns": Rule(integer: true, range: 1...100),     // table's --columns names fields
        "digits": Rule(integer: true, range: 0...15),
        "questions": Rule(integer: true, range: 1...10_000_000),
        "busy-timeout": Rule(integer: false, range: 0...86_400),
        "a-star": Rule(integer: false, range: 0...1),
        "c-lower": Rule(integer: false, range: 0...1),
        "ece-tolerance": Rule(integer: false, range: 0...1),
        "epsilon": Rule(integer: false, range: 0...0.999_999),
        "level": Rule(integer: false, range: 0.01...0.999_999),
        "holdout": Rule(integer: false, range: 0.01...0.99),
        "epoch": Rule(integer: false, range: 0...1e9),
        "dpi": Rule(integer: false, range: 10...2400),
        "width": Rule(integer: false, range: 120...5000),
        "height": Rule(integer: false, range: 120...5000),
        "lambda": Rule(integer: false, range: 0...1e6),
        "mu": Rule(integer: false, range: 0...1e6),
        "timeout": Rule(integer: false, range: 0...86_400),
    ]

    static func describe(_ rule: Rule) -> String {
        func number(_ x: Double) -> String {
            if rule.integer || x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
            return String(x)
        }
        if rule.range.upperBound >= Double(Int64.max) { return "\(rule.integer ? "an integer" : "a number") ≥ \(number(rule.range.lowerBound))" }
        return "\(rule.integer ? "an integer" : "a number") in \(number(rule.range.lowerBound))...\(number(rule.range.upperBound))"
    }

    /// Checks one value of option `name` of `command`; nil when the option is not numeric.
    /// A rule named `command.option` is that command's own.
    static func check(_ name: String, _ text: String, command: String) throws -> Double? {
        guard let rule = rules["\(command).\(name)"] ?? rules[name] else { return nil }
        let value: Double?
        if rule.integer {
            value = Int64(text).map(Double.init)
        } else {
            value = Double(text).flatMap { $0.isFinite ? $0 : nil }
        }
        guard let value, rule.range.contains(value) else {
            throw UsageError(message: "--\(name) expects \(describe(rule)), got '\(text)'")
        }
        return value
    }
}

/// A usage error: printed with the command's usage, exit status 64.
struct UsageError: Error, CustomStringConvertible {
    var message: String
    var command: String?
    var description: String { message }
}

/// What the parser found: positional arguments, option values, flags.
struct ParsedArguments {
    var positionals: [String] = []
    var values: [String: [String]] = [:]
    var flags: Set<String> = []
    var helpRequested = false

    func value(_ name: String) -> String? { values[name]?.last }
    func all(_ name: String) -> [String] { values[name] ?? [] }
    func flag(_ name: String) -> Bool { flags.contains(name) }

    func int(_ name: String) throws -> Int? {
        guard let text = value(name) else { return nil }
        // Declared ranges were checked by the parser; here only the conversion.
        guard let number = Int(text) else { throw UsageError(message: "--\(name) expects an integer, got '\(text)'") }
        return number
    }

    func double(_ name: String) throws -> Double? {
        guard let text = value(name) else { return nil }
        guard let number = Double(text), number.isFinite else { throw UsageError(message: "--\(name) expects a number, got '\(text)'") }
        return number
    }

    /// `key=value` pairs of a repeatable option.
    func pairs(_ name: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for item in all(name) {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                throw UsageError(message: "--\(name) expects key=value, got '\(item)'")
            }
            result[String(item[..<equals])] = String(item[item.index(after: equals)...])
        }
        return result
    }

    /// One of a fixed set of values.
    func choice(_ name: String, _ allowed: [String], default fallback: String) throws -> String {
        let text = value(name) ?? fallback
        guard allowed.contains(text) else {
            throw UsageError(message: "--\(name) must be one of \(allowed.joined(separator: ", ")), got '\(text)'")
        }
        return text
    }
}

enum ArgumentParser {
    /// Parses `--name value`, `--name=value`, `--flag`, `--` and positionals against `spec`.
    static func parse(_ arguments: [String], spec: CommandSpec) throws -> ParsedArguments {
        var parsed = ParsedArguments()
        var index = 0
        var onlyPositionals = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if onlyPositionals || !argument.hasPrefix("-") || argument == "-" {
                parsed.positionals.append(argument)
                continue
            }
            if argument == "--" { onlyPositionals = true; continue }
            if argument == "-h" || argument == "--help" { parsed.helpRequested = true; continue }
            guard argument.hasPrefix("--") else {
                throw UsageError(message: "unknown option '\(argument)'", command: spec.name)
            }
            var name = String(argument.dropFirst(2))
            var inlineValue: String?
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard let option = spec.options.first(where: { $0.name == name }) else {
                throw UsageError(message: "unknown option '--\(name)'", command: spec.name)
            }
            if option.valueName == nil {
                if inlineValue != nil { throw UsageError(message: "--\(name) takes no value", command: spec.name) }
                parsed.flags.insert(name)
                continue
            }
            let value: String
            if let inlineValue {
                value = inlineValue
            } else {
                guard index < arguments.count else {
                    throw UsageError(message: "missing value for '--\(name) <\(option.valueName!)>'", command: spec.name)
                }
                value = arguments[index]
                index += 1
            }
            do {
                _ = try NumericOptions.check(name, value, command: spec.name)
            } catch var error as UsageError {
                error.command = spec.name
                throw error
            }
            if !option.repeatable, parsed.values[name] != nil {
                throw UsageError(message: "--\(name) given more than once", command: spec.name)
            }
            parsed.values[name, default: []].append(value)
        }
        return parsed
    }
}
