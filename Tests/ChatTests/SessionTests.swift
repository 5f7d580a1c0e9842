import Foundation
import Testing
@testable import Chat

/// A clock that ticks one second per reading, from a fixed start.
final class TestClock: @unchecked Sendable {
    private var t: Double
    private let lock = NSLock()
    init(_ start: Double = 1_700_000_000) { t = start }
    func now() -> Date { lock.lock(); defer { lock.unlock() }; t += 1; return Date(timeIntervalSince1970: t) }
}

@Suite struct SessionTests {
    func store(_ dir: TempDir) throws -> SessionStore {
        let clock = TestClock()
        return try SessionStore(directory: dir.path + "/sessions", clock: { clock.now() })
    }

    @Test func writesEveryEventAndReadsItBack() throws {
        let dir = try TempDir()
        let st = try store(dir)
        let s = try st.create(persona: "sanguo/liubei", title: "新野")
        let u1 = try s.add(.user, "曹操大军将至，玄德曰：")
        let a1 = try s.add(.assistant, "“当速往江陵。”", template: "glm-cosplay", adapters: ["adapters/sanguo-cosplay=1.0"])
        // Every call is on disk at once: another reader sees it without closing anything.
        let (c, warnings) = try st.read(s.id)
        #expect(warnings.isEmpty)
        #expect(c.path.map(\.id) == [u1.id, a1.id])
        #expect(c.path.map(\.text) == ["曹操大军将至，玄德曰：", "“当速往江陵。”"])
        #expect(c.path[1].adapters == ["adapters/sanguo-cosplay=1.0"] && c.path[1].persona == "sanguo/liubei")
        #expect(c == s.conversation)
        let lines = try String(contentsOfFile: st.path(s.id), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3 && lines[0].contains("\"type\":\"session\""))
        #expect(Utterance.Role.user.rawValue == "user" && c.utterances() == [.user(u1.text), .assistant(a1.text)])
    }

    @Test func alternativesAndBranchPoints() throws {
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
        #expect(s.conversation.path.map(\.id) == [q.id, r1.id, q2.id])
        try s.record(.select(r2.id))                                       // the other branch has no follow-up
        #expect(s.conversation.path.map(\.id) == [q.id, r2.id])
        try s.record(.select(q2.id))
        try s.record(.persona("sanguo/zhangfei"))
        let a3 = try s.add(.assistant, "“俺也去！”")
        #expect(a3.persona == "sanguo/zhangfei")
        try s.record(.edit(id: a3.id, text: "“俺也去也！”"))
        try s.record(.remove(q2.id))
        #expect(s.conversation.path.map(\.id) == [q.id, r1.id])
        let (again, _) = try st.read(s.id)
        #expect(again == s.conversation, "replaying the log rebuilds the same conversation")
        #expect(again.message(a3.id)?.text == "“俺也去也！”")
    }

    @Test func listRenameBranchDeleteExport() throws {
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
        #expect(errors.isEmpty && list.map(\.id).sorted() == [s1.id, s2.id].sorted())
        #expect(list.first { $0.id == s1.id }?.title == "桃园")
        #expect(list.first { $0.id == s1.id }?.messageCount == 2)   // m1 + the selected alternative

        let b = try st.branch(s1.id, at: m2.id)
        #expect(b.conversation.origin == .init(session: s1.id, message: m2.id))
        #expect(b.conversation.path.map(\.text) == [m1.text, m2.text])
        #expect(try st.read(s1.id).conversation.messages.count == 4, "the original is untouched")

        let md = TranscriptExport.markdown(try st.read(s1.id).conversation, names: ["sanguo/liubei": "刘备"])
        #expect(md.hasPrefix("# 桃园\n") && md.contains("**刘备**（2/2）：\n\n> “备虽不才。”") && md.contains("**你**："))
        let jl = TranscriptExport.jsonl(b.conversation).split(separator: "\n")
        #expect(jl.count == 2)
        let first = try JSONDecoder().decode(Message.self, from: Data(jl[0].utf8))
        #expect(first.role == .user && first.text == m1.text)

        try st.delete(s2.id)
        (list, errors) = st.list()
        #expect(Set(list.map(\.id)) == [s1.id, b.id])
        #expect(throws: ChatError.self) { try st.delete(s2.id) }
    }

    /// A crash mid-write leaves a torn last line: it is skipped with a warning, every earlier
    /// message is kept, and writing resumes on a fresh line.
    @Test func tornLastLineIsSkippedWithAWarning() throws {
        let dir = try TempDir()
        let st = try store(dir)
        let s = try st.create(persona: "sanguo/liubei")
        for i in 0..<5 { try s.add(i % 2 == 0 ? .user : .assistant, "第\(i)句") }
        let path = st.path(s.id)
        let full = try Data(contentsOf: URL(fileURLWithPath: path))
        let partial = SessionEvent.message(Message(id: "m6", parent: "m5", role: .assistant, text: "写到一半的回", time: 0)).line()
        // A whole event missing only its newline is kept (the write finished, the newline did not).
        try (full + Data(partial.dropLast())).write(to: URL(fileURLWithPath: path))
        #expect(try st.read(s.id).conversation.path.last?.text == "写到一半的回")
        #expect(try st.read(s.id).warnings.isEmpty)
        for cut in [1, partial.count / 2, partial.count - 2] {
            try (full + Data(partial.prefix(cut))).write(to: URL(fileURLWithPath: path))
            let (c, warnings) = try st.read(s.id)
            #expect(c.path.map(\.text) == (0..<5).map { "第\($0)句" })
            #expect(warnings.count == 1 && warnings[0].contains("incomplete last line"), "\(warnings)")
        }
        let resumed = try st.resume(s.id)
        #expect(resumed.warnings.count == 1)
        try resumed.add(.assistant, "重新写完的回答")
        let (c, warnings) = try st.read(s.id)
        #expect(c.path.map(\.text).last == "重新写完的回答" && c.path.count == 6)
        #expect(warnings.count == 1 && warnings[0].contains("unreadable line"), "the fragment stays, now a middle line")
    }

    @Test func missingHeaderIsAnError() throws {
        let dir = try TempDir()
        let st = try store(dir)
        try Data("{\"type\":\"rename\",\"title\":\"x\"}\n".utf8).write(to: URL(fileURLWithPath: st.path("bad")))
        #expect(throws: ChatError.self) { try st.read("bad") }
        let (list, errors) = st.list()
        #expect(list.isEmpty && errors.count == 1)
    }
}

/// The real thing: a child process writing through the store is killed with SIGKILL in the
/// middle of writing a big message (the parent watches the file and kills the child while its
/// last line is unfinished); the session resumes with every earlier message intact, the torn
/// line skipped with a warning, and writing goes on.
@Suite struct SessionCrashTests {
    static let envDir = "YANYI_CRASH_SESSION_DIR"
    static let envID = "YANYI_CRASH_SESSION_ID"

    static func text(_ i: Int) -> String { String(repeating: "第\(i)回，话说天下大势。", count: 150_000) }   // ~5 MB

    @Test func killedMidWriteResumesIntact() throws {
        let env = ProcessInfo.processInfo.environment
        if let dir = env[Self.envDir], let id = env[Self.envID] {
            // Child: append forever; the parent kills us.
            let s = try SessionStore(directory: dir).resume(id)
            var i = 0
            while true {
                try s.add(i % 2 == 0 ? .user : .assistant, Self.text(i))
                i += 1
            }
        }
        var torn = 0
        for attempt in 0..<3 {
            let (messages, warnings) = try Self.crashOnce()
            #expect(messages >= 2, "attempt \(attempt): the child wrote too little")
            if warnings.contains(where: { $0.contains("incomplete last line") }) { torn += 1 }
            if torn > 0 { break }
        }
        #expect(torn > 0, "no attempt caught the child mid-write")
    }

    /// Starts a writer, kills it while its last line is unfinished, resumes and checks.
    static func crashOnce() throws -> (messages: Int, warnings: [String]) {
        let dir = try TempDir()
        let st = try SessionStore(directory: dir.path)
        let s = try st.create(persona: "sanguo/liubei", title: "crash")
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        child.arguments = ["--testing-library", "swift-testing", "--filter", "killedMidWriteResumesIntact"]
        child.environment = ProcessInfo.processInfo.environment.merging([envDir: dir.path, envID: s.id]) { $1 }
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        let fd = open(st.path(s.id), O_RDONLY)
        defer { close(fd) }
        let deadline = Date().addingTimeInterval(60)
        var caught = false
        var byte: UInt8 = 0
        let twoAndAHalf = off_t(text(0).utf8.count * 5 / 2)   // past two whole messages, into the third
        while Date() < deadline {   // after two messages, wait for a moment when the last line is unfinished
            var sb = stat()
            fstat(fd, &sb)
            if sb.st_size > twoAndAHalf, pread(fd, &byte, 1, off_t(sb.st_size - 1)) == 1, byte != 0x0A {
                caught = true
                break
            }
            usleep(50)
        }
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        #expect(child.terminationReason == .uncaughtSignal)
        #expect(caught, "the file never showed an unfinished line")

        let resumed = try st.resume(s.id)
        let path = resumed.conversation.path
        for (i, m) in path.enumerated() {
            #expect(m.text == text(i), "message \(i) damaged")
        }
        #expect(resumed.warnings.count <= 1)
        try resumed.add(.user, "劫后余生")
        let (c, w) = try st.read(s.id)
        #expect(c.path.count == path.count + 1 && c.path.last?.text == "劫后余生")
        #expect(w.count == resumed.warnings.count, "the torn fragment stays in the file as one skipped line")
        print("crash test: \(path.count) messages intact, warnings: \(resumed.warnings.map { $0.split(separator: ":").dropFirst(2).joined(separator: ":") })")
        return (path.count, resumed.warnings)
    }
}
