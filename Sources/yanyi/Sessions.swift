import ArgumentParser
import Chat
import Foundation

/// `yanyi sessions`: the saved conversations, in one SQLite database (`ls`, `search`, `rename`,
/// `rm`, `export`). The first use imports the JSONL sessions earlier versions wrote.
struct SessionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessions",
        abstract: "List, search, rename, remove or export saved sessions ($XDG_DATA_HOME/yanyi/sessions.sqlite, else ~/.local/share/yanyi/sessions.sqlite).",
        subcommands: [SessionsList.self, SessionsSearch.self, SessionsRename.self, SessionsRemove.self, SessionsExport.self])
}

/// Where the sessions are, shared by the subcommands.
struct SessionsOptions: ParsableArguments {
    @Option(name: .customLong("sessions"), help: ArgumentHelp(
        "Folder holding sessions.sqlite; legacy *.jsonl sessions in it are imported once.", valueName: "DIR"))
    var folder: String?

    /// The store, its notices on standard error; fails when it could only be in memory (a
    /// command would then show or change nothing real).
    func open() -> SessionStore {
        let (database, legacy) = DataFolders.sessionDatabase(ProcessInfo.processInfo.environment, folder: folder)
        let (store, notices) = SessionStore.open(database: database, importingFrom: legacy)
        for n in notices { warn(n) }
        if store.isInMemory { fail("\(database): no usable sessions database (see the warnings above)") }
        return store
    }
}

func warn(_ message: String) {
    FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
}
