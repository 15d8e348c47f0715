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
    /// The title's size in points; nil: 10, or smaller to fit the cell.
    public var titleSize: Double?
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    /// The y axis starts at 0 (a calibration error); false: it is fitted to the data (a logged loss).
    public var yFromZero = true

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
        var y = yFromZero ? (min(ys.min() ?? 0, 0), ys.max() ?? 1) : (ys.min() ?? 0, ys.max() ?? 1)
        if !yFromZero, y.0 < y.1 { y.0 -= (y.1 - y.0) * 0.08 }
        if x.0 == x.1 { x = (x.0 - 1, x.1 + 1) }
        let pad = (x.1 - x.0) * 0.04
        x = (x.0 - pad, x.1 + pad)
        if y.0 == y.1 { y = (y.0 - 0.05, y.1 + 0.05) }
        y.1 += (y.1 - y.0) * 0.08
        return (x, y)
    }

    /// The height of the key under the plot.
    static let keyHeight = 14.0

    /// The plot area: under the panel's title when it has one, else near the top of its cell (a
    /// figure's own title is above the cell).
    public static func layout(in frame: Rect, titled: Bool = true) -> Rect {
        let top = titled ? 30.0 : 12.0
        return Rect(x: frame.x + 50, y: frame.y + top, width: frame.width - 60, height: frame.height - 36 - top - keyHeight)
    }

    public func draw(on canvas: Canvas, in frame: Rect) {
        let plot = Self.layout(in: frame, titled: !title.isEmpty)
        let (xRange, yRange) = ranges
        let mapping = AxisMapping(plot: plot, x: xRange, y: yRange)
        let px = mapping.px, py = mapping.py
        if !title.isEmpty { drawTitle(canvas, frame: frame, title: title, subtitle: nil, size: titleSize) }
        let yTicks = ticks(yRange.0, yRange.1)
        for tick in yTicks {
            canvas.strokeLine(from: (plot.x, py(tick)), to: (plot.maxX, py(tick)), Palette.grid, lineWidth: 0.5)
        }
        canvas.save()
        canvas.clip(x: plot.x, y: plot.y, width: plot.width, height: plot.height)
        // Every band under every line: a translucent band never tints another series' line.
        for (index, line) in series.enumerated() where line.band.count >= 2 {
            let color = Palette.series[index % Palette.series.count]
            let upper = line.band.map { (px($0.x), py($0.high)) }
            let lower = line.band.reversed().map { (px($0.x), py($0.low)) }
            canvas.fillPolygon(upper + lower, Color(color.red, color.green, color.blue, alpha: 0.15))
        }
        for (index, line) in series.enumerated() {
            let color = Palette.series[index % Palette.series.count]
            canvas.strokePolyline(line.points.map { (px($0.x), py($0.y)) }, color, lineWidth: 1.6)
            for point in line.points { canvas.fillCircle(x: px(point.x), y: py(point.y), radius: line.points.count == 1 ? 3.2 : 2.2, color) }
        }
        canvas.restore()
        let integral = series.allSatisfy { $0.points.allSatisfy { $0.x.rounded() == $0.x } }
        // Steps and epochs are whole numbers: no ticks between them.
        let xTicks = ticks(xRange.0, xRange.1).filter { !integral || $0.rounded() == $0 }
        drawAxes(canvas, plot: plot, xLabel: xLabel, yLabel: yLabel, xTicks: xTicks, yTicks: yTicks,
                 xRange: xRange, yRange: yRange,
                 xFormat: { integral ? String(Int($0)) : formatNumber($0, digits: 1) },
                 yFormat: { formatNumber($0, digits: yRange.1 - yRange.0 < 0.5 ? 2 : 1) })
        // The key, in one row under the x label, off the data.
        let size = 8.0, y = plot.maxY + 40
        // A series of one point is a marker (a value logged once), keyed as one.
        var entries = series.enumerated().map { (Palette.series[$0.offset % Palette.series.count], $0.element.label, false, $0.element.points.count == 1) }
        if series.contains(where: { $0.band.count >= 2 }) { entries.append((Palette.histogram, "shaded: interval", true, false)) }
        let widths = entries.map { 22 + canvas.textWidth($0.1, size: size) + 12 }
        let scale = min(1, plot.width / max(widths.reduce(0, +), 1))
        var x = plot.x + max(0, (plot.width - widths.reduce(0, +)) / 2)
        for (index, entry) in entries.enumerated() {
            if entry.2 {
                canvas.fillRectangle(x: x, y: y - 7, width: 16, height: 8, Color(entry.0.red, entry.0.green, entry.0.blue, alpha: 0.3))
            } else if entry.3 {
                canvas.fillCircle(x: x + 8, y: y - 3, radius: 3.2, entry.0)
            } else {
                canvas.strokeLine(from: (x, y - 3), to: (x + 16, y - 3), entry.0, lineWidth: 1.6)
            }
            canvas.text(entry.1, x: x + 20, y: y, size: size * scale, color: .black)
            x += widths[index] * scale
        }
    }
}

/// A panel of a figure.
public enum Panel: Sendable {
    case reliability(ReliabilityPanel)
    case curve(CurvePanel)
    case regime(RegimePanel)
    case smooth(SmoothReliabilityPanel)
    case overlay(OverlayReliabilityPanel)

    public func draw(on canvas: Canvas, in frame: Rect) {
        switch self {
        case .reliability(let panel): panel.draw(on: canvas, in: frame)
        case .curve(let panel): panel.draw(on: canvas, in: frame)
        case .regime(let panel): panel.draw(on: canvas, in: frame)
        case .smooth(let panel): panel.draw(on: canvas, in: frame)
        case .overlay(let panel): panel.draw(on: canvas, in: frame)
        }
    }

    public var title: String {
        switch self {
        case .reliability(let panel): panel.title
        case .curve(let panel): panel.title
        case .regime(let panel): panel.title
        case .smooth(let panel): panel.title
        case .overlay(let panel): panel.title
        }
    }

    /// The same panel under another title.
    public func retitled(_ title: String) -> Panel {
        switch self {
        case .reliability(var panel): panel.title = title; return .reliability(panel)
        case .curve(var panel): panel.title = title; return .curve(panel)
        case .regime(var panel): panel.title = title; return .regime(panel)
        case .smooth(var panel): panel.title = title; return .smooth(panel)
        case .overlay(var panel): panel.title = title; return .overlay(panel)
        }
    }

    /// Draws the panel with a title size and (reliability panels) a shading scale set by its figure.
    func draw(on canvas: Canvas, in frame: Rect, titleSize: Double, shadeScale: Int?) {
        switch self {
        case .reliability(var panel):
            panel.titleSize = titleSize
            if let shadeScale { panel.shadeScale = shadeScale }
            panel.draw(on: canvas, in: frame)
        case .curve(var panel): panel.titleSize = titleSize; panel.draw(on: canvas, in: frame)
        case .regime(var panel): panel.titleSize = titleSize; panel.draw(on: canvas, in: frame)
        case .smooth(var panel): panel.titleSize = titleSize; panel.draw(on: canvas, in: frame)
        case .overlay(var panel): panel.titleSize = titleSize; panel.draw(on: canvas, in: frame)
        }
    }

    /// The key to the panel's marks, for its figure's legend (curve and regime panels carry their own key).
    func legendEntries(shadeScale: Int?) -> [LegendEntry] {
        switch self {
        case .reliability(let panel): panel.legendEntries(shadeScale: shadeScale ?? panel.bins.map(\.count).max() ?? 1)
        case .smooth(let panel): panel.legendEntries
        case .overlay(let panel): panel.legendEntries
        case .curve, .regime: []
        }
    }
}

/// Panels in a grid of equal cells, row by row, under an optional figure title, with one legend
/// for the whole figure in rows under the panels (never over the data).
public struct Figure: Sendable {
    public var title: String?
    public var panels: [Panel]
    public var columns: Int
    /// One cell's size in points.
    public var panelWidth: Double
    public var panelHeight: Double
    /// The figure's legend; nil: the keys of its panels' marks, each once.
    public var legend: [LegendEntry]?

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
    public var height: Double { Double(rows) * panelHeight + titleHeight + legendHeight }

    /// The cell of panel `index`.
    public func frame(of index: Int) -> Rect {
        Rect(x: Double(index % columns) * panelWidth, y: titleHeight + Double(index / columns) * panelHeight,
             width: panelWidth, height: panelHeight)
    }

    /// The legend's entries: as given, or each panel's keys once, in order.
    public var legendEntries: [LegendEntry] {
        if let legend { return legend }
        var entries: [LegendEntry] = []
        for panel in panels {
            for entry in panel.legendEntries(shadeScale: shadeScale) where !entries.contains(entry) { entries.append(entry) }
        }
        return entries
    }

    var legendHeight: Double {
        let entries = legendEntries
        guard !entries.isEmpty, let canvas = try? Canvas.measuring() else { return 0 }
        return Legend(entries: entries, fitting: width, canvas).height(canvas, width: width)
    }

    /// Where the legend goes: the full width under the last row of panels.
    public var legendFrame: Rect {
        Rect(x: 0, y: titleHeight + Double(rows) * panelHeight, width: width, height: legendHeight)
    }

    public func draw(on canvas: Canvas) {
        if let title {
            canvas.text(title, x: width / 2, y: 16, size: fittingSize(canvas, title, size: 12, width: width - 20),
                        color: .black, anchor: .middle)
        }
        // A lone panel whose title the figure's title already says is drawn without it.
        var panels = panels
        if let title, panels.count == 1, title.lowercased().contains(panels[0].title.lowercased()) {
            panels[0] = panels[0].retitled("")
        }
        let titleSize = panelTitleSize(canvas), shadeScale = shadeScale
        for (index, panel) in panels.enumerated() {
            let fitted = panel.retitled(abbreviated(canvas, panel.title, size: titleSize, width: panelWidth - 12))
            fitted.draw(on: canvas, in: frame(of: index), titleSize: titleSize, shadeScale: shadeScale)
        }
        let entries = legendEntries
        if !entries.isEmpty { Legend(entries: entries, fitting: width, canvas).draw(canvas, in: legendFrame) }
    }

    /// One title size for every panel: the largest at which each fits its cell, not below 7 pt
    /// (a longer title is then shortened in the middle).
    func panelTitleSize(_ canvas: Canvas) -> Double {
        max(7, panels.map { fittingSize(canvas, $0.title, size: 10, width: panelWidth - 12) }.min() ?? 10)
    }

    /// The largest bin count of every reliability panel: one shading scale for the figure.
    var shadeScale: Int? {
        panels.compactMap { panel -> Int? in
            guard case .reliability(let p) = panel else { return nil }
            return p.bins.map(\.count).max()
        }.max()
    }

    /// Writes the figure (format from the extension) at `dpi` for PNG.
    public func render(to path: String, dpi: Double = 200) throws {
        try renderFigure(to: path, size: FigureSize(width: width, height: height, dpi: dpi),
                         title: title ?? panels.map(\.title).joined(separator: " | ")) { canvas in
            draw(on: canvas)
        }
    }
}
