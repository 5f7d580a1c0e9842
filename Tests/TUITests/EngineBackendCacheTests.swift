import Engine
import Foundation
import Testing
@testable import TUI

/// EngineBackend loads through the weight cache it is given; the cache's notices become `.notice` events.
@Suite struct EngineBackendCacheTests {
    @Test func noticesArriveAsEventsAndTheSecondLoadMaps() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("yanyi-tui-cache-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cache = WeightCache(directory: dir)
        let model = Fx.path("Tests/Fixtures/models/llama-trained/safetensors")
        for round in 0..<2 {
            let events = Collector()
            let backend = EngineBackend(modelPath: model, threads: 1, weightCache: cache)
            backend.start { events.add($0) }
            _ = try await events.wait { if case .loaded = $0 { true } else { nil } }
            let notices = events.all.compactMap { if case .notice(let m) = $0 { m } else { nil } }
            if round == 0 {
                #expect(notices.count == 1 && notices[0].contains("weight cache: wrote"), "\(notices)")
            } else {
                #expect(notices.isEmpty, "\(notices)")
            }
            backend.shutdown()
        }
        #expect(cache.entries().map(\.status) == [.valid])
    }
}
