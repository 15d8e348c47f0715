import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A small, documented PRNG that gives the same stream on every machine:
/// xoshiro256** (Blackman & Vigna 2018), seeded by expanding one 64-bit seed
/// through SplitMix64, as its authors recommend. Doubles are the top 53 bits
/// divided by 2^53, uniform on [0, 1). Used by the demo simulator and the
/// bootstrap, so that a seed names one result everywhere.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(); s1 = splitMix(); s2 = splitMix(); s3 = splitMix()
    }

    @inline(__always) private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = Self.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = Self.rotl(s3, 45)
        return result
    }

    /// Uniform on [0, 1).
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform integer in 0..<bound, without modulo bias (Lemire's method).
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0)
        let b = UInt64(bound)
        var m = next().multipliedFullWidth(by: b)
        if m.low < b {
            let threshold = (0 &- b) % b
            while m.low < threshold { m = next().multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }

    /// Standard normal by the Box–Muller transform (one value per call).
    public mutating func nextGaussian() -> Double {
        var u = nextDouble()
        while u <= 0 { u = nextDouble() }
        let v = nextDouble()
        return sqrt(-2 * log(u)) * cos(2 * Double.pi * v)
    }
}

/// Eight independent `SeededRandom` streams advanced together, lane by lane in SIMD
/// registers: lane j gives exactly the values `SeededRandom(seed: seeds[j])` gives.
struct SeededRandomLanes {
    private var s0: SIMD8<UInt64>, s1: SIMD8<UInt64>, s2: SIMD8<UInt64>, s3: SIMD8<UInt64>
    /// All ones, loaded where the optimizer cannot see it: a rotate written as shifts and an or
    /// is recognised as one, and SSE2 has no 64-bit vector rotate, so the eight lanes went
    /// through scalar registers; masking the right shift with a value it cannot fold keeps the
    /// rotate two vector shifts, an and and an or.
    private let keep: SIMD8<UInt64>
    private static let allOnes = Atomic<UInt64>(.max)

    init(seeds: [UInt64]) {
        precondition(seeds.count == 8)
        var lanes = [[UInt64]](repeating: [], count: 4)
        for seed in seeds {
            var x = seed
            for word in 0..<4 {
                x &+= 0x9E37_79B9_7F4A_7C15
                var z = x
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                lanes[word].append(z ^ (z >> 31))
            }
        }
        s0 = SIMD8(lanes[0]); s1 = SIMD8(lanes[1]); s2 = SIMD8(lanes[2]); s3 = SIMD8(lanes[3])
        keep = SIMD8(repeating: Self.allOnes.load(ordering: .relaxed))
    }

    @inline(__always) private func rotl(_ x: SIMD8<UInt64>, _ k: UInt64) -> SIMD8<UInt64> {
        (x &<< k) | ((x &>> (64 - k)) & keep)
    }

    /// The next value of each stream (xoshiro256**; ×5 and ×9 as shifts and adds).
    @inline(__always) mutating func next() -> SIMD8<UInt64> {
        let times5 = s1 &+ (s1 &<< 2)
        let rotated = rotl(times5, 7)
        let result = rotated &+ (rotated &<< 3)
        let t = s1 &<< 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }
}
