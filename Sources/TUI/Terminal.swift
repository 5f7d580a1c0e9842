// The terminal as the TUI sees it: a size, keys in, frames out. NcursesTerminal.swift is the
// only file that talks to ncurses; tests use a scripted terminal.
public struct TerminalSize: Equatable, Sendable {
    public var rows: Int
    public var columns: Int
    public init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
    }
}

public protocol Terminal: AnyObject {
    var size: TerminalSize { get }
    /// Takes over the screen; a one-line error when it cannot (not a terminal, unknown TERM).
    func start() throws(TerminalError)
    /// Gives the screen back as it was.
    func stop()
    /// Waits up to `timeout` seconds for keys, returning early when `wakeFD` becomes readable
    /// (the runtime's event pipe; the terminal drains it). Returns every key read, `.resize`
    /// included.
    func readKeys(timeout: Double, wakeFD: Int32) -> [Key]
    /// Shows `buffer` with `theme`'s colours, sending only what changed since the last frame.
    func present(_ buffer: CellBuffer, theme: Theme)
}

public struct TerminalError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
