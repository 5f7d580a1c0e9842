import Foundation
import GRDB

/// Every session in one SQLite database (WAL, `synchronous = FULL`, foreign keys on): a change
/// is committed before the call that makes it returns. The file is the caller's choice (the CLI
/// picks it); nothing here reads the environment. Ids are keys, never paths.
public final class SessionStore: Sendable {
    /// The database file (":memory:" when nothing is saved).
    public let path: String
    /// Whether search uses SQLite's FTS5 index (false: it scans, with the same results).
    public let fullTextSearch: Bool
    let queue: DatabaseQueue
    let clock: @Sendable () -> Date

    public var isInMemory: Bool { path == SessionStore.memory }
    static let memory = ":memory:"

    /// Opens (creating) the database at `path` and brings its schema up to date. Throws when
    /// the file cannot be used; `open` is the forgiving way in.
    public convenience init(database path: String, clock: @escaping @Sendable () -> Date = { Date() }) throws(ChatError) {
        do {
            try self.init(connecting: path, clock: clock)
        } catch {
            throw ChatError(path, error.reason)
        }
    }

    /// The `--sessions DIR` layout: the database is `DIR/sessions.sqlite` (the folder is made).
    /// Legacy JSONL files in DIR are not imported here; `open(database:importingFrom:)` does that.
    public convenience init(directory: String, clock: @escaping @Sendable () -> Date = { Date() }) throws(ChatError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ChatError(directory, "cannot create the sessions folder")
        }
        try self.init(database: (directory as NSString).appendingPathComponent("sessions.sqlite"), clock: clock)
    }

    private init(connecting path: String, clock: @escaping @Sendable () -> Date) throws(OpenFailure) {
        let queue = try Self.connect(path)
        let schema = try? queue.read { db in try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = 'search'") }
        fullTextSearch = (schema ?? nil)?.localizedCaseInsensitiveContains("using fts5") ?? false
        self.queue = queue
        self.path = path
        self.clock = clock
    }

    /// The store the app uses: never fails. Creates folders and the file, migrates, and imports
    /// the legacy JSONL sessions of `legacyDirectory` once. What went wrong comes back as
    /// notices, one line each: a damaged database is moved aside to `<name>.damaged-<time>` and
    /// a fresh one started; when even that fails the store is in memory and says so.
    public static func open(database path: String, importingFrom legacyDirectory: String?,
                            clock: @escaping @Sendable () -> Date = { Date() }) -> (store: SessionStore, notices: [String]) {
        var notices: [String] = []
        let folder = (path as NSString).deletingLastPathComponent
        do {
            if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        } catch {
            return (inMemory(clock), ["\(folder): cannot create the folder (\(oneLine(error.localizedDescription))); sessions will not be saved"])
        }
        let store: SessionStore
        do {
            store = try SessionStore(connecting: path, clock: clock)
        } catch let first {
            guard first.damaged else {
                return (inMemory(clock), ["\(path): \(first.reason); sessions will not be saved"])
            }
            guard let aside = moveAside(path, now: clock()) else {
                return (inMemory(clock), ["\(path): damaged (\(first.reason)) and cannot be moved aside (\(String(cString: strerror(errno)))); sessions will not be saved"])
            }
            let name = (aside as NSString).lastPathComponent
            do {
                store = try SessionStore(connecting: path, clock: clock)
            } catch {
                return (inMemory(clock), ["\(path): damaged (\(first.reason)); moved aside to \(name), but a fresh database fails too (\(error.reason)); sessions will not be saved"])
            }
            notices.append("\(path): damaged (\(first.reason)); moved aside to \(name) and started a fresh database")
        }
        if let legacyDirectory { notices += store.importLegacy(from: legacyDirectory) }
        return (store, notices)
    }

    static func inMemory(_ clock: @escaping @Sendable () -> Date) -> SessionStore {
        do {
            return try SessionStore(connecting: memory, clock: clock)
        } catch {
            preconditionFailure("SQLite cannot open an in-memory database: \(error.reason)")
        }
    }

    /// Closes the connection (tests: so the file can be copied whole).
    func close() { try? queue.close() }

    // MARK: Opening

    struct OpenFailure: Error {
        var reason: String
        /// The file itself is bad (moving it aside may help), not the folder, permissions or a lock.
        var damaged: Bool
    }

    static func connect(_ path: String) throws(OpenFailure) -> DatabaseQueue {
        var config = Configuration()
        config.foreignKeysEnabled = true
        config.busyMode = .timeout(5)   // another yanyi writing: wait for it, don't fail
        config.label = "sessions"
        config.prepareDatabase { db in
            // WAL set here, not by GRDB's journalMode option: that one also lowers synchronous to NORMAL.
            if path != memory { try db.execute(sql: "PRAGMA journal_mode = WAL") }
            try db.execute(sql: "PRAGMA synchronous = FULL")   // a commit survives power loss, not only a crash
            try db.execute(sql: "PRAGMA cell_size_check = ON")  // damaged pages fail early instead of misreading
        }
        let queue: DatabaseQueue
        do {
            queue = path == memory ? try DatabaseQueue(configuration: config) : try DatabaseQueue(path: path, configuration: config)
        } catch {
            throw classify(error)
        }
        do {
            let problems = try queue.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check(1)") }
            if problems != ["ok"] { throw OpenFailure(reason: "integrity check: \(oneLine(problems.first ?? "no answer"))", damaged: true) }
            if try queue.read({ db in try SessionSchema.migrator.hasBeenSuperseded(db) }) {
                throw OpenFailure(reason: "written by a newer yanyi (its schema has migrations this one does not know)", damaged: false)
            }
            try SessionSchema.migrator.migrate(queue)
            try queue.read { db in for sql in SessionSchema.probe { _ = try Row.fetchAll(db, sql: sql) } }
            return queue
        } catch let f as OpenFailure {
            try? queue.close()
            throw f
        } catch {
            try? queue.close()
            throw classify(error)
        }
    }

    /// Damaged unless SQLite says the trouble is access, a lock, memory or a full disk.
    static func classify(_ error: any Error) -> OpenFailure {
        guard let e = error as? DatabaseError else { return OpenFailure(reason: oneLine("\(error)"), damaged: true) }
        let notTheFile: [ResultCode] = [.SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_READONLY, .SQLITE_AUTH, .SQLITE_BUSY,
                                        .SQLITE_LOCKED, .SQLITE_NOMEM, .SQLITE_FULL]
        let reason = oneLine(e.message ?? "SQLite error \(e.extendedResultCode.rawValue)")
        return OpenFailure(reason: notTheFile.contains(e.resultCode) ? "cannot open (\(reason))" : reason,
                           damaged: !notTheFile.contains(e.resultCode))
    }

    /// Renames a damaged file (and its WAL) to `<name>.damaged-<time>`; the name, or nil.
    static func moveAside(_ path: String, now: Date) -> String? {
        let base = "\(path).damaged-\(makeID(now))"
        var aside = base
        var n = 2
        while FileManager.default.fileExists(atPath: aside) { aside = "\(base)-\(n)"; n += 1 }
        guard Foundation.rename(path, aside) == 0 else { return nil }
        if FileManager.default.fileExists(atPath: path + "-wal") { _ = Foundation.rename(path + "-wal", aside + "-wal") }
        Foundation.unlink(path + "-shm")   // only an index into the WAL: SQLite rebuilds it
        return aside
    }

    static func oneLine(_ s: String) -> String {
        s.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    // MARK: Reading and writing

    func write<T>(_ what: String, _ body: (Database) throws -> T) throws(ChatError) -> T {
        do {
            return try queue.write(body)
        } catch let e as ChatError {
            throw e
        } catch {
            throw ChatError(path, "\(what): \(Self.describe(error))")
        }
    }

    func read<T>(_ what: String, _ body: (Database) throws -> T) throws(ChatError) -> T {
        do {
            return try queue.read(body)
        } catch let e as ChatError {
            throw e
        } catch {
            throw ChatError(path, "\(what): \(Self.describe(error))")
        }
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? DatabaseError { return oneLine(e.message ?? "SQLite error \(e.extendedResultCode.rawValue)") }
        return oneLine("\(error)")
    }

    static func unknown(_ id: String) -> ChatError { ChatError("", "no session '\(id)' (yanyi sessions ls lists them)") }

    static func makeID(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f.string(from: date)
    }

    /// `base`, or `base-2`, `base-3`… whichever no session has.
    static func freeID(_ base: String, _ db: Database) throws -> String {
        var id = base
        var n = 2
        while try String.fetchOne(db, sql: "SELECT id FROM sessions WHERE id = ?", arguments: [id]) != nil {
            id = "\(base)-\(n)"
            n += 1
        }
        return id
    }

    // MARK: Sessions

    /// A new session: its row is committed before this returns.
    public func create(persona: String?, title: String = "新对话", origin: SessionEvent.Origin? = nil) throws(ChatError) -> Session {
        let now = clock()
        let c = try write("cannot create a session") { db in
            let c = Conversation(id: try Self.freeID(Self.makeID(now), db), title: title, created: now.timeIntervalSince1970,
                                 persona: persona, origin: origin)
            try SessionSchema.insert(c, db)
            return c
        }
        return Session(store: self, conversation: c, warnings: [], nextSeq: 0)
    }

    /// Reads a session back. Damaged rows are left out with a warning each; only an unknown id
    /// (or a database that cannot be read at all) is an error.
    public func read(_ id: String) throws(ChatError) -> (conversation: Conversation, warnings: [String]) {
        let l = try load(id)
        return (l.conversation, l.warnings)
    }

    func load(_ id: String) throws(ChatError) -> SessionSchema.Loaded {
        guard let l = try read("cannot read session '\(id)'", { db in try SessionSchema.load(id, db) }) else { throw Self.unknown(id) }
        return l
    }

    /// Resumes a session for writing more.
    public func resume(_ id: String) throws(ChatError) -> Session {
        let l = try load(id)
        return Session(store: self, conversation: l.conversation, warnings: l.warnings, nextSeq: l.nextSeq)
    }

    /// Every session, newest activity first. A row that fails its checksum is listed as read
    /// and reported beside the list; one that cannot be read at all is only reported.
    public func list() -> (sessions: [SessionSummary], errors: [ChatError]) {
        let rows: [Row]
        do {
            rows = try queue.read { db in
                try Row.fetchAll(db, sql: "SELECT \(SessionSchema.SessionRow.columns) FROM sessions ORDER BY updated DESC, id DESC")
            }
        } catch {
            return ([], [ChatError(path, "cannot list the sessions: \(Self.describe(error))")])
        }
        var out: [SessionSummary] = []
        var errors: [ChatError] = []
        for r in rows {
            let (row, damaged) = SessionSchema.SessionRow.decode(r)
            let label = SessionSchema.text(r, "id").map { "session '\($0)'" } ?? "a session"
            if let damaged { errors.append(ChatError(path, "\(label): \(damaged)")) }
            if let row { out.append(row.summary) }
        }
        return (out, errors)
    }

    public func rename(_ id: String, to title: String) throws(ChatError) {
        try resume(id).record(.rename(title))
    }

    /// Deletes a session and everything in it (messages, selections, earlier texts).
    public func delete(_ id: String) throws(ChatError) {
        let gone = try write("cannot delete session '\(id)'") { db in
            try db.execute(sql: "DELETE FROM sessions WHERE id = ?", arguments: [id])
            return db.changesCount
        }
        if gone == 0 { throw Self.unknown(id) }
    }

    /// A new session holding the path of `id` up to and including `message`, remembering where
    /// it came from. The original is not touched.
    public func branch(_ id: String, at message: String, title: String? = nil) throws(ChatError) -> Session {
        let (c, _) = try read(id)
        guard let m = c.message(message) else { throw ChatError("", "session '\(id)' has no message '\(message)' to branch from") }
        // The branch follows the message's own ancestry, even when another alternative is shown.
        var chain: [Message] = []
        var cur: Message? = m
        while let x = cur, chain.count < c.messages.count {
            chain.insert(x, at: 0)
            cur = x.parent.flatMap { c.message($0) }
        }
        let now = clock()
        let b = try write("cannot save the branch") { db in
            var b = Conversation(id: try Self.freeID(Self.makeID(now), db), title: title ?? c.title + " (分支)",
                                 created: now.timeIntervalSince1970, persona: c.persona ?? chain.last?.persona,
                                 origin: .init(session: id, message: message))
            var parent: String? = nil
            for x in chain {
                var copy = x
                copy.id = b.nextMessageID
                copy.parent = parent
                b.apply(.message(copy))
                parent = copy.id
            }
            b.cast = c.cast
            b.note = c.note
            b.lore = c.lore
            try SessionSchema.insert(b, db)
            return b
        }
        return Session(store: self, conversation: b, warnings: [], nextSeq: b.messages.count)
    }

    /// The user's profile (`{{user}}`, `{{persona}}`); the default when none was set or its row is damaged.
    public func userProfile() -> UserProfile {
        (try? read("cannot read the user profile") { db -> UserProfile? in
            guard let r = try Row.fetchOne(db, sql: "SELECT value, crc FROM profile WHERE key = 'user'"),
                  let json = SessionSchema.text(r, "value"), let c = SessionSchema.integer(r, "crc"),
                  SessionSchema.crc(["user", json]) == c
            else { return nil }
            return try? JSONDecoder().decode(UserProfile.self, from: Data(json.utf8))
        }) ?? UserProfile()
    }

    /// Saves the user's profile for every later session and front end.
    public func setUserProfile(_ p: UserProfile) throws(ChatError) {
        try write("cannot save the user profile") { db in
            let json = try SessionSchema.jsonText(p)
            try db.execute(sql: "INSERT OR REPLACE INTO profile (key, value, crc) VALUES ('user', ?, ?)",
                           arguments: [json, SessionSchema.crc(["user", json])])
        }
    }

    /// The texts a message had before its edits, oldest first.
    public func textHistory(_ id: String, message: String) throws(ChatError) -> [String] {
        try read("cannot read session '\(id)'") { db in
            try String.fetchAll(db, sql: "SELECT text FROM message_history WHERE session_id = ? AND message_id = ? ORDER BY n",
                                arguments: [id, message])
        }
    }

    /// Sessions whose title or messages contain `text` (case-insensitive for Latin letters),
    /// newest session first, then in writing order. Removed messages are not searched.
    public func search(_ text: String, limit: Int = 50) throws(ChatError) -> [SessionSearchHit] {
        let q = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !q.isEmpty else { throw ChatError("", "nothing to search for") }
        // LIKE's own wildcards in the query: ask for a superset, keep the exact matches below.
        // The trigram index cannot answer a LIKE with fewer than 3 characters (SQLite 3.40
        // then returns nothing at all): those scan with instr.
        let short = fullTextSearch && q.unicodeScalars.count < 3
        let wild = !short && (q.contains("%") || q.contains("_"))
        let cols = SessionSchema.SessionRow.columns.split(separator: ",").map { "x." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")
        let rows = try read("cannot search") { db in
            try Row.fetchAll(db, sql: """
                SELECT s.message_id AS hit_message, s.text AS hit_text, \(cols)
                FROM search s JOIN sessions x ON x.id = s.session_id
                LEFT JOIN messages m ON s.message_id <> '' AND m.session_id = s.session_id AND m.id = s.message_id
                WHERE \(short ? "instr(lower(s.text), lower(?)) > 0" : "s.text LIKE ?") AND (s.message_id = '' OR m.removed = 0)
                ORDER BY x.updated DESC, x.id DESC, s.message_id <> '', m.seq
                \(wild ? "" : "LIMIT \(max(0, limit))")
                """, arguments: [short ? q : "%\(q)%"])
        }
        var hits: [SessionSearchHit] = []
        for r in rows where hits.count < limit {
            guard let row = SessionSchema.SessionRow.decode(r).row, let m = SessionSchema.text(r, "hit_message"),
                  let t = SessionSchema.text(r, "hit_text"), let range = t.range(of: q, options: .caseInsensitive) else { continue }
            hits.append(SessionSearchHit(session: row.summary, message: m.isEmpty ? nil : m, snippet: Self.snippet(t, range)))
        }
        return hits
    }

    /// The match with up to 20 characters before and 40 after, newlines as spaces.
    static func snippet(_ text: String, _ r: Range<String.Index>) -> String {
        let from = text.index(r.lowerBound, offsetBy: -20, limitedBy: text.startIndex) ?? text.startIndex
        let to = text.index(r.upperBound, offsetBy: 40, limitedBy: text.endIndex) ?? text.endIndex
        let body = text[from..<to].map { $0.isNewline ? " " : String($0) }.joined()
        return (from > text.startIndex ? "…" : "") + body + (to < text.endIndex ? "…" : "")
    }
}
