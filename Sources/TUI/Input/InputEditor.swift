/// A multi-line text being typed, with a cursor between Characters. Editing is by Character;
/// placing the cursor on screen is by display width (`layout`).
public struct InputEditor: Equatable, Sendable {
    public private(set) var text: [Character] = []
    /// 0…text.count.
    public private(set) var cursor = 0

    public init(_ s: String = "") {
        text = Array(s)
        cursor = text.count
    }

    public var string: String { String(text) }
    public var isEmpty: Bool { text.isEmpty }

    public mutating func set(_ s: String) {
        text = Array(s)
        cursor = text.count
    }

    public mutating func insert(_ s: String) {
        let chars = Array(s.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n"))
        text.insert(contentsOf: chars, at: cursor)
        cursor += chars.count
    }

    public mutating func backspace() {
        guard cursor > 0 else { return }
        text.remove(at: cursor - 1)
        cursor -= 1
    }

    public mutating func deleteForward() {
        guard cursor < text.count else { return }
        text.remove(at: cursor)
    }

    public mutating func left() { cursor = max(0, cursor - 1) }
    public mutating func right() { cursor = min(text.count, cursor + 1) }

    /// Start and end of the logical line (between newlines) holding the cursor.
    var lineBounds: (Int, Int) {
        var s = cursor
        while s > 0 && text[s - 1] != "\n" { s -= 1 }
        var e = cursor
        while e < text.count && text[e] != "\n" { e += 1 }
        return (s, e)
    }

    public mutating func home() { cursor = lineBounds.0 }
    public mutating func end() { cursor = lineBounds.1 }

    public var onFirstLine: Bool { !text[..<cursor].contains("\n") }
    public var onLastLine: Bool { !text[cursor...].contains("\n") }

    /// Moves to the line above / below at the same display column (or the line's end).
    public mutating func verticalMove(_ delta: Int) {
        let (s, e) = lineBounds
        let column = DisplayWidth.of(String(text[s..<cursor]))
        var ls: Int, le: Int
        if delta < 0 {
            guard s > 0 else { return }
            le = s - 1
            ls = le
            while ls > 0 && text[ls - 1] != "\n" { ls -= 1 }
        } else {
            guard e < text.count else { return }
            ls = e + 1
            le = ls
            while le < text.count && text[le] != "\n" { le += 1 }
        }
        var i = ls, used = 0
        while i < le {
            let w = DisplayWidth.of(text[i])
            if used + w > column { break }
            used += w
            i += 1
        }
        cursor = i
    }

    /// Deletes from the line's start to the cursor (Ctrl-U).
    public mutating func killToStart() {
        let s = lineBounds.0
        text.removeSubrange(s..<cursor)
        cursor = s
    }

    /// Deletes from the cursor to the line's end (Ctrl-K).
    public mutating func killToEnd() {
        text.removeSubrange(cursor..<lineBounds.1)
    }

    /// Deletes the word before the cursor (Ctrl-W): spaces, then non-spaces. A CJK run has no
    /// spaces, so one character goes at a time there.
    public mutating func deleteWord() {
        var i = cursor
        while i > 0 && text[i - 1] == " " { i -= 1 }
        if i > 0 && DisplayWidth.of(text[i - 1]) == 2 {
            i -= 1
        } else {
            while i > 0 && text[i - 1] != " " && text[i - 1] != "\n" && DisplayWidth.of(text[i - 1]) < 2 { i -= 1 }
        }
        text.removeSubrange(i..<cursor)
        cursor = i
    }

    /// The text wrapped to `width` cells after a `prefix` on the first line (and as much
    /// indent on the others), and where the cursor lands: (row, column) in cells.
    public func layout(width: Int, prefixWidth: Int) -> (lines: [String], cursor: (row: Int, col: Int)) {
        let avail = max(width - prefixWidth, 1)
        var lines: [String] = []
        var cur = ""
        var used = 0
        var row = 0
        var crow = 0, ccol = 0
        for (i, ch) in text.enumerated() {
            if i == cursor { crow = row; ccol = used }
            if ch == "\n" {
                lines.append(cur)
                cur = ""
                used = 0
                row += 1
                continue
            }
            let w = DisplayWidth.of(TextLayout.printable(String(ch)))
            if used + w > avail && used > 0 {
                lines.append(cur)
                cur = ""
                used = 0
                row += 1
                if i == cursor { crow = row; ccol = 0 }
            }
            cur += TextLayout.printable(String(ch))
            used += w
        }
        if cursor == text.count {
            if used >= avail { lines.append(cur); cur = ""; used = 0; row += 1 }
            crow = row
            ccol = used
        }
        lines.append(cur)
        return (lines, (crow, ccol + prefixWidth))
    }
}
