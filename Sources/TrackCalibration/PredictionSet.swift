#if canImport(Glibc)
import Glibc
#endif

/// The predictions of one run as flat Float64 arrays, ready for the analyzers.
///
/// Question i has `optionCount(i)` options, stored at
/// `probabilities[offsets[i] ..< offsets[i + 1]]`; `labels[i]` is its gold
/// option. When every question of the run has raw scores (logits or
/// log-probs), `scores` holds them in the same layout and NLL is exact.
public struct PredictionSet: Sendable {
    public private(set) var probabilities: [Double] = []
    public private(set) var scores: [Double]?
    /// Where each question's options start (`offsets[i] ..< offsets[i + 1]`).
    public private(set) var offsets = OptionOffsets()
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
        offsets.append(end: probabilities.count + p.count, questions: labels.count + 1)
        probabilities.append(contentsOf: p)
        if let s, allScored {
            if scores == nil { scores = [] }
            scores!.append(contentsOf: s)
        } else {
            allScored = false
            scores = nil
        }
        if labels.isEmpty, s == nil { allScored = false }
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
        labels.reserveCapacity(questions)
        questionIDs.reserveCapacity(questions)
    }

    /// Appends every question of `other`, after these.
    public mutating func append(contentsOf other: PredictionSet) {
        guard !other.isEmpty else { return }
        if isEmpty {
            self = other
            return
        }
        if uniformOptionCount != other.uniformOptionCount { uniformOptionCount = nil }
        offsets.append(contentsOf: other.offsets, base: probabilities.count, questions: labels.count, otherQuestions: other.count)
        probabilities += other.probabilities
        labels += other.labels
        questionIDs += other.questionIDs
        if allScored, other.allScored, let otherScores = other.scores {
            scores! += otherScores
        } else {
            allScored = false
            scores = nil
        }
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

/// Where each question's options start in a `PredictionSet`'s flat arrays: `i · K` while
/// every question has K options (nothing stored per question), else one stored start per
/// question (and the end), built the first time a question's option count differs.
public struct OptionOffsets: Sendable {
    /// The shared option count (0 before the first question), while `stored` is empty.
    private var width = 0
    private var stored: [Int] = []

    public init() {}

    @inline(__always)
    public subscript(i: Int) -> Int { stored.isEmpty ? i * width : stored[i] }

    /// Every start and the end, as an array of `questions + 1` values.
    public func array(questions: Int) -> [Int] {
        stored.isEmpty ? (0...questions).map { $0 * width } : stored
    }

    /// Question `questions − 1` ends at `end`.
    mutating func append(end: Int, questions: Int) {
        if stored.isEmpty {
            let count = end - (questions - 1) * width
            if questions == 1 { width = count; return }
            if count == width { return }
            stored = (0..<questions).map { $0 * width }
        }
        stored.append(end)
    }

    /// The starts of `other`'s questions, after `questions` of these ending at `base`.
    mutating func append(contentsOf other: OptionOffsets, base: Int, questions: Int, otherQuestions: Int) {
        if stored.isEmpty, other.stored.isEmpty, other.width == width { return }
        if stored.isEmpty { stored = array(questions: questions) }
        stored += other.array(questions: otherQuestions).dropFirst().map { $0 + base }
    }
}

/// The one binning rule of METHODS §2, in Float64: `min(floor(p · B), B − 1)`;
/// bins are `[m/B, (m+1)/B)`, the last closed at 1. The SQL views compute
/// `MIN(CAST(p * B AS INTEGER), B - 1)`, which is the same for p in [0, 1].
@inlinable
public func equalWidthBin(_ p: Double, bins: Int) -> Int {
    let scaled = p * Double(bins)
    let index = scaled < 1 ? 0 : Int(scaled)
    return index < bins ? index : bins - 1
}

/// Digit counts of an LSD radix sort on doubles, accumulated as values arrive,
/// so that sorting after the last value only has to scatter.
public struct RadixHistogram: Sendable {
    static let digitBits = 11
    static let passes = 6
    static let radix = 1 << digitBits
    /// `passes` blocks of `radix` counts.
    var counts = [Int](repeating: 0, count: RadixHistogram.passes * RadixHistogram.radix)

    public init() {}

    /// The sort key: IEEE-754 bits, which order like the numbers for values ≥ 0 (−0 as 0).
    @inline(__always)
    static func key(_ value: Double) -> UInt64 {
        precondition(value >= 0 || value == 0, "stableAscendingOrder needs non-negative values")
        return (value == 0 ? 0 : value).bitPattern
    }

    /// A value's key with a flag in its lowest bit: the bits of a value in [0, 1] shifted left by
    /// one (the sign bit is 0, nothing is lost), so keys order by value, then by the flag.
    @inline(__always)
    static func key(_ value: Double, hit: Bool) -> UInt64 { key(value) << 1 | (hit ? 1 : 0) }

    /// The value of a key made by `key(_:hit:)`.
    @inline(__always)
    static func value(_ key: UInt64) -> Double { Double(bitPattern: key >> 1) }

    @inline(__always)
    public mutating func add(_ value: Double) { add(key: Self.key(value)) }

    @inline(__always)
    mutating func add(key: UInt64) {
        counts.withUnsafeMutableBufferPointer { counts in
            for pass in 0..<Self.passes {
                counts[pass * Self.radix + Int((key >> UInt64(pass * Self.digitBits)) & UInt64(Self.radix - 1))] += 1
            }
        }
    }

    public init(_ values: UnsafeBufferPointer<Double>) {
        for v in values { add(v) }
    }

    /// Adds the counts of another histogram (of other values).
    public mutating func add(_ other: RadixHistogram) {
        for i in counts.indices { counts[i] += other.counts[i] }
    }
}

/// Indices of `values` in ascending order, ties kept in index order: an LSD
/// radix sort (11-bit digits, six passes) on the IEEE-754 bits, which order
/// like the numbers for non-negative doubles. Stable, O(n), no comparisons.
/// `histogram`, when given, must have counted exactly these values.
public func stableAscendingOrder(_ values: UnsafeBufferPointer<Double>, histogram: RadixHistogram? = nil) -> [Int32] {
    stableAscendingSort(count: values.count, histogram: histogram ?? RadixHistogram(values), value: { values[$0] }).order
}

/// The stable ascending order of `count` values read through `value` (e.g. a
/// strided column), with the values themselves in that order.
func stableAscendingSort(count n: Int, histogram: RadixHistogram,
                         value: (Int) -> Double) -> (order: [Int32], sorted: [Double]) {
    precondition(n < Int(Int32.max), "too many values for 32-bit indices")
    var order = [Int32](unsafeUninitializedCapacity: n) { buffer, count in
        for i in 0..<n { buffer[i] = Int32(i) }
        count = n
    }
    var keys = [UInt64](unsafeUninitializedCapacity: n) { buffer, count in
        for i in 0..<n { buffer[i] = RadixHistogram.key(value(i)) }
        count = n
    }
    radixSort(&keys, histogram: histogram, payload: &order)
    let sorted = [Double](unsafeUninitializedCapacity: n) { buffer, count in
        keys.withUnsafeBytes { _ = memcpy(buffer.baseAddress!, $0.baseAddress!, n * 8) }
        count = n
    }
    return (order, sorted)
}

/// `count` keys (`key(i)`, whose digits `histogram` counted) in ascending order: only the
/// keys and one scratch copy are held.
func sortedKeys(count n: Int, histogram: RadixHistogram, key: (Int) -> UInt64) -> [UInt64] {
    var keys = [UInt64](unsafeUninitializedCapacity: n) { buffer, count in
        for i in 0..<n { buffer[i] = key(i) }
        count = n
    }
    var none: [Int32] = []
    radixSort(&keys, histogram: histogram, payload: &none)
    return keys
}

/// An LSD radix sort of `keys` (11-bit digits, six passes, stable), moving `payload` (empty,
/// or one value per key) with them. A digit shared by every key orders nothing: its pass is skipped.
func radixSort(_ keys: inout [UInt64], histogram: RadixHistogram, payload: inout [Int32]) {
    let n = keys.count
    guard n > 1 else { return }
    let carries = !payload.isEmpty
    var scratchKeys = [UInt64](repeating: 0, count: n)
    var scratchPayload = [Int32](repeating: 0, count: carries ? n : 0)
    let radix = RadixHistogram.radix, mask = UInt64(radix - 1)
    var starts = [Int](repeating: 0, count: radix)
    for pass in 0..<RadixHistogram.passes {
        let shift = UInt64(pass * RadixHistogram.digitBits)
        let base = pass * radix
        if histogram.counts[base + Int((keys[0] >> shift) & mask)] == n { continue }
        var running = 0
        for digit in 0..<radix {
            starts[digit] = running
            running += histogram.counts[base + digit]
        }
        keys.withUnsafeBufferPointer { keys in
            payload.withUnsafeBufferPointer { payload in
                scratchKeys.withUnsafeMutableBufferPointer { scratchKeys in
                    scratchPayload.withUnsafeMutableBufferPointer { scratchPayload in
                        starts.withUnsafeMutableBufferPointer { starts in
                            for i in 0..<n {
                                let digit = Int((keys[i] >> shift) & mask)
                                let position = starts[digit]
                                starts[digit] = position + 1
                                scratchKeys[position] = keys[i]
                                if carries { scratchPayload[position] = payload[i] }
                            }
                        }
                    }
                }
            }
        }
        swap(&keys, &scratchKeys)
        if carries { swap(&payload, &scratchPayload) }
    }
}
