/// The predictions of one run as flat Float64 arrays, ready for the analyzers.
///
/// Question i has `optionCount(i)` options, stored at
/// `probabilities[offsets[i] ..< offsets[i + 1]]`; `labels[i]` is its gold
/// option. When every question of the run has raw scores (logits or
/// log-probs), `scores` holds them in the same layout and NLL is exact.
public struct PredictionSet: Sendable {
    public private(set) var probabilities: [Double] = []
    public private(set) var scores: [Double]?
    public private(set) var offsets: [Int] = [0]
    public private(set) var labels: [Int32] = []
    /// Stable ids of the questions (store row ids), for pairing runs.
    public private(set) var questionIDs: [Int64] = []
    /// The option count shared by every question, or nil when they differ.
    public private(set) var uniformOptionCount: Int?
    private var sawMixedCounts = false
    private var allScored = true

    public init() {}

    public var count: Int { labels.count }
    public var isEmpty: Bool { labels.isEmpty }
    public func optionCount(_ i: Int) -> Int { offsets[i + 1] - offsets[i] }

    /// Appends one question. `scores`, when given, must have as many values as `probabilities`.
    public mutating func append(id: Int64 = -1, label: Int, probabilities p: UnsafeBufferPointer<Double>,
                                scores s: UnsafeBufferPointer<Double>? = nil) {
        precondition(p.count >= 1 && label >= 0 && label < p.count)
        if labels.isEmpty {
            uniformOptionCount = p.count
        } else if uniformOptionCount != p.count {
            uniformOptionCount = nil
        }
        probabilities.append(contentsOf: p)
        if let s, allScored {
            if scores == nil { scores = [] }
            scores!.append(contentsOf: s)
        } else {
            allScored = false
            scores = nil
        }
        if labels.isEmpty, s == nil { allScored = false }
        offsets.append(probabilities.count)
        labels.append(Int32(label))
        questionIDs.append(id)
    }

    public mutating func append(id: Int64 = -1, label: Int, probabilities p: [Double], scores s: [Double]? = nil) {
        p.withUnsafeBufferPointer { pp in
            if let s {
                s.withUnsafeBufferPointer { append(id: id, label: label, probabilities: pp, scores: $0) }
            } else {
                append(id: id, label: label, probabilities: pp, scores: nil)
            }
        }
    }

    public mutating func reserve(questions: Int, options: Int) {
        probabilities.reserveCapacity(questions * options)
        offsets.reserveCapacity(questions + 1)
        labels.reserveCapacity(questions)
        questionIDs.reserveCapacity(questions)
    }

    /// The subset of questions at `indices`, in that order.
    public func subset(_ indices: [Int]) -> PredictionSet {
        var result = PredictionSet()
        for i in indices {
            let range = offsets[i]..<offsets[i + 1]
            probabilities.withUnsafeBufferPointer { p in
                let probabilityRow = UnsafeBufferPointer(rebasing: p[range])
                if let scores {
                    scores.withUnsafeBufferPointer { s in
                        result.append(id: questionIDs[i], label: Int(labels[i]), probabilities: probabilityRow,
                                      scores: UnsafeBufferPointer(rebasing: s[range]))
                    }
                } else {
                    result.append(id: questionIDs[i], label: Int(labels[i]), probabilities: probabilityRow)
                }
            }
        }
        return result
    }
}

/// The one binning rule of SPEC §2, in Float64: `min(floor(p · B), B − 1)`;
/// bins are `[m/B, (m+1)/B)`, the last closed at 1. The SQL views compute
/// `MIN(CAST(p * B AS INTEGER), B - 1)`, which is the same for p in [0, 1].
@inlinable
public func equalWidthBin(_ p: Double, bins: Int) -> Int {
    let scaled = p * Double(bins)
    let index = scaled < 1 ? 0 : Int(scaled)
    return index < bins ? index : bins - 1
}

/// Indices of `values` in ascending order, ties kept in index order: an LSD
/// radix sort on the IEEE-754 bits, which order like the numbers for
/// non-negative doubles. Stable, O(n), no comparisons.
public func stableAscendingOrder(_ values: UnsafeBufferPointer<Double>) -> [Int32] {
    let n = values.count
    var order = [Int32](unsafeUninitializedCapacity: n) { buffer, count in
        for i in 0..<n { buffer[i] = Int32(i) }
        count = n
    }
    guard n > 1 else { return order }
    var keys = [UInt64](unsafeUninitializedCapacity: n) { buffer, count in
        for i in 0..<n {
            let v = values[i]
            precondition(v >= 0 || v == 0, "stableAscendingOrder needs non-negative values")
            buffer[i] = (v == 0 ? 0 : v).bitPattern // -0.0 sorts as 0
        }
        count = n
    }
    var scratchOrder = order
    var scratchKeys = keys
    var counts = [Int](repeating: 0, count: 257)
    for pass in 0..<8 {
        let shift = UInt64(pass * 8)
        for i in 0..<257 { counts[i] = 0 }
        var varies = false
        let firstByte = Int((keys[0] >> shift) & 0xff)
        for i in 0..<n {
            let byte = Int((keys[i] >> shift) & 0xff)
            counts[byte + 1] += 1
            if byte != firstByte { varies = true }
        }
        if !varies { continue }
        for i in 1..<257 { counts[i] += counts[i - 1] }
        for i in 0..<n {
            let byte = Int((keys[i] >> shift) & 0xff)
            let position = counts[byte]
            counts[byte] += 1
            scratchKeys[position] = keys[i]
            scratchOrder[position] = order[i]
        }
        swap(&keys, &scratchKeys)
        swap(&order, &scratchOrder)
    }
    return order
}
