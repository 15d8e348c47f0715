import TrackCalibration

/// One decoded input record of the generic formats.
public enum Record: Sendable, Equatable {
    case prediction(Prediction)
    /// A scalar metric at a step (`{"metric": "loss", "value": 0.4, "step": 10}`).
    case metric(key: String, value: Double, step: Int)
    /// A preference pair's sequence log-likelihoods (`{"pair": "p1", "chosen_logprob": …, "rejected_logprob": …}`).
    case pair(PreferencePair)
    /// A judged comparison of this run (A) against `opponent` (B) (`{"judgment": "p1", "verdict": "A", "vs": "gpt-4"}`).
    case judgment(promptID: String, opponent: String, verdict: String)
    /// A question with per-token log-probs of each option's continuation
    /// (`{"id": "q1", "label": 2, "token_logprobs": [[-0.1, -2.3], [-1.2], …]}`), from which
    /// continuation-sum, -min and -mean scores are derived.
    case tokens(TokenPrediction)
}

/// A question whose options come as per-token log-probabilities.
public struct TokenPrediction: Sendable, Equatable {
    public var questionID: String
    public var label: Int
    public var tokenLogProbs: [[Double]]
    public var subject: String?
    public var dataset: String?

    /// The prediction whose scores the extraction method derives.
    public func prediction(_ method: Extraction) throws(ValidationError) -> Prediction {
        var scores: [Double] = []
        for (k, tokens) in tokenLogProbs.enumerated() {
            guard let score = method.score(tokens) else { throw ValidationError("option \(k) has no token log-probs") }
            scores.append(score)
        }
        return Prediction(questionID: questionID, label: label, values: .scores(scores), subject: subject, dataset: dataset)
    }
}

/// Decodes the generic JSON-lines format (README "Input formats"). A line is
/// one question, a forward-pass batch (`{"batch": [...]}`, a top-level array,
/// or columns `{"ids": [...], "labels": [...], "probs": [[...], ...]}`), or a
/// scalar metric.
public struct RecordDecoder {
    /// Counts questions without an `id`, which get their 0-based position as id.
    public private(set) var questionsSeen = 0

    public init() {}

    static let valueKeys: [(key: String, isProbability: Bool)] = [
        ("probs", true), ("probabilities", true), ("p", true),
        ("logits", false), ("logprobs", false), ("scores", false), ("s", false),
    ]

    public mutating func decode(_ value: JSONValue) throws(ValidationError) -> [Record] {
        switch value {
        case .array(let items):
            return try decodeBatch(items)
        case .object(let object):
            if let metric = object["metric"] {
                guard let key = metric.stringValue, !key.isEmpty else { throw ValidationError("'metric' must be a non-empty string") }
                guard let number = object["value"]?.doubleValue else { throw ValidationError("metric '\(key)' needs a numeric 'value'") }
                guard number.isFinite else { throw ValidationError("metric '\(key)' value is not finite") }
                let step = object["step"]?.integerValue ?? 0
                return [.metric(key: key, value: number, step: step)]
            }
            if let pairID = object["pair"] {
                let id = try identifier(pairID)
                guard let chosen = object["chosen_logprob"]?.numericValue, let rejected = object["rejected_logprob"]?.numericValue else {
                    throw ValidationError("pair '\(id)' needs numeric 'chosen_logprob' and 'rejected_logprob'")
                }
                guard chosen.isFinite, rejected.isFinite else { throw ValidationError("pair '\(id)': log-likelihoods must be finite") }
                let chosenTokens = object["chosen_tokens"]?.integerValue, rejectedTokens = object["rejected_tokens"]?.integerValue
                if let c = chosenTokens, c <= 0 { throw ValidationError("pair '\(id)': chosen_tokens must be positive") }
                if let r = rejectedTokens, r <= 0 { throw ValidationError("pair '\(id)': rejected_tokens must be positive") }
                return [.pair(PreferencePair(promptID: id, chosenLogProb: chosen, rejectedLogProb: rejected,
                                             chosenTokens: chosenTokens, rejectedTokens: rejectedTokens))]
            }
            if let judgmentID = object["judgment"] {
                let id = try identifier(judgmentID)
                guard let verdict = object["verdict"]?.stringValue, ["A", "B", "tie"].contains(verdict) else {
                    throw ValidationError("judgment '\(id)': 'verdict' must be A, B or tie")
                }
                guard let opponent = object["vs"]?.stringValue, !opponent.isEmpty else {
                    throw ValidationError("judgment '\(id)': 'vs' must name the other run or the reference")
                }
                return [.judgment(promptID: id, opponent: opponent, verdict: verdict)]
            }
            if let batch = object["batch"] ?? object["questions"] {
                guard let items = batch.arrayValue else { throw ValidationError("'batch' must be an array") }
                return try decodeBatch(items)
            }
            if object["labels"] != nil { return try decodeColumns(object) }
            if let tokens = object["token_logprobs"] { return [.tokens(try decodeTokens(object, tokens))] }
            return [.prediction(try decodeQuestion(object))]
        default:
            throw ValidationError("expected a JSON object or array, found \(value.kindName)")
        }
    }

    private mutating func decodeBatch(_ items: [JSONValue]) throws(ValidationError) -> [Record] {
        var records: [Record] = []
        records.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            guard let object = item.objectValue else {
                throw ValidationError("item \(index) of the batch is \(item.kindName), not an object")
            }
            do {
                records.append(.prediction(try decodeQuestion(object)))
            } catch {
                throw ValidationError("item \(index) of the batch: \(error.reason)", remedy: error.remedy)
            }
        }
        return records
    }

    /// `{"ids": [...], "labels": [...], "probs"|"logits"|...: [[...], ...], "subjects": [...]}`.
    private mutating func decodeColumns(_ object: JSONObject) throws(ValidationError) -> [Record] {
        guard let labels = object["labels"]?.arrayValue else { throw ValidationError("'labels' must be an array") }
        let ids = object["ids"]?.arrayValue
        let subjects = object["subjects"]?.arrayValue
        let (rows, isProbability) = try valueField(object)
        guard let rowArray = rows.arrayValue else { throw ValidationError("option values must be an array of rows") }
        guard rowArray.count == labels.count, ids == nil || ids!.count == labels.count else {
            throw ValidationError("column lengths differ: \(labels.count) labels, \(rowArray.count) value rows\(ids.map { ", \($0.count) ids" } ?? "")")
        }
        var records: [Record] = []
        for index in 0..<labels.count {
            do {
                let id = try ids.map { ids throws(ValidationError) in try identifier(ids[index]) } ?? String(questionsSeen)
                let values = try numbers(rowArray[index], isProbability: isProbability)
                let label = try Self.label(labels[index], optionCount: values.count)
                records.append(.prediction(Prediction(questionID: id, label: label, values: values,
                                                      subject: subjects?[index].stringValue)))
                questionsSeen += 1
            } catch {
                throw ValidationError("row \(index) of the batch: \(error.reason)", remedy: error.remedy)
            }
        }
        return records
    }

    private mutating func decodeQuestion(_ object: JSONObject) throws(ValidationError) -> Prediction {
        let idValue = object["id"] ?? object["question_id"] ?? object["doc_id"]
        let id = try idValue.map { v throws(ValidationError) in try identifier(v) } ?? String(questionsSeen)
        let (values, isProbability) = try valueField(object)
        let options = try numbers(values, isProbability: isProbability)
        guard let labelValue = object["label"] ?? object["gold"] ?? object["target"] else {
            throw ValidationError("missing field 'label'")
        }
        let label = try Self.label(labelValue, optionCount: options.count)
        questionsSeen += 1
        return Prediction(questionID: id, label: label, values: options,
                          subject: object["subject"]?.stringValue, dataset: object["dataset"]?.stringValue,
                          category: object["category"]?.stringValue)
    }

    private mutating func decodeTokens(_ object: JSONObject, _ value: JSONValue) throws(ValidationError) -> TokenPrediction {
        let idValue = object["id"] ?? object["question_id"] ?? object["doc_id"]
        let id = try idValue.map { v throws(ValidationError) in try identifier(v) } ?? String(questionsSeen)
        guard let options = value.arrayValue else { throw ValidationError("'token_logprobs' must be an array of arrays, one per option") }
        var tokens: [[Double]] = []
        for (k, option) in options.enumerated() {
            guard let list = option.arrayValue else { throw ValidationError("token_logprobs[\(k)] must be an array") }
            var values: [Double] = []
            for item in list {
                guard let number = item.numericValue else { throw ValidationError("token_logprobs[\(k)] holds \(item.kindName), not a number") }
                guard number.isFinite, number <= 0 else { throw ValidationError("token_logprobs[\(k)] holds \(number): log-probs must be finite and ≤ 0") }
                values.append(number)
            }
            tokens.append(values)
        }
        guard let labelValue = object["label"] ?? object["gold"] ?? object["target"] else { throw ValidationError("missing field 'label'") }
        let label = try Self.label(labelValue, optionCount: tokens.count)
        questionsSeen += 1
        return TokenPrediction(questionID: id, label: label, tokenLogProbs: tokens,
                               subject: object["subject"]?.stringValue, dataset: object["dataset"]?.stringValue)
    }

    private func identifier(_ value: JSONValue) throws(ValidationError) -> String {
        guard let id = value.identifierValue, !id.isEmpty else {
            throw ValidationError("question id must be a non-empty string or an integer, found \(value.kindName)")
        }
        return id
    }

    private func valueField(_ object: JSONObject) throws(ValidationError) -> (JSONValue, Bool) {
        var found: (String, JSONValue, Bool)?
        for (key, isProbability) in Self.valueKeys {
            guard let value = object[key] else { continue }
            if let found { throw ValidationError("both '\(found.0)' and '\(key)' given; give probabilities or scores, not both") }
            found = (key, value, isProbability)
        }
        guard let found else {
            throw ValidationError("missing option values: give 'probs' (probabilities) or 'logits' / 'logprobs' / 'scores'")
        }
        return (found.1, found.2)
    }

    private func numbers(_ value: JSONValue, isProbability: Bool) throws(ValidationError) -> OptionValues {
        guard let items = value.arrayValue else { throw ValidationError("option values must be an array, found \(value.kindName)") }
        var numbers: [Double] = []
        numbers.reserveCapacity(items.count)
        for (k, item) in items.enumerated() {
            guard let number = item.numericValue else {
                throw ValidationError("value of option \(k) is \(item.kindName), not a number")
            }
            numbers.append(number)
        }
        return isProbability ? .probabilities(numbers) : .scores(numbers)
    }

    /// A gold label: an index (number or digit string) or a letter A, B, C…
    static func label(_ value: JSONValue, optionCount: Int) throws(ValidationError) -> Int {
        let index: Int
        if let number = value.integerValue {
            index = number
        } else if let text = value.stringValue, let letter = letterIndex(text) {
            index = letter
        } else {
            throw ValidationError("label must be an option index or a letter, found \(value.jsonText)")
        }
        guard index >= 0, index < optionCount else {
            throw ValidationError("label \(index) is out of range for \(optionCount) options (0...\(optionCount - 1))")
        }
        return index
    }

    /// "A" → 0, "b" → 1, …; nil unless one ASCII letter.
    static func letterIndex(_ text: String) -> Int? {
        let trimmed = text.trimmingSpaces
        guard trimmed.count == 1, let scalar = trimmed.unicodeScalars.first, scalar.isASCII else { return nil }
        let upper = scalar.value & ~0x20
        guard (0x41...0x5A).contains(upper) else { return nil }
        return Int(upper - 0x41)
    }
}
