import Foundation

/// Who the user is in role-play: the name `{{user}}` stands for and the description
/// `{{persona}}` adds to a card's prompt. Set once (the store keeps it) and used by every front end.
public struct UserProfile: Sendable, Equatable, Codable {
    public var name: String
    public var description: String

    /// The name the seeds' own prompts used for the user.
    public static let defaultName = "用户"

    public init(name: String = UserProfile.defaultName, description: String = "") {
        self.name = name
        self.description = description
    }

    /// `name | description` as the line chat and the TUI take it (no `|`: a name alone).
    public init(line: String) {
        let parts = line.split(separator: "|", maxSplits: 1).map { String($0).pythonStripped }
        self.init(name: parts.first ?? "", description: parts.count > 1 ? parts[1] : "")
    }
}

/// A conversation's author's note: text put into the prompt `depth` messages from its end
/// (0: after the newest message; 1: before it; …), every turn, without entering the history.
public struct AuthorsNote: Sendable, Equatable, Codable {
    public var text: String
    public var depth: Int

    public static let defaultDepth = 4

    public init(text: String, depth: Int = AuthorsNote.defaultDepth) {
        self.text = text
        self.depth = depth
    }

    /// `[depth] text` as the line chat and the TUI take it; nil for an empty line (no note).
    public init?(line: String) {
        let t = line.pythonStripped
        guard !t.isEmpty else { return nil }
        let parts = t.split(separator: " ", maxSplits: 1)
        if parts.count == 2, let d = Int(parts[0]) {
            self.init(text: String(parts[1]), depth: d)
        } else {
            self.init(text: t)
        }
    }
}
