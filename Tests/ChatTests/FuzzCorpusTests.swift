import Foundation
import Testing
@testable import Chat

/// The fuzz corpora of the persona, card and session readers (tools/fuzz/corpus: the seeds, and
/// every input a fuzzer found a crash with) replayed through the normal API in the ordinary test
/// build: each input reads, or is refused with a ChatError (a session import, with notices).
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("tools/fuzz/corpus")

    static func inputs(_ target: String) throws -> [(name: String, data: Data)] {
        let dir = corpus.appendingPathComponent(target)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        return try names.map { ($0, try Data(contentsOf: dir.appendingPathComponent($0))) }
    }

    @Test func personaYAMLCorpus() throws {
        for (name, data) in try Self.inputs("persona-yaml") {
            guard let text = String(data: data, encoding: .utf8) else { continue }
            do { _ = try PersonaFile.parse(text, file: name, id: "fuzz", folder: "fuzz") } catch { _ = error.description }
        }
    }

    @Test(arguments: ["card-png", "card-json"])
    func cardCorpus(target: String) throws {
        for (name, data) in try Self.inputs(target) {
            do throws(ChatError) {
                let card = target == "card-png" ? try CharacterCard.decode(png: [UInt8](data), file: name)
                                                : try CharacterCard.decode(json: data, file: name)
                let p = try card.persona(id: "fuzz", file: name, group: "cards")
                _ = try CharacterCard.decode(json: CharacterCard(persona: p, spec: .v3).jsonData(), file: name)
            } catch {
                _ = error.description
            }
        }
    }

    @Test func sessionImportCorpus() throws {
        for (name, data) in try Self.inputs("session-import") {
            let plan = LegacyImport.plan(data, file: name, fallbackID: "fuzz", fallbackTime: 0)
            #expect(plan.conversation != nil || !plan.notices.isEmpty, "\(name): nothing imported and nothing said")
        }
    }
}
