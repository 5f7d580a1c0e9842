import Foundation
@testable import Chat

enum ChatFixtures {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let chat = fixtures.appendingPathComponent("chat")
    static let repo = fixtures.deletingLastPathComponent().deletingLastPathComponent()

    static func json<T: Decodable>(_ name: String, as: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: chat.appendingPathComponent(name)))
    }

    static func path(_ relative: String) -> String { fixtures.appendingPathComponent(relative).path }
}

/// A fresh temporary folder, removed when the value goes away.
final class TempDir {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("yanyi-chat-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }
}

/// History as the seeds keep it: [input, output] pairs.
func utterances(_ pairs: [[String]]) -> [Utterance] {
    pairs.flatMap { [.user($0[0]), .assistant($0[1])] }
}
