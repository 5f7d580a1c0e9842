import Foundation
import GRDB
import Testing
@testable import Chat

/// A clock that ticks one second per reading, from a fixed start.
final class TestClock: @unchecked Sendable {
    private var t: Double
    private let lock = NSLock()
    init(_ start: Double = 1_700_000_000) { t = start }
    func now() -> Date { lock.lock(); defer { lock.unlock() }; t += 1; return Date(timeIntervalSince1970: t) }
}

/// A session as the JSONL SessionLog of earlier versions wrote it: greeting, a question, a
/// reply and its retry (a swipe), a select back, an edit, a rename, a persona change, a
/// removed reply and its replacement.
enum LegacySample {
    static let t = 1_700_000_000.0

    static func events(id: String = "20231114-221320") -> [SessionEvent] {
        func m(_ id: String, _ parent: String?, _ role: Message.Role, _ text: String, _ dt: Double,
               persona: String = "sanguo/liubei", greeting: Bool? = nil) -> SessionEvent {
            .message(Message(id: id, parent: parent, role: role, text: text, persona: persona, time: t + dt,
                             template: role == .assistant ? "glm-cosplay" : nil,
                             adapters: role == .assistant ? ["adapters/sanguo-cosplay=1.0"] : nil, greeting: greeting))
        }
        return [
            .header(.init(id: id, title: "新野", created: t, persona: "sanguo/liubei")),
            m("m1", nil, .assistant, "备乃汉室宗亲。", 1, greeting: true),
            m("m2", "m1", .user, "曹操大军将至，玄德曰：", 2),
            m("m3", "m2", .assistant, "“当速往江陵。”", 3),
            m("m4", "m2", .assistant, "“携民渡江。”", 4),
            .select("m3"),
            m("m5", "m3", .user, "孔明曰：", 5),
            m("m6", "m5", .assistant, "“主公勿忧。”", 6),
            .edit(id: "m6", text: "“主公勿忧，亮自有计。”"),
            .rename("新野之战"),
            .persona("sanguo/zhugeliang"),
            m("m7", "m6", .user, "然后呢？", 7),
            m("m8", "m7", .assistant, "“火烧新野。”", 8, persona: "sanguo/zhugeliang"),
            .remove("m8"),
            m("m9", "m7", .assistant, "“借东风。”\n（第二行）", 9, persona: "sanguo/zhugeliang"),
        ]
    }

    static func lines(_ events: [SessionEvent]) -> [Data] { events.map { Data($0.line().dropLast()) } }
    static func file(_ lines: [Data]) -> Data { Data(lines.map { $0 + Data([0x0A]) }.joined()) }

    static func replay(_ events: [SessionEvent]) -> Conversation {
        var c = Conversation(id: "", title: "", created: 0, persona: nil)
        for e in events { c.apply(e) }
        return c
    }
}

@Suite struct SessionTests {
    func store(_ dir: TempDir, clock: TestClock = TestClock()) throws -> SessionStore {
        try SessionStore(database: dir.path + "/sessions.sqlite", clock: { clock.now() })
    }

    func count(_ st: SessionStore, _ sql: String, _ args: StatementArguments = []) throws -> Int {
        try st.queue.read { db in try Int.fetchOne(db, sql: sql, arguments: args) ?? -1 }
    }

    @Test func writesEveryEventAndReadsItBack() throws {
        let dir = try TempDir()
        let st = try store(dir)
        let s = try st.create(persona: "sanguo/liubei", title: "新野")
        let u1 = try s.add(.user, "曹操大军将至，玄德曰：")
        let a1 = try s.add(.assistant, "“当速往江陵。”", template: "glm-cosplay", adapters: ["adapters/sanguo-cosplay=1.0"], partial: true)
        // Committed at once: another connection (another process would do the same) sees it.
        let other = try store(dir)
        let (c, warnings) = try other.read(s.id)
        #expect(warnings.isEmpty)
        #expect(c == s.conversation)
        #expect(c.path.map(\.id) == [u1.id, a1.id] && c.path.map(\.text) == [u1.text, a1.text])
        #expect(c.path[1].adapters == ["adapters/sanguo-cosplay=1.0"] && c.path[1].persona == "sanguo/liubei")
        #expect(c.path[1].template == "glm-cosplay" && c.path[1].partial == true && c.path[0].partial == nil)
        #expect(c.utterances() == [.user(u1.text), .assistant(a1.text)])
        #expect(try count(st, "SELECT count(*) FROM messages") == 2)
        // The file is in WAL mode with full sync and foreign keys on.
        let pragmas = try st.queue.read { db in
            [try String.fetchOne(db, sql: "PRAGMA journal_mode"), try String.fetchOne(db, sql: "PRAGMA synchronous"),
             try String.fetchOne(db, sql: "PRAGMA foreign_keys")]
        }
        #expect(pragmas == ["wal", "2", "1"])
        // An id is a key: an unknown one (path-like or not) is one line naming the id.
        for id in ["nope", "../sessions", ""] {
            #expect(throws: ChatError("", "no session '\(id)' (yanyi sessions ls lists them)")) { try st.read(id) }
            #expect(throws: ChatError.self) { try st.resume(id) }
        }
    }

    @Test func alternativesEditsAndBranchPoints() throws {
        let dir = try TempDir()
        let st = try store(dir)
        let s = try st.create(persona: "assistants/plain")
        let q = try s.add(.user, "讲个故事")
        let r1 = try s.add(.assistant, "从前有座山。")
        let r2 = try s.addAlternative(to: r1.id, text: "很久很久以前。")   // retry: a swipe
        #expect(s.conversation.alternatives(of: r1.id).map(\.id) == [r1.id, r2.id])
        #expect(s.conversation.path.map(\.id) == [q.id, r2.id])
        try s.record(.select(r1.id))                                       // swipe back
        #expect(s.conversation.path.map(\.id) == [q.id, r1.id])
        let q2 = try s.add(.user, "然后呢？")
        try s.record(.select(r2.id))                                       // the other branch has no follow-up
        #expect(s.conversation.path.map(\.id) == [q.id, r2.id])
        try s.record(.select(q2.id))
        try s.record(.persona("sanguo/zhangfei"))
        let a3 = try s.add(.assistant, "“俺也去！”")
        #expect(a3.persona == "sanguo/zhangfei")
        try s.record(.edit(id: a3.id, text: "“俺也去也！”"))
        try s.record(.edit(id: a3.id, text: "“俺也去也也！”"))
        try s.record(.remove(q2.id))
        #expect(s.conversation.path.map(\.id) == [q.id, r1.id])
        let (again, warnings) = try st.read(s.id)
        #expect(warnings.isEmpty)
        #expect(again == s.conversation, "the rows rebuild the same conversation, selections included")
        #expect(again.message(a3.id)?.text == "“俺也去也也！”" && again.persona == "sanguo/zhangfei")
        // Edits keep the earlier texts as rows, oldest first; alternatives are rows of their own.
        #expect(try st.textHistory(s.id, message: a3.id) == ["“俺也去！”", "“俺也去也！”"])
        #expect(try st.textHistory(s.id, message: r1.id) == [])
        #expect(try count(st, "SELECT count(*) FROM messages WHERE session_id = ?", [s.id]) == 5)
        #expect(try count(st, "SELECT removed FROM messages WHERE session_id = ? AND id = ?", [s.id, q2.id]) == 1)
        // A resumed session goes on where it was, with fresh ids.
        let resumed = try st.resume(s.id)
        let next = try resumed.add(.user, "再来")
        #expect(next.id == "m6" && next.parent == r1.id)
        #expect(try st.read(s.id).conversation == resumed.conversation)
    }

    @Test func listRenameBranchDelete() throws {
        let dir = try TempDir()
        let st = try store(dir)
        let s1 = try st.create(persona: "sanguo/liubei", title: "一")
        let m1 = try s1.add(.user, "玄德曰：")
        let m2 = try s1.add(.assistant, "“吾乃中山靖王之后。”")
        _ = try s1.add(.user, "关公曰：")
        _ = try s1.addAlternative(to: m2.id, text: "“备虽不才。”")
        let s2 = try st.create(persona: "assistants/plain", title: "二")
        try st.rename(s1.id, to: "桃园")
        var (list, errors) = st.list()
        // Newest activity first: s2 was created after s1's last message.
        #expect(errors.isEmpty && list.map(\.id) == [s2.id, s1.id])
        #expect(list[1].title == "桃园" && list[1].messageCount == 2 && list[1].persona == "sanguo/liubei")
        try s1.add(.user, "再问")
        #expect(st.list().sessions.map(\.id) == [s1.id, s2.id], "a new message moves a session up")
        #expect(st.list().sessions[0].messageCount == 3)

        let b = try st.branch(s1.id, at: m2.id)
        #expect(b.conversation.origin == .init(session: s1.id, message: m2.id))
        #expect(b.conversation.path.map(\.text) == [m1.text, m2.text] && b.conversation.title == "桃园 (分支)")
        #expect(try st.read(b.id).conversation == b.conversation)
        #expect(try st.read(s1.id).conversation.messages.count == 5, "the original is untouched")
        #expect(st.list().sessions.first { $0.id == b.id }?.origin?.message == m2.id)
        #expect(throws: ChatError.self) { try st.branch(s1.id, at: "m99") }

        try st.delete(s2.id)
        (list, errors) = st.list()
        #expect(Set(list.map(\.id)) == [s1.id, b.id] && errors.isEmpty)
        #expect(throws: ChatError("", "no session '\(s2.id)' (yanyi sessions ls lists them)")) { try st.delete(s2.id) }
        #expect(throws: ChatError.self) { try st.rename(s2.id, to: "x") }
        // Deleting cascades: nothing of the session is left, in any table.
        try st.delete(s1.id)
        for table in ["messages", "selections", "message_history"] {
            #expect(try count(st, "SELECT count(*) FROM \(table) WHERE session_id = ?", [s1.id]) == 0, "\(table)")
        }
        #expect(try count(st, "SELECT count(*) FROM search WHERE session_id = ?", [s1.id]) == 0)
        // A session deleted elsewhere while open: the next write says so instead of failing oddly.
        #expect(throws: ChatError.self) { try s1.add(.user, "还在吗") }
        #expect(s1.conversation.messages.count == 5, "a failed write changes nothing in memory")
    }

    /// Markdown and JSONL as before; SillyTavern's chat file (a header line, then one line per
    /// shown message with its alternatives as swipes); writes that fail are errors.
    @Test func exportsAndWrites() throws {
        let dir = try TempDir()
        let st = try store(dir)
        let s = try st.create(persona: "sanguo/liubei", title: "桃园")
        let m1 = try s.add(.user, "玄德曰：")
        let m2 = try s.add(.assistant, "“吾乃中山靖王之后。”")
        _ = try s.add(.user, "关公曰：")
        let alt = try s.addAlternative(to: m2.id, text: "“备虽不才。”\n“愿往。”")
        try s.add(.system, "（张飞至）")
        let c = try st.read(s.id).conversation
        let names = ["sanguo/liubei": "刘备"]

        let md = TranscriptExport.markdown(c, names: names)
        #expect(md.hasPrefix("# 桃园\n") && md.contains("**刘备**（2/2）：\n\n> “备虽不才。”\n> “愿往。”") && md.contains("**你**："))
        let jl = TranscriptExport.jsonl(c).split(separator: "\n")
        #expect(jl.count == 3)
        let first = try JSONDecoder().decode(Message.self, from: Data(jl[0].utf8))
        #expect(first.role == .user && first.text == m1.text && first.parent == nil)

        let st1 = TranscriptExport.sillyTavern(c, names: names, userName: "玄德公").split(separator: "\n").map(String.init)
        #expect(st1.count == 4)
        #expect(st1[0] == #"{"user_name":"玄德公","character_name":"刘备","create_date":"2023-11-14 @22h 13m 21s 00ms","chat_metadata":{}}"#)
        func object(_ line: String) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        let q = try object(st1[1])
        #expect(q["name"] as? String == "玄德公" && q["is_user"] as? Bool == true && q["is_system"] as? Bool == false)
        #expect(q["mes"] as? String == m1.text && q["swipes"] as? [String] == [m1.text] && q["swipe_id"] as? Int == 0)
        #expect(q["send_date"] as? String == "2023-11-14T22:13:22.000Z")
        let a = try object(st1[2])
        #expect(a["name"] as? String == "刘备" && a["is_user"] as? Bool == false && a["mes"] as? String == alt.text)
        #expect(a["swipes"] as? [String] == [m2.text, alt.text] && a["swipe_id"] as? Int == 1)
        #expect((a["extra"] as? [String: Any])?.isEmpty == true)
        let note = try object(st1[3])
        #expect(note["name"] as? String == "系统" && (note["extra"] as? [String: String]) == ["type": "narrator"])
        #expect(st1[1].hasPrefix(#"{"name":"玄德公","is_user":true,"is_system":false,"send_date":"#), "SillyTavern's key order")

        let out = dir.file("t.jsonl")
        try TranscriptExport.write(TranscriptExport.sillyTavern(c), to: out)
        #expect(try String(contentsOfFile: out, encoding: .utf8) == TranscriptExport.sillyTavern(c))
        try TranscriptExport.write("短", to: out)
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "短", "an existing file is replaced, not appended to")
        #expect(throws: ChatError.self) { try TranscriptExport.write(md, to: "/dev/full") }
        #expect(throws: ChatError.self) { try TranscriptExport.write(md, to: dir.file("no/such/folder/t.md")) }
        do {
            try TranscriptExport.write(md, to: "/dev/full")
        } catch {
            #expect(error.description == "/dev/full: write failed (No space left on device)")
        }
    }

    /// Debian's libsqlite3 has FTS5 with the trigram tokenizer: search uses the index (checked
    /// in the plan), finds Chinese substrings of any length, titles, Latin letters in either
    /// case, and the current text of an edited message; removed messages and deleted sessions
    /// are not found.
    @Test func searchFindsSubstringsInTitlesAndMessages() throws {
        let dir = try TempDir()
        let st = try store(dir)
        #expect(st.fullTextSearch, "this SQLite has no FTS5: search falls back to scanning")
        let a = try st.create(persona: "sanguo/liubei", title: "三顾茅庐")
        let a1 = try a.add(.user, "玄德曰：先生大才，Liu Bei 100% sincere_ly。")
        let a2 = try a.add(.assistant, "孔明笑而不答。")
        let b = try st.create(persona: "xiyou/sunwukong", title: "大闹天宫")
        let b1 = try b.add(.user, "大圣曰：俺老孙来也！")
        let b2 = try b.add(.assistant, "玉帝大惊。")
        try b.record(.edit(id: b2.id, text: "玉帝大惊失色。"))
        let gone = try b.add(.user, "这句被删了：茅庐")
        try b.record(.remove(gone.id))

        func hits(_ q: String) throws -> [String] { try st.search(q).map { "\($0.session.id)/\($0.message ?? "title")" } }
        #expect(try hits("茅庐") == ["\(a.id)/title"], "removed messages are not searched")
        #expect(try hits("孔明") == ["\(a.id)/\(a2.id)"])
        #expect(try hits("曰") == ["\(b.id)/\(b1.id)", "\(a.id)/\(a1.id)"], "one character; newest session first")
        #expect(try hits("先生大才") == ["\(a.id)/\(a1.id)"])
        #expect(try hits("liu bei") == ["\(a.id)/\(a1.id)"])
        #expect(try hits("失色") == ["\(b.id)/\(b2.id)"] && (try hits("大惊。")).isEmpty, "the edited text, not the old one")
        #expect(try hits("100%") == ["\(a.id)/\(a1.id)"] && (try hits("1%0")).isEmpty, "% and _ are plain characters")
        #expect(try hits("e_l") == ["\(a.id)/\(a1.id)"] && (try hits("e_x")).isEmpty)
        #expect(try hits("不存在的话").isEmpty)
        #expect(try st.search("大", limit: 2).count == 2)
        let hit = try #require(try st.search("孔明").first)
        #expect(hit.snippet == "孔明笑而不答。" && hit.session.title == "三顾茅庐" && hit.session.messageCount == 2)
        let long = try a.add(.user, String(repeating: "前文", count: 30) + "关键" + String(repeating: "后文", count: 30))
        let snip = try #require(try st.search("关键").first { $0.message == long.id }).snippet
        #expect(snip.hasPrefix("…") && snip.hasSuffix("…") && snip.contains("关键") && snip.count == 20 + 2 + 40 + 2)
        try st.delete(a.id)
        #expect(try hits("孔明").isEmpty)
        #expect(throws: ChatError.self) { try st.search("  ") }
        // The index answers queries of 3 characters or more.
        let plan = try st.queue.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT * FROM search WHERE text LIKE '%大闹天%'").map { $0["detail"] as String? ?? "" }
        }
        #expect(plan.contains { $0.contains("VIRTUAL TABLE INDEX") }, "\(plan)")
    }

    /// The store refuses what would break the tree, and so does the schema underneath it.
    @Test func refusesCyclesUnknownParentsAndDuplicateIDs() throws {
        let dir = try TempDir()
        let st = try store(dir)
        let s = try st.create(persona: nil)
        let m1 = try s.add(.user, "一")
        let before = s.conversation
        let bad: [Message] = [
            Message(id: "m2", parent: "m2", role: .user, text: "自己", time: 0),
            Message(id: "m2", parent: "m9", role: .user, text: "无父", time: 0),
            Message(id: m1.id, parent: nil, role: .user, text: "重复", time: 0),
            Message(id: "", parent: nil, role: .user, text: "无名", time: 0),
        ]
        for m in bad { #expect(throws: ChatError.self) { try s.record(.message(m)) } }
        for e in [SessionEvent.select("m9"), .edit(id: "m9", text: "x"), .remove("m9"),
                  .header(.init(id: "other", title: "x", created: 0, persona: nil))] {
            #expect(throws: ChatError.self) { try s.record(e) }
        }
        #expect(s.conversation == before)
        #expect(try st.read(s.id).conversation == before)
        #expect(try count(st, "SELECT count(*) FROM messages") == 1)

        // The schema: CHECK (parent <> id), the foreign key to a message of the same session,
        // parents that never change, roles from the list, cascades.
        let other = try st.create(persona: nil)
        try other.add(.user, "别处")
        try other.add(.user, "别处二")
        func insert(_ session: String, _ id: String, _ parent: String?, role: String = "user") throws {
            try st.queue.write { db in
                try db.execute(sql: "INSERT INTO messages (session_id, id, parent, role, text, time, seq, crc) VALUES (?, ?, ?, ?, 'x', 0, 100, 0)",
                               arguments: [session, id, parent, role])
            }
        }
        #expect(throws: DatabaseError.self) { try insert(s.id, "x1", "x1") }           // its own parent
        #expect(throws: DatabaseError.self) { try insert(s.id, "x1", "nope") }         // unknown parent
        #expect(throws: DatabaseError.self) { try insert(s.id, "x1", "m1", role: "robot") }
        #expect(throws: DatabaseError.self) { try insert("no-such-session", "x1", nil) }
        #expect(throws: DatabaseError.self) { try insert(s.id, "x1", "m2") }           // m2 is in the other session only
        #expect(throws: DatabaseError.self) {                                           // re-parenting (a cycle's only way in)
            try st.queue.write { db in try db.execute(sql: "UPDATE messages SET parent = NULL WHERE session_id = ? AND id = 'm1'", arguments: [s.id]) }
        }
        #expect(try count(st, "SELECT count(*) FROM messages") == 3)
    }

    /// `apply` itself refuses a message that is its own parent (the old replay spun forever on
    /// one), an unknown parent, a duplicate id; `path` stays finite; new ids are never reused.
    @Test func conversationApplyRefusesWhatWouldLoop() {
        var c = Conversation(id: "s", title: "t", created: 0, persona: nil)
        func apply(_ e: SessionEvent) -> Bool { c.apply(e) }
        func msg(_ id: String, _ parent: String?) -> SessionEvent { .message(Message(id: id, parent: parent, role: .user, text: id, time: 0)) }
        #expect(apply(msg("m1", nil)))
        let before = c
        #expect(c.refusal(of: msg("m2", "m2")) == "message 'm2' is its own parent")
        #expect(c.refusal(of: msg("m2", "m7")) == "message 'm2' has an unknown parent 'm7'")
        #expect(c.refusal(of: msg("m1", nil)) == "duplicate message id 'm1'")
        #expect(!apply(msg("m2", "m2")) && !apply(msg("m2", "m7")) && !apply(msg("m1", nil)))
        #expect(!apply(.select("m7")) && !apply(.edit(id: "m7", text: "")) && !apply(.remove("m7")))
        #expect(c == before && c.path.map(\.id) == ["m1"])
        #expect(apply(msg("m3", "m1")))
        #expect(c.nextMessageID == "m4", "m2 is free but lower than an id in use; counting would give m3")
        #expect(apply(msg("m4", "m3")))
        #expect(c.path.map(\.id) == ["m1", "m3", "m4"])
    }

    @Test func migratesAnEmptyFileAndRefusesANewerSchema() throws {
        let dir = try TempDir()
        let path = dir.path + "/sessions.sqlite"
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        let (st, notices) = SessionStore.open(database: path, importingFrom: nil, clock: { TestClock().now() })
        #expect(notices.isEmpty && !st.isInMemory)
        let (migrations, tables) = try st.queue.read { db in
            (try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations"),
             try ["sessions", "messages", "selections", "message_history", "legacy_imports", "search", "casts",
                  "session_settings", "profile"].filter { try db.tableExists($0) })
        }
        #expect(migrations == ["v1", "v2-cast", "v3-settings"] && tables.count == 9)
        _ = try st.create(persona: nil, title: "留")
        st.close()
        // Opening again migrates nothing and keeps the data.
        let again = try SessionStore(database: path)
        #expect(again.list().sessions.map(\.title) == ["留"])
        // A database a newer yanyi migrated further is not ours to change or move: in memory.
        try again.queue.write { db in try db.execute(sql: "INSERT INTO grdb_migrations VALUES ('v99-from-the-future')") }
        again.close()
        let (newer, why) = SessionStore.open(database: path, importingFrom: nil)
        #expect(newer.isInMemory && why.count == 1 && why[0].contains("newer yanyi") && why[0].contains("will not be saved"), "\(why)")
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(try !FileManager.default.contentsOfDirectory(atPath: dir.path).contains { $0.contains("damaged") })
        #expect(throws: ChatError.self) { try SessionStore(database: path) }
    }

    /// A damaged file is one notice naming it; it is moved aside whole and a fresh database
    /// works at once. A folder that cannot be made leaves a store in memory that says so.
    @Test func damagedDatabaseIsMovedAsideAndAFreshOneWorks() throws {
        let dir = try TempDir()
        let path = dir.path + "/data/sessions.sqlite"
        try FileManager.default.createDirectory(atPath: dir.path + "/data", withIntermediateDirectories: true)
        let garbage = Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 7919) })
        try garbage.write(to: URL(fileURLWithPath: path))
        let clock = TestClock()
        let (st, notices) = SessionStore.open(database: path, importingFrom: nil, clock: { clock.now() })
        #expect(notices.count == 1 && !notices[0].contains("\n"), "\(notices)")
        #expect(notices[0].hasPrefix(path + ": damaged (") && notices[0].contains("moved aside to sessions.sqlite.damaged-20231114-")
                && notices[0].hasSuffix("and started a fresh database"), "\(notices)")
        let aside = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/data").filter { $0.contains(".damaged-") }
        #expect(aside.count == 1 && FileManager.default.contents(atPath: dir.path + "/data/" + aside[0]) == garbage)
        let s = try st.create(persona: nil)
        try s.add(.user, "新的开始")
        #expect(try st.read(s.id).conversation.path.map(\.text) == ["新的开始"] && !st.isInMemory)
        st.close()
        #expect(SessionStore.open(database: path, importingFrom: nil).notices.isEmpty, "the fresh file opens clean")

        try Data("not a folder".utf8).write(to: URL(fileURLWithPath: dir.path + "/file"))
        let (mem, why) = SessionStore.open(database: dir.path + "/file/sub/sessions.sqlite", importingFrom: nil)
        #expect(mem.isInMemory && why.count == 1 && why[0].hasSuffix("sessions will not be saved"), "\(why)")
        let m = try mem.create(persona: nil)
        try m.add(.user, "只在内存")
        #expect(try mem.read(m.id).conversation.path.count == 1)
    }

    /// The old JSONL sessions come in once, each exactly as its events describe it (edits'
    /// earlier texts kept); a restart imports nothing again; a changed file is reported once.
    @Test func importsLegacySessionsOnce() throws {
        let dir = try TempDir()
        let events = LegacySample.events()
        try LegacySample.file(LegacySample.lines(events)).write(to: URL(fileURLWithPath: dir.file("20231114-221320.jsonl")))
        let second = [SessionEvent.header(.init(id: "20231115-080000", title: "二", created: LegacySample.t + 100, persona: nil,
                                                origin: .init(session: "20231114-221320", message: "m3"))),
                      .message(Message(id: "m1", parent: nil, role: .user, text: "分支", time: LegacySample.t + 101))]
        try LegacySample.file(LegacySample.lines(second)).write(to: URL(fileURLWithPath: dir.file("20231115-080000.jsonl")))
        try Data("not a session".utf8).write(to: URL(fileURLWithPath: dir.file("notes.txt")))
        let db = dir.file("sessions.sqlite")

        var (st, notices) = SessionStore.open(database: db, importingFrom: dir.path)
        #expect(notices.isEmpty, "\(notices)")
        let (c, warnings) = try st.read("20231114-221320")
        #expect(warnings.isEmpty && c == LegacySample.replay(events))
        #expect(c.title == "新野之战" && c.persona == "sanguo/zhugeliang" && c.path.map(\.id) == ["m1", "m2", "m3", "m5", "m6", "m7", "m9"])
        #expect(try st.textHistory(c.id, message: "m6") == ["“主公勿忧。”"])
        #expect(try st.read("20231115-080000").conversation.origin == .init(session: "20231114-221320", message: "m3"))
        #expect(st.list().sessions.map(\.id) == ["20231115-080000", "20231114-221320"])
        #expect(!FileManager.default.fileExists(atPath: dir.file("rejected")), "nothing was damaged")
        st.close()

        (st, notices) = SessionStore.open(database: db, importingFrom: dir.path)
        #expect(notices.isEmpty && st.list().sessions.count == 2, "a restart imports nothing twice")
        try st.rename("20231114-221320", to: "改过")
        st.close()
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file("20231115-080000.jsonl")))
        try h.seekToEnd()
        try h.write(contentsOf: SessionEvent.rename("后来").line())
        try h.close()
        (st, notices) = SessionStore.open(database: db, importingFrom: dir.path)
        #expect(notices.count == 1 && notices[0].contains("20231115-080000.jsonl: changed since it was imported"), "\(notices)")
        #expect(st.list().sessions.count == 2)
        #expect(try st.read("20231114-221320").conversation.title == "改过")
        st.close()
        #expect(SessionStore.open(database: db, importingFrom: dir.path).notices.isEmpty, "reported once")
    }

    /// The two failures of the old reader: a message that is its own parent made replay spin
    /// forever, and one line of invalid UTF-8 cut off every later message (they hung from it).
    /// Now each costs only its own line: reported as file:line, kept aside byte for byte, and
    /// every later message imports under its own id, on the shown path.
    @Test func selfParentAndInvalidUTF8CostOnlyTheirLine() throws {
        let dir = try TempDir()
        let legacy = dir.file("legacy")
        try FileManager.default.createDirectory(atPath: legacy, withIntermediateDirectories: true)
        var lines = LegacySample.lines(LegacySample.events())
        // line 7 (m5, under m3): one byte of its text replaced by 0xFF.
        let at = try #require(lines[6].firstRange(of: Data("孔明".utf8))).lowerBound
        lines[6][at] = 0xFF
        // line 3 (m2): made its own parent.
        lines[2] = Data(SessionEvent.message(Message(id: "m2", parent: "m2", role: .user, text: "自己", time: 1)).line().dropLast())
        let file = legacy + "/old.jsonl"
        try LegacySample.file(lines).write(to: URL(fileURLWithPath: file))

        let (st, notices) = SessionStore.open(database: dir.file("db/sessions.sqlite"), importingFrom: legacy)
        #expect(notices.contains("\(file):3: message 'm2' is its own parent"), "\(notices)")
        #expect(notices.contains { $0.hasPrefix("\(file):7: invalid UTF-8 at byte ") }, "\(notices)")
        #expect(notices.contains("\(file):4: message 'm3' has an unknown parent 'm2' (a damaged or later line); imported under 'm1' instead"))
        #expect(notices.contains("\(file):8: message 'm6' has an unknown parent 'm5' (a damaged or later line); imported under 'm3' instead"))
        #expect(notices.contains("\(file):5: message 'm4' has an unknown parent 'm2' (a damaged or later line); imported under 'm1' instead"),
                "m4 goes where its sibling m3 went: siblings stay siblings")
        #expect(notices.count == 5, "\(notices)")
        let c = try st.read("20231114-221320").conversation
        #expect(c.path.map(\.id) == ["m1", "m3", "m6", "m7", "m9"])
        #expect(c.message("m4")?.parent == "m1" && c.messages.count == 7 && c.message("m6")?.text == "“主公勿忧，亮自有计。”")
        #expect(c.nextMessageID == "m10", "ids are never reused")
        // Kept aside: the damaged lines and the repaired ones, exactly as they were.
        let rejected = try Data(contentsOf: URL(fileURLWithPath: dir.file("db/rejected/old.jsonl")))
        #expect(rejected == LegacySample.file([lines[2], lines[3], lines[4], lines[6], lines[7]]))
    }

    /// Every kind of damage a line can have is named with its line, and each such line is kept
    /// aside once; lines that import with a repair say what was repaired.
    @Test func everyDamagedLineIsReported() throws {
        let dir = try TempDir()
        let L = LegacySample.lines(LegacySample.events())
        func line(_ e: SessionEvent) -> Data { Data(e.line().dropLast()) }
        func msg(_ id: String, _ parent: String?) -> Data { line(.message(Message(id: id, parent: parent, role: .user, text: id, time: 1))) }
        var badUTF8 = msg("m14", "m9")
        badUTF8.insert(0xC3, at: badUTF8.count - 12)   // a lead byte with no continuation
        let lines: [Data] = [
            line(.rename("早")),                                                           // 1
            L[0],                                                                          // 2: the header
            Data(String(decoding: L[0], as: UTF8.self).replacingOccurrences(of: "\"v\"", with: "\"w\"").utf8),   // 3
            L[1], L[2],                                                                    // 4, 5: m1, m2
            L[3].prefix(20),                                                               // 6: m3 truncated
            Data("{\"type\":\"message\",\"message\":{\"id\":".utf8),                        // 7: garbage
            L[5],                                                                          // 8: select m3
            Data("{\"type\":\"teleport\",\"id\":\"m1\"}".utf8),                             // 9
            L[6],                                                                          // 10: m5, parent m3
            L[1],                                                                          // 11: m1 again
            Data(String(decoding: L[7], as: UTF8.self).replacingOccurrences(of: "persona", with: "persoma").utf8),  // 12: m6
            line(.select("m42")),                                                          // 13
            msg("m11", "m11"),                                                             // 14
            msg("m12", "m13"), msg("m13", "m12"),                                          // 15, 16: a cycle
            badUTF8,                                                                       // 17
            Data([0x7B, 0x22, 0x74, 0x79]),                                                // 18: {"ty — no newline after it
        ]
        let text = Data(lines.map { $0 + Data([0x0A]) }.joined().dropLast())
        let path = dir.file("broken.jsonl")
        try text.write(to: URL(fileURLWithPath: path))
        let st = SessionStore.inMemory { Date() }
        let (id, notices) = st.importLegacyFile(path, size: Int64(text.count), mtime: 0, rejectedFolder: dir.file("rejected"))
        let reported = notices.map { $0.replacingOccurrences(of: path + ":", with: "") }
        #expect(reported == [
            "1: comes before the session header (line 2)",
            "3: a second session header",
            "6: not valid JSON (truncated or garbage)",
            "7: not valid JSON (truncated or garbage)",
            "8: no message 'm3'",
            "9: unknown event type 'teleport'",
            "10: message 'm5' has an unknown parent 'm3' (a damaged or later line); imported under 'm2' instead",
            "11: duplicate message id 'm1' (first on line 4)",
            "12: unknown field 'message.persoma' ignored",
            "13: no message 'm42'",
            "14: message 'm11' is its own parent",
            "15: message 'm12' has an unknown parent 'm13' (a damaged or later line); imported under 'm6' instead",
            "17: invalid UTF-8 at byte \(badUTF8.count - 12)",
            "18: incomplete last line (4 bytes, written when the program stopped)",
        ], "\(reported)")
        let c = try st.read(try #require(id)).conversation
        #expect(c.path.map(\.id) == ["m1", "m2", "m5", "m6", "m12", "m13"])
        #expect(c.message("m6")?.persona == nil && c.message("m11") == nil && c.message("m13")?.parent == "m12")
        let kept = try Data(contentsOf: URL(fileURLWithPath: dir.file("rejected/broken.jsonl")))
        let keptLines = kept.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast()
        #expect(keptLines.map { Data($0) } == [0, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17].map { lines[$0] })
    }
}
