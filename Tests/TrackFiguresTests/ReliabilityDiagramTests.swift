import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import TrackCalibration
@testable import TrackFigures

/// Reads the figures back: pixels of PNGs, structure and titles of PDF and SVG.
@Suite struct ReliabilityDiagramTests {
    /// Known bins: bin 2 (n=10, acc 0.5, conf 0.25): underconfident; bin 5 empty;
    /// bin 7 (n=40, acc 0.6, conf 0.75): overconfident and the fullest.
    static let bins: [BinRow] = (0..<10).map { b in
        var row = BinRow(bin: b, lower: Double(b) / 10, upper: Double(b + 1) / 10, count: 0, accuracy: nil, confidence: nil)
        if b == 2 { row.count = 10; row.accuracy = 0.5; row.confidence = 0.25 }
        if b == 7 { row.count = 40; row.accuracy = 0.6; row.confidence = 0.75 }
        return row
    }

    static func render(_ path: String, histogram: Bool = false) throws -> Figure {
        let panel = ReliabilityPanel(title: "known bins", bins: bins, ece: 0.17, n: 50, showHistogram: histogram)
        let figure = Figure(panels: [.reliability(panel)], columns: 1, panelWidth: 300, panelHeight: 300)
        try figure.render(to: path, dpi: 144)
        return figure
    }

    func temporary(_ name: String) -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("track-figures-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent(name).path
    }

    @Test func barsStopAtTheirAccuracyAndTheFullerBinIsDarker() throws {
        let path = temporary("known.png")
        let figure = try Self.render(path)
        let image = try PNGImage(path: path)
        let scale = 144.0 / 72
        #expect(image.width == 600 && image.height > 600)   // the legend goes under the panel
        let plot = ReliabilityPanel.layout(in: figure.frame(of: 0), showHistogram: false).plot
        func pixel(_ x: Double, _ y: Double) -> Color {
            image.color(x: Int(((plot.x + x * plot.width) * scale).rounded()), y: Int(((plot.maxY - y * plot.height) * scale).rounded()))
        }
        func isBarBlue(_ c: Color) -> Bool { c.blue > c.red + 0.15 && c.blue > 0.5 }
        func isGapRed(_ c: Color) -> Bool { c.red > c.blue + 0.1 && c.red > 0.7 }
        // Bin 7: blue up to 0.6, the red gap from 0.6 to 0.75 above it, white above 0.75.
        #expect(isBarBlue(pixel(0.74, 0.58)))
        #expect(isGapRed(pixel(0.74, 0.62)))
        #expect(isGapRed(pixel(0.74, 0.73)))
        #expect(pixel(0.74, 0.85).luminance > 0.95)   // (0.8 is a grid line)
        // Bin 2: blue up to 0.5; its gap (conf 0.25 < acc 0.5) lies over the bar, from 0.25 to 0.5.
        #expect(isBarBlue(pixel(0.24, 0.15)))
        #expect(pixel(0.24, 0.55).luminance > 0.95)
        // The empty bin 5 is left empty, far from the diagonal.
        #expect(pixel(0.55, 0.15).luminance > 0.95)
        #expect(pixel(0.55, 0.85).luminance > 0.95)
        // The fullest bin (7) is shaded darker than the smaller one (2), below any gap.
        #expect(pixel(0.74, 0.1).luminance < pixel(0.24, 0.1).luminance - 0.1)
        // The diagonal: dark grey on most points of y = x where no bar covers it.
        let onDiagonal = stride(from: 0.82, through: 0.98, by: 0.01).map { pixel($0, $0) }.filter { $0.luminance < 0.6 }
        #expect(onDiagonal.count >= 8)
        let offDiagonal = stride(from: 0.82, through: 0.98, by: 0.01).map { pixel($0, $0 - 0.1) }.filter { $0.luminance < 0.6 }
        #expect(offDiagonal.count <= 1)
    }

    @Test func histogramStripShowsCounts() throws {
        let path = temporary("strip.png")
        let figure = try Self.render(path, histogram: true)
        let image = try PNGImage(path: path)
        let strip = try #require(ReliabilityPanel.layout(in: figure.frame(of: 0), showHistogram: true).histogram)
        func pixel(_ x: Double, _ fraction: Double) -> Color {
            image.color(x: Int((strip.x + x * strip.width) * 2), y: Int((strip.maxY - fraction * strip.height) * 2))
        }
        // Bin 7 (40) fills the strip, bin 2 (10) a quarter of it, bin 5 nothing.
        #expect(pixel(0.75, 0.9).luminance < 0.7)
        #expect(pixel(0.25, 0.2).luminance < 0.7 && pixel(0.25, 0.35).luminance > 0.95)
        #expect(pixel(0.55, 0.1).luminance > 0.95)
    }

    @Test func pdfAndSVGParseAndCarryTheTitle() throws {
        let pdfPath = temporary("known.pdf"), svgPath = temporary("known.svg")
        _ = try Self.render(pdfPath)
        _ = try Self.render(svgPath)
        let pdf = try Data(contentsOf: URL(fileURLWithPath: pdfPath))
        let pdfText = String(decoding: pdf, as: UTF8.self)
        #expect(pdfText.hasPrefix("%PDF-"))
        #expect(pdfText.hasSuffix("%%EOF\n") || pdfText.hasSuffix("%%EOF"))
        #expect(pdfText.contains("/Title (known bins)"))
        // startxref points at the cross-reference table.
        let tail = pdfText.components(separatedBy: "startxref").last!.trimmingCharacters(in: .whitespacesAndNewlines)
        let offset = try #require(Int(tail.split(separator: "\n").first!))
        #expect(pdf[offset..<(offset + 4)].elementsEqual("xref".utf8))
        let svg = try String(contentsOfFile: svgPath, encoding: .utf8)
        #expect(svg.hasPrefix("<?xml"))
        #expect(svg.contains("<svg") && svg.contains("<title>known bins</title>"))
        // Well-formed XML.
        let parser = XMLParser(data: Data(svg.utf8))
        #expect(parser.parse())
    }

    @Test func unknownExtensionIsRefused() {
        #expect(throws: CairoError.self) { try Self.render(temporary("x.gif")) }
    }

    @Test func ticksAreNice() {
        #expect(ticks(0, 1) == [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0])
        #expect(ticks(1, 3).count >= 3)
        #expect(ticks(0, 0.3).first == 0)
    }
}

@Suite struct PNGEncoderTests {
    /// Our encoder's output decodes (through Cairo's libpng) to exactly the pixels encoded.
    @Test func roundTripsThroughLibpng() throws {
        let width = 37, height = 23
        var pixels = [UInt32](repeating: 0, count: width * height)
        var random = SeededRandom(seed: 4)
        for y in 0..<height {
            for x in 0..<width {
                // Flat areas, runs, and noise.
                let value: UInt32 = x < 10 ? 0xFFFF_FFFF : y % 5 == 0 ? 0xFF1F_77B4 : 0xFF00_0000 | UInt32(random.nextInt(below: 1 << 24))
                pixels[y * width + x] = value
            }
        }
        let png = pixels.withUnsafeBufferPointer { PNGEncoder.encode(argb: $0.baseAddress!, width: width, height: height, stride: width) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("enc-\(UUID().uuidString).png").path
        try Data(png).write(to: URL(fileURLWithPath: path))
        let image = try PNGImage(path: path)
        #expect(image.width == width && image.height == height)
        for y in 0..<height {
            for x in 0..<width {
                let expected = pixels[y * width + x]
                let c = image.color(x: x, y: y)
                let got = UInt32((c.red * 255).rounded()) << 16 | UInt32((c.green * 255).rounded()) << 8 | UInt32((c.blue * 255).rounded())
                #expect(got == expected & 0xFF_FFFF, "pixel \(x),\(y)")
            }
        }
    }

    @Test func checksumsMatchKnownValues() {
        var crc = CRC32()
        crc.update(Array("123456789".utf8))
        #expect(crc.value == 0xCBF4_3926)
        var adler = Adler32()
        adler.update(Array("Wikipedia".utf8))
        #expect(adler.value == 0x11E6_0398)
    }
}

@Suite struct RegimePlotTests {
    @Test func bandAStarAndPointsAreWhereTheyBelong() throws {
        let panel = RegimePanel(title: "regimes", yLabel: "ECE", aStar: 0.6, optionCount: 4, lowerConstant: 0,
                                points: [.init(label: "run", accuracy: 0.8, value: 0.05)])
        let figure = Figure(panels: [.regime(panel)], columns: 1, panelWidth: 400, panelHeight: 320)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("regime-\(UUID().uuidString).png").path
        try figure.render(to: path, dpi: 144)
        let image = try PNGImage(path: path)
        let plot = RegimePanel.layout(in: figure.frame(of: 0))
        let (xr, yr) = panel.ranges
        func pixel(_ x: Double, _ y: Double) -> Color {
            image.color(x: Int(((plot.x + (x - xr.0) / (xr.1 - xr.0) * plot.width) * 2).rounded()),
                        y: Int(((plot.maxY - (y - yr.0) / (yr.1 - yr.0) * plot.height) * 2).rounded()))
        }
        // Zoomed to the run and A*; the upper bound at accuracy 0.7 is (2/4)·0.1 = 0.05: shaded below, clear above.
        #expect(xr.0 > 0.5 && xr.0 < 0.6 && xr.1 > 0.8 && xr.1 < 0.9, "\(xr)")
        let below = pixel(0.7, 0.025), above = pixel(0.7, 0.09)
        #expect(below.blue > below.red + 0.05 && below.luminance < 0.97, "\(below) \(yr)")
        #expect(above.luminance > 0.98)
        // The dashed A* line is red somewhere along x = 0.6.
        let line = stride(from: 0.01, through: 0.12, by: 0.005).map { pixel(0.6, $0) }.filter { $0.red > $0.blue + 0.3 }
        #expect(line.count >= 5)
        // The run's point is black.
        #expect(pixel(0.8, 0.05).luminance < 0.2)
    }
}

/// Per-bin 95% Wilson intervals drawn as whiskers (issue 16), read back from pixels.
@Suite struct BinIntervalTests {
    @Test func whiskersSpanTheWilsonIntervalAtTheBinCentre() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("track-whiskers-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var panels: [ReliabilityPanel] = []
        for withIntervals in [false, true] {
            var panel = ReliabilityPanel(title: "bins", bins: ReliabilityDiagramTests.bins, ece: 0.17, n: 50, showHistogram: false)
            panel.binIntervals = withIntervals
            panels.append(panel)
        }
        // Bin 2: 5 of 10 right: Wilson 95% [0.2366, 0.7634].
        let interval = try #require(ReliabilityPanel.interval(ReliabilityDiagramTests.bins[2]))
        #expect(abs(interval.lower - 0.236593) < 1e-6 && abs(interval.upper - 0.763407) < 1e-6)
        var images: [PNGImage] = []
        var plot = Rect(x: 0, y: 0, width: 0, height: 0)
        for (index, panel) in panels.enumerated() {
            let path = directory.appendingPathComponent("\(index).png").path
            let figure = Figure(panels: [.reliability(panel)], columns: 1, panelWidth: 300, panelHeight: 300)
            try figure.render(to: path, dpi: 144)
            images.append(try PNGImage(path: path))
            plot = ReliabilityPanel.layout(in: figure.frame(of: 0), showHistogram: false).plot
        }
        func pixel(_ image: PNGImage, _ x: Double, _ y: Double) -> Color {
            image.color(x: Int(((plot.x + x * plot.width) * 2).rounded()), y: Int(((plot.maxY - y * plot.height) * 2).rounded()))
        }
        // At bin 2's centre (x = 0.25): dark inside the interval (above the bar too), not outside it.
        for y in [0.3, 0.6, 0.7] {
            #expect(pixel(images[1], 0.25, y).luminance < 0.35, "whisker at \(y)")
            #expect(pixel(images[0], 0.25, y).luminance > 0.35, "no whisker without --bin-ci at \(y)")
        }
        #expect(pixel(images[1], 0.25, 0.85).luminance > 0.9)
        #expect(pixel(images[1], 0.25, 0.12).luminance > 0.35)   // below the interval: the bar, not the whisker
        // The empty bin 5 gets no whisker.
        #expect(pixel(images[1], 0.55, 0.5).luminance > 0.9)
    }
}
