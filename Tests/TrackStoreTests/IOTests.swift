import Foundation
import Testing
@testable import TrackStore

@Suite struct SHA256Tests {
    @Test func knownVectors() {
        #expect(SHA256.hex(of: []) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(of: Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(of: Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func incrementalEqualsOneShot() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var hasher = SHA256()
        for chunk in stride(from: 0, to: bytes.count, by: 37) {
            hasher.update(Array(bytes[chunk..<min(chunk + 37, bytes.count)]))
        }
        #expect(hasher.finalizeHex() == SHA256.hex(of: bytes))
    }
}

@Suite struct JSONTests {
    @Test func parsesValues() throws {
        let value = try JSONParser.parse(#"{"a": [1, -2.5e3, true, null], "b": "x\"\u00e9\ud83d\ude42", "c": {}}"#)
        #expect(value["a"] == .array([.number(1), .number(-2500), .bool(true), .null]))
        #expect(value["b"]?.stringValue == "x\"é🙂")
        #expect(value["c"] == .object(JSONObject()))
    }

    @Test func readsPythonNonFiniteLiterals() throws {
        let value = try JSONParser.parse("[NaN, Infinity, -Infinity]")
        let numbers = value.arrayValue!.map { $0.doubleValue! }
        #expect(numbers[0].isNaN && numbers[1] == .infinity && numbers[2] == -.infinity)
    }

    @Test func numbersRoundTripExactly() throws {
        let text = "0.14115395762532459"
        #expect(try JSONParser.parse(text).doubleValue == Double(text))
    }

    @Test(arguments: [#"{"a": 1"#, #"{"a" 1}"#, "[1, 2,", #""abc"#, "{} x", "01x", "-"])
    func rejectsMalformed(_ text: String) {
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(text) }
    }

    @Test func truncationIsNamed() {
        do {
            _ = try JSONParser.parse(#"{"id": "q1", "probs": [0.1, 0.9"#)
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("truncated"))
        }
    }
}

@Suite struct CSVTests {
    @Test func splitsQuotedFields() throws {
        #expect(try CSV.fields(of: #"a,"b,c","d""e",,"#) == ["a", "b,c", "d\"e", "", ""])
        #expect(try CSV.fields(of: "") == [""])
        #expect(throws: ValidationError.self) { try CSV.fields(of: #"a,"b"#) }
    }

    @Test func escapesWhatNeedsIt() {
        #expect(CSV.line(["a", "b,c", "say \"hi\""]) == #"a,"b,c","say ""hi""""#)
    }
}

@Suite struct NPYTests {
    @Test func roundTripsFloat64AndLabels() throws {
        let directory = TemporaryDirectory()
        try NPYArray.write(rows: 2, columns: 3, values: [0.1, 0.2, 0.7, 0.5, 0.25, 0.25], to: directory.path("p.npy"))
        try NPYArray.write(labels: [2, 0], to: directory.path("y.npy"))
        let probs = try NPYArray.read(path: directory.path("p.npy"))
        #expect(probs.shape == [2, 3])
        #expect(probs.values == [0.1, 0.2, 0.7, 0.5, 0.25, 0.25])
        #expect(try NPYArray.read(path: directory.path("y.npy")).values == [2, 0])
    }

    @Test func refusesTruncatedData() throws {
        let directory = TemporaryDirectory()
        try NPYArray.write(rows: 4, columns: 4, values: Array(repeating: 0.25, count: 16), to: directory.path("p.npy"))
        let bytes = try Data(contentsOf: directory.url.appendingPathComponent("p.npy"))
        do {
            _ = try NPYArray.parse([UInt8](bytes.dropLast(8)))
            Issue.record("expected an error")
        } catch {
            #expect(error.reason.contains("truncated"))
        }
        #expect(throws: ValidationError.self) { try NPYArray.parse(Array("not numpy at all".utf8)) }
    }
}

@Suite struct LineReaderTests {
    @Test func readsLinesAcrossChunksAndReportsMissingFinalNewline() throws {
        let directory = TemporaryDirectory()
        let long = String(repeating: "x", count: 5000)
        let path = directory.write("lines.txt", "a\r\n\(long)\nlast")
        let reader = try LineReader(path: path, chunkSize: 64)
        var lines: [String] = []
        while let line = try reader.nextLine() { lines.append(String(decoding: line, as: UTF8.self)) }
        #expect(lines == ["a", long, "last"])
        #expect(!reader.lastLineWasTerminated)
        #expect(reader.finalizeSHA256() == SHA256.hex(of: Array("a\r\n\(long)\nlast".utf8)))
    }
}

@Suite struct QuestionBitmapTests {
    @Test func insertReportsNewAndRepeated() {
        var bitmap = QuestionBitmap()
        let first = bitmap.insert(1), again = bitmap.insert(1)
        #expect(first && !again)
        let more = [bitmap.insert(64), bitmap.insert(63), bitmap.insert(1_000_000)]
        #expect(more == [true, true, true])
        #expect(bitmap.contains(63) && bitmap.contains(64) && bitmap.contains(1_000_000))
        #expect(!bitmap.contains(2) && !bitmap.contains(5_000_000))
    }
}

/// Every bind is checked (issue 10): a value bound to a parameter that does not exist fails the step.
@Suite struct StatementBindTests {
    @Test func aFailedBindFailsTheStep() throws {
        let directory = TemporaryDirectory()
        let database = try Database(path: directory.path("b.sqlite"))
        try database.execute("CREATE TABLE t(a INTEGER)")
        let statement = try database.makeStatement("INSERT INTO t(a) VALUES (?)")
        statement.bind(Int64(1), at: 1)
        statement.bind(Int64(2), at: 2)     // there is no parameter 2
        #expect(throws: SQLiteError.self) { try statement.step() }
        #expect(try database.scalarInt("SELECT count(*) FROM t") == 0)
        statement.reset()
        statement.bind(Int64(3), at: 1)
        #expect(try statement.step() == false)
        #expect(try database.scalarInt("SELECT a FROM t") == 3)
    }
}

/// The statement splitter that guards read-only SQL on PostgreSQL (issue 23.2).
@Suite struct SQLStatementsTests {
    @Test func splitsWhereTheServerDoes() {
        let script = """
            SELECT ';' AS a, "we;ird" FROM t; -- a comment; with a semicolon
            /* outer /* nested; */ still; */ COMMIT;
            SELECT $$ body; END; $$, $tag$ x; $tag$; select e'it\\'s; fine'
            ;;  end
            """
        let statements = SQLStatements.split(script)
        #expect(statements.map(SQLStatements.firstWord) == ["SELECT", "COMMIT", "SELECT", "SELECT", "END"], "\(statements)")
        #expect(SQLStatements.firstWord("  -- c\n /* x */ rollback") == "ROLLBACK")
        #expect(SQLStatements.firstWord("(SELECT 1)") == "")
        for word in ["COMMIT", "END", "ROLLBACK", "SET", "BEGIN", "START", "ABORT", "RESET", "DO", "CALL", "COPY"] {
            #expect(SQLStatements.transactionControl.contains(word))
        }
        #expect(!SQLStatements.transactionControl.contains("SELECT") && !SQLStatements.transactionControl.contains("WITH"))
    }
}

@Suite struct PathTests {
    /// `NSString.deletingLastPathComponent` traps on "0" (swift-corelibs-foundation): track's own never does.
    @Test func parentDirectoryOfEveryShape() {
        let cases: [(String, String)] = [("0", ""), ("a", ""), ("a/b", "a"), ("/a", "/"), ("/", "/"), ("a/b/", "a"),
                                         ("./x.png", "."), ("/tmp//x", "/tmp"), ("", "")]
        for (path, folder) in cases { #expect(parentDirectory(of: path) == folder, "\(path)") }
    }
}

@Suite struct RedactionScanTests {
    /// The quick scan before redaction finds what the redaction would change.
    @Test func scanFindsSchemesAndPasswordWordsInAnyCase() {
        for text in ["postgresql://u:p@h/d", "x POSTGRES://a", "host=h PASSWORD=x", "PassWord", "ppassword", "a:://b"] {
            #expect(StoreLocation.mayHoldPassword(text), "\(text)")
        }
        for text in ["", "plain run name", "a:/b", "pass word", "passwor", "c:\\\\x"] {
            #expect(!StoreLocation.mayHoldPassword(text), "\(text)")
        }
        #expect(StoreLocation.redactedMessage("postgresql://u:secret@h/d") == "postgresql://u:***@h/d")
    }
}
