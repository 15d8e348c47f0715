internal import CTrackCairo
import Foundation

/// A Cairo failure, with Cairo's own description.
public struct CairoError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// An RGB colour with alpha, components in 0…1.
public struct Color: Sendable, Equatable {
    public var red: Double, green: Double, blue: Double, alpha: Double
    public init(_ red: Double, _ green: Double, _ blue: Double, alpha: Double = 1) {
        self.red = red; self.green = green; self.blue = blue; self.alpha = alpha
    }
    /// Linear blend towards `other` by `t` in 0…1.
    public func mixed(with other: Color, _ t: Double) -> Color {
        Color(red + (other.red - red) * t, green + (other.green - green) * t, blue + (other.blue - blue) * t,
              alpha: alpha + (other.alpha - alpha) * t)
    }
    public static let white = Color(1, 1, 1)
    public static let black = Color(0, 0, 0)
}

/// Where text sits relative to its anchor point.
public enum TextAnchor: Sendable { case start, middle, end }

/// A drawing context over one Cairo surface. Every Cairo call of the figures
/// goes through this file; units are points (1/72 inch), y grows downwards.
public final class Canvas {
    let context: OpaquePointer
    public static let fontFamily = "DejaVu Sans"
    /// SVG output: text is kept as `<text>` elements (added to the file when it is finished) rather
    /// than drawn as glyph outlines, so that an editor (Inkscape, Illustrator, a journal's) can change it.
    var svgText: [String]?

    init(surface: OpaquePointer) throws {
        guard let context = cairo_create(surface) else { throw CairoError(message: "cairo_create failed") }
        self.context = context
        try Self.check(cairo_status(context))
        cairo_select_font_face(context, Self.fontFamily, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL)
        // Crisp, antialiased text in PNGs.
        if let options = cairo_font_options_create() {
            cairo_font_options_set_antialias(options, CAIRO_ANTIALIAS_GRAY)
            cairo_font_options_set_hint_style(options, CAIRO_HINT_STYLE_SLIGHT)
            cairo_font_options_set_hint_metrics(options, CAIRO_HINT_METRICS_OFF)
            cairo_set_font_options(context, options)
            cairo_font_options_destroy(options)
        }
    }

    deinit { cairo_destroy(context) }

    /// A canvas over a 1×1 image, for measuring text before a figure's size is known.
    static func measuring() throws -> Canvas {
        guard let surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1) else { throw CairoError(message: "cannot create a 1x1 image") }
        defer { cairo_surface_destroy(surface) }   // the context keeps its own reference
        return try Canvas(surface: surface)
    }

    static func check(_ status: cairo_status_t) throws {
        guard status == CAIRO_STATUS_SUCCESS else {
            throw CairoError(message: String(cString: cairo_status_to_string(status)))
        }
    }

    func status() throws { try Self.check(cairo_status(context)) }

    // MARK: - State

    public func save() { cairo_save(context) }
    public func restore() { cairo_restore(context) }
    public func scale(_ x: Double, _ y: Double) { cairo_scale(context, x, y) }
    public func translate(_ x: Double, _ y: Double) { cairo_translate(context, x, y) }
    public func rotate(_ radians: Double) { cairo_rotate(context, radians) }

    public func setColor(_ color: Color) {
        cairo_set_source_rgba(context, color.red, color.green, color.blue, color.alpha)
    }

    public func setLineWidth(_ width: Double) { cairo_set_line_width(context, width) }

    public func setDash(_ pattern: [Double]) {
        pattern.withUnsafeBufferPointer { cairo_set_dash(context, $0.baseAddress, Int32($0.count), 0) }
    }

    public func clip(x: Double, y: Double, width: Double, height: Double) {
        cairo_rectangle(context, x, y, width, height)
        cairo_clip(context)
    }

    // MARK: - Shapes

    public func fillRectangle(x: Double, y: Double, width: Double, height: Double, _ color: Color) {
        setColor(color)
        cairo_rectangle(context, x, y, width, height)
        cairo_fill(context)
    }

    public func strokeRectangle(x: Double, y: Double, width: Double, height: Double, _ color: Color, lineWidth: Double = 1) {
        setColor(color)
        setLineWidth(lineWidth)
        cairo_rectangle(context, x, y, width, height)
        cairo_stroke(context)
    }

    public func strokeLine(from a: (Double, Double), to b: (Double, Double), _ color: Color,
                           lineWidth: Double = 1, dash: [Double] = []) {
        setColor(color)
        setLineWidth(lineWidth)
        setDash(dash)
        cairo_move_to(context, a.0, a.1)
        cairo_line_to(context, b.0, b.1)
        cairo_stroke(context)
        setDash([])
    }

    public func strokePolyline(_ points: [(Double, Double)], _ color: Color, lineWidth: Double = 1.5) {
        guard let first = points.first else { return }
        setColor(color)
        setLineWidth(lineWidth)
        cairo_set_line_join(context, CAIRO_LINE_JOIN_ROUND)
        cairo_move_to(context, first.0, first.1)
        for point in points.dropFirst() { cairo_line_to(context, point.0, point.1) }
        cairo_stroke(context)
    }

    public func fillPolygon(_ points: [(Double, Double)], _ color: Color) {
        guard let first = points.first else { return }
        setColor(color)
        cairo_move_to(context, first.0, first.1)
        for point in points.dropFirst() { cairo_line_to(context, point.0, point.1) }
        cairo_close_path(context)
        cairo_fill(context)
    }

    public func fillCircle(x: Double, y: Double, radius: Double, _ color: Color) {
        setColor(color)
        cairo_new_sub_path(context)
        cairo_arc(context, x, y, radius, 0, 2 * Double.pi)
        cairo_fill(context)
    }

    public func strokeCircle(x: Double, y: Double, radius: Double, _ color: Color, lineWidth: Double = 1) {
        setColor(color)
        setLineWidth(lineWidth)
        setDash([])
        cairo_new_sub_path(context)
        cairo_arc(context, x, y, radius, 0, 2 * Double.pi)
        cairo_stroke(context)
    }

    // MARK: - Text

    /// The advance width of `text` at `size` points.
    public func textWidth(_ text: String, size: Double) -> Double {
        cairo_set_font_size(context, size)
        var extents = cairo_text_extents_t()
        cairo_text_extents(context, text, &extents)
        return extents.x_advance
    }

    /// Draws `text` with its baseline at `y`, anchored at `x`; `rotation` in radians about the anchor.
    public func text(_ text: String, x: Double, y: Double, size: Double, color: Color = .black,
                     anchor: TextAnchor = .start, rotation: Double = 0) {
        cairo_set_font_size(context, size)
        var extents = cairo_text_extents_t()
        cairo_text_extents(context, text, &extents)
        let shift: Double
        switch anchor {
        case .start: shift = 0
        case .middle: shift = extents.x_advance / 2
        case .end: shift = extents.x_advance
        }
        if svgText != nil {
            var deviceX = x, deviceY = y
            cairo_user_to_device(context, &deviceX, &deviceY)
            svgText?.append(Self.svgElement(text, x: deviceX, y: deviceY, size: size, color: color, anchor: anchor, rotation: rotation))
            return
        }
        save()
        translate(x, y)
        if rotation != 0 { rotate(rotation) }
        setColor(color)
        cairo_move_to(context, -shift, 0)
        cairo_show_text(context, text)
        restore()
    }

    /// One `<text>` element: the same font, size, colour, anchor and rotation as the drawn text.
    static func svgElement(_ text: String, x: Double, y: Double, size: Double, color: Color, anchor: TextAnchor, rotation: Double) -> String {
        func number(_ value: Double) -> String { String(format: "%.2f", value) }
        func channel(_ value: Double) -> Int { Int((min(max(value, 0), 1) * 255).rounded()) }
        let anchorName = switch anchor { case .start: "start"; case .middle: "middle"; case .end: "end" }
        let position = rotation == 0 ? "x=\"\(number(x))\" y=\"\(number(y))\""
            : "transform=\"translate(\(number(x)) \(number(y))) rotate(\(number(rotation * 180 / Double.pi)))\""
        let opacity = color.alpha < 1 ? " fill-opacity=\"\(number(color.alpha))\"" : ""
        return "<text \(position) font-family=\"\(fontFamily), Verdana, sans-serif\" font-size=\"\(number(size))\" "
            + "fill=\"rgb(\(channel(color.red)),\(channel(color.green)),\(channel(color.blue)))\"\(opacity) text-anchor=\"\(anchorName)\" "
            + "xml:space=\"preserve\">\(xmlEscaped(text))</text>"
    }

    /// Fails when no usable font is installed: text would come out as boxes or nothing.
    func checkFont() throws {
        cairo_set_font_size(context, 12)
        var extents = cairo_text_extents_t()
        cairo_text_extents(context, "Hg0.5", &extents)
        // A font fontconfig resolved is a FreeType face; Cairo's built-in fallback is a "user" font.
        let resolved = cairo_get_scaled_font(context).map { cairo_scaled_font_get_type($0) == CAIRO_FONT_TYPE_FT } ?? false
        guard resolved, extents.x_advance > 1, extents.height > 1 else {
            throw CairoError(message: "no usable font: fontconfig found no '\(Self.fontFamily)' or fallback (install fonts-dejavu-core and fontconfig)")
        }
    }
}

// MARK: - Surfaces and files

/// The file formats figures are written in, from the output's extension.
public enum FigureFormat: String, Sendable, CaseIterable {
    case png, pdf, svg

    public init(path: String) throws {
        let ext = (path as NSString).pathExtension.lowercased()
        guard let format = FigureFormat(rawValue: ext) else {
            throw CairoError(message: "cannot tell the figure format of '\(path)': use .png, .pdf or .svg")
        }
        self = format
    }
}

/// Size and resolution of a figure.
public struct FigureSize: Sendable, Equatable {
    /// Width and height in points (1/72 inch).
    public var width: Double
    public var height: Double
    /// Pixels per inch of PNG output.
    public var dpi: Double

    public init(width: Double, height: Double, dpi: Double = 200) {
        self.width = width
        self.height = height
        self.dpi = dpi
    }

    public var pixelWidth: Int { Int((width * dpi / 72).rounded()) }
    public var pixelHeight: Int { Int((height * dpi / 72).rounded()) }
}

/// Renders `draw` into `path` (PNG, PDF or SVG by extension). The same input
/// gives the same bytes: the PDF creation date is fixed, and Cairo writes no
/// time into PNG or SVG. `title` becomes the PDF's Title and the SVG's `<title>`.
public func renderFigure(to path: String, size: FigureSize, title: String,
                         draw: (Canvas) throws -> Void) throws {
    let format = try FigureFormat(path: path)
    // Control characters are not text (and not allowed in SVG's XML): drop them.
    let title = withoutControlCharacters(title)
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw CairoError(message: "cannot write \(path): it is a directory")
    }
    let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ""
    if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
    switch format {
    case .png:
        guard let surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, Int32(size.pixelWidth), Int32(size.pixelHeight)) else {
            throw CairoError(message: "cannot create a \(size.pixelWidth)x\(size.pixelHeight) image")
        }
        defer { cairo_surface_destroy(surface) }
        try Canvas.check(cairo_surface_status(surface))
        try drawPage(surface: surface, scale: size.dpi / 72, size: size, draw: draw)
        cairo_surface_flush(surface)
        guard let data = cairo_image_surface_get_data(surface) else { throw CairoError(message: "no pixel data") }
        let stride = Int(cairo_image_surface_get_stride(surface)) / 4
        let pixels = UnsafeRawPointer(data).bindMemory(to: UInt32.self, capacity: stride * size.pixelHeight)
        let png = PNGEncoder.encode(argb: pixels, width: size.pixelWidth, height: size.pixelHeight, stride: stride)
        guard FileManager.default.createFile(atPath: path, contents: Data(png)) else {
            throw CairoError(message: "cannot write \(path)")
        }
    case .pdf:
        guard let surface = cairo_pdf_surface_create(path, size.width, size.height) else {
            throw CairoError(message: "cannot create \(path)")
        }
        defer { cairo_surface_destroy(surface) }
        try Canvas.check(cairo_surface_status(surface))
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE, title)
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "track")
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATE_DATE, "2000-01-01T00:00:00Z")
        try drawPage(surface: surface, scale: 1, size: size, draw: draw)
        cairo_surface_finish(surface)
        try Canvas.check(cairo_surface_status(surface))
    case .svg:
        guard let surface = cairo_svg_surface_create(path, size.width, size.height) else {
            throw CairoError(message: "cannot create \(path)")
        }
        try Canvas.check(cairo_surface_status(surface))
        let text = try drawPage(surface: surface, scale: 1, size: size, svg: true, draw: draw)
        cairo_surface_finish(surface)
        let status = cairo_surface_status(surface)
        cairo_surface_destroy(surface)
        try Canvas.check(status)
        try finishSVG(path: path, title: title, text: text)
    }
}

@discardableResult
private func drawPage(surface: OpaquePointer, scale: Double, size: FigureSize, svg: Bool = false,
                      draw: (Canvas) throws -> Void) throws -> [String] {
    let canvas = try Canvas(surface: surface)
    if svg { canvas.svgText = [] }
    try canvas.checkFont()
    canvas.scale(scale, scale)
    // One point more than the page, so that rounding the pixel size up leaves no unpainted edge.
    canvas.fillRectangle(x: 0, y: 0, width: size.width + 1, height: size.height + 1, .white)
    try draw(canvas)
    try canvas.status()
    return canvas.svgText ?? []
}

func withoutControlCharacters(_ text: String) -> String {
    String(String.UnicodeScalarView(text.unicodeScalars.filter { $0.value >= 0x20 && !(0x7F..<0xA0).contains($0.value) }))
}

/// `text` with XML's special characters escaped and control characters dropped.
func xmlEscaped(_ text: String) -> String {
    withoutControlCharacters(text).replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}

/// Cairo's SVG surface would draw text as glyph outlines: the figure's text is added as `<text>`
/// elements instead (over the drawing), with a `<title>` that keeps the figure's title searchable
/// and accessible. Cairo names surfaces by a counter of the process (`surface636`): renumbered in
/// order of appearance, so that a figure drawn twice in one process is the same bytes.
private func finishSVG(path: String, title: String, text elements: [String]) throws {
    var text = try String(contentsOfFile: path, encoding: .utf8)
    var numbers: [Substring: Int] = [:]
    for match in text.matches(of: /surface([0-9]+)/) where numbers[match.output.1] == nil {
        numbers[match.output.1] = numbers.count + 1
    }
    text = text.replacing(/surface([0-9]+)/) { "surface\(numbers[$0.output.1] ?? 0)" }
    guard let open = text.range(of: "<svg"), let close = text[open.upperBound...].range(of: ">"),
          let end = text.range(of: "</svg>", options: .backwards) else { return }
    if !elements.isEmpty { text.insert(contentsOf: "<g id=\"text\">\n" + elements.joined(separator: "\n") + "\n</g>\n", at: end.lowerBound) }
    text.insert(contentsOf: "\n<title>\(xmlEscaped(title))</title>", at: close.upperBound)
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

// MARK: - Reading PNGs back

/// A PNG read back into memory, for checks on what was drawn.
public struct PNGImage: Sendable {
    public let width: Int
    public let height: Int
    /// Premultiplied ARGB32 pixels, row by row (Cairo's layout).
    let pixels: [UInt32]

    public init(path: String) throws {
        guard let surface = cairo_image_surface_create_from_png(path) else { throw CairoError(message: "cannot read \(path)") }
        defer { cairo_surface_destroy(surface) }
        try Canvas.check(cairo_surface_status(surface))
        width = Int(cairo_image_surface_get_width(surface))
        height = Int(cairo_image_surface_get_height(surface))
        let stride = Int(cairo_image_surface_get_stride(surface)) / 4
        guard let data = cairo_image_surface_get_data(surface) else { throw CairoError(message: "no pixel data in \(path)") }
        let words = UnsafeRawPointer(data).bindMemory(to: UInt32.self, capacity: stride * height)
        var pixels = [UInt32](repeating: 0, count: width * height)
        for y in 0..<height { for x in 0..<width { pixels[y * width + x] = words[y * stride + x] } }
        self.pixels = pixels
    }

    /// The colour at pixel (x, y), opaque images only.
    public func color(x: Int, y: Int) -> Color {
        let value = pixels[min(max(y, 0), height - 1) * width + min(max(x, 0), width - 1)]
        return Color(Double((value >> 16) & 0xff) / 255, Double((value >> 8) & 0xff) / 255, Double(value & 0xff) / 255,
                     alpha: Double(value >> 24) / 255)
    }
}

extension Color {
    /// Relative luminance (Rec. 709 weights), 0 black … 1 white.
    public var luminance: Double { 0.2126 * red + 0.7152 * green + 0.0722 * blue }
}
