#if canImport(Glibc)
import Glibc
#endif

/// A preference pair scored by a model: sequence log-likelihoods (paper Eq. 21) of the
/// chosen and the rejected response, and their token counts when known.
public struct PreferencePair: Sendable, Equatable {
    public var promptID: String
    public var chosenLogProb: Double
    public var rejectedLogProb: Double
    public var chosenTokens: Int?
    public var rejectedTokens: Int?

    public init(promptID: String, chosenLogProb: Double, rejectedLogProb: Double, chosenTokens: Int? = nil, rejectedTokens: Int? = nil) {
        self.promptID = promptID
        self.chosenLogProb = chosenLogProb
        self.rejectedLogProb = rejectedLogProb
        self.chosenTokens = chosenTokens
        self.rejectedTokens = rejectedTokens
    }
}

/// Win rates (METHODS §7) with 95% Wilson intervals.
public enum WinRate {
    public enum Ties: String, Sendable, CaseIterable {
        /// A tie counts as a loss (the paper's convention).
        case loss
        /// A tie counts as half a win.
        case half
    }

    public struct Result: Sendable, Equatable {
        public var n: Int
        public var wins: Int
        public var ties: Int
        public var rate: Double
        public var interval: Interval
    }

    /// Wins when chosen > rejected; with `normalize`, per-token means are compared
    /// (pairs without token counts are then left out).
    public static func sequenceLikelihood(_ pairs: [PreferencePair], ties: Ties = .loss, normalize: Bool = false) -> Result {
        var n = 0, wins = 0, tied = 0
        for pair in pairs {
            var chosen = pair.chosenLogProb, rejected = pair.rejectedLogProb
            if normalize {
                guard let c = pair.chosenTokens, let r = pair.rejectedTokens, c > 0, r > 0 else { continue }
                chosen /= Double(c)
                rejected /= Double(r)
            }
            n += 1
            if chosen > rejected { wins += 1 } else if chosen == rejected { tied += 1 }
        }
        return result(n: n, wins: wins, ties: tied, mode: ties)
    }

    /// Verdicts "A", "B" or "tie": A's rate.
    public static func judged(_ verdicts: [String], ties: Ties = .half) -> Result {
        let wins = verdicts.filter { $0 == "A" }.count
        let tied = verdicts.filter { $0 == "tie" }.count
        return result(n: verdicts.count, wins: wins, ties: tied, mode: ties)
    }

    static func result(n: Int, wins: Int, ties: Int, mode: Ties) -> Result {
        let successes = Double(wins) + (mode == .half ? 0.5 * Double(ties) : 0)
        let rate = n > 0 ? successes / Double(n) : 0
        return Result(n: n, wins: wins, ties: ties, rate: rate, interval: wilson(successes: successes, n: n))
    }

    /// The 95% Wilson score interval for a proportion (z = 1.959964).
    public static func wilson(successes: Double, n: Int, z: Double = 1.959963984540054) -> Interval {
        guard n > 0 else { return Interval(lower: 0, upper: 1, method: .wilson) }
        let total = Double(n), p = successes / total
        let denominator = 1 + z * z / total
        let center = (p + z * z / (2 * total)) / denominator
        let half = z * ((p * (1 - p) / total + z * z / (4 * total * total)).squareRoot()) / denominator
        return Interval(lower: max(0, center - half), upper: min(1, center + half), method: .wilson)
    }
}
