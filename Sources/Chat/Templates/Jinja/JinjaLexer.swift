// The lexer: template source -> text and tag tokens, with jinja2's whitespace rules as
// transformers configures them (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False):
//   * `{%-`/`{{-`/`{#-` strip all whitespace before the tag, `-%}`/`-}}`/`-#}` all after it;
//   * trim_blocks: a block or comment tag eats the one newline right after it (`+%}` keeps it);
//   * lstrip_blocks: spaces and tabs from the start of a line up to a block or comment tag go
//     (`{%+` keeps them); `{{` is never affected;
//   * `\r\n` and `\r` read as `\n`, and one newline at the very end of the template is dropped.

struct JinjaToken: Equatable {
    enum Kind: Equatable {
        case text(String)
        case variableBegin, variableEnd, blockBegin, blockEnd
        case name(String)
        case string(String)
        case int(Int)
        case double(Double)
        case op(String)
        case eof
    }
    var kind: Kind
    var line: Int
}

struct JinjaLexer {
    static let maxSourceScalars = 1_000_000

    private let s: [Unicode.Scalar]
    private var i = 0
    private var line = 1
    private var tokens: [JinjaToken] = []

    static func tokenize(_ source: String) throws -> [JinjaToken] {
        var lx = JinjaLexer(source)
        try lx.run()
        return lx.tokens
    }

    private init(_ source: String) {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(source.unicodeScalars.count)
        var it = source.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = it.next()
        while let c = pending {
            pending = it.next()
            if c == "\r" {
                out.append("\n")
                if pending == "\n" { pending = it.next() }
            } else {
                out.append(c)
            }
        }
        if out.last == "\n" { out.removeLast() }
        s = out
    }

    private func at(_ k: Int) -> Unicode.Scalar? { k < s.count ? s[k] : nil }

    private func startsWith(_ text: String, at k: Int) -> Bool {
        var j = k
        for u in text.unicodeScalars {
            guard j < s.count, s[j] == u else { return false }
            j += 1
        }
        return true
    }

    private func error(_ message: String, _ l: Int? = nil) -> JinjaError { JinjaError(.syntax, message, line: l ?? line) }

    private mutating func advance(to k: Int) {
        while i < k {
            if s[i] == "\n" { line += 1 }
            i += 1
        }
    }

    private mutating func run() throws {
        guard s.count <= Self.maxSourceScalars else { throw error("template is too long", 1) }
        var lineStarting = true
        while i < s.count {
            // next tag opener
            var k = i
            var opener: Unicode.Scalar?
            while k + 1 < s.count {
                if s[k] == "{", s[k + 1] == "{" || s[k + 1] == "%" || s[k + 1] == "#" { opener = s[k + 1]; break }
                k += 1
            }
            guard let kind = opener else {
                emitText(String(String.UnicodeScalarView(s[i...])))
                advance(to: s.count)
                break
            }
            var text = String(String.UnicodeScalarView(s[i..<k]))
            let sign = at(k + 2)
            if sign == "-" {
                text = JinjaBuiltins.pyStrip(text, left: false, right: true)
            } else if sign != "+", kind != "{" {
                // lstrip_blocks: only whitespace between the line start and the tag
                let scalars = Array(text.unicodeScalars)
                let lpos = (scalars.lastIndex(of: "\n").map { $0 + 1 }) ?? 0
                if lpos > 0 || lineStarting, lpos < scalars.count,
                   scalars[lpos...].allSatisfy(\.isPythonWhitespace) {
                    text = String(String.UnicodeScalarView(scalars[..<lpos]))
                }
            }
            emitText(text)
            advance(to: k)
            let tagLine = line
            advance(to: k + 2 + (sign == "-" || sign == "+" ? 1 : 0))
            switch kind {
            case "#":
                var j = i
                while j + 1 < s.count, !(s[j] == "#" && s[j + 1] == "}") { j += 1 }
                guard j + 1 < s.count else { throw error("missing end of comment tag", tagLine) }
                let strip = j > i && s[j - 1] == "-"
                advance(to: j + 2)
                lineStarting = closeTag(strip: strip, keep: j > i && s[j - 1] == "+")
            case "%":
                if let starting = try rawBlock() { lineStarting = starting; continue }
                tokens.append(JinjaToken(kind: .blockBegin, line: tagLine))
                let (strip, keep) = try tagTokens(closer: "%")
                tokens.append(JinjaToken(kind: .blockEnd, line: line))
                lineStarting = closeTag(strip: strip, keep: keep)
            default:
                tokens.append(JinjaToken(kind: .variableBegin, line: tagLine))
                let (strip, _) = try tagTokens(closer: "}")
                tokens.append(JinjaToken(kind: .variableEnd, line: line))
                lineStarting = strip ? skipWhitespace() : false
            }
        }
        tokens.append(JinjaToken(kind: .eof, line: line))
    }

    private mutating func emitText(_ t: String) {
        if !t.isEmpty { tokens.append(JinjaToken(kind: .text(t), line: line)) }
    }

    /// After a block or comment tag: `-` strips all whitespace, otherwise trim_blocks eats one
    /// newline unless `+`. Returns whether the next text starts a line.
    private mutating func closeTag(strip: Bool, keep: Bool) -> Bool {
        if strip { return skipWhitespace() }
        if !keep, at(i) == "\n" { advance(to: i + 1); return true }
        return false
    }

    private mutating func skipWhitespace() -> Bool {
        var k = i
        while k < s.count, s[k].isPythonWhitespace { k += 1 }
        let newline = k > i && s[k - 1] == "\n"
        advance(to: k)
        return newline
    }

    /// `{% raw %}…{% endraw %}`: the text between is output as written. Nil when the tag is not
    /// `raw`; else whether the text after it starts a line.
    private mutating func rawBlock() throws -> Bool? {
        var k = i
        while k < s.count, s[k].isPythonWhitespace { k += 1 }
        guard startsWith("raw", at: k) else { return nil }
        k += 3
        while k < s.count, s[k].isPythonWhitespace { k += 1 }
        var strip = false
        if at(k) == "-" { strip = true; k += 1 }
        guard startsWith("%}", at: k) else { return nil }
        let startLine = line
        advance(to: k + 2)
        if strip { _ = skipWhitespace() }   // trim_blocks does not act on `{% raw %}`, only on its end
        var j = i
        while j < s.count {
            if startsWith("{%", at: j) {
                var m = j + 2
                let stripBefore = at(m) == "-"
                if stripBefore || at(m) == "+" { m += 1 }
                while m < s.count, s[m].isPythonWhitespace { m += 1 }
                if startsWith("endraw", at: m) {
                    m += 6
                    while m < s.count, s[m].isPythonWhitespace { m += 1 }
                    let stripAfter = at(m) == "-"
                    if stripAfter { m += 1 }
                    guard startsWith("%}", at: m) else { throw error("expected '%}' after endraw") }
                    var text = String(String.UnicodeScalarView(s[i..<j]))
                    if stripBefore { text = JinjaBuiltins.pyStrip(text, left: false, right: true) }
                    emitText(text)
                    advance(to: m + 2)
                    if stripAfter { return skipWhitespace() }
                    if at(i) == "\n" { advance(to: i + 1); return true }
                    return false
                }
            }
            j += 1
        }
        throw error("missing endraw for the raw block", startLine)
    }

    /// Tokens of one tag up to its closer (`%}` or `}}`). Returns (`-` before the closer, `+` before it).
    private mutating func tagTokens(closer: Unicode.Scalar) throws -> (Bool, Bool) {
        let startLine = line
        var depth = 0
        while true {
            while i < s.count, s[i].isPythonWhitespace { advance(to: i + 1) }
            guard let c = at(i) else {
                throw error(closer == "%" ? "missing end of block tag ('%}')" : "missing end of variable tag ('}}')", startLine)
            }
            if depth == 0 {
                if c == "-", at(i + 1) == closer, at(i + 2) == "}" { advance(to: i + 3); return (true, false) }
                if c == "+", closer == "%", at(i + 1) == "%", at(i + 2) == "}" { advance(to: i + 3); return (false, true) }
                if c == closer, at(i + 1) == "}" { advance(to: i + 2); return (false, false) }
            }
            let l = line
            if c == "_" || c.properties.isAlphabetic {
                var k = i
                while k < s.count, s[k] == "_" || s[k].properties.isAlphabetic || s[k].properties.numericType != nil { k += 1 }
                tokens.append(JinjaToken(kind: .name(String(String.UnicodeScalarView(s[i..<k]))), line: l))
                advance(to: k)
            } else if c == "'" || c == "\"" {
                tokens.append(JinjaToken(kind: .string(try stringLiteral(quote: c)), line: l))
            } else if ("0"..."9").contains(c) {
                tokens.append(JinjaToken(kind: try number(), line: l))
            } else {
                let two = at(i + 1).map { String(c) + String($0) } ?? ""
                if ["//", "**", "==", "!=", "<=", ">="].contains(two) {
                    tokens.append(JinjaToken(kind: .op(two), line: l))
                    advance(to: i + 2)
                } else if "+-/*%~<>=()[]{},.:|;".unicodeScalars.contains(c) {
                    if "([{".unicodeScalars.contains(c) { depth += 1 }
                    if ")]}".unicodeScalars.contains(c) { depth = max(depth - 1, 0) }
                    tokens.append(JinjaToken(kind: .op(String(c)), line: l))
                    advance(to: i + 1)
                } else {
                    throw error("unexpected character '\(c)'")
                }
            }
        }
    }

    private mutating func number() throws -> JinjaToken.Kind {
        var k = i
        var isFloat = false
        if at(k) == "0", let p = at(k + 1), "xXoObB".unicodeScalars.contains(p) {
            let radix = "xX".unicodeScalars.contains(p) ? 16 : "oO".unicodeScalars.contains(p) ? 8 : 2
            k += 2
            let start = k
            while k < s.count, s[k] == "_" || Character(s[k]).isHexDigit { k += 1 }
            let digits = String(String.UnicodeScalarView(s[start..<k])).replacingOccurrences(of: "_", with: "")
            guard let v = Int(digits, radix: radix) else { throw error("invalid number literal") }
            advance(to: k)
            return .int(v)
        }
        while k < s.count, ("0"..."9").contains(s[k]) || s[k] == "_" { k += 1 }
        if at(k) == ".", let d = at(k + 1), ("0"..."9").contains(d) {
            isFloat = true
            k += 1
            while k < s.count, ("0"..."9").contains(s[k]) || s[k] == "_" { k += 1 }
        }
        if let e = at(k), e == "e" || e == "E" {
            var m = k + 1
            if let sgn = at(m), sgn == "+" || sgn == "-" { m += 1 }
            if let d = at(m), ("0"..."9").contains(d) {
                isFloat = true
                k = m
                while k < s.count, ("0"..."9").contains(s[k]) { k += 1 }
            }
        }
        let text = String(String.UnicodeScalarView(s[i..<k])).replacingOccurrences(of: "_", with: "")
        advance(to: k)
        if isFloat {
            guard let d = Double(text) else { throw error("invalid number literal \(text)") }
            return .double(d)
        }
        guard let v = Int(text) else { throw error("integer literal \(text) is too large") }
        return .int(v)
    }

    /// A quoted string with Python's backslash escapes (jinja2 decodes them as unicode-escape).
    private mutating func stringLiteral(quote: Unicode.Scalar) throws -> String {
        let startLine = line
        var k = i + 1
        var out = String.UnicodeScalarView()
        while k < s.count {
            let c = s[k]
            if c == quote { advance(to: k + 1); return String(out) }
            if c != "\\" { out.append(c); k += 1; continue }
            guard let e = at(k + 1) else { break }
            k += 2
            switch e {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "\\": out.append("\\")
            case "'": out.append("'")
            case "\"": out.append("\"")
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "v": out.append("\u{0B}")
            case "0"..."7":
                var v = e.value - 48
                var n = 1
                while n < 3, let d = at(k), ("0"..."7").contains(d) { v = v * 8 + d.value - 48; k += 1; n += 1 }
                if let u = Unicode.Scalar(v) { out.append(u) }
            case "x", "u", "U":
                let n = e == "x" ? 2 : e == "u" ? 4 : 8
                guard k + n <= s.count, let v = UInt32(String(String.UnicodeScalarView(s[k..<k + n])), radix: 16),
                      let u = Unicode.Scalar(v) else {
                    throw error("invalid \\\(e) escape in a string literal")
                }
                out.append(u)
                k += n
            case "\n": break   // a backslash-newline continues the line
            default:
                out.append("\\")
                out.append(e)
            }
        }
        throw error("unterminated string literal", startLine)
    }
}
