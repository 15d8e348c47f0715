import Foundation
import TrackCalibration
import TrackStore

/// A seeded simulator of the papers' setting, for the demo database.
/// THE DATA ARE SIMULATED; no model is run.
///
/// Questions: for each domain (in-domain `medmcqa-sim`, out-domain
/// `mmlu-sim` with subjects), N questions with K = 4 options. Question i has
/// latent "truth" logits `u_ik ~ N(0, 1.6²)`, and its label is drawn from
/// `softmax(u_i)`, so a model that predicts `softmax(u_i)` is calibrated.
///
/// A model m sees `u_i + ε_i` with `ε_ik ~ N(0, τ²)` (τ: how much the model
/// does not know; smaller after domain fine-tuning) and reports
/// `softmax(s · c · (u_i + ε_i))` with `c = 1.6² / (1.6² + τ²)` (the posterior
/// mean of u, so that s = 1 is near calibrated) and s the method's sharpness:
///
/// | method | s | τ | what it mimics |
/// |---|---|---|---|
/// | SFT  | 1.0 | τ_m | the pre-alignment model, near calibrated |
/// | DPO  | 2.6 | τ_m | preference alignment: overconfident (paper Fig. 1) |
/// | TS   | — | — | not simulated: temperature scaling fitted on half of the DPO run's questions and applied to the DPO run |
/// | CFT  | 1.0 | τ_m·(1 − 0.12·epoch) in-domain | calibration-aware fine-tuning |
/// | RCFT | 1.05 | τ_m·(1 − 0.2·epoch) in-domain | + EM/ECE regulariser, higher accuracy |
///
/// Every run stores the raw scores `s · (u + ε)` as logits (extraction
/// `choice`). DPO and SFT runs also get preference pairs: sequence log-probs
/// of a chosen and a rejected response, where alignment raises the chosen
/// likelihood. The stream of random numbers is `SeededRandom(seed)`.
struct DemoSimulator: Sendable {
    var seed: UInt64 = 42
    var questionsPerDomain = 1000
    var pairsPerRun = 500

    static let models: [(name: String, noise: Double)] = [
        ("Llama-3.1-8B-Tulu-sim", 0.8), ("Mistral-7B-Instruct-sim", 1.0), ("Vicuna-7B-sim", 1.3),
    ]
    static let domains: [(dataset: String, split: String, subjects: [String])] = [
        ("medmcqa-sim", "in-domain", ["medicine"]),
        ("mmlu-sim", "out-domain", ["anatomy", "astronomy", "college_physics", "high_school_biology", "philosophy"]),
    ]

    struct Method {
        var name: String
        var sharpness: Double
        var epoch: Int?
        var inDomainNoiseFactor: Double
    }

    static let methods: [Method] = {
        var list = [Method(name: "SFT", sharpness: 1.0, epoch: nil, inDomainNoiseFactor: 1),
                    Method(name: "DPO", sharpness: 2.6, epoch: nil, inDomainNoiseFactor: 1)]
        for epoch in 1...3 {
            list.append(Method(name: "CFT", sharpness: 1.0, epoch: epoch, inDomainNoiseFactor: 1 - 0.12 * Double(epoch)))
        }
        for epoch in 1...3 {
            list.append(Method(name: "RCFT", sharpness: 1.05, epoch: epoch, inDomainNoiseFactor: 1 - 0.2 * Double(epoch)))
        }
        return list
    }()

    /// Writes every simulated run into `store`; returns the number of runs.
    func populate(_ store: RunStore) throws -> Int {
        var random = SeededRandom(seed: seed)
        let k = 4
        // The question banks, shared by all runs.
        var banks: [(truth: [[Double]], labels: [Int], subjects: [String])] = []
        for domain in Self.domains {
            var truth: [[Double]] = [], labels: [Int] = [], subjects: [String] = []
            for i in 0..<questionsPerDomain {
                let u = (0..<k).map { _ in 1.6 * random.nextGaussian() }
                let p = Probabilities.softmax(u)
                var draw = random.nextDouble(), label = k - 1
                for option in 0..<k { draw -= p[option]; if draw < 0 { label = option; break } }
                truth.append(u)
                labels.append(label)
                subjects.append(domain.subjects[i % domain.subjects.count])
            }
            banks.append((truth, labels, subjects))
        }
        var runs = 0
        for model in Self.models {
            for method in Self.methods {
                for (d, domain) in Self.domains.enumerated() {
                    let noise = model.noise * (d == 0 ? method.inDomainNoiseFactor : 1)
                    // E[u | u + ε] = σ²/(σ² + τ²) · (u + ε): what a calibrated model reports.
                    let shrink = (1.6 * 1.6) / (1.6 * 1.6 + noise * noise)
                    var name = "\(model.name)/\(method.name)"
                    if let epoch = method.epoch { name += "/e\(epoch)" }
                    name += "/\(domain.split)"
                    let meta = RunMetadata(
                        name: name, experiment: "demo (simulated)", model: model.name, method: method.name,
                        dataset: domain.dataset, split: domain.split, step: method.epoch.map { $0 * 1000 },
                        epoch: method.epoch.map(Double.init), extraction: "choice",
                        params: ["sharpness": JSONValue.format(method.sharpness), "noise": JSONValue.format(noise),
                                 "seed": String(seed)],
                        tags: ["simulated": "true"])
                    let logger = try store.startRun(meta)
                    logger.maxBufferedQuestions = .max
                    logger.commitInterval = .infinity
                    let bank = banks[d]
                    var batch: [Prediction] = []
                    for i in 0..<questionsPerDomain {
                        let logits = bank.truth[i].map { method.sharpness * shrink * ($0 + noise * random.nextGaussian()) }
                        batch.append(Prediction(questionID: "q\(i)", label: bank.labels[i], values: .scores(logits),
                                                subject: bank.subjects[i]))
                        if batch.count == 32 { try logger.append(batch); batch.removeAll(keepingCapacity: true) }
                    }
                    if !batch.isEmpty { try logger.append(batch) }
                    try logger.logMetric("train/loss", 1.2 / Double(1 + (method.epoch ?? 0)), step: (method.epoch ?? 0) * 1000)
                    if method.name == "SFT" || method.name == "DPO", d == 0 {
                        for pair in preferencePairs(aligned: method.name == "DPO", random: &random) { try logger.logPair(pair) }
                    }
                    try logger.finish()
                    runs += 1
                }
                // TS is not simulated: temperature scaling is fitted on a seeded half of each DPO run's
                // questions and applied to the whole DPO run, so its accuracy is the DPO run's.
                for domain in Self.domains where method.name == "DPO" {
                    let dpo = "\(model.name)/DPO/\(domain.split)"
                    var request = CalibrationRequest(calibrator: TemperatureCalibrator(), fitRun: dpo)
                    request.applyTo = [dpo]
                    request.split = .folds(5)
                    request.seed = seed
                    request.names = [dpo: "\(model.name)/TS/\(domain.split)"]
                    request.tags = ["simulated": "false (fitted on the simulated DPO run)"]
                    _ = try Calibration.run(request, store: store)
                    runs += 1
                }
            }
        }
        return runs
    }

    /// How each method's runs come about, for the demo's output.
    static let provenance = """
        SFT, DPO, CFT, RCFT: simulated (seeded): a model of noise τ reports softmax(s·c·(u + ε)) of the latent logits u,
          sharpness s = 1 (SFT), 2.6 (DPO, overconfident), 1 and 1.05 with in-domain noise falling by epoch (CFT, RCFT).
        TS: not simulated: temperature scaling of each DPO run, cross-fitted over 5 folds (each question calibrated by
          the T fitted on the other folds: `track calibrate temperature --fit DPO --apply DPO --folds 5`), so TS keeps
          DPO's accuracy and no TS number is scored on the questions its T was fitted on.
        """

    /// Sequence log-likelihoods of chosen and rejected responses; alignment raises the chosen one.
    private func preferencePairs(aligned: Bool, random: inout SeededRandom) -> [PreferencePair] {
        (0..<pairsPerRun).map { i in
            let chosenTokens = 40 + random.nextInt(below: 200)
            let rejectedTokens = 40 + random.nextInt(below: 200)
            let margin = aligned ? 0.35 : 0.05
            let chosen = -Double(chosenTokens) * (1.1 - margin + 0.3 * random.nextGaussian() / 3)
            let rejected = -Double(rejectedTokens) * (1.1 + 0.3 * random.nextGaussian() / 3)
            return PreferencePair(promptID: "p\(i)", chosenLogProb: chosen, rejectedLogProb: rejected,
                                  chosenTokens: chosenTokens, rejectedTokens: rejectedTokens)
        }
    }
}
