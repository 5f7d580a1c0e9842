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
        #expect(ink.colour(.primary) == Colour(c256: 160, c16: 1))
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
        #expect(error("colours: {}") == "Themes/bad.yaml: colours: unknown key; known keys: name, roles")
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
