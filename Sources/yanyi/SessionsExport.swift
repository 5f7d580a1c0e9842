import ArgumentParser
import Chat
import Foundation

/// `yanyi sessions export ID --format markdown|jsonl|sillytavern --out FILE`: the shown path of
/// a session as a transcript (persona ids become their names when the Personas folder is found).
struct SessionsExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a session's shown messages as Markdown, JSONL or a SillyTavern chat file.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case markdown, jsonl, sillytavern
    }

    @OptionGroup var where_: SessionsOptions

    @Argument(help: "The session's id (yanyi sessions ls lists them).")
    var id: String

    @Option(help: "markdown, jsonl or sillytavern (SillyTavern's chat .jsonl).")
    var format: Format = .markdown

    @Option(help: ArgumentHelp("The file to write.", valueName: "FILE"))
    var out: String

    @Option(help: ArgumentHelp("Personas folder, for display names (default: $YANYI_PERSONAS, else Personas/ beside the executable).", valueName: "DIR"))
    var personas: String?

    @Option(help: "How the user is named in the transcript.")
    var user = "你"

    func run() throws {
        let store = where_.open()
        do {
            let (c, warnings) = try store.read(id)
            for w in warnings { warn(w) }
            var names: [String: String] = [:]
            let folder = personas ?? ProcessInfo.processInfo.environment["YANYI_PERSONAS"] ?? DataFolders.find("Personas")
            for p in folder.map({ PersonaLibrary.load(from: $0).personas }) ?? [] { names[p.id] = p.name }
            let text: String
            switch format {
            case .markdown: text = TranscriptExport.markdown(c, names: names, userName: user)
            case .jsonl: text = TranscriptExport.jsonl(c)
            case .sillytavern: text = TranscriptExport.sillyTavern(c, names: names, userName: user)
            }
            try TranscriptExport.write(text, to: out)
            print("wrote \(out) (\(c.path.count) messages, \(format.rawValue))")
        } catch {
            fail(error.description)
        }
    }
}
