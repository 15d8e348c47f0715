/// A smooth reliability diagram (Błasiok & Nakkiran 2023, relplot's): the kernel
/// regression of the outcome on the confidence at smECE's bandwidth σ, with its
/// bootstrap band, the diagonal of perfect calibration, and a strip below showing
/// the density of the confidences; smECE with its interval, and σ, in the title.
/// Like relplot, the curve says nothing where there are no confidences: curve and band
/// are cut where the density is below `cut` of its peak and fade in up to `full` of it
/// (with 4 options a top-label confidence is never below 0.25: nothing is drawn there).
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
    /// smECE's bootstrap interval (as `track metrics --ci` gives it).
    public var smECEInterval: (lower: Double, upper: Double)?
    public var sigma: Double?
    public var n: Int
    /// Density, as a share of its peak, below which nothing is drawn, and from which it is drawn in full.
    public static let cut = 0.01, full = 0.1
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
        if let smECE {
            let interval = smECEInterval.map { " [\(formatNumber($0.lower, digits: 3)), \(formatNumber($0.upper, digits: 3))]" } ?? ""
            parts.append("smECE = " + formatNumber(smECE, digits: 3) + interval)
        }
        if let sigma { parts.append("σ = " + formatNumber(sigma, digits: 3)) }
        parts.append("n = \(n)")   // an integer, as in every figure and table
        return parts.joined(separator: ", ")
    }

    static let bandColor = Color.white.mixed(with: Palette.bar, 0.25)

    /// How much of the curve shows at each mesh point: 0 below `cut` of the peak density, 1 from
    /// `full` of it, linear between (from 0.2, so that what is drawn is visible).
    public var visibility: [Double] {
        let peak = density.max() ?? 0
        guard peak > 0 else { return density.map { _ in 0 } }
        return density.map { value in
            let share = value / peak
            if share < Self.cut { return 0 }
            return min(1, 0.2 + 0.8 * (share - Self.cut) / (Self.full - Self.cut))
        }
    }

    var legendEntries: [LegendEntry] {
        [LegendEntry(.line(Palette.gap, dashed: false), "smoothed accuracy (faint where density < 10% of its peak, cut below 1%)"),
         LegendEntry(.swatch(Self.bandColor), "95% bootstrap band"),
         LegendEntry(.line(Palette.diagonal, dashed: true), "perfect calibration")]
    }

    public func draw(on canvas: Canvas, in frame: Rect) {
        let (plot, strip) = ReliabilityPanel.layout(in: frame, showHistogram: true)
        func px(_ value: Double) -> Double { plot.x + value * plot.width }
        func py(_ value: Double) -> Double { plot.maxY - min(max(value, 0), 1) * plot.height }
        drawTitle(canvas, frame: frame, title: title, subtitle: subtitle, size: titleSize)
        drawUnitGrid(canvas, plot: plot)
        let shown = visibility
        if lower.count == mesh.count, upper.count == mesh.count, mesh.count > 1 {
            for j in 0..<(mesh.count - 1) where shown[j] > 0 && shown[j + 1] > 0 {
                // Opaque, each reaching half a point into the next: no antialiased seams between them.
                let color = Color.white.mixed(with: Self.bandColor, min(shown[j], shown[j + 1]))
                let x1 = px(mesh[j + 1]) + (j + 2 < mesh.count && shown[j + 2] > 0 ? 0.5 : 0)
                canvas.fillPolygon([(px(mesh[j]), py(upper[j])), (x1, py(upper[j + 1])),
                                    (x1, py(lower[j + 1])), (px(mesh[j]), py(lower[j]))], color)
            }
        }
        canvas.strokeLine(from: (px(0), py(0)), to: (px(1), py(1)), Palette.diagonal, lineWidth: 1.2, dash: [4, 3])
        if curve.count == mesh.count, mesh.count > 1 {
            for j in 0..<(mesh.count - 1) where shown[j] > 0 && shown[j + 1] > 0 {
                let color = Color.white.mixed(with: Palette.gap, min(shown[j], shown[j + 1]))
                canvas.strokeLine(from: (px(mesh[j]), py(curve[j])), to: (px(mesh[j + 1]), py(curve[j + 1])), color, lineWidth: 1.8)
            }
        }
        drawAxes(canvas, plot: plot, xLabel: nil, yLabel: yLabel, xTicks: ticks(0, 1), yTicks: ticks(0, 1),
                 xRange: (0, 1), yRange: (0, 1))
        guard let strip else { return }
        let peak = max(density.max() ?? 0, .leastNormalMagnitude)
        let outline = zip(mesh, density).map { (strip.x + $0 * strip.width, strip.maxY - $1 / peak * strip.height) }
        if let first = outline.first, let last = outline.last {
            canvas.fillPolygon([(first.0, strip.maxY)] + outline + [(last.0, strip.maxY)], Palette.histogram)
        }
        drawStrip(canvas, strip, label: "density", top: nil, xLabel: xLabel)
    }
}
