import Engine
import Foundation
import Testing
@testable import Chat

/// The chat front ends load through the same weight cache as the CLI: Options.weightCache.
@Suite struct ChatWeightCacheTests {
    @Test func controllerLoadsThroughTheCache() throws {
        let dir = try TempDir()
        let notes = NoteList()
        let cache = WeightCache(directory: dir.path + "/weights") { notes.add($0) }
        func controller() throws -> ChatController {
            ChatController(options: .init(modelsRoot: Runtime.modelsRoot), host: LocalModelHost(weightCache: cache, pool: ThreadPool(threads: 1)),
                           library: Runtime.library, store: try Runtime.store(dir), persona: Runtime.persona("runtime/llama-plain"))
        }
        try controller().load()
        #expect(notes.take().contains { $0.contains("wrote") })
        #expect(cache.entries().map(\.status) == [.valid])
        let second = try controller()
        try second.load()
        #expect(notes.take().isEmpty, "the entry was not used")
        #expect(second.enginePath != nil)
    }
}

final class NoteList: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ s: String) { lock.lock(); list.append(s); lock.unlock() }
    func take() -> [String] { lock.lock(); defer { list = []; lock.unlock() }; return list }
}
