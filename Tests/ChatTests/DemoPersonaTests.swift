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

    /// CuteGPT (greedy, repetition penalty 1.1, 256 new tokens at most): each reply ends its turn on the text
    /// `<end>` long before the limit, and the stored reply has the marker removed; the second turn carries
    /// the first in its prompt (`问：…\n答：\n{reply}\n`) and ends as well.
    @Test func cuteGPTAnswersAndEndsItsTurn() throws {
        let dir = try TempDir()
        let c = try Self.controller(dir, "assistants/cutegpt")
        for q in ["如何缓解压力？", "什么是人工智能？"] {
            let r = try c.send(q)
            let m = try #require(r.message)
            #expect(r.reason == .stopString && r.tokens.count < 128, "\(q): \(r.reason.map(\.rawValue) ?? "nil") \(m.text)")
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
}
