import ArgumentParser
import Chat
import Foundation

/// `yanyi card import FILE… [--as group/id]`: each card is checked (it must make a persona),
/// then copied unchanged into the personas folder, where the picker and `--persona` find it.
struct CardImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Copy character cards into the personas folder (the last line names each persona: imported GROUP/ID).")

    @Argument(help: "Card files: PNG (chara / ccv3 chunks) or JSON (V1, V2, V3).")
    var files: [String]

    @Option(name: .customLong("as"), help: "GROUP/ID for the persona (one file only; default: the card's group or cards/, and its file name).")
    var target: String?

    @OptionGroup var options: PersonasOption

    func validate() throws {
        if target != nil && files.count != 1 { throw ValidationError("--as takes one file") }
    }

    func run() throws {
        let root = options.folder()
        var taken = Set(PersonaLibrary.load(from: root).personas.map(\.id))
        var failed = false
        for f in files {
            do {
                let (p, file) = try CardFiles.importCard(f, into: root, as: target, taken: taken)
                taken.insert(p.id)
                print("\(p.name): \(file)")
                print("imported \(p.id)")
            } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }
}
