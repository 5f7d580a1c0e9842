import ArgumentParser
import Chat
import Foundation

/// `yanyi card`: SillyTavern character cards in and out of the personas folder.
struct CardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "card",
        abstract: "Import SillyTavern character cards (PNG or JSON, V1–V3) as personas, or export a persona as a card.",
        subcommands: [CardImport.self, CardExport.self])
}

/// The personas folder, shared by the subcommands.
struct PersonasOption: ParsableArguments {
    @Option(help: "Personas folder (default $YANYI_PERSONAS, else Personas/ beside the executable or in the package).")
    var personas: String?

    func folder() -> String {
        guard let dir = personas ?? ProcessInfo.processInfo.environment["YANYI_PERSONAS"] ?? DataFolders.find("Personas") else {
            fail("Personas folder not found (give --personas DIR)")
        }
        return dir
    }
}
