// The only file that imports ncurses. Every curses call happens on the thread that created it.
import CNcursesw

public final class NcursesTerminal: Terminal {
    public init() {}

    /// Size of the terminal as curses reports it once initialised; (0, 0) before.
    public var size: TerminalSize {
        TerminalSize(rows: Int(yy_lines()), columns: Int(yy_cols()))
    }
}
