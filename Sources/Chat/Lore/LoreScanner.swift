import Foundation

/// Which lorebook entries a reply's prompt gets, and where: SillyTavern's activation rules.
///
/// - The last `scanDepth` messages (newest last) are scanned; an entry's own scan depth overrides.
/// - A primary key activates; with `selective` and secondary keys the logic decides (AND ANY: one
///   of them too; AND ALL: all; NOT ANY: none; NOT ALL: not all).
/// - Keys: text, or `/pattern/flags` as a regular expression. Case-insensitive unless asked.
///   Whole words: a key of Latin letters matches only between non-word characters; a key with
///   Chinese (or any letter that is not ASCII) matches anywhere — Chinese writes no spaces, so
///   a word boundary would never be found.
/// - Constant entries are always in. With recursion, activated entries' content is scanned for
///   more keys, up to `maxRecursion` rounds (`preventRecursion`: not scanned; `excludeRecursion`:
///   only the conversation can activate it).
/// - The budget: entries are taken by order, highest first (constants before others), while their
///   tokens fit; the rest are dropped. Within each place, entries go by order, lowest first.
public struct LoreScanner: Sendable {
    public var scanDepth = 4
    public var tokenBudget = 512
    public var maxRecursion = 3
    public var caseSensitive = false
    public var wholeWords = true

    public init(scanDepth: Int = 4, tokenBudget: Int = 512, maxRecursion: Int = 3, caseSensitive: Bool = false, wholeWords: Bool = true) {
        self.scanDepth = scanDepth
        self.tokenBudget = tokenBudget
        self.maxRecursion = maxRecursion
        self.caseSensitive = caseSensitive
        self.wholeWords = wholeWords
    }

    /// What activated, placed.
    public struct Result: Sendable, Equatable {
        /// Before and after the character's definition, each joined by newlines.
        public var before: [Lorebook.Entry] = []
        public var after: [Lorebook.Entry] = []
        /// At a depth among the messages: (depth, entries).
        public var atDepth: [(depth: Int, entries: [Lorebook.Entry])] = []
        /// Activated but left out for the budget.
        public var dropped: [Lorebook.Entry] = []

        public var all: [Lorebook.Entry] { before + after + atDepth.flatMap(\.entries) }

        public static func == (a: Result, b: Result) -> Bool {
            a.before == b.before && a.after == b.after && a.dropped == b.dropped
                && a.atDepth.map(\.depth) == b.atDepth.map(\.depth) && a.atDepth.map(\.entries) == b.atDepth.map(\.entries)
        }
    }

    /// `messages`: the conversation's texts, oldest first; `tokens` counts a text's tokens.
    public func scan(_ books: [Lorebook], messages: [String], tokens: (String) -> Int) -> Result {
        var candidates: [(entry: Lorebook.Entry, book: Lorebook)] = []
        for b in books { for e in b.entries where e.enabled { candidates.append((e, b)) } }
        var active: [Int] = []          // indices into candidates, in activation order
        var recursed = ""               // content of activated entries, scanned in later rounds
        var round = 0
        while true {
            var found: [Int] = []
            for (i, c) in candidates.enumerated() where !active.contains(i) {
                if c.entry.constant && round == 0 { found.append(i); continue }
                let depth = c.entry.scanDepth ?? c.book.scanDepth ?? scanDepth
                var text = messages.suffix(max(depth, 0)).joined(separator: "\n")
                if round > 0 {
                    // Later rounds add what activated entries said; the conversation was scanned.
                    guard c.book.recursive, !c.entry.excludeRecursion else { continue }
                    text += "\n" + recursed
                }
                if activates(c.entry, in: text) { found.append(i) }
            }
            if found.isEmpty { break }
            active += found
            round += 1
            if round > maxRecursion { break }
            let more = found.map { candidates[$0] }.filter { $0.book.recursive && !$0.entry.preventRecursion }
            if more.isEmpty { break }
            recursed += (recursed.isEmpty ? "" : "\n") + more.map(\.entry.content).joined(separator: "\n")
        }

        // The budget: most important first (constants, then higher order, then earlier activation).
        let ranked = active.enumerated().sorted { a, b in
            let x = candidates[a.element].entry, y = candidates[b.element].entry
            if x.constant != y.constant { return x.constant }
            if x.order != y.order { return x.order > y.order }
            return a.offset < b.offset
        }.map(\.element)
        let budget = books.compactMap(\.tokenBudget).min() ?? tokenBudget
        var used = 0
        var kept: [Lorebook.Entry] = []
        var result = Result()
        for i in ranked {
            let e = candidates[i].entry
            let n = tokens(e.content)
            if used + n <= budget {
                used += n
                kept.append(e)
            } else {
                result.dropped.append(e)
            }
        }
        kept.sort { ($0.order, $0.id) < ($1.order, $1.id) }
        var depths: [Int: [Lorebook.Entry]] = [:]
        for e in kept {
            switch e.position {
            case .beforeCharacter: result.before.append(e)
            case .afterCharacter: result.after.append(e)
            case .atDepth(let d): depths[max(d, 0), default: []].append(e)
            }
        }
        result.atDepth = depths.keys.sorted().map { ($0, depths[$0]!) }
        return result
    }

    /// Primary keys, then the selective logic over the secondary ones.
    func activates(_ e: Lorebook.Entry, in text: String) -> Bool {
        guard !text.isEmpty, e.keys.contains(where: { matches($0, in: text, e) }) else { return false }
        guard e.selective, !e.secondaryKeys.isEmpty else { return true }
        let hits = e.secondaryKeys.filter { matches($0, in: text, e) }.count
        switch e.logic {
        case .andAny: return hits > 0
        case .andAll: return hits == e.secondaryKeys.count
        case .notAny: return hits == 0
        case .notAll: return hits < e.secondaryKeys.count
        }
    }

    func matches(_ key: String, in text: String, _ e: Lorebook.Entry) -> Bool {
        let cs = e.caseSensitive ?? caseSensitive
        if let re = Self.regex(key) { return re.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil }
        let k = cs ? key : key.lowercased(), t = cs ? text : text.lowercased()
        guard e.wholeWords ?? wholeWords, k.unicodeScalars.allSatisfy(\.isASCII) else { return t.contains(k) }
        // A Latin key between non-word characters (or the ends), as SillyTavern matches whole words.
        var from = t.startIndex
        while let r = t.range(of: k, range: from..<t.endIndex) {
            let before = r.lowerBound == t.startIndex ? nil : t[t.index(before: r.lowerBound)]
            let after = r.upperBound == t.endIndex ? nil : t[r.upperBound]
            if !Self.isWordCharacter(before) && !Self.isWordCharacter(after) { return true }
            from = t.index(after: r.lowerBound)
        }
        return false
    }

    static func isWordCharacter(_ c: Character?) -> Bool {
        guard let c else { return false }
        return c.isASCII && (c.isLetter || c.isNumber || c == "_")
    }

    /// `/pattern/flags` (i, m, s honoured), else nil.
    static func regex(_ key: String) -> NSRegularExpression? {
        guard key.count >= 3, key.hasPrefix("/"), let end = key.lastIndex(of: "/"), end > key.startIndex else { return nil }
        let pattern = String(key[key.index(after: key.startIndex)..<end])
        let flags = key[key.index(after: end)...]
        guard !pattern.isEmpty, flags.allSatisfy({ "gimsuy".contains($0) }) else { return nil }
        var options: NSRegularExpression.Options = []
        if flags.contains("i") { options.insert(.caseInsensitive) }
        if flags.contains("m") { options.insert(.anchorsMatchLines) }
        if flags.contains("s") { options.insert(.dotMatchesLineSeparators) }
        return try? NSRegularExpression(pattern: pattern, options: options)
    }
}
