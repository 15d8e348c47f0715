import Foundation
import Testing
import TrackCalibration
@testable import TrackStore

/// Every calibration view against the Swift analyzers, on several runs:
/// identical bin counts, values within 1e-12.
@Suite struct ViewsTests {
    static func populatedStore(_ directory: TemporaryDirectory) throws -> RunStore {
        let store = try RunStore(path: directory.path("t.sqlite"))
        let ingestor = Ingestor(store: store)
        _ = try ingestor.ingest(Fixtures.path("synthetic-seed0-n1000.csv"), options: IngestOptions())
        _ = try ingestor.ingest(Fixtures.path("bin-edges-n160.csv"), options: IngestOptions())
        // Logits with K = 5, ties and edge confidences.
        var random = SeededRandom(seed: 5)
        let logger = try store.startRun(RunMetadata(name: "logits5", method: "DPO", dataset: "five"))
        for i in 0..<700 {
            let logits = (0..<5).map { _ in (random.nextGaussian() * 2).rounded() }
            try logger.append(Prediction(questionID: "q\(i)", label: random.nextInt(below: 5), values: .scores(logits)))
        }
        try logger.finish()
        // Mixed option counts: classwise undefined.
        let mixed = try store.startRun(RunMetadata(name: "mixed", dataset: "mixed"))
        try mixed.append([Prediction(questionID: "a", label: 0, values: .probabilities([0.7, 0.3])),
                          Prediction(questionID: "b", label: 2, values: .probabilities([0.2, 0.3, 0.5]))])
        try mixed.finish()
        return store
    }

    @Test func viewsMatchTheAnalyzers() throws {
        let directory = TemporaryDirectory()
        let store = try Self.populatedStore(directory)
        let runs = try store.runSummaries()
        #expect(runs.count == 4)
        for run in runs {
            let analyzer = CalibrationAnalyzer(try store.loadRun(named: run.name).predictions, bins: 10)
            let metrics = analyzer.metrics()

            // Top-label bins: same non-empty bins, same counts, values within 1e-12.
            let swiftBins = analyzer.reliabilityBins().filter { $0.count > 0 }
            let sqlBins = try store.query("SELECT bin, n, accuracy, confidence, gap FROM reliability_bins WHERE run_id = \(run.id) ORDER BY bin").rows
            #expect(sqlBins.count == swiftBins.count, "\(run.name)")
            for (row, bin) in zip(sqlBins, swiftBins) {
                #expect(row[0] == .integer(Int64(bin.bin)) && row[1] == .integer(Int64(bin.count)), "\(run.name) bin \(bin.bin)")
                #expect(abs(double(row[2]) - bin.accuracy!) <= 1e-12)
                #expect(abs(double(row[3]) - bin.confidence!) <= 1e-12)
                #expect(abs(double(row[4]) - bin.gap!) <= 1e-12)
            }

            // Classwise bins.
            let classwise = analyzer.classwiseBins()
            let sqlClass = try store.query("SELECT class, bin, n, frequency, mean_prob FROM classwise_bins WHERE run_id = \(run.id) ORDER BY class, bin").rows
            if !classwise.isEmpty {
                let swiftRows = classwise.enumerated().flatMap { k, rows in rows.filter { $0.count > 0 }.map { (k, $0) } }
                #expect(sqlClass.count == swiftRows.count, "\(run.name)")
                for (row, (k, bin)) in zip(sqlClass, swiftRows) {
                    #expect(row[0] == .integer(Int64(k)) && row[1] == .integer(Int64(bin.bin)) && row[2] == .integer(Int64(bin.count)))
                    #expect(abs(double(row[3]) - bin.accuracy!) <= 1e-12 && abs(double(row[4]) - bin.confidence!) <= 1e-12)
                }
            }

            // The per-run summary.
            let summary = try store.query("SELECT n, accuracy, mean_confidence, overconfidence, conf_ece, mce, cw_ece, brier FROM run_calibration WHERE run_id = \(run.id)").rows[0]
            #expect(summary[0] == .integer(Int64(metrics.n)))
            for (index, key) in ["accuracy", "mean_confidence", "overconfidence", "conf_ece", "mce"].enumerated() {
                #expect(abs(double(summary[index + 1]) - metrics[MetricKey(rawValue: key)!]!) <= 1e-12, "\(run.name) \(key)")
            }
            if let cw = metrics.cwECE {
                #expect(abs(double(summary[6]) - cw) <= 1e-12, "\(run.name) cw_ece")
            } else {
                #expect(summary[6] == .null, "\(run.name) cw_ece should be NULL")
            }
            #expect(abs(double(summary[7]) - metrics.brier!) <= 1e-12, "\(run.name) brier")
            let pooled = try store.query("SELECT pooled_ece, nll FROM run_calibration WHERE run_id = \(run.id)").rows[0]
            #expect(abs(double(pooled[0]) - metrics.pooledECE!) <= 1e-12, "\(run.name) pooled_ece")
            #expect(abs(double(pooled[1]) - metrics.nll!) <= 1e-12, "\(run.name) nll")
        }
    }

    /// METHODS §3 checked values through ingest -> store -> views.
    @Test func checkedValuesThroughTheViews() throws {
        let directory = TemporaryDirectory()
        let store = try Self.populatedStore(directory)
        let row = try store.query("SELECT accuracy, mean_confidence, conf_ece, mce, cw_ece, brier FROM run_calibration WHERE run = 'synthetic-seed0-n1000'").rows[0]
        let expected = [0.614, 0.780578, 0.169247, 0.291293, 0.089048, 0.558263]
        for (value, want) in zip(row, expected) { #expect(abs(double(value) - want) < 5e-7) }
        let edges = try store.query("SELECT accuracy, mean_confidence, conf_ece, mce, cw_ece, brier FROM run_calibration WHERE run = 'bin-edges-n160'").rows[0]
        for (value, want) in zip(edges, [0.625, 0.65, 0.100, 0.100, 0.0375, 0.503333]) { #expect(abs(double(value) - want) < 5e-7) }
    }

    /// METHODS §3 checked values through ingest -> store -> analyzer, every metric.
    @Test func checkedValuesThroughTheStore() throws {
        let directory = TemporaryDirectory()
        let store = try Self.populatedStore(directory)
        let m = CalibrationAnalyzer(try store.loadRun(named: "synthetic-seed0-n1000").predictions).metrics()
        let expected: [String: Double] = ["accuracy": 0.614, "mean_confidence": 0.780578, "conf_ece": 0.169247,
                                          "mce": 0.291293, "rmsce": 0.180835, "cw_ece": 0.089048,
                                          "eq_mass_ece": 0.166578, "brier": 0.558263, "nll": 1.100437]
        for (key, value) in expected { #expect(abs(m[MetricKey(rawValue: key)!]! - value) < 5e-7, "\(key)") }
        let e = CalibrationAnalyzer(try store.loadRun(named: "bin-edges-n160").predictions).metrics()
        let edges: [String: Double] = ["accuracy": 0.625, "mean_confidence": 0.65, "conf_ece": 0.1, "mce": 0.1,
                                       "rmsce": 0.1, "cw_ece": 0.0375, "eq_mass_ece": 0.100, "brier": 0.503333, "nll": 1.350916]
        for (key, value) in edges { #expect(abs(e[MetricKey(rawValue: key)!]! - value) < 5e-7, "\(key)") }
    }

    func double(_ value: SQLValue) -> Double {
        switch value {
        case .real(let d): return d
        case .integer(let i): return Double(i)
        default: return .nan
        }
    }
}
