import ArgumentParser
import Chat
import Foundation

/// `yanyi card export ID --format png|json --out FILE`: a persona as a V2+V3 PNG or V3 JSON card.
/// A persona imported from a card keeps every field of it (unknown ones and extensions too).
struct CardExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a persona as a character card (PNG with chara + ccv3 chunks, or V3 JSON).")

    @Argument(help: "Persona id, GROUP/ID (e.g. sanguo/liubei).")
    var id: String

    @Option(help: "png or json.")
    var format: String = "png"

    @Option(help: "The file to write.")
    var out: String

    @OptionGroup var options: PersonasOption

    func validate() throws {
        if format != "png" && format != "json" { throw ValidationError("--format must be png or json (got '\(format)')") }
    }

    func run() throws {
        let root = options.folder()
        let lib = PersonaLibrary.load(from: root)
        guard let p = lib.persona(id) else { fail("no persona '\(id)' in \(root)") }
        do {
            try CardFiles.export(p, format: format, to: out)
        } catch {
            fail(error.description)
        }
        print("exported \(p.id) to \(out)")
    }
}
