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
}

/// Roles → colours, read from `Themes/<id>.yaml`.
public struct Theme: Equatable, Sendable {
    /// File name without `.yaml` (`dark`, `ink`); what `--theme` names.
    public var id: String
    /// Shown in the UI (`水墨 (ink)`).
    public var name: String
    public var colours: [Role: Colour]
    public var source: String

    public init(id: String, name: String, colours: [Role: Colour], source: String = "built-in") {
        self.id = id
        self.name = name
        self.colours = colours
        self.source = source
    }

    public func colour(_ role: Role) -> Colour { colours[role] ?? .terminalDefault }

    public func colour(_ paint: Paint) -> Colour {
        switch paint {
        case .role(let r): colour(r)
        case .rgb(let r, let g, let b): Colour(r: r, g: g, b: b)
        }
    }

    /// The theme used when no file is given or a file is bad: dark, on the terminal's background.
    public static let builtIn = Theme(id: "dark", name: "dark (built-in)", colours: [
        .background: .terminalDefault, .foreground: .terminalDefault,
        .muted: Colour(index: 244), .primary: Colour(index: 75), .accent: Colour(index: 179),
        .user: Colour(index: 110), .assistant: Colour(index: 252), .system: Colour(index: 141),
        .error: Colour(index: 203), .border: Colour(index: 240), .selection: Colour(index: 238),
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
        for (k, _) in map where !["name", "roles"].contains(k.scalar?.string ?? "") {
            throw ThemeError(file, k.scalar?.string ?? "?", "unknown key; known keys: name, roles")
        }
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
        return Theme(id: id, name: name, colours: colours, source: file)
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
