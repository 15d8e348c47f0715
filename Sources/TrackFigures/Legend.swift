/// What a legend entry shows beside its text.
public enum LegendMark: Sendable, Equatable {
    /// A filled box (a bar, a gap, a band).
    case swatch(Color)
    /// A line, solid or dashed (a curve, the diagonal).
    case line(Color, dashed: Bool)
    /// A dot, filled or hollow (a point of a scatter).
    case marker(Color, filled: Bool)
    /// A ramp of the bar's shades from few to many samples, labelled with its two ends.
    case ramp(low: String, high: String)
}

public struct LegendEntry: Sendable, Equatable {
    public var mark: LegendMark
    public var label: String
    public init(_ mark: LegendMark, _ label: String) {
        self.mark = mark
        self.label = label
    }
}

/// One legend for a whole figure, in rows under its panels (never over the data): entries laid
/// left to right and wrapped to the figure's width.
struct Legend {
    var entries: [LegendEntry]
    /// The text size: 8 pt, or smaller (not below 5) so that the widest entry fits the width.
    var size = 8.0
    static let rowHeight = 14.0, padding = 6.0, gap = 16.0, markWidth = 16.0

    init(entries: [LegendEntry], fitting width: Double, _ canvas: Canvas) {
        self.entries = entries
        while size > 5, (widths(canvas).max() ?? 0) > width - 2 * Self.padding { size -= 0.25 }
    }

    /// Entry widths in points: the mark, a space, the text.
    func widths(_ canvas: Canvas) -> [Double] {
        entries.map { entry in
            let mark: Double = if case .ramp = entry.mark { rampWidth(canvas, entry.mark) } else { Self.markWidth }
            return mark + 4 + canvas.textWidth(entry.label, size: size)
        }
    }

    func rampWidth(_ canvas: Canvas, _ mark: LegendMark) -> Double {
        guard case .ramp(let low, let high) = mark else { return Self.markWidth }
        return canvas.textWidth(low, size: size - 1) + 3 + 5 * 8 + 3 + canvas.textWidth(high, size: size - 1)
    }

    /// The entries of each row for a width.
    func rows(_ canvas: Canvas, width: Double) -> [[Int]] {
        var rows: [[Int]] = [[]], used = 0.0
        for (index, entryWidth) in widths(canvas).enumerated() {
            if !rows[rows.count - 1].isEmpty, used + Self.gap + entryWidth > width - 2 * Self.padding {
                rows.append([])
                used = 0
            }
            used += (rows[rows.count - 1].isEmpty ? 0 : Self.gap) + entryWidth
            rows[rows.count - 1].append(index)
        }
        return rows
    }

    func height(_ canvas: Canvas, width: Double) -> Double {
        entries.isEmpty ? 0 : Double(rows(canvas, width: width).count) * Self.rowHeight + 2 * Self.padding
    }

    /// Draws the rows centred in `frame`.
    func draw(_ canvas: Canvas, in frame: Rect) {
        let widths = widths(canvas)
        for (row, members) in rows(canvas, width: frame.width).enumerated() {
            let total = members.map { widths[$0] }.reduce(0, +) + Self.gap * Double(max(members.count - 1, 0))
            var x = frame.x + max(Self.padding, (frame.width - total) / 2)
            let baseline = frame.y + Self.padding + Double(row) * Self.rowHeight + 10
            for index in members {
                let entry = entries[index]
                switch entry.mark {
                case .swatch(let color):
                    canvas.fillRectangle(x: x, y: baseline - 8, width: Self.markWidth, height: 9, color)
                case .line(let color, let dashed):
                    canvas.strokeLine(from: (x, baseline - 3.5), to: (x + Self.markWidth, baseline - 3.5), color, lineWidth: 1.6,
                                      dash: dashed ? [4, 3] : [])
                case .marker(let color, let filled):
                    if filled { canvas.fillCircle(x: x + 8, y: baseline - 3.5, radius: 3, color) } else {
                        canvas.fillCircle(x: x + 8, y: baseline - 3.5, radius: 3, .white)
                        canvas.strokeCircle(x: x + 8, y: baseline - 3.5, radius: 3, color, lineWidth: 1.2)
                    }
                case .ramp(let low, let high):
                    // The text first ("shade = samples in the bin"), then its scale: low ▭▭▭▭▭ high.
                    canvas.text(entry.label, x: x, y: baseline, size: size, color: .black)
                    var cell = x + canvas.textWidth(entry.label, size: size) + 4
                    canvas.text(low, x: cell, y: baseline, size: size - 1, color: Palette.axis)
                    cell += canvas.textWidth(low, size: size - 1) + 3
                    for step in 0..<5 {
                        canvas.fillRectangle(x: cell, y: baseline - 8, width: 8, height: 9, Palette.barColor(share: Double(step) / 4))
                        cell += 8
                    }
                    canvas.text(high, x: cell + 3, y: baseline, size: size - 1, color: Palette.axis)
                }
                if case .ramp = entry.mark {} else {
                    canvas.text(entry.label, x: x + Self.markWidth + 4, y: baseline, size: size, color: .black)
                }
                x += widths[index] + Self.gap
            }
        }
    }
}
