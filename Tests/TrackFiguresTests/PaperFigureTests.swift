import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import TrackCalibration
@testable import TrackFigures

/// Issue 25: figures a paper prints as they are — one legend outside the data, opaque gap colours
/// that are the legend's, one shading scale, count strips per panel, the smooth diagram cut where
/// there are no data, several runs in one panel, the regime plot's marks, text that stays text.
@Suite struct PaperFigureTests {
    static let bins = ReliabilityDiagramTests.bins

    func temporary(_ name: String) -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("track-paper-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent(name).path
    }

    static func close(_ a: Color, _ b: Color, _ tolerance: Double = 2.5 / 255) -> Bool {
        abs(a.red - b.red) <= tolerance && abs(a.green - b.green) <= tolerance && abs(a.blue - b.blue) <= tolerance
    }

    /// Bins with the fullest bin at `count`: bin 2 underconfident, bin 7 overconfident.
    static func bins(fullest count: Int) -> [BinRow] {
        bins.map { var row = $0; if row.bin == 7 { row.count = count }; return row }
    }

    @Test func oneLegendUnderThePanelsCoversNoMark() throws {
        let panels = (0..<3).map { Panel.reliability(ReliabilityPanel(title: "run \($0)", bins: Self.bins, ece: 0.17, n: 50)) }
        var figure = Figure(title: "three runs", panels: panels, columns: 3, panelWidth: 240, panelHeight: 280)
        let entries = figure.legendEntries
        // Once per figure, not once per panel; every mark of the panels has its key.
        #expect(entries.count == 4 && Set(entries.map(\.label)).count == 4)
        #expect(entries.contains { $0.mark == .swatch(Palette.overGap) } && entries.contains { $0.mark == .swatch(Palette.underGap) })
        let legend = figure.legendFrame
        #expect(legend.height > 10)
        for index in panels.indices { #expect(legend.overlapArea(figure.frame(of: index)) == 0) }
        let with = temporary("with.png"), without = temporary("without.png")
        try figure.render(to: with, dpi: 72)
        figure.legend = []
        try figure.render(to: without, dpi: 72)
        let a = try PNGImage(path: with), b = try PNGImage(path: without)
        // Every pixel of the panels is the same with and without the legend: it covers nothing.
        #expect(a.height > b.height && a.width == b.width)
        var differing = 0
        for y in 0..<(b.height - 1) { for x in 0..<b.width where a.color(x: x, y: y) != b.color(x: x, y: y) { differing += 1 } }
        #expect(differing == 0, "\(differing) pixels of the panels changed under the legend")
        // And the legend has ink: its swatches in the gaps' colours.
        var over = 0, under = 0, ink = 0
        for y in Int(legend.y)..<a.height { for x in 0..<a.width {
            let c = a.color(x: x, y: y)
            if Self.close(c, Palette.overGap) { over += 1 }
            if Self.close(c, Palette.underGap) { under += 1 }
            if c.luminance < 0.5 { ink += 1 }
        } }
        #expect(over > 50 && under > 50 && ink > 100, "over \(over) under \(under) ink \(ink)")
        // A figure one narrow panel wide: the legend's text shrinks to fit, nothing runs off the edge.
        let narrow = Figure(panels: [panels[0]], columns: 1, panelWidth: 200, panelHeight: 260)
        let narrowPath = temporary("narrow.png")
        try narrow.render(to: narrowPath, dpi: 144)
        let image = try PNGImage(path: narrowPath)
        for y in Int(narrow.legendFrame.y * 2)..<image.height {
            for x in [0, 1, image.width - 2, image.width - 1] { #expect(image.color(x: x, y: y).luminance > 0.95, "ink at the edge (\(x), \(y))") }
        }
    }

    @Test func gapsAreOpaqueInTheLegendsColours() throws {
        let path = temporary("gaps.png")
        let figure = Figure(panels: [.reliability(ReliabilityPanel(title: "gaps", bins: Self.bins, ece: 0.17, n: 50, showHistogram: false))],
                            columns: 1, panelWidth: 300, panelHeight: 300)
        try figure.render(to: path, dpi: 144)
        let image = try PNGImage(path: path)
        let plot = ReliabilityPanel.layout(in: figure.frame(of: 0), showHistogram: false).plot
        func pixel(_ x: Double, _ y: Double) -> Color {
            image.color(x: Int(((plot.x + x * plot.width) * 2).rounded()), y: Int(((plot.maxY - y * plot.height) * 2).rounded()))
        }
        // Bin 7's gap (0.6 → 0.75, above its bar) and bin 2's (0.25 → 0.5, over its bar) read back
        // exactly as the legend's swatches: not tinted by the bar beneath.
        #expect(Self.close(pixel(0.74, 0.68), Palette.overGap), "\(pixel(0.74, 0.68))")
        #expect(Self.close(pixel(0.24, 0.4), Palette.underGap), "\(pixel(0.24, 0.4))")
    }

    @Test func oneShadeScalePerFigureAndCountStripsPerPanel() throws {
        // Panel 0's fullest bin holds 10, panel 1's 40: the same shade would mean different counts
        // if each panel were shaded on its own; the strips, each on its own scale, are both full.
        let small = ReliabilityPanel(title: "small", bins: Self.bins(fullest: 10), ece: 0.1, n: 20)
        let large = ReliabilityPanel(title: "large", bins: Self.bins(fullest: 40), ece: 0.1, n: 50)
        let figure = Figure(panels: [.reliability(small), .reliability(large)], columns: 2, panelWidth: 260, panelHeight: 300)
        #expect(figure.shadeScale == 40)
        #expect(figure.legendEntries.first?.mark == .ramp(low: "1", high: "40"))
        let path = temporary("scale.png")
        try figure.render(to: path, dpi: 144)
        let image = try PNGImage(path: path)
        func barPixel(_ index: Int) -> Color {
            let plot = ReliabilityPanel.layout(in: figure.frame(of: index), showHistogram: true).plot
            return image.color(x: Int((plot.x + 0.74 * plot.width) * 2), y: Int((plot.maxY - 0.1 * plot.height) * 2))
        }
        #expect(Self.close(barPixel(0), Palette.barColor(share: 0.25), 3 / 255), "\(barPixel(0))")
        #expect(Self.close(barPixel(1), Palette.barColor(share: 1), 3 / 255), "\(barPixel(1))")
        for index in 0..<2 {
            let strip = try #require(ReliabilityPanel.layout(in: figure.frame(of: index), showHistogram: true).histogram)
            let near = image.color(x: Int((strip.x + 0.75 * strip.width) * 2), y: Int((strip.y + 0.1 * strip.height) * 2))
            #expect(near.luminance < 0.7, "panel \(index)'s fullest bin fills its own strip")
        }
    }

    @Test func theSmoothCurveIsCutWhereThereAreNoConfidences() throws {
        // Confidences only in [0.5, 0.9] (as 2 options' top labels would be): nothing drawn below 0.3.
        var random = SeededRandom(seed: 5)
        let f = (0..<600).map { _ in 0.5 + 0.4 * random.nextDouble() }
        let y = f.map { random.nextDouble() < $0 - 0.1 ? 1.0 : 0.0 }
        let diagram = SmoothECE.diagram(f, y, resamples: 40)
        let panel = SmoothReliabilityPanel(title: "cut", mesh: diagram.mesh, curve: diagram.curve, lower: diagram.lower, upper: diagram.upper,
                                           density: diagram.density, smECE: diagram.smECE, sigma: diagram.sigma, n: f.count)
        let shown = panel.visibility
        let firstShown = zip(diagram.mesh, shown).first { $0.1 > 0 }?.0 ?? 1
        #expect(firstShown > 0.3, "drawn from \(firstShown), σ = \(diagram.sigma ?? 0)")
        #expect(zip(diagram.mesh, shown).contains { abs($0.0 - 0.7) < 0.01 && $0.1 == 1 })
        let figure = Figure(panels: [.smooth(panel)], columns: 1, panelWidth: 300, panelHeight: 320)
        let path = temporary("cut.png")
        try figure.render(to: path, dpi: 144)
        let image = try PNGImage(path: path)
        let plot = ReliabilityPanel.layout(in: figure.frame(of: 0), showHistogram: true).plot
        func reddish(from low: Double, to high: Double) -> Int {
            var count = 0
            for px in stride(from: plot.x + low * plot.width, to: plot.x + high * plot.width, by: 0.5) {
                for py in stride(from: plot.y, to: plot.maxY, by: 0.5) {
                    let c = image.color(x: Int(px * 2), y: Int(py * 2))
                    if c.red > c.blue + 0.2 && c.red > c.green + 0.15 { count += 1 }
                }
            }
            return count
        }
        #expect(reddish(from: 0.01, to: 0.3) == 0)
        #expect(reddish(from: 0.55, to: 0.85) > 50)
    }

    @Test func severalRunsShareOneReliabilityPanel() throws {
        let runs = [OverlayReliabilityPanel.Run(label: "base", bins: Self.bins, ece: 0.17, n: 50),
                    OverlayReliabilityPanel.Run(label: "+TS", bins: Self.bins.map { var r = $0; r.accuracy = r.accuracy.map { $0 - 0.2 }; return r },
                                                ece: 0.3, n: 50)]
        let figure = Figure(panels: [.overlay(OverlayReliabilityPanel(title: "", runs: runs))], columns: 1, panelWidth: 300, panelHeight: 320)
        let labels = figure.legendEntries.map(\.label)
        #expect(labels.contains("base: conf-ECE = 0.1700, n = 50") && labels.contains("+TS: conf-ECE = 0.3000, n = 50"))
        let path = temporary("overlay.png")
        try figure.render(to: path, dpi: 144)
        let image = try PNGImage(path: path)
        let plot = ReliabilityPanel.layout(in: figure.frame(of: 0), showHistogram: true).plot
        // Each run's bar top is drawn in its colour at its own accuracy (bin 7: 0.6 and 0.4).
        func row(_ accuracy: Double) -> [Color] {
            let y = Int(((plot.maxY - accuracy * plot.height) * 2).rounded())
            return stride(from: plot.x + 0.71 * plot.width, to: plot.x + 0.79 * plot.width, by: 0.5).flatMap { x in
                (-1...1).map { image.color(x: Int(x * 2), y: y + $0) }
            }
        }
        #expect(row(0.6).contains { Self.close($0, OverlayReliabilityPanel.color(0), 0.08) })
        #expect(row(0.4).contains { Self.close($0, OverlayReliabilityPanel.color(1), 0.08) })
        #expect(!row(0.4).contains { Self.close($0, OverlayReliabilityPanel.color(0), 0.08) })
    }

    @Test func regimeZoomsToTheRunsMarksTheTargetAndKeepsLabelsOffLines() throws {
        let points: [RegimePanel.Point] = [.init(label: "SFT", accuracy: 0.55, value: 0.05), .init(label: "DPO", accuracy: 0.57, value: 0.24),
                                           .init(label: "TS", accuracy: 0.57, value: 0.025), .init(label: "CFT/e3", accuracy: 0.601, value: 0.032, isTarget: true),
                                           .init(label: "RCFT/e3", accuracy: 0.605, value: 0.035)]
        let panel = RegimePanel(title: "regimes", yLabel: "conf-ECE", aStar: 0.601, optionCount: 4, lowerConstant: 0, points: points)
        let (x, _) = panel.ranges
        #expect(x.0 > 0.45 && x.0 < 0.55 && x.1 > 0.605 && x.1 < 0.7, "zoomed: \(x)")
        let figure = Figure(panels: [.regime(panel)], columns: 1, panelWidth: 400, panelHeight: 360)
        let plot = RegimePanel.layout(in: figure.frame(of: 0))
        var placement: (labels: [(index: Int, box: Rect, leader: Bool)], markers: [Rect], annotations: [Rect], lines: [Rect])?
        try withMeasuringCanvas { placement = panel.labelPlacement($0, plot: plot) }
        let result = try #require(placement)
        #expect(result.labels.count == points.count)
        for label in result.labels {
            for line in result.lines { #expect(label.box.overlapArea(line) == 0, "\(points[label.index].label) is crossed by a line") }
        }
        let path = temporary("regime.png")
        try figure.render(to: path, dpi: 144)
        let image = try PNGImage(path: path)
        let mapping = AxisMapping(plot: plot, x: panel.ranges.x, y: panel.ranges.y)
        // The target is a red diamond (A*'s colour); the others black or hollow.
        let target = image.color(x: Int(mapping.px(0.601) * 2), y: Int(mapping.py(0.032) * 2))
        #expect(target.red > 0.6 && target.green < 0.35, "\(target)")
        let sft = image.color(x: Int(mapping.px(0.55) * 2), y: Int(mapping.py(0.05) * 2))
        #expect(sft.luminance > 0.9, "SFT lies above the band: hollow")
    }

    @Test func aValueLoggedOnceIsAMarkerOnAnAxisFittedToTheData() throws {
        var panel = CurvePanel(title: "val/acc", xLabel: "Step", yLabel: "val/acc",
                               series: [Series(label: "once", points: [(10, 0.81)]), Series(label: "many", points: [(0, 0.9), (10, 0.7), (20, 0.75)])])
        #expect(panel.ranges.y.0 == 0, "calibration errors start at 0")
        panel.yFromZero = false
        #expect(panel.ranges.y.0 > 0.6 && panel.ranges.y.1 < 1, "fitted: \(panel.ranges.y)")
        let figure = Figure(panels: [.curve(panel)], columns: 1, panelWidth: 360, panelHeight: 300)
        let path = temporary("once.png")
        try figure.render(to: path, dpi: 144)
        let image = try PNGImage(path: path)
        let plot = CurvePanel.layout(in: figure.frame(of: 0), titled: true)
        let mapping = AxisMapping(plot: plot, x: panel.ranges.x, y: panel.ranges.y)
        // The single value is a filled marker in its series' colour.
        let marker = image.color(x: Int(mapping.px(10) * 2), y: Int(mapping.py(0.81) * 2))
        #expect(Self.close(marker, Palette.series[0], 0.1), "\(marker)")
        // The key under the plot draws no line for it: in its key row, left of the first label,
        // the series colour covers a dot, not a 16-point stroke.
        let keyY = Int((plot.maxY + 40 - 3) * 2)
        let run = (0..<image.width).filter { Self.close(image.color(x: $0, y: keyY), Palette.series[0], 0.1) }
        #expect(!run.isEmpty && run.count < 16, "key of the single value: \(run.count) px wide")
    }

    @Test func svgTextIsTextAndPDFTextIsExtractable() throws {
        let panel = ReliabilityPanel(title: "A & <B> run", bins: Self.bins, ece: 0.17, n: 50)
        let figure = Figure(title: "editable", panels: [.reliability(panel)], columns: 1, panelWidth: 300, panelHeight: 300)
        let svgPath = temporary("t.svg"), pdfPath = temporary("t.pdf")
        try figure.render(to: svgPath)
        try figure.render(to: pdfPath)
        let svg = try String(contentsOfFile: svgPath, encoding: .utf8)
        #expect(XMLParser(data: Data(svg.utf8)).parse())
        // No glyph outlines: the words are <text> elements an editor can change.
        #expect(!svg.contains("<symbol") && !svg.contains("glyph"))
        #expect(svg.contains(">A &amp; &lt;B&gt; run</text>") && svg.contains(">editable</text>"))
        #expect(svg.contains(">conf-ECE = 0.1700   n = 50</text>") && svg.contains(">Accuracy</text>"))
        #expect(svg.contains("rotate(-90.00)"), "the y label keeps its rotation")
        // PDF: fonts embedded with a ToUnicode map, so its text can be selected, searched and edited.
        let pdf = String(decoding: try Data(contentsOf: URL(fileURLWithPath: pdfPath)), as: UTF8.self)
        #expect(pdf.contains("/ToUnicode") && pdf.contains("/FontFile"))
    }
}

/// Runs `body` with a canvas for measuring text.
func withMeasuringCanvas(_ body: (Canvas) throws -> Void) throws {
    try body(try Canvas.measuring())
}
