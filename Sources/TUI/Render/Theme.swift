import Foundation
import Yams

/// What widgets colour by: semantic roles, never raw colours.
public enum Role: String, CaseIterable, Sendable {
    case background, foreground, muted, primary, accent, user, assistant, system, error, border, selection
}

/// One colour for a 256-colour terminal and its stand-in on a 16-colour one. nil is the
/// terminal's own default colour.
public struct Colour: Equatable, Sendable {
    public var c256: Int?
    public var c16: Int?

    public init(c256: Int?, c16: Int?) {
        self.c256 = c256
        self.c16 = c16
    }

    public static let terminalDefault = Colour(c256: nil, c16: nil)

    /// `#rrggbb` → nearest xterm colour in the 6×6×6 cube or the grey ramp, and nearest of the 16.
    public init(r: UInt8, g: UInt8, b: UInt8) {
        self.init(c256: Self.nearest256(Int(r), Int(g), Int(b)), c16: Self.nearest16(Int(r), Int(g), Int(b)))
    }

    /// An xterm-256 index, with the nearest of the 16 as fallback.
    public init(index: Int) {
        let (r, g, b) = Self.rgb(of: index)
        self.init(c256: index, c16: index < 16 ? index : Self.nearest16(r, g, b))
    }

    public static let names16 = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white",
                                 "bright-black", "bright-red", "bright-green", "bright-yellow", "bright-blue",
                                 "bright-magenta", "bright-cyan", "bright-white"]

    static func parseHex(_ s: String) -> (UInt8, UInt8, UInt8)? {
        let u = Array(s.utf8)
        guard u.count == 7, u[0] == UInt8(ascii: "#"), let v = UInt32(String(s.dropFirst()), radix: 16) else { return nil }
        return (UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF))
    }

    /// xterm's palette: 16 system colours, the 6×6×6 cube, 24 greys.
    static func rgb(of index: Int) -> (Int, Int, Int) {
        let system = [(0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205), (229, 229, 229),
                      (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255)]
        if index < 16 { return system[max(index, 0)] }
        if index < 232 {
            let i = index - 16
            let level = [0, 95, 135, 175, 215, 255]
            return (level[i / 36], level[i / 6 % 6], level[i % 6])
        }
        let g = 8 + 10 * (index - 232)
        return (g, g, g)
    }

    static func distance(_ a: (Int, Int, Int), _ b: (Int, Int, Int)) -> Int {
        let dr = a.0 - b.0, dg = a.1 - b.1, db = a.2 - b.2
        return 2 * dr * dr + 4 * dg * dg + 3 * db * db
    }

    static func nearest256(_ r: Int, _ g: Int, _ b: Int) -> Int {
        let c = (r, g, b)
        return (16..<256).min { distance(rgb(of: $0), c) < distance(rgb(of: $1), c) }!
    }

    static func nearest16(_ r: Int, _ g: Int, _ b: Int) -> Int {
        let c = (r, g, b)
        return (0..<16).min { distance(rgb(of: $0), c) < distance(rgb(of: $1), c) }!
    }

    // MARK: contrast (WCAG 2)

    /// Relative luminance of an sRGB colour: each channel linearised, then weighted
    /// 0.2126 R + 0.7152 G + 0.0722 B (WCAG 2.x), 0 (black) … 1 (white).
    public static func luminance(_ c: (Int, Int, Int)) -> Double {
        func linear(_ v: Int) -> Double {
            let s = Double(min(max(v, 0), 255)) / 255
            return s <= 0.04045 ? s / 12.92 : pow((s + 0.055) / 1.055, 2.4)
        }
        return 0.2126 * linear(c.0) + 0.7152 * linear(c.1) + 0.0722 * linear(c.2)
    }

    /// WCAG contrast ratio of two sRGB colours, (lighter + 0.05) / (darker + 0.05): 1 (same) … 21
    /// (black on white). 4.5 is the minimum for text (AA).
    public static func contrast(_ a: (Int, Int, Int), _ b: (Int, Int, Int)) -> Double {
        contrast(luminance: luminance(a), luminance(b))
    }

    /// The contrast ratio of two xterm palette entries (0–255), on xterm's default palette.
    public static func contrast(index a: Int, _ b: Int) -> Double {
        contrast(luminance: palette[a].luminance, palette[b].luminance)
    }

    static func contrast(luminance a: Double, _ b: Double) -> Double {
        (max(a, b) + 0.05) / (min(a, b) + 0.05)
    }

    /// Per palette entry: luminance, HSV hue (degrees) and saturation; computed once.
    static let palette: [(luminance: Double, hue: Double, saturation: Double)] = (0..<256).map { i in
        let (r, g, b) = rgb(of: i)
        let hi = max(r, g, b), lo = min(r, g, b), d = Double(hi - lo)
        var hue = 0.0
        if d > 0 {
            if hi == r { hue = 60 * (Double(g - b) / d) } else if hi == g { hue = 60 * (Double(b - r) / d + 2) } else { hue = 60 * (Double(r - g) / d + 4) }
            if hue < 0 { hue += 360 }
        }
        return (luminance((r, g, b)), hue, hi == 0 ? 0 : d / Double(hi))
    }

    /// Below this HSV saturation a colour counts as grey: it has no hue to keep.
    static let greyBelow = 0.15
}

/// Roles → colours, read from `Themes/<id>.yaml`.
public struct Theme: Equatable, Sendable {
    /// File name without `.yaml` (`dark`, `ink`); what `--theme` names.
    public var id: String
    /// Shown in the UI (`水墨 (ink)`).
    public var name: String
    public var colours: [Role: Colour]
    public var source: String
    /// What a role set to `default` is taken to be when contrast is computed: the terminal's own
    /// background and foreground are unknown to us. Unless the theme file says otherwise
    /// (`assume_background`, `assume_foreground`), a dark terminal: black (#000000, xterm's and most
    /// emulators' default) under light grey text (#e5e5e5, xterm's colour 7).
    public var assumedBackground: Colour
    public var assumedForeground: Colour

    public static let darkTerminal = (background: Colour(r: 0, g: 0, b: 0), foreground: Colour(r: 0xE5, g: 0xE5, b: 0xE5))

    public init(id: String, name: String, colours: [Role: Colour], source: String = "built-in",
                assumedBackground: Colour = Theme.darkTerminal.background, assumedForeground: Colour = Theme.darkTerminal.foreground) {
        self.id = id
        self.name = name
        self.colours = colours
        self.source = source
        self.assumedBackground = assumedBackground
        self.assumedForeground = assumedForeground
    }

    public func colour(_ role: Role) -> Colour { colours[role] ?? .terminalDefault }

    /// What the terminal is sent for a widget's paint. A role is the theme's colour as written;
    /// an exact colour (a persona's accent; widgets paint backgrounds by role only) is text made
    /// readable on this theme's backgrounds (`readable`), so an accent chosen for one background
    /// never disappears on another. Every cell drawn goes through here (NcursesTerminal).
    public func colour(_ paint: Paint) -> Colour {
        switch paint {
        case .role(let r): colour(r)
        case .rgb(let r, let g, let b): readable(Colour(r: r, g: g, b: b))
        }
    }

    // MARK: readable text

    /// Text needs this contrast ratio against what it is drawn on (WCAG 2 AA for normal text).
    public static let minimumContrast = 4.5
    /// The backgrounds widgets draw text over: the screen, and the highlighted row (picker,
    /// history, status line, panels).
    public static let textBackgrounds: [Role] = [.background, .selection]

    /// `colour` with `default` replaced by what the theme assumes the terminal shows: the
    /// assumed background when it is drawn as a background, else the assumed foreground.
    public func assumed(_ colour: Colour, asBackground: Bool) -> Colour {
        let stand = asBackground ? assumedBackground : assumedForeground
        return Colour(c256: colour.c256 ?? stand.c256, c16: colour.c16 ?? stand.c16)
    }

    /// Contrast ratios of text in `fg` on `bg` as drawn: on a 256-colour terminal and on a
    /// 16-colour one (xterm's default palette; `default` as assumed).
    public func contrast(_ fg: Colour, on bg: Colour) -> (c256: Double, c16: Double) {
        let f = assumed(fg, asBackground: false), b = assumed(bg, asBackground: true)
        return (Colour.contrast(index: f.c256 ?? 0, b.c256 ?? 0), Colour.contrast(index: f.c16 ?? 0, b.c16 ?? 0))
    }

    /// `colour` as text that reaches `minimumContrast` on every one of `backgrounds`: the colour
    /// itself when it does; else the nearest xterm-256 colour of the same hue that does (a grey
    /// for a grey), lighter on dark backgrounds and darker on light ones. The 16-colour stand-in
    /// likewise: kept when readable, else the readable one of the 16 nearest to the new colour.
    /// `default` (the terminal's own foreground) is left to the terminal.
    public func readable(_ colour: Colour, on backgrounds: [Role] = Theme.textBackgrounds) -> Colour {
        let bgs = backgrounds.map { assumed(self.colour($0), asBackground: true) }
        let on256 = bgs.compactMap(\.c256), on16 = bgs.compactMap(\.c16)
        func worst(_ i: Int, _ on: [Int]) -> Double { on.map { Colour.contrast(index: i, $0) }.min() ?? 21 }
        func ok(_ i: Int, _ on: [Int]) -> Bool { worst(i, on) >= Theme.minimumContrast }
        /// White or black, whichever is further from the backgrounds (for impossible backgrounds).
        func extreme(_ white: Int, _ black: Int, _ on: [Int]) -> Int { worst(white, on) >= worst(black, on) ? white : black }

        var c256 = colour.c256
        if let src = c256, !ok(src, on256) {
            let p = Colour.palette[src], from = Colour.rgb(of: src)
            let passing = (16..<256).filter { ok($0, on256) }
            var candidates: [Int] = []
            if p.saturation < Colour.greyBelow {
                candidates = passing.filter { Colour.palette[$0].saturation < Colour.greyBelow }
            } else {
                // Widen the hue window only as far as the palette needs (its cube is coarse).
                for window in [5.0, 10, 15, 20, 30, 45, 60, 90, 180] where candidates.isEmpty {
                    candidates = passing.filter {
                        let q = Colour.palette[$0]
                        let d = abs(q.hue - p.hue).truncatingRemainder(dividingBy: 360)
                        return q.saturation >= Colour.greyBelow && min(d, 360 - d) <= window
                    }
                }
            }
            if candidates.isEmpty { candidates = passing }
            c256 = candidates.min { Colour.distance(Colour.rgb(of: $0), from) < Colour.distance(Colour.rgb(of: $1), from) }
                ?? extreme(231, 16, on256)
        }
        var c16 = colour.c16
        if let src = c16, !ok(src, on16) {
            let target = Colour.rgb(of: c256 ?? src)
            c16 = (0..<16).filter { ok($0, on16) }
                .min { Colour.distance(Colour.rgb(of: $0), target) < Colour.distance(Colour.rgb(of: $1), target) }
                ?? extreme(15, 0, on16)
        }
        return Colour(c256: c256, c16: c16)
    }

    /// The theme used when no file is given or a file is bad: dark, on the terminal's background
    /// (the same colours as Themes/dark.yaml).
    public static let builtIn = Theme(id: "dark", name: "dark (built-in)", colours: [
        .background: .terminalDefault, .foreground: .terminalDefault,
        .muted: Colour(c256: 247, c16: 8), .primary: Colour(c256: 75, c16: 14), .accent: Colour(c256: 179, c16: 3),
        .user: Colour(c256: 110, c16: 6), .assistant: Colour(c256: 252, c16: 7), .system: Colour(c256: 141, c16: 13),
        .error: Colour(c256: 210, c16: 9), .border: Colour(c256: 240, c16: 8), .selection: Colour(c256: 236, c16: 4),
    ])
}

/// Reads theme files. Every problem is one line naming the file and the field.
public enum ThemeFile {
    public static func load(_ path: String) throws(ThemeError) -> Theme {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ThemeError(path, "", "cannot read as UTF-8 text")
        }
        let id = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        return try parse(text, file: path, id: id)
    }

    public static func parse(_ text: String, file: String, id: String) throws(ThemeError) -> Theme {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ThemeError(file, "", "not valid YAML (\("\(error)".split(separator: "\n").first ?? ""))")
        }
        guard let map = root?.mapping else { throw ThemeError(file, "", "expected a mapping with name and roles") }
        let keys = ["name", "roles", "assume_background", "assume_foreground"]
        for (k, _) in map where !keys.contains(k.scalar?.string ?? "") {
            throw ThemeError(file, k.scalar?.string ?? "?", "unknown key; known keys: \(keys.joined(separator: ", "))")
        }
        /// What `default` is taken to be (for contrast only): a colour, never `default` itself.
        func assumption(_ key: String, _ otherwise: Colour) throws(ThemeError) -> Colour {
            guard let node = map[key] else { return otherwise }
            let c = try colour(node, field: key, file: file)
            guard c.c256 != nil, c.c16 != nil else { throw ThemeError(file, key, "must be a colour (#rrggbb, 0–255 or a name), not default") }
            return c
        }
        let assumedBackground = try assumption("assume_background", Theme.darkTerminal.background)
        let assumedForeground = try assumption("assume_foreground", Theme.darkTerminal.foreground)
        let name = map["name"]?.scalar?.string ?? id
        guard let roles = map["roles"]?.mapping else { throw ThemeError(file, "roles", "is required (a mapping of role: colour)") }
        var colours: [Role: Colour] = [:]
        for (k, v) in roles {
            let key = k.scalar?.string ?? "?"
            guard let role = Role(rawValue: key) else {
                throw ThemeError(file, "roles.\(key)", "unknown role; roles: \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            colours[role] = try colour(v, field: "roles.\(key)", file: file)
        }
        for r in Role.allCases where colours[r] == nil {
            throw ThemeError(file, "roles.\(r.rawValue)", "is required")
        }
        return Theme(id: id, name: name, colours: colours, source: file,
                     assumedBackground: assumedBackground, assumedForeground: assumedForeground)
    }

    /// `default`, `#rrggbb`, 0–255, a 16-colour name, or `{color: …, fallback: …}`.
    static func colour(_ node: Node, field: String, file: String) throws(ThemeError) -> Colour {
        if let m = node.mapping {
            for (k, _) in m where !["color", "fallback"].contains(k.scalar?.string ?? "") {
                throw ThemeError(file, field + "." + (k.scalar?.string ?? "?"), "unknown key; known keys: color, fallback")
            }
            guard let c = m["color"] else { throw ThemeError(file, field + ".color", "is required") }
            var out = try colour(c, field: field + ".color", file: file)
            if let f = m["fallback"] {
                let fb = try colour(f, field: field + ".fallback", file: file)
                guard fb.c16 == nil || fb.c16! < 16, fb.c256 == nil || fb.c256! < 16 else {
                    throw ThemeError(file, field + ".fallback", "must be one of the 16 colours (0–15 or a name such as bright-red)")
                }
                out.c16 = fb.c16
            }
            return out
        }
        guard let s = node.scalar?.string else { throw ThemeError(file, field, "expected a colour") }
        if s == "default" { return .terminalDefault }
        if let rgb = Colour.parseHex(s) { return Colour(r: rgb.0, g: rgb.1, b: rgb.2) }
        if let i = Int(s) {
            guard (0...255).contains(i) else { throw ThemeError(file, field, "colour index must be 0–255 (got \(i))") }
            return Colour(index: i)
        }
        if let i = Colour.names16.firstIndex(of: s) { return Colour(c256: i, c16: i) }
        throw ThemeError(file, field, "expected default, #rrggbb, 0–255 or a colour name (\(Colour.names16.joined(separator: ", "))), got '\(s)'")
    }
}

public struct ThemeError: Error, CustomStringConvertible, Equatable, Sendable {
    public let file: String
    public let field: String
    public let reason: String

    public init(_ file: String, _ field: String, _ reason: String) {
        self.file = file
        self.field = field
        self.reason = reason
    }

    public var description: String { field.isEmpty ? "\(file): \(reason)" : "\(file): \(field): \(reason)" }
}

/// Every theme in a folder (sorted by id), the built-in one first when no file replaces it,
/// and one error per bad file.
public struct ThemeLibrary: Sendable {
    public var themes: [Theme]
    public var errors: [ThemeError]

    public static func load(from dir: String?) -> ThemeLibrary {
        var lib = ThemeLibrary(themes: [], errors: [])
        if let dir {
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
                .filter { $0.hasSuffix(".yaml") && !$0.hasPrefix(".") }.sorted()
            for f in files {
                do {
                    lib.themes.append(try ThemeFile.load((dir as NSString).appendingPathComponent(f)))
                } catch {
                    lib.errors.append(error)
                }
            }
        }
        if !lib.themes.contains(where: { $0.id == Theme.builtIn.id }) { lib.themes.insert(Theme.builtIn, at: 0) }
        return lib
    }

    public func theme(_ id: String) -> Theme? { themes.first { $0.id == id } }
}
