import Foundation
import GRDB

/// The sessions database: schema, migrations and the mapping between rows and values.
///
/// Every row carries `crc`, a hash of its other columns written with it: SQLite checks its own
/// structure (`PRAGMA integrity_check` at open) but not the bytes of a value, so a flipped bit
/// in a message's text would otherwise load as different text without a word.
enum SessionSchema {
    static let migrator: DatabaseMigrator = {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE sessions (
                  id TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
                  title TEXT NOT NULL,
                  created REAL NOT NULL,              -- seconds since 1970
                  persona TEXT,                       -- the persona the next reply uses
                  origin_session TEXT,                -- branched from (no foreign key: the original may go)
                  origin_message TEXT,
                  updated REAL NOT NULL,              -- newest message's time (created when none)
                  shown INTEGER NOT NULL,             -- messages on the shown path, for the list
                  crc INTEGER NOT NULL
                );
                CREATE INDEX sessions_by_update ON sessions (updated DESC, id DESC);

                -- Every message ever written: alternatives ("swipes") are siblings, branches are
                -- children of an earlier message. A parent is a message of the same session that
                -- already exists (the foreign key) and is not the message itself (the CHECK);
                -- parents never change (the trigger), so no chain of parents can loop.
                CREATE TABLE messages (
                  session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                  id TEXT NOT NULL CHECK (id <> ''),
                  parent TEXT CHECK (parent IS NULL OR parent <> id),
                  role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
                  text TEXT NOT NULL,
                  persona TEXT,
                  time REAL NOT NULL,
                  template TEXT,
                  adapters TEXT,                      -- JSON array of "folder=scale"
                  greeting INTEGER CHECK (greeting IN (0, 1)),
                  partial INTEGER CHECK (partial IN (0, 1)),
                  removed INTEGER NOT NULL DEFAULT 0 CHECK (removed IN (0, 1)),
                  seq INTEGER NOT NULL,               -- writing order within the session
                  crc INTEGER NOT NULL,
                  PRIMARY KEY (session_id, id),
                  UNIQUE (session_id, seq),
                  FOREIGN KEY (session_id, parent) REFERENCES messages (session_id, id) ON DELETE CASCADE
                );
                CREATE TRIGGER messages_keep_parent BEFORE UPDATE OF session_id, id, parent ON messages
                BEGIN SELECT RAISE(ABORT, 'a message''s id and parent never change'); END;

                -- The child shown under each parent ('' for the first level).
                CREATE TABLE selections (
                  session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                  parent TEXT NOT NULL,
                  child TEXT NOT NULL,
                  crc INTEGER NOT NULL,
                  PRIMARY KEY (session_id, parent),
                  FOREIGN KEY (session_id, child) REFERENCES messages (session_id, id) ON DELETE CASCADE
                );

                -- An edit keeps the text it replaced: edit n of a message stores the text before it.
                CREATE TABLE message_history (
                  session_id TEXT NOT NULL,
                  message_id TEXT NOT NULL,
                  n INTEGER NOT NULL,
                  text TEXT NOT NULL,
                  replaced REAL NOT NULL,
                  crc INTEGER NOT NULL,
                  PRIMARY KEY (session_id, message_id, n),
                  FOREIGN KEY (session_id, message_id) REFERENCES messages (session_id, id) ON DELETE CASCADE
                );

                -- Legacy JSONL files already imported, so a restart does not import them again.
                CREATE TABLE legacy_imports (
                  file TEXT PRIMARY KEY NOT NULL,     -- name in the legacy folder
                  size INTEGER NOT NULL,
                  mtime REAL NOT NULL,
                  imported REAL NOT NULL,
                  session_id TEXT,                    -- NULL when the file held nothing to import
                  rejected INTEGER NOT NULL           -- lines kept aside in rejected/
                );
                """)
            // Search: message texts and titles (message_id ''). FTS5's trigram tokenizer indexes
            // substrings, which is what Chinese needs (unicode61 would take a whole run of CJK
            // characters as one word); `text LIKE '%…%'` then uses the index. Without FTS5 a
            // plain table answers the same query by scanning.
            do {
                try db.execute(sql: "CREATE VIRTUAL TABLE search USING fts5(session_id UNINDEXED, message_id UNINDEXED, text, tokenize = 'trigram')")
            } catch {
                try db.execute(sql: "CREATE TABLE search (session_id TEXT NOT NULL, message_id TEXT NOT NULL, text TEXT NOT NULL)")
            }
            // Messages are only ever deleted with their session, so no per-message delete trigger.
            try db.execute(sql: """
                CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
                  INSERT INTO search (session_id, message_id, text) VALUES (new.session_id, new.id, new.text);
                END;
                CREATE TRIGGER messages_search_update AFTER UPDATE OF text ON messages BEGIN
                  DELETE FROM search WHERE session_id = old.session_id AND message_id = old.id;
                  INSERT INTO search (session_id, message_id, text) VALUES (new.session_id, new.id, new.text);
                END;
                CREATE TRIGGER sessions_search_insert AFTER INSERT ON sessions BEGIN
                  INSERT INTO search (session_id, message_id, text) VALUES (new.id, '', new.title);
                END;
                CREATE TRIGGER sessions_search_update AFTER UPDATE OF title ON sessions BEGIN
                  DELETE FROM search WHERE session_id = old.id AND message_id = '';
                  INSERT INTO search (session_id, message_id, text) VALUES (new.id, '', new.title);
                END;
                CREATE TRIGGER sessions_search_delete AFTER DELETE ON sessions BEGIN
                  DELETE FROM search WHERE session_id = old.id;
                END;
                """)
        }
        // v2: a scene's cast, one row per session that has one.
        m.registerMigration("v2-cast") { db in
            try db.execute(sql: """
                CREATE TABLE casts (
                  session_id TEXT PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                  personas TEXT NOT NULL,             -- JSON array of persona ids, in turn order
                  crc INTEGER NOT NULL
                )
                """)
        }
        // v3: per-conversation settings (author's note, attached lorebooks) and the user's profile.
        m.registerMigration("v3-settings") { db in
            try db.execute(sql: """
                CREATE TABLE session_settings (
                  session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                  key TEXT NOT NULL,                  -- 'note' | 'lore'
                  value TEXT NOT NULL,                -- JSON
                  crc INTEGER NOT NULL,
                  PRIMARY KEY (session_id, key)
                );
                CREATE TABLE profile (
                  key TEXT PRIMARY KEY NOT NULL,      -- 'user'
                  value TEXT NOT NULL,                -- JSON
                  crc INTEGER NOT NULL
                );
                """)
        }
        return m
    }()

    /// One per-conversation setting: written whole as JSON, nil deletes the row.
    static func writeSetting<T: Encodable>(_ session: String, _ key: String, _ value: T?, _ db: Database) throws {
        guard let value else {
            try db.execute(sql: "DELETE FROM session_settings WHERE session_id = ? AND key = ?", arguments: [session, key])
            return
        }
        let json = try jsonText(value)
        try db.execute(sql: "INSERT OR REPLACE INTO session_settings (session_id, key, value, crc) VALUES (?, ?, ?, ?)",
                       arguments: [session, key, json, crc([session, key, json])])
    }

    /// A per-conversation setting (nil without one); a damaged row is a warning and no setting.
    static func readSetting<T: Decodable>(_ session: String, _ key: String, as: T.Type, _ db: Database) throws -> (value: T?, warning: String?) {
        guard let r = try Row.fetchOne(db, sql: "SELECT value, crc FROM session_settings WHERE session_id = ? AND key = ?",
                                       arguments: [session, key]) else { return (nil, nil) }
        guard let json = text(r, "value"), let c = integer(r, "crc"), crc([session, key, json]) == c,
              let v = try? JSONDecoder().decode(T.self, from: Data(json.utf8))
        else { return (nil, "session '\(session)': its \(key) setting fails its checksum (damaged); left out") }
        return (v, nil)
    }

    static func writeSettings(_ c: Conversation, _ db: Database) throws {
        try writeSetting(c.id, "note", c.note, db)
        try writeSetting(c.id, "lore", c.lore.isEmpty ? nil : c.lore, db)
    }

    static func jsonText<T: Encodable>(_ value: T) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(value), as: UTF8.self)
    }

    /// A scene's cast: written whole, an empty one deletes the row.
    static func writeCast(_ session: String, _ ids: [String], _ db: Database) throws {
        if ids.isEmpty {
            try db.execute(sql: "DELETE FROM casts WHERE session_id = ?", arguments: [session])
            return
        }
        let json = String(decoding: JSON.array(ids.map(JSON.string)).data(), as: UTF8.self)
        try db.execute(sql: "INSERT OR REPLACE INTO casts (session_id, personas, crc) VALUES (?, ?, ?)",
                       arguments: [session, json, crc([session, json])])
    }

    /// The cast of `session` ([] without one); a damaged row is a warning and no cast.
    static func readCast(_ session: String, _ db: Database) throws -> (cast: [String], warning: String?) {
        guard let r = try Row.fetchOne(db, sql: "SELECT personas, crc FROM casts WHERE session_id = ?", arguments: [session]) else { return ([], nil) }
        guard let json = text(r, "personas"), let c = integer(r, "crc"), crc([session, json]) == c,
              let ids = (try? JSON.parse(Data(json.utf8)))?.array?.compactMap(\.string)
        else { return ([], "session '\(session)': its scene's cast fails its checksum (damaged); one persona speaks") }
        return (ids, nil)
    }

    /// Tables and columns the code reads: a damaged schema fails here at open, not mid-chat.
    static let probe = [
        "SELECT id, title, created, persona, origin_session, origin_message, updated, shown, crc FROM sessions LIMIT 0",
        "SELECT session_id, id, parent, role, text, persona, time, template, adapters, greeting, partial, removed, seq, crc FROM messages LIMIT 0",
        "SELECT session_id, parent, child, crc FROM selections LIMIT 0",
        "SELECT session_id, message_id, n, text, replaced, crc FROM message_history LIMIT 0",
        "SELECT file, size, mtime, imported, session_id, rejected FROM legacy_imports LIMIT 0",
        "SELECT session_id, message_id, text FROM search LIMIT 0",
        "SELECT session_id, personas, crc FROM casts LIMIT 0",
        "SELECT session_id, key, value, crc FROM session_settings LIMIT 0",
        "SELECT key, value, crc FROM profile LIMIT 0",
    ]

    // MARK: Sessions

    struct SessionRow {
        var id: String
        var title: String
        var created: Double
        var persona: String?
        var origin: SessionEvent.Origin?
        var updated: Double
        var shown: Int

        init(_ c: Conversation) {
            id = c.id
            title = c.title
            created = c.created
            persona = c.persona
            origin = c.origin
            updated = c.messages.reduce(c.created) { max($0, $1.time) }
            shown = c.path.count
        }

        init(id: String, title: String, created: Double, persona: String?, origin: SessionEvent.Origin?, updated: Double, shown: Int) {
            (self.id, self.title, self.created, self.persona, self.origin, self.updated, self.shown) = (id, title, created, persona, origin, updated, shown)
        }

        var crc: Int64 {
            SessionSchema.crc([id, title, bits(created), persona, origin?.session, origin?.message, bits(updated), String(shown)])
        }

        var summary: SessionSummary {
            SessionSummary(id: id, title: title, persona: persona, created: created, updated: updated, messageCount: shown, origin: origin)
        }

        func insert(_ db: Database) throws {
            try db.execute(sql: """
                INSERT INTO sessions (id, title, created, persona, origin_session, origin_message, updated, shown, crc)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [id, title, created, persona, origin?.session, origin?.message, updated, shown, crc])
        }

        /// Whether the row was still there.
        func update(_ db: Database) throws -> Bool {
            try db.execute(sql: """
                UPDATE sessions SET title = ?, created = ?, persona = ?, origin_session = ?, origin_message = ?,
                  updated = ?, shown = ?, crc = ? WHERE id = ?
                """, arguments: [title, created, persona, origin?.session, origin?.message, updated, shown, crc, id])
            return db.changesCount == 1
        }

        static let columns = "id, title, created, persona, origin_session, origin_message, updated, shown, crc"

        /// Changes only what `event` changes (another writer may have renamed the session since
        /// `after` was read), plus the shown count; whether the row was still there. A row that
        /// cannot be read is written whole from `after`.
        static func change(_ id: String, to after: Conversation, by event: SessionEvent, _ db: Database) throws -> Bool {
            guard let raw = try Row.fetchOne(db, sql: "SELECT \(columns) FROM sessions WHERE id = ?", arguments: [id]) else { return false }
            guard var row = decode(raw).row else { return try SessionRow(after).update(db) }
            switch event {
            case .header(let h):
                (row.title, row.created, row.persona, row.origin) = (h.title, h.created, h.persona, h.origin)
            case .message(let m):
                row.updated = max(row.updated, m.time)
            case .rename(let t):
                row.title = t
            case .persona(let p):
                row.persona = p
            case .select, .edit, .remove, .cast, .note, .lore:
                break
            }
            row.shown = after.path.count
            return try row.update(db)
        }

        /// The row, or why it cannot be read. A row that reads but fails its checksum comes
        /// back with `damaged` set.
        static func decode(_ row: Row) -> (row: SessionRow?, damaged: String?) {
            guard let id = text(row, "id"), let title = text(row, "title"), let created = real(row, "created"),
                  let persona = optionalText(row, "persona"), let os = optionalText(row, "origin_session"),
                  let om = optionalText(row, "origin_message"), let updated = real(row, "updated"),
                  let shown = integer(row, "shown"), let crc = integer(row, "crc")
            else { return (nil, "its row has a value of the wrong type") }
            let origin = os.flatMap { s in om.map { SessionEvent.Origin(session: s, message: $0) } }
            let r = SessionRow(id: id, title: title, created: created, persona: persona, origin: origin,
                               updated: updated, shown: Int(clamping: shown))
            return (r, r.crc == crc ? nil : "its row fails its checksum (damaged)")
        }
    }

    // MARK: Messages

    static func messageCRC(_ session: String, _ m: Message, removed: Bool, seq: Int) -> Int64 {
        crc([session, m.id, m.parent, m.role.rawValue, m.text, m.persona, bits(m.time), m.template,
             m.adapters.map(adaptersJSON), m.greeting.map { $0 ? "1" : "0" }, m.partial.map { $0 ? "1" : "0" },
             removed ? "1" : "0", String(seq)])
    }

    static func adaptersJSON(_ a: [String]) -> String {
        String(decoding: (try? JSONEncoder().encode(a)) ?? Data("[]".utf8), as: UTF8.self)
    }

    static func insert(_ m: Message, session: String, removed: Bool, seq: Int, _ db: Database) throws {
        try db.execute(sql: """
            INSERT INTO messages (session_id, id, parent, role, text, persona, time, template, adapters, greeting, partial, removed, seq, crc)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [session, m.id, m.parent, m.role.rawValue, m.text, m.persona, m.time, m.template,
                             m.adapters.map(adaptersJSON), m.greeting, m.partial, removed, seq,
                             messageCRC(session, m, removed: removed, seq: seq)])
    }

    static let messageColumns = "id, parent, role, text, persona, time, template, adapters, greeting, partial, removed, seq, crc"

    struct MessageRow {
        var message: Message
        var removed: Bool
        var seq: Int
    }

    /// A message row, or why it cannot be used.
    static func decodeMessage(_ row: Row, session: String) -> Result<MessageRow, Failure> {
        let label = text(row, "id").map { "message '\($0)'" } ?? "a message"
        func bad(_ why: String) -> Result<MessageRow, Failure> { .failure(Failure("\(label): \(why)")) }
        guard let id = text(row, "id"), let parent = optionalText(row, "parent"), let roleText = text(row, "role"),
              let text = text(row, "text"), let persona = optionalText(row, "persona"), let time = real(row, "time"),
              let template = optionalText(row, "template"), let adapters = optionalText(row, "adapters"),
              let removed = integer(row, "removed"), let seq = integer(row, "seq"), let crc = integer(row, "crc")
        else { return bad("a value of the wrong type (damaged)") }
        guard let role = Message.Role(rawValue: roleText) else { return bad("unknown role '\(roleText)' (damaged)") }
        func flag(_ c: String) -> Bool?? {
            if isNull(row, c) { return .some(nil) }
            return integer(row, c).map { .some($0 != 0) }
        }
        guard let greeting = flag("greeting"), let partial = flag("partial") else { return bad("a value of the wrong type (damaged)") }
        var list: [String]? = nil
        if let a = adapters {
            guard let l = try? JSONDecoder().decode([String].self, from: Data(a.utf8)) else { return bad("its adapters are not a JSON list (damaged)") }
            list = l
        }
        let m = Message(id: id, parent: parent, role: role, text: text, persona: persona, time: time,
                        template: template, adapters: list, greeting: greeting, partial: partial)
        let r = MessageRow(message: m, removed: removed != 0, seq: Int(clamping: seq))
        guard messageCRC(session, m, removed: r.removed, seq: r.seq) == crc else { return bad("fails its checksum (damaged)") }
        return .success(r)
    }

    struct Failure: Error { let reason: String; init(_ r: String) { reason = r } }

    // MARK: Selections and history

    static func selectionCRC(_ session: String, _ parent: String, _ child: String) -> Int64 { crc([session, parent, child]) }

    static func select(_ session: String, parent: String, child: String, _ db: Database) throws {
        try db.execute(sql: """
            INSERT INTO selections (session_id, parent, child, crc) VALUES (?, ?, ?, ?)
            ON CONFLICT (session_id, parent) DO UPDATE SET child = excluded.child, crc = excluded.crc
            """, arguments: [session, parent, child, selectionCRC(session, parent, child)])
    }

    static func historyCRC(_ session: String, _ message: String, _ n: Int, _ text: String, _ replaced: Double) -> Int64 {
        crc([session, message, String(n), text, bits(replaced)])
    }

    static func addHistory(_ session: String, message: String, text: String, replaced: Double, _ db: Database) throws {
        let n = (try Int.fetchOne(db, sql: "SELECT max(n) FROM message_history WHERE session_id = ? AND message_id = ?",
                                  arguments: [session, message]) ?? 0) + 1
        try db.execute(sql: "INSERT INTO message_history (session_id, message_id, n, text, replaced, crc) VALUES (?, ?, ?, ?, ?, ?)",
                       arguments: [session, message, n, text, replaced, historyCRC(session, message, n, text, replaced)])
    }

    // MARK: Whole conversations

    /// An earlier text of a message, replaced by an edit at `replaced`.
    struct Edit {
        var message: String
        var text: String
        var replaced: Double
    }

    /// Writes a conversation that is not in the database yet: its row, every message in
    /// writing order, the selections, and the texts its edits replaced.
    static func insert(_ c: Conversation, history: [Edit] = [], _ db: Database) throws {
        try SessionRow(c).insert(db)
        for (seq, m) in c.messages.enumerated() {
            try insert(m, session: c.id, removed: c.removed.contains(m.id), seq: seq, db)
        }
        for (parent, child) in c.selected.sorted(by: { $0.key < $1.key }) {
            try select(c.id, parent: parent, child: child, db)
        }
        try writeCast(c.id, c.cast, db)
        try writeSettings(c, db)
        for e in history { try addHistory(c.id, message: e.message, text: e.text, replaced: e.replaced, db) }
    }

    /// What reading a session back gives: the conversation, the problems met (rows left out),
    /// and what a writer needs to never collide with a row it could not read.
    struct Loaded {
        var conversation: Conversation
        var warnings: [String]
        var nextSeq: Int
    }

    /// Reads session `id`; nil when there is none. Damaged rows are left out with a warning
    /// each, so the rest of the session still loads.
    static func load(_ id: String, _ db: Database) throws -> Loaded? {
        guard let row = try Row.fetchOne(db, sql: "SELECT \(SessionRow.columns) FROM sessions WHERE id = ?", arguments: [id]) else { return nil }
        var warnings: [String] = []
        let (decoded, damaged) = SessionRow.decode(row)
        if let damaged { warnings.append("session '\(id)': \(damaged)") }
        let head = decoded ?? SessionRow(id: id, title: "?", created: 0, persona: nil, origin: nil, updated: 0, shown: 0)
        var c = Conversation(id: id, title: head.title, created: head.created, persona: head.persona, origin: head.origin)
        var removed: Set<String> = []
        var seen: [String] = []
        var nextSeq = 0
        for r in try Row.fetchAll(db, sql: "SELECT \(messageColumns) FROM messages WHERE session_id = ? ORDER BY seq", arguments: [id]) {
            if let s = integer(r, "seq") { nextSeq = max(nextSeq, Int(clamping: s) &+ 1) }
            if let rid = text(r, "id") { seen.append(rid) }
            switch decodeMessage(r, session: id) {
            case .failure(let f):
                warnings.append("session '\(id)': \(f.reason); left out")
            case .success(let m):
                if let why = c.refusal(of: .message(m.message)) {
                    warnings.append("session '\(id)': \(why); left out")
                    continue
                }
                c.apply(.message(m.message))
                if m.removed { removed.insert(m.message.id) }
            }
        }
        c.reserve(seen)
        var selected: [String: String] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT parent, child, crc FROM selections WHERE session_id = ?", arguments: [id]) {
            guard let p = text(r, "parent"), let ch = text(r, "child"), let crc = integer(r, "crc"),
                  selectionCRC(id, p, ch) == crc
            else { warnings.append("session '\(id)': a selection row fails its checksum (damaged); left out"); continue }
            selected[p] = ch
        }
        warnings += c.restore(selected: selected, removed: removed).map { "session '\(id)': \($0)" }
        let (cast, castWarning) = try readCast(id, db)
        c.cast = cast
        if let castWarning { warnings.append(castWarning) }
        let (note, noteWarning) = try readSetting(id, "note", as: AuthorsNote.self, db)
        c.note = note
        let (lore, loreWarning) = try readSetting(id, "lore", as: [String].self, db)
        c.lore = lore ?? []
        warnings += [noteWarning, loreWarning].compactMap { $0 }
        for r in try Row.fetchAll(db, sql: "SELECT message_id, n, text, replaced, crc FROM message_history WHERE session_id = ?", arguments: [id]) {
            guard let m = text(r, "message_id"), let n = integer(r, "n"), let t = text(r, "text"), let at = real(r, "replaced"),
                  let crc = integer(r, "crc"), historyCRC(id, m, Int(clamping: n), t, at) == crc
            else { warnings.append("session '\(id)': an earlier text of a message fails its checksum (damaged)"); continue }
        }
        if decoded != nil, damaged == nil, head.shown != c.path.count {
            warnings.append("session '\(id)': \(head.shown) messages were shown, \(c.path.count) are now (rows missing?)")
        }
        return Loaded(conversation: c, warnings: warnings, nextSeq: nextSeq)
    }
}
