import Foundation
import GRDB

/// A conversation and the database it is saved in: every change is committed before it is
/// applied, so what is on screen is always on disk.
public final class Session: @unchecked Sendable {
    public private(set) var conversation: Conversation
    /// Problems met while reading the session back (damaged rows that were left out).
    public let warnings: [String]
    let store: SessionStore
    /// The next message's `seq`: past every row the database has, read or not.
    private var nextSeq: Int
    private let lock = NSLock()

    init(store: SessionStore, conversation: Conversation, warnings: [String], nextSeq: Int) {
        self.store = store
        self.conversation = conversation
        self.warnings = warnings
        self.nextSeq = nextSeq
    }

    public var id: String { conversation.id }

    /// Writes `event` and commits, then applies it: a message is durable once this returns. An
    /// event the conversation refuses (see `Conversation.refusal(of:)`) throws and changes nothing.
    public func record(_ event: SessionEvent) throws(ChatError) {
        lock.lock()
        defer { lock.unlock() }
        let before = conversation
        if case .header(let h) = event, h.id != before.id {
            throw ChatError(store.path, "session '\(before.id)': a header cannot change the session's id (to '\(h.id)')")
        }
        if let why = before.refusal(of: event) { throw ChatError(store.path, "session '\(before.id)': \(why)") }
        var after = before
        after.apply(event)
        let (id, seq, now) = (before.id, nextSeq, store.clock().timeIntervalSince1970)
        try store.write("cannot save session '\(id)'") { db in
            guard try SessionSchema.SessionRow.change(id, to: after, by: event, db) else {
                throw ChatError(store.path, "session '\(id)' is no longer in the database (deleted elsewhere?)")
            }
            switch event {
            case .message(let m):
                try SessionSchema.insert(m, session: id, removed: false, seq: seq, db)
            case .edit(let mid, _):
                try SessionSchema.addHistory(id, message: mid, text: before.message(mid)!.text, replaced: now, db)
                try Self.rewrite(after.message(mid)!, session: id, removed: after.removed.contains(mid), db)
            case .remove(let mid):
                try Self.rewrite(after.message(mid)!, session: id, removed: true, db)
            case .cast(let ids):
                try SessionSchema.writeCast(id, ids, db)
            case .note(let n):
                try SessionSchema.writeSetting(id, "note", n, db)
            case .lore(let books):
                try SessionSchema.writeSetting(id, "lore", books.isEmpty ? nil : books, db)
            case .header, .select, .rename, .persona:
                break
            }
            for (parent, child) in after.selected where before.selected[parent] != child {
                try SessionSchema.select(id, parent: parent, child: child, db)
            }
        }
        if case .message = event { nextSeq += 1 }
        conversation = after
    }

    /// Updates a message's text and removed flag (with its checksum); its seq stays.
    private static func rewrite(_ m: Message, session: String, removed: Bool, _ db: Database) throws {
        guard let seq = try Int.fetchOne(db, sql: "SELECT seq FROM messages WHERE session_id = ? AND id = ?", arguments: [session, m.id]) else {
            throw ChatError("", "session '\(session)': message '\(m.id)' is not in the database")
        }
        try db.execute(sql: "UPDATE messages SET text = ?, removed = ?, crc = ? WHERE session_id = ? AND id = ?",
                       arguments: [m.text, removed, SessionSchema.messageCRC(session, m, removed: removed, seq: seq), session, m.id])
    }

    /// Adds a message after `parent` (default: the end of the path) and returns it.
    @discardableResult
    public func add(_ role: Message.Role, _ text: String, after parent: String?? = .none, persona: String? = nil,
                    template: String? = nil, adapters: [String]? = nil, greeting: Bool = false,
                    partial: Bool = false) throws(ChatError) -> Message {
        let p: String? = parent ?? conversation.head?.id
        let m = Message(id: conversation.nextMessageID, parent: p, role: role, text: text,
                        persona: persona ?? conversation.persona, time: store.clock().timeIntervalSince1970,
                        template: template, adapters: adapters, greeting: greeting ? true : nil,
                        partial: partial ? true : nil)
        try record(.message(m))
        return m
    }

    /// Another version of `id` (a retry's new reply, an edited question): same parent, selected.
    @discardableResult
    public func addAlternative(to id: String, text: String, persona: String? = nil, template: String? = nil,
                               adapters: [String]? = nil, partial: Bool = false) throws(ChatError) -> Message {
        guard let old = conversation.message(id) else { throw ChatError(store.path, "session '\(self.id)': no message '\(id)' to add an alternative to") }
        return try add(old.role, text, after: .some(old.parent), persona: persona ?? old.persona, template: template,
                       adapters: adapters, greeting: old.greeting == true, partial: partial)
    }
}
