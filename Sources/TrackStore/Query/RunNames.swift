/// "Did you mean" for run names: the error every command gives for a name the store does not hold.
extension RunReading {
    /// An error of kind `notFound` for `name`, suggesting up to three stored names that are close:
    /// equal but for case, ending with what was typed (a name without its model prefix), or within
    /// a small edit distance.
    public func unknownRun(_ name: String, _ consequence: String? = nil) -> StoreError {
        var message = "no run named '\(name)' in \(displayName)"
        if let consequence { message += "; \(consequence)" }
        let suggestions = (try? similarRunNames(name)) ?? []
        if !suggestions.isEmpty { message += "; did you mean " + suggestions.map { "'\($0)'" }.joined(separator: " or ") + "?" }
        return StoreError(message, kind: .notFound)
    }

    /// Stored run names close to `name`, best first.
    public func similarRunNames(_ name: String, limit: Int = 3) throws -> [String] {
        var names: [String] = []
        try sql.eachRow("SELECT name FROM runs ORDER BY name") { names.append($0.string(0) ?? "") }
        let lowered = name.lowercased()
        let budget = max(2, name.count / 5)
        var scored: [(Int, String)] = []
        for candidate in names {
            let other = candidate.lowercased()
            if other == lowered { scored.append((0, candidate)); continue }
            if !lowered.isEmpty, other.hasSuffix("/" + lowered) || other.hasSuffix(lowered) && lowered.count >= 4 {
                scored.append((1, candidate)); continue
            }
            // Cheap bound before the distance: lengths too far apart cannot be close.
            guard abs(other.count - lowered.count) <= budget else { continue }
            let distance = editDistance(other, lowered)
            if distance <= budget { scored.append((1 + distance, candidate)) }
        }
        // Only the closest: a typo's fix, not every sibling of the run.
        guard let best = scored.map(\.0).min() else { return [] }
        return scored.filter { $0.0 <= best + 1 }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }.prefix(limit).map(\.1)
    }
}

/// Levenshtein distance (insertions, deletions, substitutions of characters).
public func editDistance(_ first: String, _ second: String) -> Int {
    let a = Array(first), b = Array(second)
    var row = [Int](0...b.count)
    for i in a.indices {
        var previous = row[0]
        row[0] = i + 1
        for j in b.indices {
            let current = row[j + 1]
            row[j + 1] = Swift.min(row[j + 1] + 1, row[j] + 1, previous + (a[i] == b[j] ? 0 : 1))
            previous = current
        }
    }
    return row[b.count]
}
