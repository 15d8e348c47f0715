/// The regime plot (paper Figure 2): a metric (ECE) against accuracy, the band
/// between the bounds `c·|a − A*|` and `(2/K)·|a − A*|` shaded, A* marked, the
/// calibratable (acc ≤ A*) and non-calibratable sides named, runs as labelled points.
public struct RegimePanel: Sendable {
    public struct Point: Sendable {
        public var label: String
        public var accuracy: Double
        public var value: Double
        public init(label: String, accuracy: Double, value: Double) {
            self.label = label
            self.accuracy = accuracy
            self.value = value
        }
    }

    public var title: String
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

    public static func layout(in frame: Rect) -> Rect {
        Rect(x: frame.x + 52, y: frame.y + 30, width: frame.width - 64, height: frame.height - 66)
    }

    /// Data ranges: accuracy over [0, 1], the metric from 0 to a little above the highest point or bound.
    public var ranges: (x: (Double, Double), y: (Double, Double)) {
        let upper = 2 / Double(optionCount) * max(aStar, 1 - aStar)
        let top = max(points.map(\.value).max() ?? 0, min(upper, 0.5), 0.05) * 1.15
        return ((0, 1), (0, top))
    }

    public func draw(on canvas: Canvas, in frame: Rect) {
        let plot = Self.layout(in: frame)
        let (xRange, yRange) = ranges
        let mapping = AxisMapping(plot: plot, x: xRange, y: yRange)
        let px = mapping.px, py = mapping.py
        drawTitle(canvas, frame: frame, title: title, subtitle: nil)
        canvas.save()
        canvas.clip(x: plot.x, y: plot.y, width: plot.width, height: plot.height)
        // The band between the bounds, over accuracy.
        let xs = stride(from: 0.0, through: 1.0, by: 0.005).map { $0 }
        let upper = xs.map { (px($0), py(2 / Double(optionCount) * abs($0 - aStar))) }
        let lower = xs.reversed().map { (px($0), py(lowerConstant * abs($0 - aStar))) }
        canvas.fillPolygon(upper + lower, Color(Palette.bar.red, Palette.bar.green, Palette.bar.blue, alpha: 0.16))
        canvas.strokePolyline(upper, Palette.bar, lineWidth: 1)
        if lowerConstant > 0 { canvas.strokePolyline(Array(lower.reversed()), Palette.bar, lineWidth: 1) }
        canvas.strokeLine(from: (px(aStar), plot.y), to: (px(aStar), plot.maxY), Palette.gap, lineWidth: 1.2, dash: [4, 3])
        for point in points { canvas.fillCircle(x: px(point.accuracy), y: py(point.value), radius: 3, .black) }
        canvas.restore()
        // Labels: the first vertical offset whose box overlaps no label placed before.
        var placed: [Rect] = []
        for point in points {
            let width = canvas.textWidth(point.label, size: 7.5)
            let x = min(px(point.accuracy) + 5, frame.maxX - width - 2)
            for offset in [-4.0, 10, -14, 20, -24, 30, -34, 40] {
                let box = Rect(x: x, y: py(point.value) + offset - 8, width: width, height: 9)
                let free = placed.allSatisfy { $0.maxX <= box.x || box.maxX <= $0.x || $0.maxY <= box.y || box.maxY <= $0.y }
                if free || offset == 40 {
                    canvas.text(point.label, x: x, y: py(point.value) + offset, size: 7.5, color: .black)
                    placed.append(box)
                    break
                }
            }
        }
        canvas.text("A* = " + formatNumber(aStar, digits: 3), x: px(aStar) + 4, y: plot.y + 10, size: 8, color: Palette.gap)
        canvas.text("calibratable", x: px(aStar) - 6, y: plot.y + 22, size: 8, color: Palette.axis, anchor: .end)
        canvas.text("non-calibratable", x: px(aStar) + 6, y: plot.y + 22, size: 8, color: Palette.axis)
        drawAxes(canvas, plot: plot, xLabel: "Accuracy", yLabel: yLabel, xTicks: ticks(0, 1), yTicks: ticks(yRange.0, yRange.1),
                 xRange: xRange, yRange: yRange, yFormat: { formatNumber($0, digits: 2) })
    }
}
