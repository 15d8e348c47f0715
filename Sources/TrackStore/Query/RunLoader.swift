import TrackCalibration

/// A run read back for the analyzers.
public struct LoadedRun: Sendable {
    public var id: Int64
    public var name: String
    public var predictions: PredictionSet
    /// Per question (same order): subject and dataset, when asked for.
    public var subjects: [String?] = []
    public var datasets: [String] = []
    public var externalIDs: [String] = []
}

extension RunStore {
    /// Reads a run's option rows in key order (one scan of `option_scores`)
    /// and walks `questions` alongside by id for labels, so no per-row join
    /// is needed. With `details`, also reads subjects, datasets and external ids.
    public func loadRun(named name: String, details: Bool = false) throws -> LoadedRun {
        guard let runID = try runID(named: name) else {
            throw StoreError("no run named '\(name)' in \(database.path) (see `track runs`)")
        }
        return try loadRun(id: runID, name: name, details: details)
    }

    public func loadRun(id runID: Int64, name: String, details: Bool = false) throws -> LoadedRun {
        var run = LoadedRun(id: runID, name: name, predictions: PredictionSet())
        let expected = Int(try database.scalarInt("SELECT count(*) FROM option_scores WHERE run_id = ?", [.integer(runID)]) ?? 0)
        run.predictions.reserve(questions: expected / 4 + 1, options: 4)
        let options = try database.makeStatement(
            "SELECT question_id, option, prob, score FROM option_scores WHERE run_id = ? ORDER BY question_id, option")
        options.bind(runID, at: 1)
        let questions = try database.makeStatement(
            "SELECT question_id, label, n_options, subject, dataset, external_id FROM questions WHERE question_id >= ? ORDER BY question_id")
        var probabilities: [Double] = []
        var scores: [Double] = []
        var hasScores = true
        var currentQuestion: Int64 = -1
        var questionRowValid = false

        func flushQuestion() throws {
            guard currentQuestion >= 0 else { return }
            // Advance the questions cursor to the current id.
            // Re-seek when behind by more than a few rows (the run skips questions), else step.
            if !questionRowValid || questions.int64(0) > currentQuestion || currentQuestion - questions.int64(0) > 64 {
                questions.reset()
                questions.bind(currentQuestion, at: 1)
                questionRowValid = try questions.step()
            }
            while questionRowValid, questions.int64(0) < currentQuestion { questionRowValid = try questions.step() }
            guard questionRowValid, questions.int64(0) == currentQuestion else {
                throw StoreError("run '\(name)': question row \(currentQuestion) is missing")
            }
            let label = questions.int(1)
            guard questions.int(2) == probabilities.count, label < probabilities.count else {
                throw StoreError("run '\(name)': question \(currentQuestion) has \(questions.int(2)) options but \(probabilities.count) stored scores")
            }
            run.predictions.append(id: currentQuestion, label: label, probabilities: probabilities,
                                   scores: hasScores ? scores : nil)
            if details {
                run.subjects.append(questions.string(3))
                run.datasets.append(questions.string(4) ?? "")
                run.externalIDs.append(questions.string(5) ?? "")
            }
            probabilities.removeAll(keepingCapacity: true)
            scores.removeAll(keepingCapacity: true)
            hasScores = true
        }

        while try options.step() {
            let question = options.int64(0)
            if question != currentQuestion {
                try flushQuestion()
                currentQuestion = question
            }
            probabilities.append(options.double(2))
            if options.isNull(3) { hasScores = false } else { scores.append(options.double(3)) }
        }
        try flushQuestion()
        return run
    }
}
