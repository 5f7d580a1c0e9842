// The terminal as the TUI sees it: a size and a way to present a frame and read keys.
// NcursesTerminal.swift is the only file that talks to ncurses.
public struct TerminalSize: Equatable, Sendable {
    public var rows: Int
    public var columns: Int
    public init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
    }
}

public protocol Terminal {
    var size: TerminalSize { get }
}
