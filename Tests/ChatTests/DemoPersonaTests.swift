import Engine
import Foundation
import Testing
@testable import Chat

/// The shipped personas on the shipped demo models (Models/, trained by tools/demo): every persona finds
/// its model and adapters, and the LLaMA-based assistants load and answer through the Chat layer, CuteGPT
/// with its own template, sampling and stop rule.
@Suite struct DemoPersonaTests {
    static let models = ChatFixtures.repo.appendingPathComponent("Models").path
    static let library = PersonaLibrary.load(from: ChatFixtures.repo.appendingPathComponent("Personas").path)

    static func controller(_ dir: TempDir, _ id: String) throws -> ChatController {
        let p = try #require(library.persona(id))
        return ChatController(options: .init(modelsRoot: models), host: Runtime.host, library: library, store: try Runtime.store(dir),
                              persona: p)
    }

    @Test func everyShippedPersonaFindsItsFolders() {
        #expect(Self.library.errors.isEmpty && Self.library.personas.count >= 27)
        for p in Self.library.personas {
            #expect(p.missingFolders(modelsRoot: Self.models).isEmpty, "\(p.id)")
        }
    }

    /// CuteGPT (the demo's sampling at a fixed seed, 256 new tokens at most): each reply ends its turn
    /// (the text `<end>` or EOS) long before the limit, and the stored reply has no marker; the
    /// second turn carries the first in its prompt (`问：…\n答：\n{reply}\n`) and ends as well.
    @Test func cuteGPTAnswersAndEndsItsTurn() throws {
        let dir = try TempDir()
        let c = try Self.controller(dir, "assistants/cutegpt")
        try c.set("seed", "1")
        for q in ["如何缓解压力？", "什么是人工智能？"] {
            let r = try c.send(q)
            let m = try #require(r.message)
            #expect((r.reason == .stopString || r.reason == .eos) && r.tokens.count < 128, "\(q): \(r.reason.map(\.rawValue) ?? "nil") \(m.text)")
            #expect(!m.text.isEmpty && !m.text.contains("<end>") && !r.partial, "\(q): \(m.text)")
            #expect(m.template == "cutegpt" && m.adapters == ["adapters/cutegpt-style=1.0"])
        }
        #expect(c.conversation.path.filter { $0.role == .assistant && $0.greeting != true }.count == 2)
    }

    /// The plain assistant (no adapter, sampling) loads the LLaMA base and answers.
    @Test func plainAssistantAnswersOnTheLLaMABase() throws {
        let dir = try TempDir()
        let c = try Self.controller(dir, "assistants/plain")
        let r = try c.send("你好")
        #expect(r.error == nil && !r.partial && r.reason != nil && !r.tokens.isEmpty)
        #expect(r.message?.template == "plain" && r.message?.adapters == [])
    }

    /// tools/demo/quality.py's measure, whole: every shipped persona exactly as shipped (its sampling for
    /// the demo bases, int8) asked the 20 fixed scenes of its group (Tests/Fixtures/chat/quality-scenes.json),
    /// scene i at seed i + 1. The issue's bars: ≥ 90 % of all replies end their turn (EOS, <eop>, <end> or a
    /// stop string, and a cosplay reply closes its quote), ≥ 95 % repeat no character more than 3 times
    /// in a row, the mean over personas of each one's pooled distinct-2 ≥ 0.7; and RulaiGPT answers
    /// 到底来没来 with 如来. (Measured 99 %, 100 %, 0.73; the figures are printed.)
    @Test func shippedPersonasMeetTheQualityBar() throws {
        struct Fixture: Decodable { let scenes: [String: [String]]; let rulai_question: String }
        let url = ChatFixtures.repo.appendingPathComponent("Tests/Fixtures/chat/quality-scenes.json")
        let fx = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        var replies = 0, ended = 0, runsOK = 0
        var d2: [String: Double] = [:]
        var lines: [String] = []
        for p in Self.library.personas {
            let scenes = try #require(fx.scenes[p.group] ?? fx.scenes["assistants"])
            #expect(scenes.count == 20)
            let cosplay = p.template == "glm-cosplay"
            var texts: [String] = []
            for (i, scene) in scenes.enumerated() {
                let dir = try TempDir()
                let c = try Self.controller(dir, p.id)
                try c.set("seed", "\(i + 1)")
                let r = try c.send(scene)
                let text = r.message?.text ?? ""
                let end = (r.reason == .eos || r.reason == .stopString) && (!cosplay || text.hasSuffix("”"))
                let run = Self.longestRun(text)
                replies += 1
                ended += end ? 1 : 0
                runsOK += run <= 3 ? 1 : 0
                texts.append(text)
                if !end || run > 3 { lines.append("\(p.id) [\(r.reason.map(\.rawValue) ?? "-")] run \(run): \(text.prefix(40))") }
            }
            d2[p.id] = Self.distinct2(texts)
        }
        let meanD2 = d2.values.reduce(0, +) / Double(max(d2.count, 1))
        let report = "\(ended)/\(replies) ended, \(runsOK)/\(replies) without a run over 3, mean distinct-2 \(meanD2)\n"
            + d2.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.2f", $0.value))" }.joined(separator: ", ")
            + "\n" + lines.joined(separator: "\n")
        print("demo persona quality: \(report)")
        #expect(Double(ended) >= 0.90 * Double(replies), "\(report)")
        #expect(Double(runsOK) >= 0.95 * Double(replies), "\(report)")
        #expect(meanD2 >= 0.7, "\(report)")

        let dir = try TempDir()
        let rulai = try Self.controller(dir, "assistants/rulai")
        try rulai.set("seed", "1")
        let answer = try rulai.send(fx.rulai_question).message?.text ?? ""
        #expect(answer.contains("如来"), "RulaiGPT: \(answer)")
    }

    /// Different character bigrams over all bigrams of the texts (bigrams do not cross texts), as quality.py.
    static func distinct2(_ texts: [String]) -> Double {
        var all = 0
        var seen = Set<String>()
        for t in texts {
            let c = Array(t.unicodeScalars)
            guard c.count > 1 else { continue }
            for i in 0..<(c.count - 1) { seen.insert(String(c[i]) + String(c[i + 1])) }
            all += c.count - 1
        }
        return all == 0 ? 0 : Double(seen.count) / Double(all)
    }

    static func longestRun(_ s: String) -> Int {
        var best = 0, run = 0
        var prev: Character?
        for ch in s {
            run = ch == prev ? run + 1 : 1
            prev = ch
            best = max(best, run)
        }
        return best
    }
}
