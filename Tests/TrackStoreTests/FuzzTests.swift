import Foundation
import Testing
import TrackCalibration
@testable import TrackStore

/// A deterministic fuzz test of the ingest path (issue 11): valid JSON lines,
/// CSV, lm-eval samples and .npy files, mutated by a seeded generator (byte
/// flips, truncation, special numbers, huge and negative values, NUL, invalid
/// UTF-8, deep nesting, duplicated lines), fed through `Ingestor`. Never a
/// trap; every refused file is an `InputError` naming the file (and, for text
/// formats, the line, unless the whole file is at fault); a refused file
/// leaves the store exactly as it was; an accepted one leaves summaries exact.
@Suite struct FuzzTests {
    static let cases = Int(ProcessInfo.processInfo.environment["FUZZ_CASES"] ?? "") ?? 10_000

    struct Mutator {
        var random: SeededRandom

        mutating func int(_ bound: Int) -> Int { random.nextInt(below: max(bound, 1)) }

        static let specials = ["NaN", "Infinity", "-Infinity", "1e309", "-1e309", "1e-400", "-0", "0", "1", "-1",
                               "1e300", "123456789012345678901234567890", "0.5e", "\"\"", "null", "true", "[]", "{}", "9e99999"]

        mutating func mutate(_ input: [UInt8]) -> [UInt8] {
            var bytes = input
            for _ in 0...int(3) {
                guard !bytes.isEmpty else { return Array("\u{0}".utf8) }
                let at = int(bytes.count)
                switch int(10) {
                case 0: bytes[at] ^= UInt8(1 << int(8))                                          // flip a bit
                case 1: bytes = Array(bytes.prefix(at))                                            // truncate
                case 2: bytes.insert(contentsOf: Array(Self.specials[int(Self.specials.count)].utf8), at: at)
                case 3: bytes.insert(0, at: at)                                                    // NUL
                case 4: bytes.insert(contentsOf: [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xE2, 0x82]][int(4)], at: at)
                case 5: bytes.insert(contentsOf: Array(String(repeating: "[", count: 600 + int(2000)).utf8), at: at)
                case 6:                                                                            // duplicate a line
                    let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
                    let line = lines[int(lines.count)]
                    bytes += [0x0A] + line
                case 7: bytes.remove(at: at)
                case 8:                                                                            // a number made huge or negative
                    if let digit = bytes[at...].firstIndex(where: { $0 >= 0x30 && $0 <= 0x39 }) {
                        bytes.insert(contentsOf: Array(["-", "9999999", "e308", "-0.0000001"][int(4)].utf8), at: digit)
                    }
                default: bytes.insert(contentsOf: Array([",", "\"", "\\", "\r\n", "\n", ":", "}", "]"][int(8)].utf8), at: at)
                }
            }
            return bytes
        }
    }

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        var jsonl = ""
        var csv = "id,subject,p0,p1,p2,p3,label\n"
        var random = SeededRandom(seed: 3)
        for i in 0..<12 {
            let logits = (0..<4).map { _ in (random.nextGaussian() * 100).rounded() / 100 }
            let p = Probabilities.softmax(logits).map { String(format: "%.6f", $0) }
            jsonl += #"{"id": "q\#(i)", "label": \#(i % 4), "logits": [\#(logits.map { "\($0)" }.joined(separator: ", "))], "subject": "s\#(i % 3)"}"# + "\n"
            csv += "q\(i),s\(i % 3),\(p.joined(separator: ",")),\(i % 4)\n"
        }
        jsonl += #"{"batch": [{"id": "b1", "label": 0, "probs": [0.7, 0.3]}, {"id": "b2", "label": "B", "probs": [0.2, 0.8]}]}"# + "\n"
        jsonl += #"{"metric": "loss", "value": 0.5, "step": 3}"# + "\n"
        let lmEval = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(
            "lm-eval-0.4.13/Qwen__Qwen3-8B/samples_casino_belief_2025-06-01T12-00-00.123456.jsonl")))
        let directory = TemporaryDirectory()
        let npyPath = directory.path("p.npy")
        try NPYArray.write(rows: 6, columns: 3, values: (0..<18).map { [0.2, 0.3, 0.5][$0 % 3] }, to: npyPath)
        let npy = try Data(contentsOf: URL(fileURLWithPath: npyPath))
        return [("run.jsonl", Array(jsonl.utf8)), ("run.csv", Array(csv.utf8)),
                ("samples_task_2025-01-01T00-00-00.jsonl", Array(lmEval.prefix(64_000))), ("p.npy", Array(npy))]
    }

    static let fingerprintSQL = "SELECT " + ["runs", "questions", "option_scores", "_track_top_labels", "_track_run_stats", "_track_run_bins",
                                             "params", "metrics", "ingest_rejects"]
        .map { "(SELECT count(*) FROM \($0))" }.joined(separator: ", ") + ", (SELECT total(n) + total(sum_conf) FROM _track_run_stats)"

    /// Counts and sums that any partial write would change, in one query.
    static func fingerprint(_ store: RunStore) throws -> [SQLValue] {
        try store.query(fingerprintSQL).rows[0]
    }

    @Test func mutatedInputsNeverTrapAndRefusalsChangeNothing() throws {
        let seeds = try Self.seeds()
        // Two workers (the machine's two cores), each with its own seeded stream and stores.
        let counts = Counts()
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            do {
                let (accepted, refused) = try Self.fuzz(seeds: seeds, worker: worker, workers: 2)
                counts.add(accepted, refused)
            } catch {
                Issue.record("worker \(worker): \(error)")
            }
        }
        #expect(counts.accepted > 100 && counts.refused > 1000, "accepted \(counts.accepted), refused \(counts.refused)")
    }

    final class Counts: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var accepted = 0, refused = 0
        func add(_ a: Int, _ r: Int) { lock.lock(); accepted += a; refused += r; lock.unlock() }
    }

    static func fuzz(seeds: [(name: String, bytes: [UInt8])], worker: Int, workers: Int) throws -> (Int, Int) {
        let directory = TemporaryDirectory()
        var store = try RunStore(path: directory.path("fuzz-0.sqlite"))
        var ingestor = Ingestor(store: store)
        let labels = directory.path("labels.txt")
        try "0\n1\n2\n0\n1\n2\n".write(toFile: labels, atomically: true, encoding: .utf8)
        var mutator = Mutator(random: SeededRandom(seed: 20261123 &+ UInt64(worker)))
        var accepted = 0, refused = 0
        var before = try fingerprint(store)
        for index in stride(from: worker, to: cases, by: workers) {
            if index >= workers, (index / workers) % 500 == 0 {
                // Whatever was accepted is summarised exactly; then a fresh store keeps each case cheap.
                try SummaryTests.expectExact(store, "fuzzing, before case \(index)")
                store = try RunStore(path: directory.path("fuzz-\(index).sqlite"))
                ingestor = Ingestor(store: store)
                before = try fingerprint(store)
            }
            let seed = seeds[(index / workers) % seeds.count]
            let path = directory.path("\(index)-\(seed.name)")
            try Data(mutator.mutate(seed.bytes)).write(to: URL(fileURLWithPath: path))
            var options = IngestOptions()
            options.skipInvalid = mutator.int(4) == 0
            if seed.name.hasSuffix(".npy") { options.labelsPath = labels }
            if seed.name.hasSuffix(".csv") || seed.name.hasSuffix(".npy") { options.metadata.dataset = "fuzz-\(seed.name)" }
            do {
                _ = try ingestor.ingest(path, options: options)
                accepted += 1
                before = try fingerprint(store)
            } catch let error as InputError {
                refused += 1
                #expect(error.source == path || error.source == labels, "case \(index): \(error)")
                let wholeFile = ["empty", "no questions", "no valid questions", "header", ".npy", "truncated", "shape", "dtype",
                                 "labels", "cannot tell", "results", "format", "array", "no such", "a run named"]
                    .contains { error.reason.localizedCaseInsensitiveContains($0) }
                if !seed.name.hasSuffix(".npy") {
                    #expect(error.line != nil || wholeFile, "case \(index): no line in '\(error)'")
                }
                let after = try fingerprint(store)
                #expect(after == before, "case \(index): a refused file changed the store: \(error)")
            }
            try? FileManager.default.removeItem(atPath: path)
        }
        try SummaryTests.expectExact(store, "after fuzzing")
        return (accepted, refused)
    }
}

/// Issue 23: the fuzz test extended to `--where` (random token streams, deep nesting, long chains)
/// and hostile run names: the parser never traps, and whatever it accepts runs on a store.
@Suite struct QueryFuzzTests {
    @Test func randomWhereClausesNeverTrap() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        for (index, name) in ["plain", "a'quote", "x\u{1B}[31m", String(repeating: "n", count: 5_000), "ü/ß/☃", "-1e5"].enumerated() {
            var meta = RunMetadata(name: name)
            meta.params["lr"] = String(index)
            try store.writeRun(meta, predictions: [Prediction(questionID: "q\(index)", label: 0, values: .probabilities([0.7, 0.3]))])
        }
        var random = SeededRandom(seed: 23)
        let atoms = ["(", ")", "not", "and", "or", "n", "accuracy", "params.lr", "tags.x", "run", "conf_ece", "=", "!=", "<", ">=",
                     "<>", "like", "in", "is", "null", ",", "'a''b'", "'%'", "1", "-2.5e3", "1e999", "'", "!", "@", "\u{0}", "model"]
        var accepted = 0
        let cases = Int(ProcessInfo.processInfo.environment["FUZZ_CASES"] ?? "") ?? 10_000
        let fields = ["n", "accuracy", "params.lr", "tags.x", "run", "conf_ece", "model", "step", "epoch"]
        let values = ["1", "0.5", "-2.5e3", "'a''b'", "'plain'", "'%'", "1e300"]
        func expression(_ depth: Int) -> [String] {
            switch random.nextInt(below: depth > 3 ? 3 : 6) {
            case 0: return [fields[random.nextInt(below: fields.count)], ["=", "!=", "<", ">=", "<>"][random.nextInt(below: 5)], values[random.nextInt(below: values.count)]]
            case 1: return [fields[random.nextInt(below: fields.count)], "is", random.nextInt(below: 2) == 0 ? "not" : "", "null"].filter { !$0.isEmpty }
            case 2: return [fields[random.nextInt(below: fields.count)], "in", "(", values[random.nextInt(below: values.count)], ",", values[random.nextInt(below: values.count)], ")"]
            case 3: return ["not"] + expression(depth + 1)
            case 4: return ["("] + expression(depth + 1) + [")"]
            default: return expression(depth + 1) + [random.nextInt(below: 2) == 0 ? "and" : "or"] + expression(depth + 1)
            }
        }
        for _ in 0..<cases {
            var tokens = expression(0)
            // Half the cases mutated: a token replaced, dropped or added.
            if random.nextInt(below: 2) == 0, !tokens.isEmpty {
                let at = random.nextInt(below: tokens.count)
                switch random.nextInt(below: 3) {
                case 0: tokens[at] = atoms[random.nextInt(below: atoms.count)]
                case 1: tokens.remove(at: at)
                default: tokens.insert(atoms[random.nextInt(below: atoms.count)], at: at)
                }
            }
            var text = tokens.joined(separator: " ")
            if random.nextInt(below: 50) == 0 { text = String(repeating: "( ", count: 5_000) + text }
            if random.nextInt(below: 50) == 0 { text = (0..<1_000).map { _ in "n = 1" }.joined(separator: " or ") }
            guard let query = try? RunQuery(text) else { continue }
            var filter = RunFilter()
            filter.query = query
            _ = try store.runSummaries(filter)
            accepted += 1
        }
        #expect(accepted > 100, "the generator should also make valid queries (\(accepted))")
    }
}
