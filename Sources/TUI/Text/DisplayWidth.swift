// Display width: how many terminal cells text takes. CJK ideographs and fullwidth forms take
// two, combining marks none, emoji two — so wrapping and cursor placement count cells, never
// Characters. The rules are wcwidth's (the PyPI package, which xterm-like terminals follow);
// the ranges are in WidthTable.swift, generated from it.

public enum DisplayWidth {
    /// Cells one code point takes: 0 (combining, format, NUL), 1 or 2. Control characters
    /// count 0 here (wcwidth says -1): the TUI never draws them raw.
    public static func of(_ scalar: Unicode.Scalar) -> Int {
        let v = scalar.value
        if v >= 0x20 && v < 0x7F { return 1 }
        if v < 0x20 || (v >= 0x7F && v < 0xA0) { return 0 }
        if contains(zeroWidthRanges, v) { return 0 }
        return contains(wideRanges, v) ? 2 : 1
    }

    /// Cells one grapheme cluster takes, as wcwidth's wcswidth measures it: a zero-width joiner
    /// hides the scalar after it (an emoji ZWJ sequence is as wide as its first emoji), and
    /// VS16 widens the narrow emoji-capable character before it.
    public static func of(_ ch: Character) -> Int {
        let scalars = ch.unicodeScalars
        if scalars.count == 1, let s = scalars.first { return of(s) }
        var width = 0
        var last: Unicode.Scalar?
        var skip = false
        for s in scalars {
            if skip { skip = false; continue }
            if s.value == 0x200D { skip = true; continue }
            if s.value == 0xFE0F, let l = last {
                if contains(vs16WideRanges, l.value) { width += 1 }
                last = nil
                continue
            }
            let w = of(s)
            if w > 0 { last = s }
            width += w
        }
        return width
    }

    /// Cells a string takes on one line.
    public static func of(_ text: some StringProtocol) -> Int {
        var n = 0
        for ch in text { n += of(ch) }
        return n
    }

    /// Binary search in sorted closed ranges.
    static func contains(_ table: [(UInt32, UInt32)], _ v: UInt32) -> Bool {
        guard let first = table.first, let last = table.last, v >= first.0, v <= last.1 else { return false }
        var lo = 0, hi = table.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if v > table[mid].1 { lo = mid + 1 } else if v < table[mid].0 { hi = mid - 1 } else { return true }
        }
        return false
    }
}

extension StringProtocol {
    /// Terminal cells this text takes (see DisplayWidth).
    public var displayWidth: Int { DisplayWidth.of(self) }
}

/// Wrapping and clipping by display width.
public enum TextLayout {
    /// One screen line of wrapped text: its text, and the index in the source where it starts
    /// (so a cursor can be found on it).
    public struct Line: Equatable, Sendable {
        public var text: String
        public var start: String.Index
    }

    /// Splits `text` into lines at most `width` cells wide: at newlines, else at the last space
    /// that fits (Latin words stay whole), else anywhere (CJK has no spaces: any character
    /// boundary is a break). A character wider than `width` gets a line of its own.
    public static func wrap(_ text: String, width: Int) -> [Line] {
        let width = max(width, 1)
        var lines: [Line] = []
        var lineStart = text.startIndex
        var i = text.startIndex
        var used = 0
        var lastSpace: String.Index?      // index just after the last space on this line
        while i < text.endIndex {
            let ch = text[i]
            if ch == "\n" {
                lines.append(Line(text: String(text[lineStart..<i]), start: lineStart))
                i = text.index(after: i)
                lineStart = i
                used = 0
                lastSpace = nil
                continue
            }
            let w = DisplayWidth.of(ch)
            if used + w > width && i > lineStart {
                // Break: after the last space if there is one on this line and it is not at the start.
                if ch != " ", let s = lastSpace, s > lineStart, s < i {
                    lines.append(Line(text: String(text[lineStart..<s]).trimmingTrailingSpaces, start: lineStart))
                    lineStart = s
                    used = DisplayWidth.of(text[s..<i])
                } else {
                    // Closing punctuation may not start a line (。，」…): the character before it
                    // moves down with it.
                    var cut = i
                    while noLineStart.contains(text[cut]), let before = text.index(cut, offsetBy: -1, limitedBy: lineStart), before > lineStart {
                        cut = before
                    }
                    lines.append(Line(text: String(text[lineStart..<cut]).trimmingTrailingSpaces, start: lineStart))
                    lineStart = cut
                    used = DisplayWidth.of(text[cut..<i])
                    // Spaces that caused the break are swallowed at the start of the next line.
                    if ch == " " {
                        i = text.index(after: i)
                        lineStart = i
                        lastSpace = nil
                        continue
                    }
                }
                lastSpace = nil
            }
            used += w
            i = text.index(after: i)
            if ch == " " { lastSpace = i }
        }
        lines.append(Line(text: String(text[lineStart..<text.endIndex]), start: lineStart))
        return lines
    }

    /// Characters that may not begin a line in CJK text (a light form of kinsoku shori).
    static let noLineStart: Set<Character> = ["，", "。", "、", "；", "：", "！", "？", "”", "’", "）", "》", "」", "』", "】", "…", ",", ".", ";", ":", "!", "?", ")"]

    /// The longest prefix of `text` that fits in `width` cells.
    public static func clip(_ text: some StringProtocol, width: Int) -> String {
        var used = 0
        var out = ""
        for ch in text {
            let w = DisplayWidth.of(ch)
            if used + w > width { break }
            used += w
            out.append(ch)
        }
        return out
    }

    /// `text` clipped to `width` cells with "…" when cut, padded with spaces to exactly `width`.
    public static func fit(_ text: some StringProtocol, width: Int) -> String {
        guard width > 0 else { return "" }
        let w = DisplayWidth.of(text)
        if w <= width { return String(text) + String(repeating: " ", count: width - w) }
        let cut = clip(text, width: width - 1) + "…"
        return cut + String(repeating: " ", count: width - DisplayWidth.of(cut))
    }

    /// Control characters shown as visible text: tab as spaces, others as U+FFFD (never sent raw).
    public static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" || $0.value == 0x7F }) else { return text }
        var out = ""
        for s in text.unicodeScalars {
            if s == "\t" { out += "    " } else if s != "\n" && (s.value < 0x20 || s.value == 0x7F) { out += "\u{FFFD}" } else { out.unicodeScalars.append(s) }
        }
        return out
    }
}

extension String {
    var trimmingTrailingSpaces: String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
