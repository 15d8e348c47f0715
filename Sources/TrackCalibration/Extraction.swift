/// Confidence extraction from per-token log-probabilities (Oh & Hwang; METHODS §1):
/// option k's score from the log-probs of its continuation's tokens.
public enum Extraction: String, Sendable, CaseIterable {
    /// Σ_t log p(c_k,t | x, c_k,<t) — what lm-evaluation-harness stores.
    case sum = "continuation-sum"
    /// min_t log p(c_k,t | x, c_k,<t).
    case min = "continuation-min"
    /// The sum divided by the token count (length-normalised).
    case mean = "continuation-mean"

    /// The option's score; nil for an option without tokens.
    public func score(_ tokenLogProbs: [Double]) -> Double? {
        guard !tokenLogProbs.isEmpty else { return nil }
        switch self {
        case .sum: return tokenLogProbs.reduce(0, +)
        case .min: return tokenLogProbs.min()
        case .mean: return tokenLogProbs.reduce(0, +) / Double(tokenLogProbs.count)
        }
    }
}
