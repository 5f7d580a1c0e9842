import Testing
@testable import Chat

@Test func chatLinksEngine() { #expect(ChatLayer.engineVersion == "0.1.0") }
