import Foundation

/// One line of a curve panel: a run family's metric over steps or epochs,
/// with an optional band (e.g. a bootstrap interval).
public struct Series: Sendable {
    public var label: String
    public var points: [(x: Double, y: Double)]
    public var band: [(x: Double, low: Double, high: Double)]

    public init(label: String, points: [(x: Double, y: Double)], band: [(x: Double, low: Double, high: Double)] = []) {
        self.label = label
        self.points = points.sorted { $0.x < $1.x }
        self.band = band.sorted { $0.x < $1.x }
    }
}

/// A metric over training steps or epochs for a family of runs (paper Figure 1, right).
public struct CurvePanel: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    /// The data ranges, padded, shared by every series.
    public var ranges: (x: (Double, Double), y: (Double, Double)) {
        let xs = series.flatMap { $0.points.map(\.x) + $0.band.map(\.x) }
        let ys = series.flatMap { $0.points.map(\.y) + $0.band.flatMap { [$0.low, $0.high] } }
        var x = (xs.min() ?? 0, xs.max() ?? 1)
        var y = (min(ys.min() ?? 0, 0), ys.max() ?? 1)
        if x.0 == x.1 { x = (x.0 - 1, x.1 + 1) }
        let pad = (x.1 - x.0) * 0.04
        x = (x.0 - pad, x.1 + pad)
        if y.0 == y.1 { y = (y.0 - 0.05, y.1 + 0.05) }
        y.1 += (y.1 - y.0) * 0.08
        return (x, y)
    }

    public static func layout(in frame: Rect) -> Rect {
        Rect(x: frame.x + 50, y: frame.y + 30, width: frame.width - 60, height: frame.height - 66)
    }

    public func draw(on canvas: Canvas, in frame: Rect) {
        let plot = Self.layout(in: frame)
        let (xRange, yRange) = ranges
        let mapping = AxisMapping(plot: plot, x: xRange, y: yRange)
        let px = mapping.px, py = mapping.py
        drawTitle(canvas, frame: frame, title: title, subtitle: nil)
        let yTicks = ticks(yRange.0, yRange.1)
        for tick in yTicks {
            canvas.strokeLine(from: (plot.x, py(tick)), to: (plot.maxX, py(tick)), Palette.grid, lineWidth: 0.5)
        }
        canvas.save()
        canvas.clip(x: plot.x, y: plot.y, width: plot.width, height: plot.height)
        for (index, line) in series.enumerated() {
            let color = Palette.series[index % Palette.series.count]
            if line.band.count >= 2 {
                let upper = line.band.map { (px($0.x), py($0.high)) }
                let lower = line.band.reversed().map { (px($0.x), py($0.low)) }
                canvas.fillPolygon(upper + lower, Color(color.red, color.green, color.blue, alpha: 0.18))
            }
            canvas.strokePolyline(line.points.map { (px($0.x), py($0.y)) }, color, lineWidth: 1.6)
            for point in line.points { canvas.fillCircle(x: px(point.x), y: py(point.y), radius: 2.2, color) }
        }
        canvas.restore()
        let integral = series.allSatisfy { $0.points.allSatisfy { $0.x.rounded() == $0.x } }
        // Steps and epochs are whole numbers: no ticks between them.
        let xTicks = ticks(xRange.0, xRange.1).filter { !integral || $0.rounded() == $0 }
        drawAxes(canvas, plot: plot, xLabel: xLabel, yLabel: yLabel, xTicks: xTicks, yTicks: yTicks,
                 xRange: xRange, yRange: yRange,
                 xFormat: { integral ? String(Int($0)) : formatNumber($0, digits: 1) },
                 yFormat: { formatNumber($0, digits: yRange.1 - yRange.0 < 0.5 ? 2 : 1) })
        // Legend, top right inside the plot.
        var y = plot.y + 12
        for (index, line) in series.enumerated() {
            let color = Palette.series[index % Palette.series.count]
            let width = canvas.textWidth(line.label, size: 8)
            let x = plot.maxX - width - 8
            canvas.strokeLine(from: (x - 16, y - 3), to: (x - 4, y - 3), color, lineWidth: 1.6)
            canvas.text(line.label, x: x, y: y, size: 8, color: .black)
            y += 11
        }
    }
}

/// A panel of a figure.
public enum Panel: Sendable {
    case reliability(ReliabilityPanel)
    case curve(CurvePanel)
    case regime(RegimePanel)
    case smooth(SmoothReliabilityPanel)

    public func draw(on canvas: Canvas, in frame: Rect) {
        switch self {
        case .reliability(let panel): panel.draw(on: canvas, in: frame)
        case .curve(let panel): panel.draw(on: canvas, in: frame)
        case .regime(let panel): panel.draw(on: canvas, in: frame)
        case .smooth(let panel): panel.draw(on: canvas, in: frame)
        }
    }

    public var title: String {
        switch self {
        case .reliability(let panel): panel.title
        case .curve(let panel): panel.title
        case .regime(let panel): panel.title
        case .smooth(let panel): panel.title
        }
    }
}

/// Panels in a grid of equal cells, row by row, under an optional figure title.
public struct Figure: Sendable {
    public var title: String?
    public var panels: [Panel]
    public var columns: Int
    /// One cell's size in points.
    public var panelWidth: Double
    public var panelHeight: Double

    public init(title: String? = nil, panels: [Panel], columns: Int, panelWidth: Double = 260, panelHeight: Double = 300) {
        self.title = title
        self.panels = panels
        self.columns = max(1, min(columns, panels.count))
        self.panelWidth = panelWidth
        self.panelHeight = panelHeight
    }

    var rows: Int { (panels.count + columns - 1) / columns }
    var titleHeight: Double { title == nil ? 0 : 22 }
    public var width: Double { Double(columns) * panelWidth }
    public var height: Double { Double(rows) * panelHeight + titleHeight }

    /// The cell of panel `index`.
    public func frame(of index: Int) -> Rect {
        Rect(x: Double(index % columns) * panelWidth, y: titleHeight + Double(index / columns) * panelHeight,
             width: panelWidth, height: panelHeight)
    }

    public func draw(on canvas: Canvas) {
        if let title {
            canvas.text(title, x: width / 2, y: 16, size: fittingSize(canvas, title, size: 12, width: width - 20),
                        color: .black, anchor: .middle)
        }
        for (index, panel) in panels.enumerated() { panel.draw(on: canvas, in: frame(of: index)) }
    }

    /// Writes the figure (format from the extension) at `dpi` for PNG.
    public func render(to path: String, dpi: Double = 200) throws {
        try renderFigure(to: path, size: FigureSize(width: width, height: height, dpi: dpi),
                         title: title ?? panels.map(\.title).joined(separator: " | ")) { canvas in
            draw(on: canvas)
        }
    }
}
