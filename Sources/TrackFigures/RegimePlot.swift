/// The regime plot (paper Figure 2): a metric (ECE) against accuracy, the band
/// between the bounds `c·|a − A*|` and `(2/K)·|a − A*|` on the lowest TCE reachable
/// at an accuracy (Theorems 4.4, 4.5) shaded, A* marked, the calibratable
/// (acc ≤ A*) and non-calibratable sides named, runs as labelled points: filled
/// inside the band, hollow above it (not well trained, in the paper's words: fine-tuning
/// moves such a model into a regime), the target run that set A* as a diamond; the axes
/// zoomed to the runs and A*; labels placed clear of points, lines and each other; a key
/// below the plot.
public struct RegimePanel: Sendable {
    public struct Point: Sendable {
        public var label: String
        public var accuracy: Double
        public var value: Double
        /// The run whose accuracy set A* (`--target`).
        public var isTarget: Bool
        public init(label: String, accuracy: Double, value: Double, isTarget: Bool = false) {
            self.label = label
            self.accuracy = accuracy
            self.value = value
            self.isTarget = isTarget
        }
    }

    /// Where a point lies against the band at its accuracy.
    public enum Placement: String, Sendable {
        case inside, above, below
    }

    public var title: String
    /// The title's size in points; nil: 10, or smaller to fit the cell.
    public var titleSize: Double?
    public var yLabel: String
    public var aStar: Double
    public var optionCount: Int
    public var lowerConstant: Double
    public var points: [Point]

    public init(title: String, yLabel: String, aStar: Double, optionCount: Int, lowerConstant: Double, points: [Point]) {
        self.title = title
        self.yLabel = yLabel
        self.aStar = aStar
        self.optionCount = optionCount
        self.lowerConstant = lowerConstant
        self.points = points
    }

    /// The band's bounds at an accuracy.
    public func bounds(at accuracy: Double) -> (lower: Double, upper: Double) {
        (lowerConstant * abs(accuracy - aStar), 2 / Double(optionCount) * abs(accuracy - aStar))
    }

    public func placement(of point: Point) -> Placement {
        let (lower, upper) = bounds(at: point.accuracy)
        if point.value > upper + 1e-12 { return .above }
        return point.value < lower - 1e-12 ? .below : .inside
    }

    /// The height of the key under the plot.
    static let keyHeight = 46.0

    public static func layout(in frame: Rect) -> Rect {
        Rect(x: frame.x + 52, y: frame.y + 30, width: frame.width - 64, height: frame.height - 66 - keyHeight)
    }

    /// Data ranges, zoomed to the runs and A*: accuracy from a little below the lowest to a little
    /// above the highest (within [0, 1]); the metric from 0 to a little above the highest point or
    /// bound there.
    public var ranges: (x: (Double, Double), y: (Double, Double)) {
        let xs = points.map(\.accuracy) + [aStar]
        let low = xs.min() ?? 0, high = xs.max() ?? 1
        let pad = max(0.04, (high - low) * 0.15)
        var x = (max(0, low - pad), min(1, high + pad))
        if x.1 - x.0 < 0.1 { x = (max(0, min(x.0, 1 - 0.1)), min(1, max(x.1, 0.1))) }
        let upper = max(bounds(at: x.0).upper, bounds(at: x.1).upper)
        let top = max(points.map(\.value).max() ?? 0, upper, 0.02) * 1.22
        return (x, (0, top))
    }

    public func draw(on canvas: Canvas, in frame: Rect) {
        let plot = Self.layout(in: frame)
        let (xRange, yRange) = ranges
        let mapping = AxisMapping(plot: plot, x: xRange, y: yRange)
        let px = mapping.px, py = mapping.py
        drawTitle(canvas, frame: frame, title: title, subtitle: nil, size: titleSize)
        let bandFill = Color(Palette.bar.red, Palette.bar.green, Palette.bar.blue, alpha: 0.16)
        canvas.save()
        canvas.clip(x: plot.x, y: plot.y, width: plot.width, height: plot.height)
        // The band between the bounds, over accuracy.
        // The grid, and A* itself (where the band's bounds meet at 0).
        let xs = ((0...200).map { xRange.0 + (xRange.1 - xRange.0) * Double($0) / 200 } + [aStar].filter { $0 > xRange.0 && $0 < xRange.1 })
            .sorted()
        let upper = xs.map { (px($0), py(bounds(at: $0).upper)) }
        let lower = xs.reversed().map { (px($0), py(bounds(at: $0).lower)) }
        canvas.fillPolygon(upper + lower, bandFill)
        canvas.strokePolyline(upper, Palette.bar, lineWidth: 1)
        if lowerConstant > 0 { canvas.strokePolyline(Array(lower.reversed()), Palette.bar, lineWidth: 1) }
        canvas.strokeLine(from: (px(aStar), plot.y), to: (px(aStar), plot.maxY), Palette.gap, lineWidth: 1.2, dash: [4, 3])
        canvas.restore()

        for (text, box, anchorX, anchor, color) in annotations(canvas, plot: plot) {
            canvas.text(text, x: anchorX, y: box.maxY - 3, size: Self.annotationSize, color: color, anchor: anchor)
        }
        for label in labelPlacement(canvas, plot: plot).labels {
            let point = points[label.index]
            let cx = px(point.accuracy), cy = py(point.value)
            if label.leader {
                let tx = min(max(cx, label.box.x), label.box.maxX), ty = min(max(cy, label.box.y), label.box.maxY)
                canvas.strokeLine(from: (cx, cy), to: (tx, ty), Palette.histogram, lineWidth: 0.6)
            }
            canvas.text(point.label, x: label.box.x + 1, y: label.box.maxY - 2.5, size: Self.labelSize, color: .black)
        }
        for point in points {
            Self.drawMark(canvas, point.isTarget ? .target : placement(of: point) == .above ? .above : .inside, x: px(point.accuracy), y: py(point.value))
        }
        let xTicks = ticks(xRange.0, xRange.1, target: 7)
        drawAxes(canvas, plot: plot, xLabel: "Accuracy", yLabel: yLabel, xTicks: xTicks, yTicks: ticks(yRange.0, yRange.1),
                 xRange: xRange, yRange: yRange, xFormat: { formatNumber($0, digits: xRange.1 - xRange.0 < 0.5 ? 2 : 1) },
                 yFormat: { formatNumber($0, digits: 2) })

        // The key, under the axis label: the band, then the marks.
        let keySize = 7.0
        var x = plot.x, y = plot.maxY + 40
        canvas.fillRectangle(x: x, y: y - 6, width: 12, height: 7, bandFill)
        canvas.strokeRectangle(x: x, y: y - 6, width: 12, height: 7, Palette.bar, lineWidth: 0.6)
        let lowerText = lowerConstant > 0 ? "c·|acc − A*| (c = \(formatNumber(lowerConstant, digits: 2)))" : "0"
        let band = "the regimes: ECE from \(lowerText) to (2/K)·|acc − A*|, K = \(optionCount)"
        canvas.text(band, x: x + 16, y: y, size: fittingSize(canvas, band, size: keySize, width: plot.width - 16), color: Palette.axis)
        y += 12
        var entries: [(String, Mark)] = [("in a regime (inside the band)", .inside), ("above it: not well trained", .above)]
        if points.contains(where: \.isTarget) { entries.append(("target run (its accuracy is A*)", .target)) }
        for (text, mark) in entries {
            let width = 16 + canvas.textWidth(text, size: keySize) + 14
            if x > plot.x, x + width > plot.maxX { x = plot.x; y += 12 }
            Self.drawMark(canvas, mark, x: x + 6, y: y - 2.5)
            canvas.text(text, x: x + 16, y: y, size: keySize, color: Palette.axis)
            x += width
        }
    }
}

extension RegimePanel {
    /// How a run is drawn: filled inside the band, hollow above it, a red diamond for the target run.
    enum Mark { case inside, above, target }

    static func drawMark(_ canvas: Canvas, _ mark: Mark, x: Double, y: Double) {
        switch mark {
        case .inside: canvas.fillCircle(x: x, y: y, radius: markerRadius, .black)
        case .above:
            canvas.fillCircle(x: x, y: y, radius: markerRadius, .white)
            canvas.strokeCircle(x: x, y: y, radius: markerRadius, .black, lineWidth: 1.2)
        case .target:
            let r = markerRadius + 1.2
            canvas.fillPolygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], Palette.gap)
        }
    }

    static let markerRadius = 3.0
    static let labelSize = 7.5
    static let annotationSize = 8.0

    /// A*'s value and the names of the two sides: text, box, anchor x, anchor, colour.
    func annotations(_ canvas: Canvas, plot: Rect) -> [(String, Rect, Double, TextAnchor, Color)] {
        let mapping = AxisMapping(plot: plot, x: ranges.x, y: ranges.y)
        let size = Self.annotationSize
        func box(_ text: String, x: Double, baseline: Double, anchor: TextAnchor) -> Rect {
            let width = canvas.textWidth(text, size: size)
            return Rect(x: (anchor == .end ? x - width : x) - 1, y: baseline - size, width: width + 2, height: size + 3)
        }
        let x = mapping.px(aStar)
        return [("A* = " + formatNumber(aStar, digits: 3), x + 4, plot.y + 11, TextAnchor.start, Palette.gap),
                ("calibratable", x - 6, plot.y + 23, .end, Palette.axis),
                ("non-calibratable", x + 6, plot.y + 23, .start, Palette.axis)].map { text, anchorX, baseline, anchor, color in
            (text, box(text, x: anchorX, baseline: baseline, anchor: anchor), anchorX, anchor, color)
        }
    }

    /// Where each point's label goes: densest points first, the nearest box around the point
    /// (8 directions, growing distances) that overlaps no marker, label or annotation and stays
    /// in the plot; a leader line when it had to go further than the point's side. A label that
    /// cannot be placed free takes the box of least overlap.
    func labelPlacement(_ canvas: Canvas, plot: Rect) -> (labels: [(index: Int, box: Rect, leader: Bool)], markers: [Rect], annotations: [Rect], lines: [Rect]) {
        let mapping = AxisMapping(plot: plot, x: ranges.x, y: ranges.y)
        let radius = Self.markerRadius
        let fixed = annotations(canvas, plot: plot).map(\.1)
        let markers = points.map { Rect(x: mapping.px($0.accuracy) - radius - 1, y: mapping.py($0.value) - radius - 1,
                                        width: 2 * radius + 2, height: 2 * radius + 2) }
        // The A* line and the band's bounds are obstacles too: no label is crossed by a line.
        var lines = [Rect(x: mapping.px(aStar) - 1.5, y: plot.y, width: 3, height: plot.height)]
        for step in 0...80 {
            let accuracy = ranges.x.0 + (ranges.x.1 - ranges.x.0) * Double(step) / 80
            let (lower, upper) = bounds(at: accuracy)
            for value in lowerConstant > 0 ? [lower, upper] : [upper] where value <= ranges.y.1 {
                lines.append(Rect(x: mapping.px(accuracy) - 2, y: mapping.py(value) - 1.5, width: 4, height: 3))
            }
        }
        var taken = fixed + markers + lines
        let order = points.indices.sorted { a, b in
            func crowd(_ i: Int) -> Int { markers.filter { abs($0.x - markers[i].x) < 60 && abs($0.y - markers[i].y) < 20 }.count }
            return (crowd(a), b) > (crowd(b), a)
        }
        var labels: [(index: Int, box: Rect, leader: Bool)] = []
        for index in order {
            let cx = mapping.px(points[index].accuracy), cy = mapping.py(points[index].value)
            let width = canvas.textWidth(points[index].label, size: Self.labelSize) + 2, height = Self.labelSize + 3
            var best: (box: Rect, overlap: Double, leader: Bool)?
            search: for distance in [5.0, 12, 22, 34, 48, 64, 84, 108, 136] {
                let d = distance * 0.7
                let candidates: [(Double, Double)] = [
                    (cx + distance, cy - height / 2), (cx - distance - width, cy - height / 2),
                    (cx + d, cy - d - height), (cx + d, cy + d), (cx - d - width, cy - d - height), (cx - d - width, cy + d),
                    (cx - width / 2, cy - distance - height), (cx - width / 2, cy + distance),
                ]
                for (x, y) in candidates {
                    let box = Rect(x: x, y: y, width: width, height: height)
                    guard box.x >= plot.x + 1, box.maxX <= plot.maxX - 1, box.y >= plot.y + 1, box.maxY <= plot.maxY - 1 else { continue }
                    let overlap = taken.reduce(0) { $0 + box.overlapArea($1) }
                    if best == nil || overlap < best!.overlap { best = (box, overlap, distance > 12) }
                    if overlap == 0 { break search }
                }
            }
            guard let chosen = best else { continue }
            taken.append(chosen.box)
            labels.append((index, chosen.box, chosen.leader))
        }
        return (labels, markers, fixed, lines)
    }
}

extension Rect {
    /// The area this rectangle shares with another.
    func overlapArea(_ other: Rect) -> Double {
        max(0, min(maxX, other.maxX) - max(x, other.x)) * max(0, min(maxY, other.maxY) - max(y, other.y))
    }
}
