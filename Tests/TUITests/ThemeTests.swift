import Chat
import Foundation
import Testing
@testable import TUI

@Suite struct ThemeTests {
    @Test func shippedThemesLoadWithEveryRole() throws {
        let lib = ThemeLibrary.load(from: Fx.path("Themes"))
        #expect(lib.errors.isEmpty, "\(lib.errors)")
        #expect(Set(lib.themes.map(\.id)).isSuperset(of: ["dark", "light", "high-contrast", "ink"]))
        for t in lib.themes {
            #expect(Set(t.colours.keys) == Set(Role.allCases), "\(t.id)")
            for (role, c) in t.colours {
                // Every colour has a 16-colour stand-in (or is the terminal's default in both).
                #expect((c.c256 == nil) == (c.c16 == nil), "\(t.id).\(role)")
                if let x = c.c16 { #expect((0..<16).contains(x)) }
            }
        }
        let ink = try #require(lib.theme("ink"))
        #expect(ink.name == "水墨 (ink)")
        #expect(ink.colour(.primary) == Colour(c256: 202, c16: 9))
        #expect(ink.colour(.accent) == Colour(r: 0xD4, g: 0xA0, b: 0x17).with16(3))
    }

    @Test func colourSpellings() throws {
        let t = try ThemeFile.parse("""
            name: t
            roles:
              background: default
              foreground: 250
              muted: bright-black
              primary: "#5fafff"
              accent: {color: "#d4a017", fallback: 3}
              user: {color: 110, fallback: cyan}
              assistant: white
              system: 141
              error: "#ff0000"
              border: 240
              selection: 238
            """, file: "t.yaml", id: "t")
        #expect(t.colour(.background) == .terminalDefault)
        #expect(t.colour(.foreground) == Colour(c256: 250, c16: 7))
        #expect(t.colour(.muted) == Colour(c256: 8, c16: 8))
        #expect(t.colour(.primary) == Colour(c256: 75, c16: 12))       // exact cube colour
        #expect(t.colour(.accent).c16 == 3)
        #expect(t.colour(.user) == Colour(c256: 110, c16: 6))
        #expect(t.colour(.error) == Colour(c256: 196, c16: 9))
        #expect(t.colour(.rgb(0xFF, 0xFF, 0xFF)) == Colour(c256: 231, c16: 15))
    }

    @Test func badFilesNameTheFileAndField() {
        func error(_ yaml: String) -> String {
            do {
                _ = try ThemeFile.parse(yaml, file: "Themes/bad.yaml", id: "bad")
                return "no error"
            } catch {
                return error.description
            }
        }
        let full = Role.allCases.map { "  \($0.rawValue): 1" }
        #expect(error("name: x\nroles:\n" + full.dropLast().joined(separator: "\n")) == "Themes/bad.yaml: roles.selection: is required")
        #expect(error("roles:\n" + full.joined(separator: "\n").replacingOccurrences(of: "accent: 1", with: "accent: purple"))
                .hasPrefix("Themes/bad.yaml: roles.accent: expected default, #rrggbb, 0–255 or a colour name"))
        #expect(error("roles:\n" + full.joined(separator: "\n").replacingOccurrences(of: "user: 1", with: "user: 300"))
                == "Themes/bad.yaml: roles.user: colour index must be 0–255 (got 300)")
        #expect(error("roles:\n" + full.joined(separator: "\n").replacingOccurrences(of: "error: 1", with: "error: {color: 9, fallback: 200}"))
                .hasPrefix("Themes/bad.yaml: roles.error.fallback: must be one of the 16 colours"))
        #expect(error("roles:\n" + full.joined(separator: "\n") + "\n  shadow: 1").hasPrefix("Themes/bad.yaml: roles.shadow: unknown role"))
        #expect(error("colours: {}") == "Themes/bad.yaml: colours: unknown key; known keys: name, roles, assume_background, assume_foreground")
        #expect(error("assume_background: default\nroles:\n" + full.joined(separator: "\n"))
                == "Themes/bad.yaml: assume_background: must be a colour (#rrggbb, 0–255 or a name), not default")
        #expect(error("roles: [") .hasPrefix("Themes/bad.yaml: not valid YAML"))
        #expect(!error("roles: [").contains("\n"))
    }

    @Test func aBadFileIsSkippedAndTheDefaultKept() throws {
        let dir = TempDir()
        try "roles:\n  background: nope\n".write(toFile: dir.path + "/broken.yaml", atomically: true, encoding: .utf8)
        try String(contentsOfFile: Fx.path("Themes/light.yaml"), encoding: .utf8).write(toFile: dir.path + "/light.yaml", atomically: true, encoding: .utf8)
        let lib = ThemeLibrary.load(from: dir.path)
        #expect(lib.themes.map(\.id) == ["dark", "light"])            // built-in dark first
        #expect(lib.errors.count == 1 && lib.errors[0].description.hasPrefix(dir.path + "/broken.yaml: roles.background:"))
        #expect(ThemeLibrary.load(from: "/no/such/dir").themes == [Theme.builtIn])
    }
}

// Readable colours: WCAG contrast, persona accents fitted to each theme, the themes' own text roles.
extension ThemeTests {
    @Test func contrastRatioOnKnownPairs() {
        let white = (255, 255, 255), black = (0, 0, 0)
        #expect(abs(Colour.contrast(white, black) - 21) < 1e-9)
        #expect(Colour.contrast(black, white) == Colour.contrast(white, black))
        #expect(Colour.contrast((0x5F, 0x87, 0xAF), (0x5F, 0x87, 0xAF)) == 1)
        #expect(abs(Colour.contrast(index: 231, 16) - 21) < 1e-9)          // the palette's white and black
        #expect(Colour.contrast(index: 240, 240) == 1)
        #expect(abs(Colour.luminance((255, 0, 0)) - 0.2126) < 1e-9)
        // WCAG's familiar boundary: #767676 is the lightest grey with 4.5:1 on white; #777777 is not.
        #expect((Colour.contrast((0x76, 0x76, 0x76), white) * 100).rounded() == 454)
        #expect(Colour.contrast((0x77, 0x77, 0x77), white) < 4.5)
    }

    @Test func readableKeepsWhatReadsAndFitsTheRestInTheSameHue() throws {
        let lib = ThemeLibrary.load(from: Fx.path("Themes"))
        let dark = try #require(lib.theme("dark")), light = try #require(lib.theme("light"))
        func hue(_ c: Colour) -> Double { Colour.palette[c.c256!].hue }
        func lum(_ c: Colour) -> Double { Colour.palette[c.c256!].luminance }
        func worst(_ t: Theme, _ c: Colour) -> (Double, Double) {
            let r = Theme.textBackgrounds.map { t.contrast(c, on: t.colour($0)) }
            return (r.map(\.c256).min()!, r.map(\.c16).min()!)
        }
        // Readable already: unchanged.
        let amber = Colour(c256: 179, c16: 3)
        #expect(dark.readable(amber) == amber)
        // A near-black grey on dark: a lighter grey that reads.
        let likui = Colour(r: 0x17, g: 0x20, b: 0x2A)
        let lifted = dark.readable(likui)
        let (r, g, b) = Colour.rgb(of: lifted.c256!)
        #expect(r == g && g == b && lum(lifted) > lum(likui))
        #expect(worst(dark, lifted).0 >= 4.5 && worst(dark, lifted).1 >= 4.5)
        // Gold on light: darker, hue kept within the cube's coarseness (30°).
        let gold = Colour(r: 0xD4, g: 0xA0, b: 0x17)
        let deep = light.readable(gold)
        #expect(lum(deep) < lum(gold) && abs(hue(deep) - hue(gold)) <= 30)
        #expect(worst(light, deep).0 >= 4.5 && worst(light, deep).1 >= 4.5)
        // On the background alone, less has to change than with the selection too.
        #expect(lum(dark.readable(Colour(index: 24), on: [.background])) <= lum(dark.readable(Colour(index: 24))))
        // 16 colours: blue on black (2.4:1) is replaced by one of the 16 that reads.
        #expect(Colour.contrast(index: 4, 0) < 4.5)
        #expect(Colour.contrast(index: dark.readable(Colour(c256: 75, c16: 4)).c16!, 0) >= 4.5)
        // The terminal's own foreground is left to the terminal.
        #expect(dark.readable(.terminalDefault) == .terminalDefault)
        // What the terminal is sent for a persona's accent is the readable colour.
        #expect(dark.colour(.rgb(0x17, 0x20, 0x2A)) == lifted)
    }

    /// Text roles as themes write them: 4.5:1 on the background and the selection on 256 colours.
    /// On 16 colours, on the background (muted 3:1: the 16 have one mid grey, see light.yaml), and
    /// the selection's own text (foreground) on the selection; the 16-colour selection bars (blue,
    /// white) leave too few colours to hold every role to it.
    @Test func shippedThemesTextRolesReach45to1() {
        let textRoles: [Role] = [.foreground, .muted, .primary, .accent, .user, .assistant, .system, .error]
        var failures: [String] = []
        for t in Readable.themes {
            for role in textRoles {
                for bg in Theme.textBackgrounds {
                    let r = t.contrast(t.colour(role), on: t.colour(bg))
                    if r.c256 < 4.5 { failures.append("\(t.name): \(role) on \(bg): \(Readable.ratio(r.c256)) (256 colours)") }
                    let need16 = role == .muted ? 3.0 : 4.5
                    if (bg == .background || role == .foreground) && r.c16 < need16 {
                        failures.append("\(t.name): \(role) on \(bg): \(Readable.ratio(r.c16)) (16 colours)")
                    }
                }
            }
        }
        #expect(failures.isEmpty, Comment(rawValue: failures.joined(separator: "\n")))
    }

    @Test func builtInThemeIsDarkYaml() throws {
        let dark = try ThemeFile.load(Fx.path("Themes/dark.yaml"))
        #expect(Theme.builtIn.colours == dark.colours)
        #expect(Theme.builtIn.assumedBackground == dark.assumedBackground && Theme.builtIn.assumedForeground == dark.assumedForeground)
    }

    /// Every shipped persona on every shipped theme, as drawn: the header line, the history
    /// heading, the persona picker's row, each plain and highlighted. Every cell drawn in a
    /// persona's colour must reach 4.5:1 on what it is drawn on, on 256 and on 16 colours.
    @Test func everyPersonaOnEveryThemeReaches45to1() {
        let personas = PersonaLibrary.load(from: Fx.path("Personas")).personas
        #expect(personas.count >= 27)
        var failures: [String] = []
        var lowest256 = (ratio: 21.0, pair: ""), lowest16 = (ratio: 21.0, pair: "")
        for t in Readable.themes {
            for p in personas {
                let drawn = Readable.drawn(t, p, among: personas)
                #expect(Set(drawn.map(\.place)) == Set(Readable.places), "\(p.name) × \(t.name): drawn in \(drawn.map(\.place))")
                for d in drawn {
                    if d.c256 < lowest256.ratio { lowest256 = (d.c256, "\(p.name) × \(t.name), \(d.place)") }
                    if d.c16 < lowest16.ratio { lowest16 = (d.c16, "\(p.name) × \(t.name), \(d.place)") }
                }
                let worst = drawn.min { min($0.c256, $0.c16) < min($1.c256, $1.c16) }
                guard let w = worst else { continue }
                if w.c256 < 4.5 || w.c16 < 4.5 {
                    failures.append("\(p.name) × \(t.name): \(Readable.ratio(w.c256)) (256 colours), \(Readable.ratio(w.c16)) (16) in the \(w.place)")
                }
            }
        }
        print("lowest persona contrast over \(personas.count) personas × \(Readable.themes.count) themes: "
              + "\(Readable.ratio(lowest256.ratio)) on 256 colours (\(lowest256.pair)), \(Readable.ratio(lowest16.ratio)) on 16 (\(lowest16.pair))")
        #expect(failures.isEmpty, Comment(rawValue: "\(failures.count) pairs below 4.5:1\n" + failures.joined(separator: "\n")))
    }

    /// The four pairs a user reported: unreadable with the colour as written, readable as drawn.
    @Test func reportedPairsFailedRawAndPassDrawn() throws {
        let personas = PersonaLibrary.load(from: Fx.path("Personas")).personas
        func theme(_ id: String) throws -> Theme { try #require(Readable.themes.first { $0.id == id && $0.source != "built-in" }) }
        for (name, id, before) in [("李逵", "dark", 1.4), ("诸葛亮", "high-contrast", 3.5), ("RulaiGPT", "light", 1.8)] {
            let t = try theme(id)
            let p = try #require(personas.first { $0.name == name })
            guard case .rgb(let r, let g, let b) = try #require(p.accent.flatMap(Paint.init)) else { Issue.record("\(name): accent is not a colour"); continue }
            // What the terminal was sent before: the accent's nearest xterm colour, as written.
            let raw = t.contrast(Colour(r: r, g: g, b: b), on: t.colour(.background)).c256
            #expect((raw * 10).rounded() / 10 == before, "\(name) × \(id) raw \(Readable.ratio(raw))")
            #expect(raw < 4.5)
            let drawn = Readable.drawn(t, p, among: personas)
            #expect(drawn.count == Readable.places.count)
            for c in drawn { #expect(c.c256 >= 4.5 && c.c16 >= 4.5, "\(name) × \(id), \(c.place): \(Readable.ratio(c.c256)) (256), \(Readable.ratio(c.c16)) (16)") }
        }
        // ink's status line: the model name in primary on the selection. Before: 160 on 237.
        let ink = try theme("ink")
        let before = ink.contrast(Colour(index: 160), on: Colour(index: 237)).c256
        #expect((before * 10).rounded() / 10 == 2.1)
        let s = Readable.state(ink, personas[0], among: personas)
        let buf = view(s)
        let y = buf.rows - 1
        #expect(buf.line(y).contains("glm-demo · int8"))
        let name = (0..<buf.columns).filter { buf[$0, y].style.fg == .role(.primary) && buf[$0, y].text != " " }
        #expect(name.count == "glm-demo·int8".count)                 // the spaces aside
        for x in name {
            let r = ink.contrast(ink.colour(buf[x, y].style.fg), on: ink.colour(buf[x, y].style.bg))
            #expect(r.c256 >= 4.5 && r.c16 >= 4.5, "ink model name: \(Readable.ratio(r.c256)) (256), \(Readable.ratio(r.c16)) (16)")
        }
    }
}

/// Shipped themes and the screens persona colours are drawn on.
enum Readable {
    /// The shipped themes and the built-in one.
    static let themes: [Theme] = ThemeLibrary.load(from: Fx.path("Themes")).themes + [Theme.builtIn]

    static func ratio(_ r: Double) -> String { String(format: "%.2f:1", r) }

    /// `p` chosen on theme `t`, its greeting shown, the model loaded.
    static func state(_ t: Theme, _ p: Persona, among personas: [Persona]) -> State {
        var s = State(size: TerminalSize(rows: 40, columns: 110), personas: personas, persona: p, theme: t, themes: [t], modelName: "test")
        for e in Rules.greetingEvents(p, in: s.conversation, now: 1000) { s.conversation.apply(e) }
        return Fx.run(s, [.tick(1000), .loaded(EngineInfo(name: "glm-demo", precision: "int8", contextLength: 2048, family: "ChatGLM-6B")),
                          .tick(1100)]).0
    }

    static let places = ["header line", "history heading", "history heading, highlighted", "picker row", "picker row, highlighted"]

    /// Where `p`'s colour is drawn on theme `t`, each place with the lowest contrast the terminal
    /// shows there (cells in `p`'s accent on their background; `default` as the theme assumes).
    /// Screens: `p` chosen; its greeting highlighted in the history; the picker on `p`, and on
    /// another persona (so `p`'s row is plain).
    static func drawn(_ t: Theme, _ p: Persona, among personas: [Persona]) -> [(place: String, c256: Double, c16: Double)] {
        guard let paint = p.accent.flatMap(Paint.init) else { return [] }
        let s = state(t, p, among: personas)
        var history = s
        history.focus = .history
        history.selected = 0
        let order = PersonaGroups.filtered(personas, "")
        let at = order.firstIndex { $0.id == p.id } ?? 0
        var picked = s, other = s
        picked.overlay = .personas(PersonaPicker(filter: "", index: at))
        other.overlay = .personas(PersonaPicker(filter: "", index: at == 0 ? 1 : at - 1))
        var worst: [String: (c256: Double, c16: Double)] = [:]
        for screen in [s, history, picked, other] {
            let buf = view(screen)
            for y in 0..<buf.rows {
                // Runs of cells in p's colour: "与 …" is the header line, "▍…" a history heading,
                // anything else a picker row.
                var x = 0
                while x < buf.columns {
                    guard buf[x, y].style.fg == paint else { x += 1; continue }
                    var text = "", r = (c256: 21.0, c16: 21.0)
                    let highlighted = buf[x, y].style.bg == .role(.selection)
                    while x < buf.columns, buf[x, y].style.fg == paint {
                        let cell = buf[x, y]
                        text += cell.text
                        if !cell.text.trimmingCharacters(in: .whitespaces).isEmpty {
                            let c = t.contrast(t.colour(cell.style.fg), on: t.colour(cell.style.bg))
                            r = (min(r.c256, c.c256), min(r.c16, c.c16))
                        }
                        x += 1
                    }
                    let place = (text.hasPrefix("与 ") ? "header line" : text.hasPrefix("▍") ? "history heading" : "picker row")
                        + (highlighted ? ", highlighted" : "")
                    let w = worst[place] ?? (21, 21)
                    worst[place] = (min(w.c256, r.c256), min(w.c16, r.c16))
                }
            }
        }
        return worst.map { ($0.key, $0.value.c256, $0.value.c16) }.sorted { $0.place < $1.place }
    }
}

@Suite struct ShippedPersonaTests {
    @Test func pickerGroupsTheShippedPersonas() {
        let lib = PersonaLibrary.load(from: Fx.path("Personas"))
        #expect(lib.errors.isEmpty)
        let groups = PersonaGroups.filtered(lib.personas, "").map(PersonaGroups.label)
        var order: [String] = []
        for g in groups where order.last != g { order.append(g) }
        #expect(order == ["三国", "西游", "水浒", "红楼", "RulaiGPT", "assistants"])
        #expect(groups.count == lib.personas.count)
        #expect(PersonaGroups.filtered(lib.personas, "rulai").map(\.name) == ["RulaiGPT"])
        #expect(PersonaGroups.filtered(lib.personas, "孔明").map(\.id) == ["sanguo/zhugeliang"])
    }
}

extension Colour {
    func with16(_ n: Int) -> Colour { Colour(c256: c256, c16: n) }
}
