/// Splits text around tokens that must never be cut (special and added tokens), the way
/// transformers 4.30's `PreTrainedTokenizer.tokenize` does: longest match first, then whitespace
/// next to a token is stripped according to that token's lstrip/rstrip flags. Tokens given as
/// plain strings (not AddedToken) strip both sides — transformers' "strip by default".
struct SpecialTokenSplitter: Sendable {
    struct Rule: Sendable {
        var token: String
        var lstrip: Bool
        var rstrip: Bool
    }

    enum Chunk: Equatable {
        case text(String)
        case token(String)
    }

    private let rules: [String: Rule]
    private let byFirst: [Character: [String]]   // candidates by first character, longest first

    init(_ rules: [Rule]) {
        var map: [String: Rule] = [:]
        for r in rules where !r.token.isEmpty && map[r.token] == nil { map[r.token] = r }
        self.rules = map
        var first: [Character: [String]] = [:]
        for t in map.keys { first[t.first!, default: []].append(t) }
        byFirst = first.mapValues { $0.sorted { $0.count > $1.count || ($0.count == $1.count && $0 < $1) } }
    }

    func split(_ text: String) -> [Chunk] {
        stripped(match(text))
    }

    /// Text in parts, special tokens found only in parts marked `markup` (a template's own text);
    /// the other parts stay characters. Text on both sides of a part boundary joins into one
    /// chunk, so where no part holds a special token this is `split` of the whole text.
    func split(parts: [(text: String, markup: Bool)]) -> [Chunk] {
        var chunks: [Chunk] = []
        for part in parts {
            for c in part.markup ? match(part.text) : [.text(part.text)] {
                if case .text(let t) = c, case .text(let before)? = chunks.last {
                    chunks[chunks.count - 1] = .text(before + t)
                } else {
                    chunks.append(c)
                }
            }
        }
        return stripped(chunks)
    }

    /// Tokens found, longest first; no whitespace stripped yet.
    private func match(_ text: String) -> [Chunk] {
        if rules.isEmpty || text.isEmpty { return text.isEmpty ? [] : [.text(text)] }
        var parts: [Chunk] = []
        var textStart = text.startIndex
        // Compare by unicode scalars: a token like "<s>" must match even next to combining marks.
        let scalars = text.unicodeScalars
        var si = scalars.startIndex
        while si < scalars.endIndex {
            let c = Character(scalars[si])
            var matched: String?
            if let cands = byFirst[c] {
                for t in cands where scalars[si...].starts(with: t.unicodeScalars) {
                    matched = t
                    break
                }
            }
            if let t = matched {
                if textStart < si { parts.append(.text(String(text[textStart..<si]))) }
                parts.append(.token(t))
                si = scalars.index(si, offsetBy: t.unicodeScalars.count)
                textStart = si
            } else {
                si = scalars.index(after: si)
            }
        }
        if textStart < text.endIndex { parts.append(.text(String(text[textStart...]))) }
        return parts
    }

    /// Strips whitespace next to tokens, in order, as the Python loop does.
    private func stripped(_ chunks: [Chunk]) -> [Chunk] {
        var parts = chunks
        for k in parts.indices {
            guard case .token(let t) = parts[k], let rule = rules[t] else { continue }
            if rule.rstrip, k + 1 < parts.count, case .text(let right) = parts[k + 1] {
                parts[k + 1] = .text(String(right.drop { $0.isPythonWhitespace }))
            }
            if rule.lstrip, k > 0, case .text(let left) = parts[k - 1] {
                parts[k - 1] = .text(String(left.reversed().drop { $0.isPythonWhitespace }.reversed()))
            }
        }
        return parts.filter { if case .text(let s) = $0 { return !s.isEmpty } else { return true } }
    }
}

extension Character {
    /// Python's str.isspace for one character (what str.strip removes).
    var isPythonWhitespace: Bool {
        unicodeScalars.allSatisfy { s in
            switch s.value {
            case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
                return true
            default:
                return false
            }
        }
    }
}
