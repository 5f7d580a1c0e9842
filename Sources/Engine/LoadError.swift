// The one error every loader throws: a file (or file and tensor/key) and what is wrong with it.
// Its description is one line, suitable for the CLI and the TUI status line.
public struct LoadError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file at fault (path as the user gave it), optionally followed by a tensor or key.
    public let file: String
    /// What is wrong, in words, without the file name.
    public let reason: String

    public init(_ file: String, _ reason: String) {
        self.file = file
        self.reason = reason
    }

    public var description: String { "\(file): \(reason)" }
}

/// `folder/name`, kept relative when the folder was given relative, so errors name files the way
/// the user wrote them.
func joinPath(_ folder: String, _ name: String) -> String {
    folder.hasSuffix("/") ? folder + name : folder + "/" + name
}
