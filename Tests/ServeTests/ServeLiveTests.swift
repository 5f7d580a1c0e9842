import Chat
import Engine
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Serve

/// Over real sockets: a client that leaves cancels its generation at once, streaming or not.
@Suite(.serialized) struct ServeLiveTests {
    /// `yanyi_NAME VALUE` from the metrics text.
    static func metric(_ service: OpenAIService, _ name: String) -> Double {
        for line in service.metricsText().split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "") ?? 0
        }
        return 0
    }

    @Test func streamDroppedMidReplyStopsTheEngine() async throws {
        let host = CannedHost(tokenDelay: 0.05)   // 38 tokens: about 2 s
        let (server, _) = makeServer(host)
        try await server.application().test(.live) { client in
            let port = try #require(client.port)
            let raw = try RawClient(port: port)
            raw.send(RawClient.request("/v1/completions", #"{"model": "\#(ServeFixtures.llama)", "prompt": "x", "stream": true}"#))
            let got = await raw.read(until: "backend")
            #expect(got.contains("HTTP/1.1 200"))
            let atClose = host.produced
            raw.close()
            let cancelled = await eventually { Self.metric(server.service, "yanyi_generations_cancelled_total") == 1 }
            #expect(cancelled)
            // the engine stopped within a token of the close (the one being made may still come)
            #expect(host.produced - atClose <= 1, "\(atClose) pieces at the close, \(host.produced) in the end")
            #expect(host.produced < 38)
            #expect(await eventually { server.service.metricsText().contains("yanyi_requests_in_flight 0") })
        }
    }

    @Test func clientGoneBeforeAWholeReplyStopsTheEngine() async throws {
        let host = CannedHost(tokenDelay: 0.05)
        let (server, _) = makeServer(host)
        try await server.application().test(.live) { client in
            let port = try #require(client.port)
            let raw = try RawClient(port: port)
            raw.send(RawClient.request("/v1/completions", #"{"model": "\#(ServeFixtures.llama)", "prompt": "x"}"#))
            try await Task.sleep(nanoseconds: 300_000_000)
            raw.close()
            #expect(await eventually { Self.metric(server.service, "yanyi_generations_cancelled_total") == 1 })
            #expect(Self.metric(server.service, "yanyi_generated_tokens_total") < 20)
            // the server goes on answering
            let r = try await client.post("/v1/completions", #"{"model": "\#(ServeFixtures.llama)", "prompt": "x", "max_tokens": 2}"#)
            #expect(r.json["choices"]?[0]?["text"]?.string == "This ")
        }
    }

    @Test func streamingOverASocketKeepsTheFraming() async throws {
        let (server, _) = makeServer(CannedHost(tokenDelay: 0.001))
        try await server.application().test(.live) { client in
            let r = try await client.post("/v1/chat/completions",
                                          #"{"model": "\#(ServeFixtures.llama)", "messages": [{"role": "user", "content": "x"}], "stream": true}"#)
            #expect(r.status == .ok)
            #expect(streamedText(r.events) == CannedEngine.reply(persona: nil, continuing: false))
            #expect(r.events.last == "[DONE]")
        }
    }
}
