import ArgumentParser
import Chat

/// `yanyi sessions rm ID…`: deletes sessions with every message, alternative and earlier text.
struct SessionsRemove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete sessions (all their messages).")

    @OptionGroup var where_: SessionsOptions

    @Argument(help: "The sessions' ids (yanyi sessions ls lists them).")
    var ids: [String]

    func validate() throws {
        if ids.isEmpty { throw ValidationError("give the id of a session to delete") }
    }

    func run() throws {
        let store = where_.open()
        for id in ids {
            do {
                try store.delete(id)
                print("removed \(id)")
            } catch {
                fail(error.description)
            }
        }
    }
}
