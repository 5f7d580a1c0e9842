import Engine
import Foundation

/// SillyTavern's macros, expanded where a card's text enters a prompt or a greeting is shown.
/// Names are matched without case, as SillyTavern does; a macro inside another one's arguments
/// is expanded first (`{{random::{{user}}::{{char}}}}`); an unknown macro stays as written.
///
/// Supported: `{{char}}` `{{user}}` `{{original}}` (the first one only; later ones are empty)
/// `{{description}}` `{{personality}}` `{{scenario}}` `{{persona}}` `{{mesExamples}}`
/// `{{charPrompt}}` `{{charInstruction}}`/`{{charJailbreak}}` `{{group}}`/`{{charIfNotGroup}}`
/// `{{input}}` `{{lastMessage}}` `{{lastUserMessage}}` `{{lastCharMessage}}` `{{newline}}`
/// `{{trim}}` `{{noop}}` `{{// comment}}` `{{random:a,b}}`/`{{random::a::b}}` `{{pick::a::b}}`
/// (the same choice every time in one chat) `{{roll:2d6+1}}` `{{reverse:text}}` `{{time}}`
/// `{{date}}` `{{weekday}}` `{{isotime}}` `{{isodate}}` `{{idle_duration}}` `{{banned "…"}}`
/// (nothing), and the old `<USER>` `<BOT>` `<CHAR>`.
public struct MacroContext: Sendable {
    public var char: String
    public var user: String
    /// What `{{original}}` stands for in the text being expanded (a default it overrides).
    public var original: String = ""
    public var description = ""
    public var personality = ""
    public var scenario = ""
    /// The user's own description (their persona).
    public var persona = ""
    public var mesExamples = ""
    public var charPrompt = ""
    public var charInstruction = ""
    /// The scene's speakers, joined with ", " (one persona: its name).
    public var group: String?
    public var input = ""
    public var lastMessage = ""
    public var lastUserMessage = ""
    public var lastCharMessage = ""
    public var now = Date()
    /// When the user last said something (for `{{idle_duration}}`).
    public var lastUserTime: Date?
    /// Seeds `{{pick}}`: the same chat gets the same picks.
    public var chatID = ""
    /// `{{random}}` and `{{roll}}` draw from this.
    public var rng = SplitMix64(seed: UInt64(truncatingIfNeeded: Int(Date().timeIntervalSince1970 * 1000)))

    public init(char: String, user: String) {
        self.char = char
        self.user = user
    }
}

public enum Macros {
    /// `text` with every macro it holds expanded under `ctx` (which `{{random}}` advances and
    /// `{{original}}` uses up).
    public static func expand(_ text: String, _ ctx: inout MacroContext) -> String {
        guard text.contains("{{") || text.contains("<") else { return text }
        var originalUsed = false
        var out = expandMacros(Array(text), &ctx, &originalUsed, depth: 0)
        for (tag, value) in [("<USER>", ctx.user), ("<BOT>", ctx.char), ("<CHAR>", ctx.char),
                             ("<CHARIFNOTGROUP>", ctx.group ?? ctx.char), ("<GROUP>", ctx.group ?? ctx.char)] {
            out = out.replacingOccurrences(of: tag, with: value, options: .caseInsensitive)
        }
        return trimMarks(out)
    }

    /// `{{trim}}` removes itself and the newlines around it.
    static func trimMarks(_ s: String) -> String {
        guard s.contains(trimMark) else { return s }
        var out = ""
        var pending = ""      // newlines seen since the last text, held back until we know
        var trimming = false
        for ch in s {
            if ch == "\n" || ch == "\r\n" { if !trimming { pending.append(ch) }; continue }
            if ch == trimMark { pending = ""; trimming = true; continue }
            out += pending
            pending = ""
            trimming = false
            out.append(ch)
        }
        return out + pending
    }

    /// A private-use character standing for `{{trim}}` until the whole text is expanded.
    static let trimMark: Character = "\u{F8FF}"

    private static func expandMacros(_ s: [Character], _ ctx: inout MacroContext, _ originalUsed: inout Bool, depth: Int) -> String {
        var out = ""
        var i = 0
        while i < s.count {
            guard i + 1 < s.count, s[i] == "{", s[i + 1] == "{", let close = closing(s, from: i + 2) else {
                out.append(s[i])
                i += 1
                continue
            }
            let inner = Array(s[(i + 2)..<close])
            // Nested macros in the arguments first (bounded, so a hostile card cannot recurse forever).
            let body = depth < 8 ? expandMacros(inner, &ctx, &originalUsed, depth: depth + 1) : String(inner)
            if let value = evaluate(body, &ctx, &originalUsed) {
                out += value
            } else {
                out += "{{" + body + "}}"
            }
            i = close + 2
        }
        return out
    }

    /// Index of the `}}` that closes a macro opened before `from`, counting nested `{{`.
    private static func closing(_ s: [Character], from: Int) -> Int? {
        var level = 0
        var j = from
        while j + 1 < s.count {
            if s[j] == "{" && s[j + 1] == "{" { level += 1; j += 2; continue }
            if s[j] == "}" && s[j + 1] == "}" {
                if level == 0 { return j }
                level -= 1
                j += 2
                continue
            }
            j += 1
        }
        return nil
    }

    /// The value of one macro body (what was between the braces), nil when unknown.
    static func evaluate(_ body: String, _ ctx: inout MacroContext, _ originalUsed: inout Bool) -> String? {
        let trimmed = body.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("//") { return "" }
        let lower = trimmed.lowercased()
        switch lower {
        case "char": return ctx.char
        case "user": return ctx.user
        case "original":
            defer { originalUsed = true }
            return originalUsed ? "" : ctx.original
        case "description": return ctx.description
        case "personality": return ctx.personality
        case "scenario": return ctx.scenario
        case "persona": return ctx.persona
        case "mesexamples", "mesexamplesraw": return ctx.mesExamples
        case "charprompt": return ctx.charPrompt
        case "charinstruction", "charjailbreak": return ctx.charInstruction
        case "group": return ctx.group ?? ctx.char
        case "charifnotgroup": return ctx.group ?? ctx.char
        case "input": return ctx.input
        case "lastmessage": return ctx.lastMessage
        case "lastusermessage": return ctx.lastUserMessage
        case "lastcharmessage": return ctx.lastCharMessage
        case "newline": return "\n"
        case "trim": return String(trimMark)
        case "noop": return ""
        case "time": return format(ctx.now, "h:mm a")
        case "date": return format(ctx.now, "MMMM d, yyyy")
        case "weekday": return format(ctx.now, "EEEE")
        case "isotime": return format(ctx.now, "HH:mm")
        case "isodate": return format(ctx.now, "yyyy-MM-dd")
        case "idle_duration": return idle(ctx)
        default: break
        }
        if lower.hasPrefix("banned ") || lower.hasPrefix("banned\"") { return "" }
        if let args = arguments(trimmed, name: "random") { return choose(args, &ctx.rng) }
        if let args = arguments(trimmed, name: "pick") {
            var stable = SplitMix64(seed: fnv1a(ctx.chatID + "\u{1F}" + trimmed))
            return choose(args, &stable)
        }
        if let args = arguments(trimmed, name: "roll"), let spec = args.first { return roll(spec, &ctx.rng) }
        if let args = arguments(trimmed, name: "reverse") { return String(args.joined(separator: ",").reversed()) }
        return nil
    }

    /// `name:a,b,c` or `name::a::b` -> the items; nil when `body` is not that macro.
    static func arguments(_ body: String, name: String) -> [String]? {
        guard body.lowercased().hasPrefix(name) else { return nil }
        var rest = body.dropFirst(name.count)
        while rest.first == " " { rest = rest.dropFirst() }
        if rest.hasPrefix("::") {
            return rest.dropFirst(2).components(separatedBy: "::")
        }
        guard rest.first == ":" else { return nil }
        let list = String(rest.dropFirst())
        // Commas split, except escaped ones (`\,`), as SillyTavern reads them.
        let marker = "\u{F8FE}"
        return list.replacingOccurrences(of: "\\,", with: marker).split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.replacingOccurrences(of: marker, with: ",").trimmingCharacters(in: .whitespaces) }
    }

    static func choose<G: RandomNumberGenerator>(_ items: [String], _ g: inout G) -> String {
        guard !items.isEmpty else { return "" }
        return items[Int(g.next() % UInt64(items.count))]
    }

    /// Dice: `NdM`, `dM`, `M` (one die), with an optional `+K` / `-K`.
    static func roll<G: RandomNumberGenerator>(_ spec: String, _ g: inout G) -> String {
        let s = spec.replacingOccurrences(of: " ", with: "").lowercased()
        var count = 1, sides = 0, add = 0
        var dice = s
        if let r = s.firstIndex(where: { $0 == "+" || $0 == "-" }), r != s.startIndex {
            guard let k = Int(s[r...].dropFirst()) else { return "" }
            add = s[r] == "+" ? k : -k
            dice = String(s[..<r])
        }
        if let d = dice.firstIndex(of: "d") {
            count = dice[..<d].isEmpty ? 1 : Int(dice[..<d]) ?? 0
            sides = Int(dice[dice.index(after: d)...]) ?? 0
        } else {
            sides = Int(dice) ?? 0
        }
        guard (1...100).contains(count), (1...1_000_000).contains(sides) else { return "" }
        var total = add
        for _ in 0..<count { total += Int(g.next() % UInt64(sides)) + 1 }
        return String(total)
    }

    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    static func format(_ d: Date, _ pattern: String) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = pattern
        return f.string(from: d)
    }

    /// "a few seconds", "5 minutes", "2 hours", "3 days" since the user last spoke.
    static func idle(_ ctx: MacroContext) -> String {
        guard let t = ctx.lastUserTime else { return "just now" }
        let s = max(0, ctx.now.timeIntervalSince(t))
        switch s {
        case ..<45: return "a few seconds"
        case ..<90: return "a minute"
        case ..<2700: return "\(Int((s / 60).rounded())) minutes"
        case ..<5400: return "an hour"
        case ..<79200: return "\(Int((s / 3600).rounded())) hours"
        case ..<129600: return "a day"
        default: return "\(Int((s / 86400).rounded())) days"
        }
    }
}
