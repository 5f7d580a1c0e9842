import Foundation
import Yams
@testable import Chat

// A persona YAML file: Yams, then PersonaFile's validation.
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
