import Foundation
import Yams
@testable import Chat

// Persona YAML, character cards (PNG and JSON) and the legacy JSONL session import, each through
// the entry point its file reader uses, on bytes instead of a file.

enum FuzzPersonaYAML {
    static func run(_ input: UnsafeRawBufferPointer) {
        // Personas are read as UTF-8 text (a file that is not is refused before parsing).
        guard let text = String(validating: input, as: UTF8.self) else { return }
        // PersonaFile.parse(_:file:id:folder:) with no folder, so that a file naming any group
        // is validated to the end (a folder would refuse all but one group at once).
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let e as YamlError {
            _ = PersonaFile.yamlError(e, file: "fuzz.yaml")
            return
        } catch {
            return
        }
        guard let root else { return }
        _ = try? PersonaFile.parse(root: root, file: "fuzz.yaml", id: "fuzz", folder: nil)
    }
}

enum FuzzCardPNG {
    static func run(_ input: UnsafeRawBufferPointer) {
        let bytes = Array(input)
        guard let card = try? CharacterCard.decode(png: bytes, file: "fuzz.png") else { return }
        FuzzCards.roundTrip(card, image: bytes)
    }
}

enum FuzzCardJSON {
    static func run(_ input: UnsafeRawBufferPointer) {
        guard let card = try? CharacterCard.decode(json: Data(input), file: "fuzz.json") else { return }
        FuzzCards.roundTrip(card, image: nil)
    }
}

enum FuzzCards {
    /// A card that makes a persona is exported again (V2, V3, and a PNG in its own image), as
    /// `yanyi card import` then `export` would.
    static func roundTrip(_ card: CharacterCard, image: [UInt8]?) {
        guard let p = try? card.persona(id: "fuzz", file: "fuzz", group: "cards") else { return }
        _ = CharacterCard(persona: p, spec: .v2).jsonData()
        let v3 = CharacterCard(persona: p, spec: .v3).jsonData()
        guard (try? CharacterCard.decode(json: v3, file: "fuzz (exported)")) != nil else {
            fatalError("an exported card does not read back")
        }
        _ = try? CharacterCard.png(persona: p, image: image, file: "fuzz.png")
    }
}

enum FuzzSessionImport {
    static func run(_ input: UnsafeRawBufferPointer) {
        _ = LegacyImport.plan(Data(input), file: "fuzz.jsonl", fallbackID: "fuzz", fallbackTime: 0)
    }
}
