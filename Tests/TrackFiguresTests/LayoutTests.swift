import Foundation
import Testing
import TrackCalibration
@testable import TrackFigures

/// Layout of the paper figures (issue 13): labels that never collide, keys off the data,
/// one title size and one count scale per grid — read back from the layout and from pixels.
@Suite struct LayoutTests {

    /// A title of any length is shortened in the middle to the longest head + "…" + tail that
    /// fits (issue 23.6: the old one-character-at-a-time loop made a 100 kB run name take minutes).
    @Test func abbreviationKeepsTheMostThatFits() throws {
        try withCanvas { canvas in
            for length in [10, 80, 1_000, 100_000] {
                let text = String((0..<length).map { i in Character(UnicodeScalar(UInt8(97 + i % 26))) })
                let short = abbreviated(canvas, text, size: 12, width: 300)
                #expect(canvas.textWidth(short, size: 12) <= 300 || short.count <= 4, "\(length)")
                if canvas.textWidth(text, size: 12) <= 300 { #expect(short == text); continue }
                #expect(short.contains("…") && short.hasPrefix(String(text.prefix(3))) && short.hasSuffix(String(text.suffix(3))))
                // One more character would not fit.
                let kept = short.count - 1
                if kept + 1 < text.count {
                    let head = (kept + 2) / 2, tail = (kept + 1) / 2
                    let longer = String(text.prefix(head)) + "…" + String(text.suffix(tail))
                    #expect(canvas.textWidth(longer, size: 12) > 300, "\(length): \(short.count)")
                }
            }
        }
    }
    func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("track-layout-\(UUID().uuidString)-\(name)").path
    }

    /// Runs `body` with a Cairo canvas (a scratch PNG) for text measurement.
    func withCanvas(_ body: (Canvas) -> Void) throws {
        try renderFigure(to: temporary("scratch.png"), size: FigureSize(width: 100, height: 100, dpi: 72), title: "scratch", draw: body)
    }

    /// 18 runs crowded around A* as in a real model's sweep, with long labels.
    static let crowded: RegimePanel = {
        var points: [RegimePanel.Point] = []
        for (i, method) in ["SFT", "DPO", "TS", "CFT/e1", "CFT/e2", "CFT/e3", "RCFT/e1", "RCFT/e2", "RCFT/e3"].enumerated() {
            for (j, split) in ["in-domain", "out-domain"].enumerated() {
                let accuracy = 0.55 + 0.007 * Double(i) + 0.011 * Double(j)
                let value = method == "DPO" ? 0.22 + 0.02 * Double(j) : 0.025 + 0.004 * Double((i * 7 + j * 3) % 9)
                points.append(.init(label: "\(method)/\(split)", accuracy: accuracy, value: value))
            }
        }
        return RegimePanel(title: "regimes", yLabel: "conf-ECE", aStar: 0.57, optionCount: 4, lowerConstant: 0, points: points)
    }()

    @Test func regimeLabelsNeverOverlapEachOtherTheMarksTheLinesOrTheFrame() throws {
        let panel = Self.crowded
        let plot = RegimePanel.layout(in: Rect(x: 0, y: 0, width: 380, height: 350))
        var placement: (labels: [(index: Int, box: Rect, leader: Bool)], markers: [Rect], annotations: [Rect], lines: [Rect])?
        try withCanvas { placement = panel.labelPlacement($0, plot: plot) }
        let result = try #require(placement)
        #expect(result.labels.count == 18)
        #expect(Set(result.labels.map(\.index)).count == 18)
        for (a, label) in result.labels.enumerated() {
            let box = label.box
            #expect(box.x >= plot.x && box.maxX <= plot.maxX && box.y >= plot.y && box.maxY <= plot.maxY, "\(panel.points[label.index].label) leaves the frame")
            for other in result.labels[(a + 1)...] {
                #expect(box.overlapArea(other.box) == 0, "\(panel.points[label.index].label) overlaps \(panel.points[other.index].label)")
            }
            for marker in result.markers { #expect(box.overlapArea(marker) == 0, "\(panel.points[label.index].label) covers a point") }
            for note in result.annotations { #expect(box.overlapArea(note) == 0, "\(panel.points[label.index].label) covers A* or a side's name") }
            for line in result.lines { #expect(box.overlapArea(line) == 0, "\(panel.points[label.index].label) is crossed by the A* line or a bound") }
        }
        // Crowded labels went out on leader lines; the lone DPO points sit beside their marks.
        #expect(result.labels.contains { $0.leader })
        for label in result.labels where panel.points[label.index].label.hasPrefix("DPO") { #expect(!label.leader) }
    }

    @Test func regimePointsAboveTheBandAreHollowAndInsideOnesFilled() throws {
        // Upper bound (2/4)·|acc − 0.6|: at 0.8 it is 0.1 (0.05 inside); at 0.3 it is 0.15 (0.25 above).
        let panel = RegimePanel(title: "regimes", yLabel: "ECE", aStar: 0.6, optionCount: 4, lowerConstant: 0,
                                points: [.init(label: "in", accuracy: 0.8, value: 0.05), .init(label: "out", accuracy: 0.3, value: 0.25)])
        #expect(panel.placement(of: panel.points[0]) == .inside)
        #expect(panel.placement(of: panel.points[1]) == .above)
        let figure = Figure(panels: [.regime(panel)], columns: 1, panelWidth: 400, panelHeight: 350)
        let path = temporary("regime.png")
        try figure.render(to: path, dpi: 144)
        let image = try PNGImage(path: path)
        let plot = RegimePanel.layout(in: figure.frame(of: 0))
        let mapping = AxisMapping(plot: plot, x: panel.ranges.x, y: panel.ranges.y)
        func pixel(_ x: Double, _ y: Double, dx: Double = 0) -> Color {
            image.color(x: Int(((mapping.px(x) + dx) * 2).rounded()), y: Int((mapping.py(y) * 2).rounded()))
        }
        #expect(pixel(0.8, 0.05).luminance < 0.2)
        #expect(pixel(0.3, 0.25).luminance > 0.9)              // hollow centre
        #expect(pixel(0.3, 0.25, dx: 3).luminance < 0.4)        // its ring
        // The key under the plot: the band swatch is the band's blue, left of the first key line.
        let swatch = image.color(x: Int((plot.x + 6) * 2), y: Int((plot.maxY + 37.5) * 2))
        #expect(swatch.blue > swatch.red + 0.05 && swatch.luminance < 0.97)
    }

    @Test func curveLinesLieOverEveryBandAndTheKeyIsOffTheData() throws {
        // Series 0 (blue) runs at 0.5 inside series 1's (red) band [0.3, 0.7].
        let blue = Series(label: "first", points: [(1, 0.5), (2, 0.5), (3, 0.5)], band: [(1, 0.45, 0.55), (2, 0.45, 0.55), (3, 0.45, 0.55)])
        let red = Series(label: "second", points: [(1, 0.2), (2, 0.2), (3, 0.2)], band: [(1, 0.3, 0.7), (2, 0.3, 0.7), (3, 0.3, 0.7)])
        let panel = CurvePanel(title: "metric over epochs", xLabel: "Epoch", yLabel: "metric", series: [blue, red])
        let figure = Figure(title: "A model: metric over epochs", panels: [.curve(panel)], columns: 1, panelWidth: 360, panelHeight: 300)
        let path = temporary("curve.png")
        try figure.render(to: path, dpi: 144)
        let image = try PNGImage(path: path)
        let frame = figure.frame(of: 0)
        // The figure's title says the panel's: the panel is drawn untitled, its plot right under.
        let plot = CurvePanel.layout(in: frame, titled: false)
        let mapping = AxisMapping(plot: plot, x: panel.ranges.x, y: panel.ranges.y)
        let line = image.color(x: Int((mapping.px(1.5) * 2).rounded()), y: Int((mapping.py(0.5) * 2).rounded()))
        let series0 = Palette.series[0]
        #expect(abs(line.red - series0.red) < 0.08 && abs(line.blue - series0.blue) < 0.08, "the blue line is tinted: \(line)")
        // Nothing dark in the plot's top-right corner (where the key used to sit on the data).
        for x in stride(from: plot.maxX - 80, to: plot.maxX - 2, by: 2) {
            for y in stride(from: plot.y + 2, to: plot.y + 30, by: 2) {
                #expect(image.color(x: Int(x * 2), y: Int(y * 2)).luminance > 0.8)
            }
        }
        // The key is under the x label: both series' colours appear there.
        let row = stride(from: plot.x, to: plot.maxX, by: 0.5).map { image.color(x: Int($0 * 2), y: Int((plot.maxY + 37) * 2)) }
        #expect(row.contains { abs($0.red - series0.red) < 0.1 && abs($0.blue - series0.blue) < 0.1 })
        #expect(row.contains { abs($0.red - Palette.series[1].red) < 0.1 && abs($0.blue - Palette.series[1].blue) < 0.1 })
    }

    /// Issue 25 (in part): an untitled panel under a figure's title starts right under it (the
    /// demo's curve had a panel title's worth of blank between the two).
    @Test func anUntitledPanelStartsUnderTheFiguresTitle() throws {
        let line = Series(label: "run", points: [(1, 0.2), (2, 0.4), (3, 0.3)], band: [])
        let panel = CurvePanel(title: "", xLabel: "Epoch", yLabel: "metric", series: [line])
        let figure = Figure(title: "A model: metric over epochs", panels: [.curve(panel)], columns: 1, panelWidth: 360, panelHeight: 300)
        let path = temporary("untitled.png")
        try figure.render(to: path, dpi: 144)
        let image = try PNGImage(path: path)
        let plot = CurvePanel.layout(in: figure.frame(of: 0), titled: false)
        #expect(plot.y - figure.frame(of: 0).y == 12)
        // The plot's frame is drawn where the layout says: its top edge dark along its width, and
        // nothing but the figure's title above it.
        let edge = stride(from: plot.x + 4, to: plot.maxX - 4, by: 4).map { image.color(x: Int($0 * 2), y: Int((plot.y * 2).rounded())) }
        #expect(edge.filter { $0.luminance < 0.5 }.count > edge.count * 9 / 10)
        for y in stride(from: 24.0, to: plot.y - 1, by: 1) {
            #expect(stride(from: plot.x, to: plot.maxX, by: 2).allSatisfy { image.color(x: Int($0 * 2), y: Int(y * 2)).luminance > 0.8 }, "ink at y \(y)")
        }
    }

    @Test func aGridHasOneTitleSizeAndOneShadeScale() throws {
        func bins(_ count: Int) -> [BinRow] {
            (0..<10).map { b in
                BinRow(bin: b, lower: Double(b) / 10, upper: Double(b + 1) / 10, count: b == 5 ? count : 0,
                       accuracy: b == 5 ? 0.5 : nil, confidence: b == 5 ? 0.55 : nil)
            }
        }
        let short = ReliabilityPanel(title: "short", bins: bins(10), ece: 0.05, n: 10)
        let long = ReliabilityPanel(title: String(repeating: "a-very-long-model-name/", count: 4) + "DPO/in-domain", bins: bins(40), ece: 0.05, n: 40)
        let figure = Figure(panels: [.reliability(short), .reliability(long)], columns: 2, panelWidth: 260, panelHeight: 300)
        #expect(figure.shadeScale == 40)
        var size = 0.0, fitted = ""
        try withCanvas { canvas in
            size = figure.panelTitleSize(canvas)
            fitted = abbreviated(canvas, figure.panels[1].title, size: size, width: 260 - 12)
            #expect(canvas.textWidth(fitted, size: size) <= 248)
            #expect(abbreviated(canvas, "short", size: size, width: 248) == "short")
        }
        #expect(size == 7)                         // the long title set it, not below 7 pt
        #expect(fitted.contains("…") && fitted.hasSuffix("in-domain") && fitted.hasPrefix("a-very"))
        let path = temporary("grid.png")
        try figure.render(to: path, dpi: 144)
        let image = try PNGImage(path: path)
        // Strips are per panel, each labelled with its own maximum: both fullest bins fill their strip.
        for index in 0..<2 {
            let strip = try #require(ReliabilityPanel.layout(in: figure.frame(of: index), showHistogram: true).histogram)
            func pixel(_ fraction: Double) -> Color {
                image.color(x: Int((strip.x + 0.55 * strip.width) * 2), y: Int((strip.maxY - fraction * strip.height) * 2))
            }
            #expect(pixel(0.9).luminance < 0.7, "panel \(index)")
        }
    }
}
