/// ChatGLM-6B's `process_response` (modeling_chatglm.py): strip, replace the `[[训练时间]]`
/// placeholder, and turn ASCII `, ! : ; ?` next to a CJK ideograph (U+4E00–U+9FFF) full width —
/// first every mark after one, then every mark before one, mark by mark, as its `re.sub` calls do.
public enum ChatGLMResponse {
    static let marks: [(Unicode.Scalar, Unicode.Scalar)] = [
        (",", "，"), ("!", "！"), (":", "："), (";", "；"), ("?", "？"),
    ]

    public static func process(_ response: String) -> String {
        var s = response.pythonStripped.replacingOccurrences(of: "[[训练时间]]", with: "2023年")
        for (ascii, full) in marks { s = fixPunctuation(s, ascii, full) }
        return s
    }

    static func isCJK(_ s: Unicode.Scalar) -> Bool { (0x4E00...0x9FFF).contains(s.value) }

    /// `re.sub(r"([\u4e00-\u9fff])X", r"\1Y")` then `re.sub(r"X([\u4e00-\u9fff])", r"Y\1")`.
    /// Each match consumes the ideograph, so a mark between two ideographs changes once either way.
    static func fixPunctuation(_ text: String, _ ascii: Unicode.Scalar, _ full: Unicode.Scalar) -> String {
        var u = Array(text.unicodeScalars)
        var i = 0
        while i + 1 < u.count {   // ideograph then mark
            if isCJK(u[i]) && u[i + 1] == ascii { u[i + 1] = full; i += 2 } else { i += 1 }
        }
        i = 0
        while i + 1 < u.count {   // mark then ideograph
            if u[i] == ascii && isCJK(u[i + 1]) { u[i] = full; i += 2 } else { i += 1 }
        }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: u)
        return String(out)
    }
}
