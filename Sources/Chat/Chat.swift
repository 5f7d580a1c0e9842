// Chat: the seed systems' prompt templates, the token budget over history, personas (YAML),
// character cards (SillyTavern V1/V2/V3, JSON and PNG), and sessions kept as append-only logs.
// Built on Engine (tokenizers count the budget); knows nothing of keys, terminals or colours.
import Engine

/// The engine this chat layer drives; re-exported so higher layers name one module.
public enum ChatLayer {
    public static let engineVersion = Engine.version
}

/// The one error the chat layer throws: the file (or file and field) at fault and what is wrong.
/// Its description is one line, for the CLI and the TUI status line.
public struct ChatError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file at fault as the user gave it; empty when no file is involved.
    public let file: String
    /// Dotted path of the field at fault (`sampling.top_p`, `data.name`); empty when the whole file is.
    public let field: String
    /// What is wrong, in words, without the file or field.
    public let reason: String
    /// 1-based line of the field in the file, when known.
    public let line: Int?

    public init(_ file: String, field: String = "", _ reason: String, line: Int? = nil) {
        self.file = file
        self.field = field
        self.reason = reason
        self.line = line
    }

    public var description: String {
        var where_ = file
        if let line { where_ += where_.isEmpty ? "line \(line)" : ":\(line)" }
        if !field.isEmpty { where_ += where_.isEmpty ? field : ": \(field)" }
        return where_.isEmpty ? reason : "\(where_): \(reason)"
    }
}

extension Unicode.Scalar {
    /// Python's str.isspace for one code point (what str.strip removes).
    var isPythonWhitespace: Bool {
        switch value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            true
        default:
            false
        }
    }
}

extension String {
    /// Python's `str.strip()`.
    var pythonStripped: String {
        let s = unicodeScalars
        guard let first = s.firstIndex(where: { !$0.isPythonWhitespace }),
              let last = s.lastIndex(where: { !$0.isPythonWhitespace }) else { return "" }
        return String(s[first...last])
    }

    /// Single-quoted, control characters escaped, at most 80 characters: names from files in errors.
    var quotedForError: String {
        var out = ""
        for (n, ch) in unicodeScalars.enumerated() {
            if n == 80 { out += "…"; break }
            out += ch.value < 0x20 || ch.value == 0x7F ? ch.escaped(asASCII: true) : String(ch)
        }
        return "'" + out + "'"
    }
}
