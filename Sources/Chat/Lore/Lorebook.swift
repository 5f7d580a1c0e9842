import Foundation

/// A lorebook (SillyTavern's world info): entries whose content enters the prompt when their keys
/// appear in the conversation. Read from a card's `character_book` (the V2/V3 spec's field names)
/// or a SillyTavern world-info JSON file (`{"entries": {"0": {"key": […], …}}}`, its own names and
/// numbers: selectiveLogic AND_ANY 0, NOT_ALL 1, NOT_ANY 2, AND_ALL 3; position before 0, after 1,
/// at depth 4).
public struct Lorebook: Sendable, Equatable {
    public var name: String
    /// Messages from the end that are scanned for keys (nil: the scanner's default).
    public var scanDepth: Int?
    /// Tokens all activated entries may take together (nil: the scanner's default).
    public var tokenBudget: Int?
    /// Activated entries' content is scanned too, for more keys.
    public var recursive: Bool
    public var entries: [Entry]

    public init(name: String = "", scanDepth: Int? = nil, tokenBudget: Int? = nil, recursive: Bool = false, entries: [Entry] = []) {
        self.name = name
        self.scanDepth = scanDepth
        self.tokenBudget = tokenBudget
        self.recursive = recursive
        self.entries = entries
    }

    public enum Logic: Int, Sendable, Equatable {
        /// A primary key and any secondary key.
        case andAny = 0
        /// A primary key, and not every secondary key.
        case notAll = 1
        /// A primary key and no secondary key.
        case notAny = 2
        /// A primary key and every secondary key.
        case andAll = 3
    }

    public enum Position: Sendable, Equatable {
        /// Before the character's definition (description, personality, scenario).
        case beforeCharacter
        /// After it.
        case afterCharacter
        /// Among the messages, `depth` from the end (0: after the last one).
        case atDepth(Int)
    }

    public struct Entry: Sendable, Equatable {
        public var id: Int
        /// For people reading the book (and the TUI's list of what fired).
        public var comment: String
        public var keys: [String]
        public var secondaryKeys: [String]
        public var logic: Logic
        /// Secondary keys take part (SillyTavern's `selective`).
        public var selective: Bool
        public var content: String
        /// Always in (subject to the budget).
        public var constant: Bool
        public var enabled: Bool
        /// Lower first; higher closer to the end of its place (and kept first under the budget).
        public var order: Int
        public var position: Position
        /// nil: the book's setting.
        public var caseSensitive: Bool?
        public var wholeWords: Bool?
        public var scanDepth: Int?
        /// Matches only the conversation, not other entries' content.
        public var excludeRecursion: Bool
        /// Its own content is not scanned for further keys.
        public var preventRecursion: Bool

        public init(id: Int, comment: String = "", keys: [String], secondaryKeys: [String] = [], logic: Logic = .andAny,
                    selective: Bool = false, content: String, constant: Bool = false, enabled: Bool = true, order: Int = 100,
                    position: Position = .beforeCharacter, caseSensitive: Bool? = nil, wholeWords: Bool? = nil,
                    scanDepth: Int? = nil, excludeRecursion: Bool = false, preventRecursion: Bool = false) {
            self.id = id
            self.comment = comment
            self.keys = keys
            self.secondaryKeys = secondaryKeys
            self.logic = logic
            self.selective = selective
            self.content = content
            self.constant = constant
            self.enabled = enabled
            self.order = order
            self.position = position
            self.caseSensitive = caseSensitive
            self.wholeWords = wholeWords
            self.scanDepth = scanDepth
            self.excludeRecursion = excludeRecursion
            self.preventRecursion = preventRecursion
        }
    }

    // MARK: - Reading

    /// A card's `character_book` (Character Card V2 spec names; SillyTavern's own names inside
    /// an entry's `extensions` are honoured where the spec has none).
    public static func characterBook(_ j: JSON, file: String) throws(ChatError) -> Lorebook {
        guard let o = j.object else { throw ChatError(file, field: "data.character_book", "must be an object") }
        guard let list = o["entries"]?.array else { throw ChatError(file, field: "data.character_book.entries", "must be a list") }
        var book = Lorebook(name: o["name"]?.string ?? "", scanDepth: o["scan_depth"]?.int, tokenBudget: o["token_budget"]?.int,
                            recursive: o["recursive_scanning"]?.bool ?? false)
        for (i, e) in list.enumerated() {
            let field = "data.character_book.entries[\(i)]"
            guard let x = e.object else { throw ChatError(file, field: field, "must be an object") }
            let ext = x["extensions"]?.object ?? [:]
            let keys = try strings(x["keys"], file, field + ".keys")
            let position: Position
            switch ext["position"]?.int {
            case 4?: position = .atDepth(ext["depth"]?.int ?? 4)
            case 1?: position = .afterCharacter
            case 0?: position = .beforeCharacter
            default: position = x["position"]?.string == "after_char" ? .afterCharacter : .beforeCharacter
            }
            book.entries.append(Entry(
                id: x["id"]?.int ?? i, comment: x["comment"]?.string ?? x["name"]?.string ?? "", keys: keys,
                secondaryKeys: try strings(x["secondary_keys"], file, field + ".secondary_keys"),
                logic: ext["selectiveLogic"]?.int.flatMap(Logic.init) ?? .andAny, selective: x["selective"]?.bool ?? false,
                content: x["content"]?.string ?? "", constant: x["constant"]?.bool ?? false, enabled: x["enabled"]?.bool ?? true,
                order: x["insertion_order"]?.int ?? 100, position: position,
                caseSensitive: x["case_sensitive"]?.bool ?? ext["case_sensitive"]?.bool,
                wholeWords: ext["match_whole_words"]?.bool, scanDepth: ext["scan_depth"]?.int,
                excludeRecursion: ext["exclude_recursion"]?.bool ?? false, preventRecursion: ext["prevent_recursion"]?.bool ?? false))
        }
        return book
    }

    /// A SillyTavern world-info file.
    public static func worldInfo(_ data: Data, file: String) throws(ChatError) -> Lorebook {
        guard let j = try? JSON.parse(data), let o = j.object else { throw ChatError(file, "not a JSON object") }
        guard let entries = o["entries"]?.object else { throw ChatError(file, field: "entries", "must be an object of entries") }
        var book = Lorebook(name: o["name"]?.string ?? (file as NSString).lastPathComponent)
        for (k, e) in entries.sorted(by: { (Int($0.key) ?? 0, $0.key) < (Int($1.key) ?? 0, $1.key) }) {
            let field = "entries.\(k)"
            guard let x = e.object else { throw ChatError(file, field: field, "must be an object") }
            let position: Position
            switch x["position"]?.int ?? 0 {
            case 1: position = .afterCharacter
            case 4: position = .atDepth(x["depth"]?.int ?? 4)
            default: position = .beforeCharacter
            }
            book.entries.append(Entry(
                id: x["uid"]?.int ?? Int(k) ?? book.entries.count, comment: x["comment"]?.string ?? "",
                keys: try strings(x["key"], file, field + ".key"), secondaryKeys: try strings(x["keysecondary"], file, field + ".keysecondary"),
                logic: x["selectiveLogic"]?.int.flatMap(Logic.init) ?? .andAny, selective: x["selective"]?.bool ?? true,
                content: x["content"]?.string ?? "", constant: x["constant"]?.bool ?? false, enabled: !(x["disable"]?.bool ?? false),
                order: x["order"]?.int ?? 100, position: position, caseSensitive: x["caseSensitive"]?.bool,
                wholeWords: x["matchWholeWords"]?.bool, scanDepth: x["scanDepth"]?.int,
                excludeRecursion: x["excludeRecursion"]?.bool ?? false, preventRecursion: x["preventRecursion"]?.bool ?? false))
        }
        return book
    }

    static func strings(_ j: JSON?, _ file: String, _ field: String) throws(ChatError) -> [String] {
        guard let j, j != .null else { return [] }
        guard let a = j.array else { throw ChatError(file, field: field, "must be a list of strings") }
        return a.compactMap(\.string).filter { !$0.isEmpty }
    }
}
