import TrackCalibration

/// A rectangle in points.
public struct Rect: Sendable, Equatable {
    public var x: Double, y: Double, width: Double, height: Double
    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x; self.y = y; self.width = width; self.height = height
    }
    public var maxX: Double { x + width }
    public var maxY: Double { y + height }
}

/// The palette of the figures.
public enum Palette {
    public static let bar = Color(0.12, 0.47, 0.71)
    public static let gap = Color(0.84, 0.15, 0.16)
    /// The gap of an overconfident bin (confidence above accuracy), above the bar: an opaque light
    /// red, the legend's colour exactly (a translucent red read as pink or brown over other marks).
    public static let overGap = Color(0.96, 0.62, 0.62)
    /// The gap of an underconfident bin (accuracy above confidence), over the bar: opaque orange.
    public static let underGap = Color(1.0, 0.62, 0.05)
    public static let diagonal = Color(0.35, 0.35, 0.35)
    public static let axis = Color(0.15, 0.15, 0.15)
    public static let grid = Color(0.88, 0.88, 0.88)
    public static let histogram = Color(0.55, 0.55, 0.55)
    public static let series: [Color] = [
        Color(0.12, 0.47, 0.71), Color(0.84, 0.15, 0.16), Color(0.17, 0.63, 0.17), Color(1.0, 0.5, 0.05),
        Color(0.58, 0.4, 0.74), Color(0.55, 0.34, 0.29), Color(0.89, 0.47, 0.76), Color(0.5, 0.5, 0.5),
    ]

    /// Bar colour for a bin holding `share` of the largest bin's samples: light for few, full for many.
    public static func barColor(share: Double) -> Color {
        Color.white.mixed(with: bar, 0.2 + 0.8 * min(max(share, 0), 1))
    }
}

/// One reliability diagram (paper Figure 3): per confidence bin a bar up to
/// its accuracy, shaded by its share of the samples; the gap to the bin's mean
/// confidence in red (above the bar: overconfident); the diagonal of perfect
/// calibration; ECE and n in the title; empty bins left empty; optionally a
/// strip of bin counts below.
public struct ReliabilityPanel: Sendable {
    public var title: String
    /// The title's size in points; nil: 10, or smaller to fit the cell.
    public var titleSize: Double?
    public var bins: [BinRow]
    public var ece: Double?
    public var n: Int
    public var showHistogram: Bool
    public var xLabel: String
    public var yLabel: String
    /// "conf-ECE" for the top label (as tables name it); e.g. "class ECE" for a classwise panel.
    public var eceLabel: String
    /// Draw each bin's 95% Wilson interval of its accuracy (frequency) as a whisker.
    public var binIntervals = false
    /// The bin count drawn in the bar's full colour; nil: this panel's largest bin. A figure sets
    /// one for all its panels (its largest bin), so that a shade means one count throughout; the
    /// figure's legend keys it. Count strips are scaled per panel, each labelled with its maximum.
    public var shadeScale: Int?

    /// A bin's 95% Wilson score interval of accuracy: what `binIntervals` draws.
    public static func interval(_ bin: BinRow) -> Interval? {
        guard bin.count > 0, let accuracy = bin.accuracy else { return nil }
        return WinRate.wilson(successes: (accuracy * Double(bin.count)).rounded(), n: bin.count)
    }

    public init(title: String, bins: [BinRow], ece: Double?, n: Int, showHistogram: Bool = true,
                xLabel: String = "Confidence", yLabel: String = "Accuracy", eceLabel: String = "conf-ECE") {
        self.title = title
        self.bins = bins
        self.ece = ece
        self.n = n
        self.showHistogram = showHistogram
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.eceLabel = eceLabel
    }

    public var subtitle: String {
        "\(eceLabel) = \(ece.map { formatNumber($0, digits: 4) } ?? "n/a")   n = \(n)"
    }

    /// Where the plot and the histogram strip go inside a panel frame.
    public static func layout(in frame: Rect, showHistogram: Bool) -> (plot: Rect, histogram: Rect?) {
        let left = 46.0, right = 10.0, top = 38.0, bottom = 34.0
        let available = Rect(x: frame.x + left, y: frame.y + top, width: frame.width - left - right,
                             height: frame.height - top - bottom)
        guard showHistogram else { return (available, nil) }
        let strip = available.height * 0.2
        let plot = Rect(x: available.x, y: available.y, width: available.width, height: available.height - strip - 22)
        let histogram = Rect(x: available.x, y: plot.maxY + 22, width: available.width, height: strip)
        return (plot, histogram)
    }

    /// The key to this panel's marks, for the figure's one legend; `shadeScale`: the figure's.
    func legendEntries(shadeScale: Int) -> [LegendEntry] {
        var entries = [LegendEntry(.ramp(low: "1", high: String(max(shadeScale, 1))),
                                   "bar = \(yLabel.lowercased()), shade = samples in the bin"),
                       LegendEntry(.swatch(Palette.overGap), "overconfident gap"),
                       LegendEntry(.swatch(Palette.underGap), "underconfident gap"),
                       LegendEntry(.line(Palette.diagonal, dashed: true), "perfect calibration")]
        if binIntervals { entries.append(LegendEntry(.line(Palette.axis, dashed: false), "95% Wilson interval")) }
        return entries
    }

    public func draw(on canvas: Canvas, in frame: Rect) {
        let (plot, histogram) = Self.layout(in: frame, showHistogram: showHistogram)
        func px(_ value: Double) -> Double { plot.x + value * plot.width }
        func py(_ value: Double) -> Double { plot.maxY - value * plot.height }

        drawTitle(canvas, frame: frame, title: title, subtitle: subtitle, size: titleSize)
        drawUnitGrid(canvas, plot: plot)
        // Bars (accuracy) shaded by share; gaps to the mean confidence.
        let maxCount = Double(bins.map(\.count).max() ?? 0)
        let shadeTop = Double(shadeScale ?? Int(maxCount))
        for bin in bins where bin.count > 0 {
            guard let accuracy = bin.accuracy, let confidence = bin.confidence else { continue }
            let x0 = px(bin.lower), x1 = px(bin.upper)
            let color = Palette.barColor(share: shadeTop > 0 ? Double(bin.count) / shadeTop : 0)
            canvas.fillRectangle(x: x0, y: py(accuracy), width: x1 - x0, height: py(0) - py(accuracy), color)
            canvas.strokeRectangle(x: x0, y: py(accuracy), width: x1 - x0, height: py(0) - py(accuracy),
                                   Palette.bar, lineWidth: 0.6)
            let low = min(accuracy, confidence), high = max(accuracy, confidence)
            if high - low > 0 {
                // Overconfident (confidence above accuracy): light red above the bar; underconfident:
                // orange over it. Opaque, so that what the eye reads is the legend's colour.
                let over = confidence > accuracy
                canvas.fillRectangle(x: x0, y: py(high), width: x1 - x0, height: py(low) - py(high), over ? Palette.overGap : Palette.underGap)
                canvas.strokeRectangle(x: x0, y: py(high), width: x1 - x0, height: py(low) - py(high),
                                       over ? Palette.gap : Palette.underGap.mixed(with: .black, 0.25), lineWidth: 0.6)
            }
        }
        // Per-bin 95% intervals of accuracy: a whisker with caps at the bin's centre.
        if binIntervals {
            for bin in bins {
                guard let interval = Self.interval(bin) else { continue }
                let x = px((bin.lower + bin.upper) / 2), cap = min(4, (px(bin.upper) - px(bin.lower)) / 4)
                canvas.strokeLine(from: (x, py(interval.lower)), to: (x, py(interval.upper)), Palette.axis, lineWidth: 1)
                canvas.strokeLine(from: (x - cap, py(interval.lower)), to: (x + cap, py(interval.lower)), Palette.axis, lineWidth: 1)
                canvas.strokeLine(from: (x - cap, py(interval.upper)), to: (x + cap, py(interval.upper)), Palette.axis, lineWidth: 1)
            }
        }
        // Perfect calibration.
        canvas.strokeLine(from: (px(0), py(0)), to: (px(1), py(1)), Palette.diagonal, lineWidth: 1.2, dash: [4, 3])
        drawAxes(canvas, plot: plot, xLabel: showHistogram ? nil : xLabel, yLabel: yLabel,
                 xTicks: ticks(0, 1), yTicks: ticks(0, 1), xRange: (0, 1), yRange: (0, 1))

        if let histogram {
            let top = Double(max(Int(maxCount), 1))
            for bin in bins where bin.count > 0 {
                let x0 = histogram.x + bin.lower * histogram.width, x1 = histogram.x + bin.upper * histogram.width
                let height = Double(bin.count) / top * histogram.height
                canvas.fillRectangle(x: x0, y: histogram.maxY - height, width: x1 - x0, height: height, Palette.histogram)
            }
            drawStrip(canvas, histogram, label: "count", top: String(Int(top)), xLabel: xLabel)
        }
    }
}

// MARK: - Shared drawing helpers

/// Maps data coordinates to points inside a plot rectangle (y grows upwards in data).
struct AxisMapping {
    let plot: Rect
    let x: (Double, Double)
    let y: (Double, Double)

    func px(_ value: Double) -> Double { plot.x + (value - x.0) / (x.1 - x.0) * plot.width }
    func py(_ value: Double) -> Double { plot.maxY - (value - y.0) / (y.1 - y.0) * plot.height }
}

func drawTitle(_ canvas: Canvas, frame: Rect, title: String, subtitle: String?, size: Double? = nil) {
    canvas.text(title, x: frame.x + frame.width / 2, y: frame.y + 15,
                size: size ?? fittingSize(canvas, title, size: 10, width: frame.width - 12), color: .black, anchor: .middle)
    if let subtitle {
        canvas.text(subtitle, x: frame.x + frame.width / 2, y: frame.y + 28, size: 8.5, color: Palette.axis, anchor: .middle)
    }
}

/// The light grid of a plot over [0, 1]², every 0.2.
func drawUnitGrid(_ canvas: Canvas, plot: Rect) {
    for tick in stride(from: 0.0, through: 1.0, by: 0.2) {
        let x = plot.x + tick * plot.width, y = plot.maxY - tick * plot.height
        canvas.strokeLine(from: (x, plot.y), to: (x, plot.maxY), Palette.grid, lineWidth: 0.5)
        canvas.strokeLine(from: (plot.x, y), to: (plot.maxX, y), Palette.grid, lineWidth: 0.5)
    }
}

/// The frame of a strip under a plot (counts, density): its name at the left, its maximum at the
/// top left when it has one, the [0, 1] ticks and the x label under it.
func drawStrip(_ canvas: Canvas, _ strip: Rect, label: String, top: String?, xLabel: String) {
    canvas.strokeRectangle(x: strip.x, y: strip.y, width: strip.width, height: strip.height, Palette.axis, lineWidth: 0.8)
    canvas.text(label, x: strip.x - 6, y: strip.y + strip.height / 2 + 3, size: 8, color: Palette.axis, anchor: .end)
    if let top { canvas.text(top, x: strip.x - 6, y: strip.y + 7, size: 7, color: Palette.axis, anchor: .end) }
    for tick in ticks(0, 1) {
        let x = strip.x + tick * strip.width
        canvas.strokeLine(from: (x, strip.maxY), to: (x, strip.maxY + 3), Palette.axis, lineWidth: 0.8)
        canvas.text(formatNumber(tick, digits: 1), x: x, y: strip.maxY + 12, size: 8, color: Palette.axis, anchor: .middle)
    }
    canvas.text(xLabel, x: strip.x + strip.width / 2, y: strip.maxY + 24, size: 9, color: Palette.axis, anchor: .middle)
}

/// Axes with ticks and labels; `xLabel` nil leaves the x label to a strip below.
func drawAxes(_ canvas: Canvas, plot: Rect, xLabel: String?, yLabel: String?, xTicks: [Double], yTicks: [Double],
              xRange: (Double, Double), yRange: (Double, Double), xFormat: (Double) -> String = { formatNumber($0, digits: 1) },
              yFormat: (Double) -> String = { formatNumber($0, digits: 1) }) {
    canvas.strokeRectangle(x: plot.x, y: plot.y, width: plot.width, height: plot.height, Palette.axis, lineWidth: 0.8)
    for tick in xTicks {
        let x = plot.x + (tick - xRange.0) / (xRange.1 - xRange.0) * plot.width
        canvas.strokeLine(from: (x, plot.maxY), to: (x, plot.maxY + 3), Palette.axis, lineWidth: 0.8)
        if xLabel != nil {
            canvas.text(xFormat(tick), x: x, y: plot.maxY + 12, size: 8, color: Palette.axis, anchor: .middle)
        }
    }
    for tick in yTicks {
        let y = plot.maxY - (tick - yRange.0) / (yRange.1 - yRange.0) * plot.height
        canvas.strokeLine(from: (plot.x - 3, y), to: (plot.x, y), Palette.axis, lineWidth: 0.8)
        canvas.text(yFormat(tick), x: plot.x - 5, y: y + 3, size: 8, color: Palette.axis, anchor: .end)
    }
    if let xLabel {
        canvas.text(xLabel, x: plot.x + plot.width / 2, y: plot.maxY + 25, size: 9, color: Palette.axis, anchor: .middle)
    }
    if let yLabel {
        canvas.text(yLabel, x: plot.x - 32, y: plot.y + plot.height / 2, size: 9, color: Palette.axis,
                    anchor: .middle, rotation: -Double.pi / 2)
    }
}

/// Ticks at "nice" steps (1, 2, 5 × 10^k) covering [low, high].
func ticks(_ low: Double, _ high: Double, target: Int = 5) -> [Double] {
    guard high > low else { return [low] }
    let raw = (high - low) / Double(target)
    let magnitude = pow(10, (log10(raw)).rounded(.down))
    let step = [1.0, 2.0, 5.0, 10.0].map { $0 * magnitude }.first { $0 >= raw } ?? raw
    var result: [Double] = []
    var tick = (low / step).rounded(.up) * step
    while tick <= high + step * 1e-9 {
        result.append(abs(tick) < step * 1e-9 ? 0 : tick)
        tick += step
    }
    return result
}

/// `text` at `size`, shortened in the middle with "…" until it fits in `width`: the longest
/// head + "…" + tail that fits, found by bisection (O(log n) measurements, so a name of any
/// length costs about as much as a short one).
func abbreviated(_ canvas: Canvas, _ text: String, size: Double, width: Double) -> String {
    // No figure shows more than a few hundred characters: measure at most that many.
    let characters = Array(text)
    let limit = 600
    func shortened(_ kept: Int) -> String {
        let head = (kept + 1) / 2, tail = kept / 2
        return String(characters[..<head]) + "…" + String(characters[(characters.count - tail)...])
    }
    if characters.count <= limit, canvas.textWidth(text, size: size) <= width { return text }
    var low = 0, high = min(characters.count - 1, limit)   // kept characters: `low` fits (or is the least), `high` may not
    if canvas.textWidth(shortened(high), size: size) <= width { return shortened(high) }
    while high - low > 1 {
        let middle = (low + high) / 2
        if canvas.textWidth(shortened(middle), size: size) <= width { low = middle } else { high = middle }
    }
    return shortened(max(low, min(3, characters.count - 1)))
}

/// `size`, or smaller so that `text` fits in `width`.
func fittingSize(_ canvas: Canvas, _ text: String, size: Double, width: Double) -> Double {
    let natural = canvas.textWidth(text, size: size)
    return natural > width ? max(5, size * width / natural) : size
}

func formatNumber(_ value: Double, digits: Int) -> String {
    String(format: "%.\(digits)f", value)
}


#if canImport(Glibc)
import Glibc
#endif

/// Several runs' reliability diagrams in one panel (base vs instruct vs +TS): each run's
/// accuracy per confidence bin as an outlined bar in its colour (empty bins left open), its
/// mean confidence per bin as a dot, the diagonal of perfect calibration, and below, each
/// run's count per bin as an outline on the panel's one count scale (labelled with its
/// maximum). The figure's legend names each run with its conf-ECE and n.
public struct OverlayReliabilityPanel: Sendable {
    public struct Run: Sendable {
        public var label: String
        public var bins: [BinRow]
        public var ece: Double?
        public var n: Int
        public init(label: String, bins: [BinRow], ece: Double?, n: Int) {
            self.label = label
            self.bins = bins
            self.ece = ece
            self.n = n
        }
    }

    public var title: String
    public var titleSize: Double?
    public var runs: [Run]
    public var showHistogram: Bool
    public var xLabel = "Confidence"
    public var yLabel = "Accuracy"

    public init(title: String, runs: [Run], showHistogram: Bool = true) {
        self.title = title
        self.runs = runs
        self.showHistogram = showHistogram
    }

    public static func color(_ index: Int) -> Color { Palette.series[index % Palette.series.count] }

    var legendEntries: [LegendEntry] {
        runs.enumerated().map { index, run in
            LegendEntry(.line(Self.color(index), dashed: false),
                        "\(run.label): conf-ECE = \(run.ece.map { formatNumber($0, digits: 4) } ?? "n/a"), n = \(run.n)")
        } + [LegendEntry(.marker(Palette.axis, filled: true), "bin's mean confidence"),
             LegendEntry(.line(Palette.diagonal, dashed: true), "perfect calibration")]
    }

    public func draw(on canvas: Canvas, in frame: Rect) {
        let (plot, histogram) = ReliabilityPanel.layout(in: frame, showHistogram: showHistogram)
        func px(_ value: Double) -> Double { plot.x + value * plot.width }
        func py(_ value: Double) -> Double { plot.maxY - value * plot.height }
        if !title.isEmpty { drawTitle(canvas, frame: frame, title: title, subtitle: nil, size: titleSize) }
        drawUnitGrid(canvas, plot: plot)
        canvas.strokeLine(from: (px(0), py(0)), to: (px(1), py(1)), Palette.diagonal, lineWidth: 1.2, dash: [4, 3])
        // Outlined bars, inset by the run's index so that equal heights stay distinguishable.
        for (index, run) in runs.enumerated() {
            let color = Self.color(index), inset = 0.6 + 1.2 * Double(index)
            for bin in run.bins where bin.count > 0 {
                guard let accuracy = bin.accuracy else { continue }
                let x0 = px(bin.lower) + min(inset, (px(bin.upper) - px(bin.lower)) / 3)
                let x1 = px(bin.upper) - min(inset, (px(bin.upper) - px(bin.lower)) / 3)
                canvas.strokeRectangle(x: x0, y: py(accuracy), width: x1 - x0, height: py(0) - py(accuracy), color, lineWidth: 1.4)
                if let confidence = bin.confidence {
                    canvas.fillCircle(x: px(confidence), y: py(accuracy), radius: 2, color)
                }
            }
        }
        drawAxes(canvas, plot: plot, xLabel: showHistogram ? nil : xLabel, yLabel: yLabel,
                 xTicks: ticks(0, 1), yTicks: ticks(0, 1), xRange: (0, 1), yRange: (0, 1))
        guard let histogram else { return }
        let top = Double(max(runs.flatMap { $0.bins.map(\.count) }.max() ?? 1, 1))
        for (index, run) in runs.enumerated() {
            let color = Self.color(index)
            for bin in run.bins where bin.count > 0 {
                let x0 = histogram.x + bin.lower * histogram.width, x1 = histogram.x + bin.upper * histogram.width
                let height = Double(bin.count) / top * histogram.height
                canvas.strokeRectangle(x: x0 + 0.5, y: histogram.maxY - height, width: x1 - x0 - 1, height: height, color, lineWidth: 1.2)
            }
        }
        drawStrip(canvas, histogram, label: "count", top: String(Int(top)), xLabel: xLabel)
    }
}
