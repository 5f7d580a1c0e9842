// Names in error messages come from the file (tensor names, keys, zip entries, globals), so a
// hostile or damaged file could put newlines or megabytes into them. Quote them through here:
// control characters escaped, long names cut, the message stays one readable line.
extension String {
    /// Single-quoted, control characters escaped, at most 120 characters of the name.
    var quoted: String { "'" + printable + "'" }

    /// Control characters escaped, at most 120 characters.
    var printable: String {
        var out = ""
        var n = 0
        for ch in unicodeScalars {
            if n == 120 { out += "…"; break }
            n += 1
            if ch.value < 0x20 || ch.value == 0x7F || (0x80..<0xA0).contains(ch.value) || ch == "\u{2028}" || ch == "\u{2029}" {
                out += ch.escaped(asASCII: true)
            } else {
                out.unicodeScalars.append(ch)
            }
        }
        return out
    }
}
