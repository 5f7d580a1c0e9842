// What widgets draw into: a grid of cells, each one grapheme cluster and a style naming theme
// roles. The terminal diffs two buffers and sends only what changed; tests read buffers back as
// lines of text.

/// A colour as widgets name it: a theme role, or an exact colour (a persona's accent).
public enum Paint: Hashable, Sendable {
    case role(Role)
    case rgb(UInt8, UInt8, UInt8)

    /// `#rrggbb` or a role name; nil for anything else.
    public init?(_ text: String) {
        if let r = Role(rawValue: text) { self = .role(r); return }
        guard let rgb = Colour.parseHex(text) else { return nil }
        self = .rgb(rgb.0, rgb.1, rgb.2)
    }
}

public struct Style: Hashable, Sendable {
    public var fg: Paint
    public var bg: Paint
    public var bold: Bool
    public var reverse: Bool
    public var underline: Bool

    public init(_ fg: Role = .foreground, bg: Role = .background, bold: Bool = false, reverse: Bool = false, underline: Bool = false) {
        self.init(paint: .role(fg), bg: .role(bg), bold: bold, reverse: reverse, underline: underline)
    }

    public init(paint fg: Paint, bg: Paint = .role(.background), bold: Bool = false, reverse: Bool = false, underline: Bool = false) {
        self.fg = fg
        self.bg = bg
        self.bold = bold
        self.reverse = reverse
        self.underline = underline
    }

    public static let plain = Style()

    public func on(_ bg: Role) -> Style { var s = self; s.bg = .role(bg); return s }
    public var emphasized: Style { var s = self; s.bold = true; return s }
}

public struct Cell: Equatable, Sendable {
    /// One grapheme cluster; "" in the cell after a two-cell character.
    public var text: String
    public var style: Style
    /// 1 or 2 cells; 0 for the continuation of a wide character.
    public var width: UInt8

    public static let blank = Cell(text: " ", style: .plain, width: 1)
}

public struct Rect: Equatable, Sendable {
    public var x, y, width, height: Int

    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = max(width, 0)
        self.height = max(height, 0)
    }

    public var right: Int { x + width }
    public var bottom: Int { y + height }

    /// The rectangle less `n` cells on every side.
    public func inset(_ n: Int) -> Rect { Rect(x: x + n, y: y + n, width: width - 2 * n, height: height - 2 * n) }
}

public struct CellBuffer: Equatable, Sendable {
    public let rows: Int
    public let columns: Int
    public private(set) var cells: [Cell]
    /// Where the terminal cursor goes (the input line's caret); nil hides it.
    public var cursor: (x: Int, y: Int)? {
        get { cursorX.map { ($0, cursorY) } }
        set { cursorX = newValue?.x; cursorY = newValue?.y ?? 0 }
    }
    private var cursorX: Int?
    private var cursorY = 0

    public init(rows: Int, columns: Int, style: Style = .plain) {
        self.rows = max(rows, 0)
        self.columns = max(columns, 0)
        cells = Array(repeating: Cell(text: " ", style: style, width: 1), count: self.rows * self.columns)
    }

    public var bounds: Rect { Rect(x: 0, y: 0, width: columns, height: rows) }

    public subscript(x: Int, y: Int) -> Cell {
        get { cells[y * columns + x] }
        set { cells[y * columns + x] = newValue }
    }

    /// Fills a rectangle with blanks in `style`.
    public mutating func fill(_ r: Rect, style: Style, with ch: Character = " ") {
        let x0 = max(r.x, 0), x1 = min(r.right, columns), y0 = max(r.y, 0), y1 = min(r.bottom, rows)
        guard x0 < x1 else { return }
        for y in y0..<max(y0, y1) {
            for x in x0..<x1 { put(ch, x: x, y: y, style: style) }
        }
    }

    /// Writes one character at (x, y); a wide one that does not fit before `limit` becomes a space.
    @discardableResult
    public mutating func put(_ ch: Character, x: Int, y: Int, style: Style, limit: Int? = nil) -> Int {
        let end = min(limit ?? columns, columns)
        guard y >= 0, y < rows, x >= 0, x < end else { return 0 }
        var w = DisplayWidth.of(ch)
        var text = String(ch)
        if w == 0 {
            // A lone combining mark or format character: joins the character before it.
            if x > 0, self[x - 1, y].width > 0 {
                self[x - 1, y].text.append(ch)
            }
            return 0
        }
        if w == 2 && x + 1 >= end { text = " "; w = 1 }
        clearHalves(x: x, y: y, width: w)
        self[x, y] = Cell(text: text, style: style, width: UInt8(w))
        if w == 2 { self[x + 1, y] = Cell(text: "", style: style, width: 0) }
        return w
    }

    /// Writes `text` on one line from (x, y), stopping at `limit` (default: the right edge);
    /// returns the cells used. Newlines and control characters must be gone already.
    @discardableResult
    public mutating func put(_ text: some StringProtocol, x: Int, y: Int, style: Style, limit: Int? = nil) -> Int {
        let end = min(limit ?? columns, columns)
        var cx = x
        for ch in text {
            if cx >= end { break }
            let w = DisplayWidth.of(ch)
            if w == 2 && cx + 1 >= end {
                put(" ", x: cx, y: y, style: style, limit: end)
                cx += 1
                break
            }
            cx += put(ch, x: cx, y: y, style: style, limit: end)
        }
        return cx - x
    }

    /// Keeps the grid consistent when a write lands on half of a wide character.
    private mutating func clearHalves(x: Int, y: Int, width: Int) {
        if self[x, y].width == 0 && x > 0 { self[x - 1, y] = Cell(text: " ", style: self[x - 1, y].style, width: 1) }
        let after = x + width
        if after < columns && self[after, y].width == 0 {
            self[after, y] = Cell(text: " ", style: self[after, y].style, width: 1)
        }
        if width == 2 && self[x + 1, y].width == 2 && x + 2 < columns {
            self[x + 2, y] = Cell(text: " ", style: self[x + 2, y].style, width: 1)
        }
    }

    /// Row `y` as text: each character once, trailing spaces removed.
    public func line(_ y: Int) -> String {
        var s = ""
        for x in 0..<columns where self[x, y].width > 0 { s += self[x, y].text }
        return s.trimmingTrailingSpaces
    }

    /// Every row as text (see `line`).
    public var lines: [String] { (0..<rows).map(line) }

    /// The whole screen, rows joined by newlines, trailing empty rows kept (tests compare it).
    public var text: String { lines.joined(separator: "\n") }

    /// Cells whose text or style differ from `old` (every cell when the sizes differ).
    public func changes(from old: CellBuffer?) -> [(x: Int, y: Int)] {
        var out: [(x: Int, y: Int)] = []
        let same = old.map { $0.rows == rows && $0.columns == columns } ?? false
        for y in 0..<rows {
            for x in 0..<columns where !same || old![x, y] != self[x, y] { out.append((x, y)) }
        }
        return out
    }

    public static func == (a: CellBuffer, b: CellBuffer) -> Bool {
        a.rows == b.rows && a.columns == b.columns && a.cells == b.cells && a.cursorX == b.cursorX && a.cursorY == b.cursorY
    }
}
