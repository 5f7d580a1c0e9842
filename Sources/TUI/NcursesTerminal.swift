// The only file that imports ncurses. Every curses call happens on the thread that created it
// (ncurses is not thread-safe); the runtime's loop is that thread.
import CNcursesw
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class NcursesTerminal: Terminal {
    private var screen: OpaquePointer?
    private var previous: CellBuffer?
    private var previousTheme: Theme?
    /// (foreground, background) colour numbers → pair number.
    private var pairs: [PairKey: Int16] = [:]
    private var colours = 0
    private var maxPairs = 0
    private let decoder: KeyDecoder

    private struct PairKey: Hashable { var fg: Int; var bg: Int }

    public init() {
        decoder = KeyDecoder(codes: .init(up: KEY_UP, down: KEY_DOWN, left: KEY_LEFT, right: KEY_RIGHT, home: KEY_HOME,
                                          end: KEY_END, pageUp: KEY_PPAGE, pageDown: KEY_NPAGE, backspace: KEY_BACKSPACE,
                                          delete: KEY_DC, enter: KEY_ENTER, backTab: KEY_BTAB, resize: KEY_RESIZE, f0: KEY_F0))
    }

    public var size: TerminalSize {
        screen == nil ? TerminalSize(rows: 0, columns: 0) : TerminalSize(rows: Int(yy_lines()), columns: Int(yy_cols()))
    }

    public func start() throws(TerminalError) {
        setlocale(LC_ALL, "")
        guard isatty(0) != 0, isatty(1) != 0 else { throw TerminalError("standard input and output must be a terminal") }
        // newterm, not initscr: initscr exits the process when TERM is unknown.
        guard let out = fdopen(1, "w"), let inp = fdopen(0, "r"), let scr = newterm(nil, out, inp) else {
            throw TerminalError("cannot start the terminal (TERM=\(ProcessInfo.processInfo.environment["TERM"] ?? "unset"))")
        }
        screen = scr
        raw()                      // Ctrl-C, Ctrl-S, Ctrl-Q … arrive as keys
        noecho()
        nonl()                     // Enter is CR (13), Ctrl-J is LF (10)
        keypad(yy_stdscr(), true)
        nodelay(yy_stdscr(), true) // readKeys polls first, then drains
        set_escdelay(25)
        if has_colors() {
            start_color()
            use_default_colors()
            colours = Int(yy_colors())
            maxPairs = min(Int(yy_color_pairs()), Int(Int16.max))
        }
        for extra in KeyDecoder.Extra.allCases { define_key(extra.sequence, extra.rawValue) }
        FileHandle.standardOutput.write(Data("\u{1B}[?2004h".utf8))   // bracketed paste on
    }

    public func stop() {
        guard screen != nil else { return }
        FileHandle.standardOutput.write(Data("\u{1B}[?2004l".utf8))
        endwin()
        screen = nil
    }

    public func readKeys(timeout: Double, wakeFD: Int32) -> [Key] {
        var fds = [pollfd(fd: 0, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        let n = poll(&fds, wakeFD >= 0 ? 2 : 1, Int32(max(timeout, 0) * 1000))
        if wakeFD >= 0 && fds[1].revents & Int16(POLLIN) != 0 {
            var sink = [UInt8](repeating: 0, count: 256)
            _ = read(wakeFD, &sink, sink.count)
        }
        // Also after EINTR: a SIGWINCH interrupts poll and get_wch then reports KEY_RESIZE.
        guard n != 0 || errno == EINTR else { return [] }
        var raw: [KeyDecoder.Raw] = []
        var ch: wint_t = 0
        while raw.count < 4096 {
            let r = wget_wch(yy_stdscr(), &ch)
            if r == ERR { break }
            raw.append(r == KEY_CODE_YES ? .keyCode(Int32(ch)) : .char(UInt32(ch)))
        }
        return decoder.decode(raw)
    }

    public func present(_ buffer: CellBuffer, theme: Theme) {
        guard screen != nil else { return }
        var full = previous == nil || previous!.rows != buffer.rows || previous!.columns != buffer.columns
        if previousTheme != theme {
            pairs.removeAll()
            full = true
            previousTheme = theme
            // The background role fills the whole screen, even outside what is drawn.
            bkgdset(yy_color_pair(pair(theme.colour(.foreground), theme.colour(.background))))
        }
        if full { erase() }
        let lines = Int(yy_lines()), cols = Int(yy_cols())
        for (x, y) in buffer.changes(from: full ? nil : previous) where y < lines && x < cols {
            let cell = buffer[x, y]
            guard cell.width > 0 else { continue }
            draw(cell, x: x, y: y, theme: theme, limit: cols)
        }
        if let c = buffer.cursor, c.y < lines, c.x < cols {
            curs_set(1)
            move(Int32(c.y), Int32(c.x))
        } else {
            curs_set(0)
        }
        refresh()
        previous = buffer
    }

    /// One cell: the grapheme (base + up to four combining marks), attributes and colour pair.
    private func draw(_ cell: Cell, x: Int, y: Int, theme: Theme, limit: Int) {
        var scalars = cell.text.unicodeScalars.prefix(5).map { wchar_t(bitPattern: $0.value) }
        // Where the C library's width disagrees with ours, draw something that takes our width,
        // so the columns after it stay where the buffer put them.
        let libc = Int(yy_wcwidth(scalars.first ?? 32))
        var padAfter = false
        switch (Int(cell.width), libc) {
        case (1, 1), (2, 2): break
        case (2, 1): padAfter = true
        case (2, _): scalars = [0x3F]; padAfter = true      // '?' and a space
        default: scalars = [0x3F]
        }
        scalars.append(0)
        var attrs = attr_t(0)
        if cell.style.bold { attrs |= yy_a_bold() }
        if cell.style.reverse { attrs |= yy_a_reverse() }
        if cell.style.underline { attrs |= yy_a_underline() }
        let p = pair(theme.colour(cell.style.fg), theme.colour(cell.style.bg))
        var cc = cchar_t()
        setcchar(&cc, scalars, attrs, p, nil)
        mvadd_wch(Int32(y), Int32(x), &cc)
        if padAfter && x + 1 < limit {
            var space = cchar_t()
            setcchar(&space, [32, 0], attrs, p, nil)
            mvadd_wch(Int32(y), Int32(x + 1), &space)
        }
    }

    /// The colour pair for a foreground and background, made on first use. Without colours, 0.
    private func pair(_ fg: Colour, _ bg: Colour) -> Int16 {
        guard colours >= 8 else { return 0 }
        func number(_ c: Colour) -> Int {
            if colours >= 256 { return c.c256 ?? -1 }
            guard let n = c.c16 else { return -1 }
            return colours >= 16 ? n : n % 8
        }
        let key = PairKey(fg: number(fg), bg: number(bg))
        if let p = pairs[key] { return p }
        guard pairs.count + 1 < maxPairs else { return 0 }
        let p = Int16(pairs.count + 1)
        init_pair(p, Int16(key.fg), Int16(key.bg))
        pairs[key] = p
        return p
    }
}
