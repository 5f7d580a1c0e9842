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
}
