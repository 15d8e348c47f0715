// track-bench: in-process timings for `make bench` (bench/bench.py drives it).
//
//   track-bench metrics --db PATH --run NAME [--repeat N]
//
// Times a bare scan of the run's option rows (the same SELECT the loader
// uses, columns read, nothing computed) and the full path: load the run and
// compute every metric of `track metrics`. Prints one JSON object.
import Foundation
import TrackAnalysis
import TrackCalibration
import TrackFigures
import TrackStore

func argument(_ name: String) -> String? {
    let args = CommandLine.arguments
    guard let index = args.firstIndex(of: "--\(name)"), index + 1 < args.count else { return nil }
    return args[index + 1]
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

func time(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

// track-bench coverage [--replicates 200] [--resamples 1000] [--quick]: the coverage simulation of
// METHODS §3 (CoverageSimulation): per scenario, how often each binned error's interval contains the
// true value, and the calibration test's rejection rate. Prints one JSON line per scenario.
if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "coverage" {
    let replicates = Int(argument("replicates") ?? "200") ?? 200
    let resamples = Int(argument("resamples") ?? "1000") ?? 1000
    var scenarios: [CoverageSimulation.Scenario] = []
    let sizes = CommandLine.arguments.contains("--quick") ? [500, 2_000] : [300, 500, 2_000, 14_042]
    for n in sizes { for curve in CoverageSimulation.Curve.allCases { scenarios.append(.init(curve: curve, n: n)) } }
    if !CommandLine.arguments.contains("--quick") {
        for k in [2, 10] { for curve in CoverageSimulation.Curve.allCases { scenarios.append(.init(curve: curve, k: k, n: 2_000)) } }
        for shape in [CoverageSimulation.Shape.high, .uniform] {
            for curve in CoverageSimulation.Curve.allCases { scenarios.append(.init(curve: curve, shape: shape, n: 2_000)) }
        }
    }
    for (index, scenario) in scenarios.enumerated() {
        var cell: CoverageSimulation.Cell!
        let seconds = time { cell = CoverageSimulation.run(scenario, replicates: replicates, resamples: resamples, seed: UInt64(index + 1)) }
        var entries: [JSONObject.Entry] = [
            .init(key: "curve", value: .string(scenario.curve.rawValue)), .init(key: "shape", value: .string(scenario.shape.rawValue)),
            .init(key: "k", value: .number(Double(scenario.k))), .init(key: "n", value: .number(Double(scenario.n))),
            .init(key: "replicates", value: .number(Double(replicates))), .init(key: "seconds", value: .number(seconds)),
            .init(key: "accuracy_covered", value: .number(cell.accuracyCovered)),
        ]
        for key in CoverageSimulation.keys {
            entries.append(.init(key: key.rawValue, value: .object(JSONObject([
                .init(key: "truth", value: .number(cell.truth[key] ?? .nan)), .init(key: "covered", value: .number(cell.covered[key] ?? .nan)),
                .init(key: "above", value: .number(cell.above[key] ?? .nan)), .init(key: "below", value: .number(cell.below[key] ?? .nan)),
                .init(key: "width", value: .number(cell.meanWidth[key] ?? .nan)), .init(key: "bias", value: .number(cell.bias[key] ?? .nan)),
            ]))))
        }
        for key in [MetricKey.confECE, .cwECE] {
            entries.append(.init(key: "rejected_\(key.rawValue)", value: .number(cell.rejected[key] ?? .nan)))
        }
        print(JSONValue.object(JSONObject(entries)).jsonText)
        fflush(nil)
    }
    exit(0)
}

// track-bench replicate --db PATH --copies N: gives every run of the store N-1
// copies (new uuid and name, methods M0..M4 and models A/B in turn), rows and
// summaries copied in one transaction on a track connection. Builds the
// many-runs store of the scale section fast; prints its build time.
if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "replicate", let path = argument("db") {
    let copies = Int(argument("copies") ?? "100") ?? 100
    let store = try RunStore(path: path)
    let database = store.database
    let seconds = try time {
        try database.transaction {
            var sources: [(Int64, String)] = []
            try database.forEachRow("SELECT run_id, name FROM runs ORDER BY run_id") { sources.append(($0.int64(0), $0.string(1) ?? "")) }
            var index = 0
            for copy in 0..<copies {
                for (source, name) in sources {
                    defer { index += 1 }
                    let target: Int64
                    if copy == 0 {
                        target = source
                        try database.execute("UPDATE runs SET name = ?, method = ?, model = ? WHERE run_id = ?",
                                             [.text(String(format: "r%04d", index)), .text("M\(index % 5)"), .text(index % 2 == 0 ? "A" : "B"), .integer(source)])
                    } else {
                        try database.execute("""
                            INSERT INTO runs(uuid, name, model, method, dataset, split, status, source_format)
                            SELECT lower(hex(randomblob(16))), ?, ?, ?, dataset, split, status, source_format FROM runs WHERE run_id = ?
                            """, [.text(String(format: "r%04d", index)), .text(index % 2 == 0 ? "A" : "B"), .text("M\(index % 5)"), .integer(source)])
                        target = database.lastInsertRowID
                        for (table, columns) in [("option_scores", "question_id, option, prob, score"), ("_track_top_labels", "question_id, pred"),
                                                 ("_track_run_stats", "n, n_correct, sum_conf, sum_brier, sum_nll, sum_nll_scores, n_scored, min_options, max_options"),
                                                 ("_track_run_bins", "class, bin, n, hits, sum_p")] {
                            try database.execute("INSERT INTO \(table)(run_id, \(columns)) SELECT ?, \(columns) FROM \(table) WHERE run_id = ?",
                                                 [.integer(target), .integer(source)])
                        }
                    }
                    _ = name
                }
            }
        }
        store.checkpoint()
    }
    print(JSONValue.object(JSONObject([.init(key: "seconds", value: .number(seconds))])).jsonText)
    exit(0)
}

// track-bench bootstrap [--n 1000000] [--resamples 64]: times the parts of the bootstrap.
if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "bootstrap" {
    let n = Int(argument("n") ?? "1000000") ?? 1_000_000, resamples = Int(argument("resamples") ?? "64") ?? 64
    var random = SeededRandom(seed: 1)
    var set = PredictionSet()
    set.reserve(questions: n, options: 4)
    for i in 0..<n {
        let logits = (0..<4).map { _ in random.nextGaussian() * 2 }
        set.append(id: Int64(i), label: random.nextInt(below: 4), probabilities: Probabilities.softmax(logits))
    }
    let analyzer = CalibrationAnalyzer(set)
    let point = time { _ = analyzer.metrics() }
    let all = time { _ = analyzer.bootstrap(resamples: resamples, seed: 0) }
    // Its parts: the percentile metrics' resamples, and the calibration test (the rest is the binned bounds).
    let percentile = time { _ = analyzer.bootstrapSamples(resamples: resamples, seed: 0, keys: [.accuracy, .meanConfidence, .brier, .nll]) }
    let test = time { _ = analyzer.calibrationTests(resamples: resamples, seed: 0) }
    // The Poisson weights of one batch of eight resamples alone (what every batch draws first).
    let weights = time { for batch in 0..<4 { _ = CalibrationAnalyzer.poissonWeights(n: n, seed: 0, firstResample: 8 * batch) } } / 4
    print(JSONValue.object(JSONObject([.init(key: "point_seconds", value: .number(point)),
                                       .init(key: "bootstrap_seconds", value: .number(all)),
                                       .init(key: "percentile_part_seconds", value: .number(percentile)),
                                       .init(key: "test_part_seconds", value: .number(test)),
                                       .init(key: "weights_per_batch_seconds", value: .number(weights)),
                                       .init(key: "per_resample_ms", value: .number(all / Double(resamples) * 1000))])).jsonText)
    exit(0)
}

// track-bench science --out DIR [--n 1000000]: writes seeded confidences, outcomes and one class's
// probabilities as .npy (for the relplot and scikit-learn baselines) and times track's smECE with its
// bandwidth search, the smooth diagram's curve (200-point mesh), an isotonic fit of one class, and a
// paired comparison (1,000 paired-bootstrap resamples of both runs) beside one point estimate.
if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "science", let directory = argument("out") {
    let n = Int(argument("n") ?? "1000000") ?? 1_000_000
    var random = SeededRandom(seed: 5)
    var base = PredictionSet(), other = PredictionSet()
    base.reserve(questions: n, options: 4)
    other.reserve(questions: n, options: 4)
    for i in 0..<n {
        let u = (0..<4).map { _ in random.nextGaussian() * 1.6 }
        let p = Probabilities.softmax(u)
        var draw = random.nextDouble(), label = 3
        for c in 0..<4 { draw -= p[c]; if draw < 0 { label = c; break } }
        let noisy = u.map { $0 + 0.8 * random.nextGaussian() }
        base.append(id: Int64(i), label: label, probabilities: Probabilities.softmax(noisy))
        other.append(id: Int64(i), label: label, probabilities: Probabilities.softmax(noisy.map { $0 * 2.5 }))
    }
    let analyzer = CalibrationAnalyzer(base)
    let f = analyzer.confidences, y = analyzer.correctness.map { $0 ? 1.0 : 0.0 }
    let classProbabilities = (0..<n).map { base.probabilities[$0 * 4] }, classOutcomes = (0..<n).map { base.labels[$0] == 0 ? 1.0 : 0.0 }
    try NPYArray.write(rows: n, columns: 1, values: f, to: directory + "/conf.npy")
    try NPYArray.write(rows: n, columns: 1, values: y, to: directory + "/correct.npy")
    try NPYArray.write(rows: n, columns: 1, values: classProbabilities, to: directory + "/p0.npy")
    try NPYArray.write(rows: n, columns: 1, values: classOutcomes, to: directory + "/y0.npy")
    var smooth: (value: Double, sigma: Double) = (0, 0)
    let smoothSeconds = median((0..<3).map { _ in time { smooth = SmoothECE.automatic(f, y) } })
    let curveSeconds = median((0..<3).map { _ in time { _ = SmoothECE.smooth(f, y, sigma: smooth.sigma, mesh: 200, residual: false) } })
    var iso = IsotonicRegression(x: [], y: [])
    let isoSeconds = median((0..<3).map { _ in time { iso = IsotonicRegression.fit(x: classProbabilities, y: classOutcomes) } })
    let point = time { _ = analyzer.metrics() }
    let single = time { _ = analyzer.bootstrap(resamples: 1000, seed: 0) }
    let otherAnalyzer = CalibrationAnalyzer(other)
    let paired = time {
        let a = analyzer.bootstrapResamples(resamples: 1000, seed: 0), b = otherAnalyzer.bootstrapResamples(resamples: 1000, seed: 0)
        _ = PairedTests.bootstrapDifference(zip(a, b).compactMap { x, z in x.flatMap { u in z.map { $0.confECE! - u.confECE! } } }, level: 0.95)
    }
    print(JSONValue.object(JSONObject([
        .init(key: "smece", value: .number(smooth.value)), .init(key: "sigma", value: .number(smooth.sigma)),
        .init(key: "smece_seconds", value: .number(smoothSeconds)), .init(key: "curve_seconds", value: .number(curveSeconds)),
        .init(key: "isotonic_seconds", value: .number(isoSeconds)), .init(key: "isotonic_points", value: .number(Double(iso.x.count))),
        .init(key: "isotonic_at_half", value: .number(iso.predict(0.5))),
        .init(key: "point_seconds", value: .number(point)), .init(key: "paired_seconds", value: .number(paired)),
        .init(key: "single_bootstrap_seconds", value: .number(single)),
    ])).jsonText)
    exit(0)
}

// track-bench figure --bins CSV --out PNG [--repeat N]: renders the reliability
// diagram of the bins in CSV (columns of `track plot`'s CSV) N times; prints the median.
if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "figure",
   let csv = argument("bins"), let out = argument("out") {
    let repeats = Int(argument("repeat") ?? "20") ?? 20
    var bins: [BinRow] = []
    for line in try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").dropFirst() {
        let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        bins.append(BinRow(bin: Int(f[2])!, lower: Double(f[3])!, upper: Double(f[4])!, count: Int(f[5])!,
                           accuracy: Double(f[6]), confidence: Double(f[7])))
    }
    let n = bins.reduce(0) { $0 + $1.count }
    let ece = bins.reduce(0.0) { $0 + ($1.gap.map { abs($0) } ?? 0) * Double($1.count) } / Double(max(n, 1))
    let figure = Figure(panels: [.reliability(ReliabilityPanel(title: "reliability", bins: bins, ece: ece, n: n))],
                        columns: 1, panelWidth: 260, panelHeight: 300)
    let times = try (0..<repeats).map { _ in try time { try figure.render(to: out, dpi: 200) } }
    print(JSONValue.object(JSONObject([.init(key: "seconds", value: .number(median(times)))])).jsonText)
    exit(0)
}

// track-bench temperature --out DIR [--n 1000000] [--k 4]: writes seeded logits and labels as
// .npy (for the scikit-learn baseline) and times track's temperature fit on them (median of 3).
if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "temperature", let directory = argument("out") {
    let n = Int(argument("n") ?? "1000000") ?? 1_000_000, k = Int(argument("k") ?? "4") ?? 4
    var random = SeededRandom(seed: 11)
    var set = PredictionSet()
    set.reserve(questions: n, options: k)
    var logits = [Double](repeating: 0, count: n * k), labels = [Int](repeating: 0, count: n)
    for i in 0..<n {
        let u = (0..<k).map { _ in random.nextGaussian() * 1.5 }
        let p = Probabilities.softmax(u)
        var draw = random.nextDouble(), label = k - 1
        for c in 0..<k { draw -= p[c]; if draw < 0 { label = c; break } }
        let row = u.map { $0 * 2.2 }
        for c in 0..<k { logits[i * k + c] = row[c] }
        labels[i] = label
        set.append(id: Int64(i), label: label, probabilities: Probabilities.softmax(row), scores: row)
    }
    try NPYArray.write(rows: n, columns: k, values: logits, to: directory + "/logits.npy")
    try NPYArray.write(labels: labels, to: directory + "/labels.npy")
    let scaling = TemperatureScaling(set)
    var fit: (temperature: Double, iterations: Int) = (0, 0)
    let seconds = median((0..<3).map { _ in time { fit = scaling.fitTemperature(criterion: .nll) } })
    print(JSONValue.object(JSONObject([
        .init(key: "seconds", value: .number(seconds)), .init(key: "temperature", value: .number(fit.temperature)),
        .init(key: "iterations", value: .number(Double(fit.iterations))),
    ])).jsonText)
    exit(0)
}

// track-bench matrix [--n 100000] [--k 10]: matrix scaling fitted with OpenBLAS and with plain loops
// on the same synthetic scores, the same number of L-BFGS iterations; prints seconds of each.
if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "matrix" {
    let n = Int(argument("n") ?? "100000") ?? 100_000, k = Int(argument("k") ?? "10") ?? 10
    var random = SeededRandom(seed: 7)
    var scores = [Double](repeating: 0, count: n * k), labels = [Int32](repeating: 0, count: n)
    for i in 0..<n {
        let u = (0..<k).map { _ in random.nextGaussian() }
        let p = Probabilities.softmax(u)
        var draw = random.nextDouble(), label = k - 1
        for c in 0..<k { draw -= p[c]; if draw < 0 { label = c; break } }
        labels[i] = Int32(label)
        for c in 0..<k { scores[i * k + c] = 2.5 * u[c] + 0.3 * u[(c + 1) % k] }
    }
    var fits: [MatrixScaling] = []
    let blas = time { fits.append(MatrixScaling.fit(kind: .matrix, scores: scores, labels: labels, k: k, lambda: 1e-3, maxIterations: 50)) }
    let loops = time { fits.append(MatrixScaling.fit(kind: .matrix, scores: scores, labels: labels, k: k, lambda: 1e-3, useBLAS: false, maxIterations: 50)) }
    let (blasFit, loopFit) = (fits[0], fits[1])
    print(JSONValue.object(JSONObject([
        .init(key: "blas_seconds", value: .number(blas)), .init(key: "loop_seconds", value: .number(loops)),
        .init(key: "iterations", value: .number(Double(blasFit.iterations))),
        .init(key: "nll_difference", value: .number(abs(blasFit.nllAfter - loopFit.nllAfter))),
    ])).jsonText)
    exit(0)
}

guard CommandLine.arguments.count > 1, CommandLine.arguments[1] == "metrics",
      let db = argument("db"), let runName = argument("run") else {
    FileHandle.standardError.write(Data("usage: track-bench metrics --db PATH --run NAME [--repeat N] | figure --bins CSV --out PNG\n".utf8))
    exit(64)
}
let repeats = Int(argument("repeat") ?? "3") ?? 3
let store = try RunStore(path: db, readOnly: true)
guard let runID = try store.runID(named: runName) else { fatalError("no run \(runName)") }

var scanTimes: [Double] = [], fullTimes: [Double] = []
var checksum = 0.0
var rows = 0
var metrics = CalibrationMetrics()
for _ in 0..<repeats {
    scanTimes.append(try time {
        let statement = try store.database.makeStatement(
            "SELECT question_id, option, prob, score FROM option_scores WHERE run_id = ? ORDER BY question_id, option")
        statement.bind(runID, at: 1)
        var sum = 0.0, count = 0
        while try statement.step() {
            sum += Double(statement.int64(0)) + Double(statement.int64(1)) + statement.double(2)
            if !statement.isNull(3) { sum += statement.double(3) }
            count += 1
        }
        checksum = sum
        rows = count
    })
    fullTimes.append(try time {
        metrics = try RunReader(store).analyzer(id: runID, name: runName, BinSettings(bins: 10)).metrics()
    })
}
// Phases: reading into the analyzer, and the metric pass alone.
let analyzer = try RunReader(store).analyzer(id: runID, name: runName, BinSettings(bins: 10))
let metricsOnly = median((0..<repeats).map { _ in time { _ = analyzer.metrics() } })
let scanOnly = median(try (0..<repeats).map { _ in try time { _ = try RunReader(store).analyzer(id: runID, name: runName, BinSettings(bins: 10)) } })
var entries: [JSONObject.Entry] = [
    .init(key: "analyze_seconds", value: .number(scanOnly)),
    .init(key: "metrics_pass_seconds", value: .number(metricsOnly)),
    .init(key: "rows", value: .number(Double(rows))),
    .init(key: "questions", value: .number(Double(metrics.n))),
    .init(key: "scan_seconds", value: .number(median(scanTimes))),
    .init(key: "metrics_seconds", value: .number(median(fullTimes))),
    .init(key: "checksum", value: .number(checksum)),
]
for key in CalibrationMetrics.keys {
    entries.append(.init(key: key.rawValue, value: metrics[key].map(JSONValue.number) ?? .null))
}
print(JSONValue.object(JSONObject(entries)).jsonText)
