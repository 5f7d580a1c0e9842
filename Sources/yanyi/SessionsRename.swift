import ArgumentParser
import Chat

/// `yanyi sessions rename ID TITLE`.
struct SessionsRename: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rename", abstract: "Give a session a new title.")

    @OptionGroup var where_: SessionsOptions

    @Argument(help: "The session's id (yanyi sessions ls lists them).")
    var id: String

    @Argument(help: "The new title.")
    var title: String

    func run() throws {
        do {
            try where_.open().rename(id, to: title)
            print("\(id): \(title)")
        } catch {
            fail(error.description)
        }
    }
}
