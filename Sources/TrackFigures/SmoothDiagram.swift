/// A smooth reliability diagram (Błasiok & Nakkiran 2023, relplot's): the kernel
/// regression of the outcome on the confidence at smECE's bandwidth σ, with its
/// bootstrap band, the diagonal of perfect calibration, and a strip below showing
/// the density of the confidences; smECE and σ in the title.
public struct SmoothReliabilityPanel: Sendable {
    public var title: String
    /// The title's size in points; nil: 10, or smaller to fit the cell.
    public var titleSize: Double?
    /// The evaluation mesh on [0, 1] and, on it, the curve, its band and the density.
    public var mesh: [Double]
    public var curve: [Double]
    public var lower: [Double]
    public var upper: [Double]
    public var density: [Double]
    public var smECE: Double?
    public var sigma: Double?
    public var n: Int
    public var xLabel = "Confidence"
    public var yLabel = "Accuracy"

    public init(title: String, mesh: [Double], curve: [Double], lower: [Double], upper: [Double], density: [Double],
                smECE: Double?, sigma: Double?, n: Int) {
        self.title = title
        self.mesh = mesh
        self.curve = curve
        self.lower = lower
        self.upper = upper
        self.density = density
        self.smECE = smECE
        self.sigma = sigma
        self.n = n
    }

    var subtitle: String {
        var parts: [String] = []
        if let smECE { parts.append("smECE = " + formatNumber(smECE, digits: 4)) }
        if let sigma { parts.append("σ = " + formatNumber(sigma, digits: 3)) }
        parts.append("n = \(n)")   // an integer, as in every figure and table
        return parts.joined(separator: ", ")
    }

    public func draw(on canvas: Canvas, in frame: Rect) {
        let (plot, strip) = ReliabilityPanel.layout(in: frame, showHistogram: true)
        func px(_ value: Double) -> Double { plot.x + value * plot.width }
        func py(_ value: Double) -> Double { plot.maxY - min(max(value, 0), 1) * plot.height }
        drawTitle(canvas, frame: frame, title: title, subtitle: subtitle, size: titleSize)
        for tick in stride(from: 0.0, through: 1.0, by: 0.2) {
            canvas.strokeLine(from: (px(tick), plot.y), to: (px(tick), plot.maxY), Palette.grid, lineWidth: 0.5)
            canvas.strokeLine(from: (plot.x, py(tick)), to: (plot.maxX, py(tick)), Palette.grid, lineWidth: 0.5)
        }
        if lower.count == mesh.count, upper.count == mesh.count, !mesh.isEmpty {
            let top = zip(mesh, upper).map { (px($0), py($1)) }
            let bottom = zip(mesh, lower).reversed().map { (px($0), py($1)) }
            canvas.fillPolygon(top + bottom, Color(Palette.bar.red, Palette.bar.green, Palette.bar.blue, alpha: 0.22))
        }
        canvas.strokeLine(from: (px(0), py(0)), to: (px(1), py(1)), Palette.diagonal, lineWidth: 1.2, dash: [4, 3])
        canvas.strokePolyline(zip(mesh, curve).map { (px($0), py($1)) }, Palette.gap, lineWidth: 1.8)
        drawAxes(canvas, plot: plot, xLabel: nil, yLabel: yLabel, xTicks: ticks(0, 1), yTicks: ticks(0, 1),
                 xRange: (0, 1), yRange: (0, 1))
        guard let strip else { return }
        let peak = max(density.max() ?? 0, .leastNormalMagnitude)
        let outline = zip(mesh, density).map { (strip.x + $0 * strip.width, strip.maxY - $1 / peak * strip.height) }
        if let first = outline.first, let last = outline.last {
            canvas.fillPolygon([(first.0, strip.maxY)] + outline + [(last.0, strip.maxY)], Palette.histogram)
        }
        canvas.strokeRectangle(x: strip.x, y: strip.y, width: strip.width, height: strip.height, Palette.axis, lineWidth: 0.8)
        canvas.text("density", x: strip.x - 6, y: strip.y + strip.height / 2 + 3, size: 8, color: Palette.axis, anchor: .end)
        for tick in ticks(0, 1) {
            let x = strip.x + tick * strip.width
            canvas.strokeLine(from: (x, strip.maxY), to: (x, strip.maxY + 3), Palette.axis, lineWidth: 0.8)
            canvas.text(formatNumber(tick, digits: 1), x: x, y: strip.maxY + 12, size: 8, color: Palette.axis, anchor: .middle)
        }
        canvas.text(xLabel, x: strip.x + strip.width / 2, y: strip.maxY + 24, size: 9, color: Palette.axis, anchor: .middle)
    }
}
