import Foundation
import Testing
import TrackAnalysis
import TrackCalibration
import TrackStore

@Suite struct AnalyzeRunTests {
    /// The pipelined loader (scan on one thread, analysis on another, labels on a
    /// second connection) gives exactly what loading then analysing gives,
    /// over several chunks, with scores on some questions only.
    @Test func pipelinedAnalysisEqualsLoadThenAnalyze() throws {
        let directory = ServiceTests.Scratch()
        let store = try RunStore(path: directory.path("t.sqlite"))
        var random = SeededRandom(seed: 9)
        for (name, scoredEvery) in [("all-scored", 1), ("some-scored", 3)] {
            let logger = try store.startRun(RunMetadata(name: name, dataset: name))
            logger.maxBufferedQuestions = .max
            for i in 0..<20_000 {
                let logits = (0..<4).map { _ in random.nextGaussian() }
                let values: OptionValues = i % scoredEvery == 0 ? .scores(logits) : .probabilities(Probabilities.softmax(logits))
                try logger.append(Prediction(questionID: "q\(i)", label: random.nextInt(below: 4), values: values))
            }
            try logger.finish()
            for bins in [10, 15] {
                let pipelined = try RunReader(store).analyzer(named: name, BinSettings(bins: bins)).metrics()
                let direct = CalibrationAnalyzer(try store.loadRun(named: name).predictions, bins: bins).metrics()
                #expect(pipelined == direct, "\(name), \(bins) bins")
                #expect(pipelined.n == 20_000 && pipelined.nllFromScores == (scoredEvery == 1))
            }
        }
        #expect(throws: StoreError.self) { try RunReader(store).analyzer(named: "nope") }
    }
}
