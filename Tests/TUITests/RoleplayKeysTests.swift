import Chat
import Foundation
import Testing
@testable import TUI

/// F10 / F11 / F12: the author's note, who the user is, lorebooks for the conversation — set
/// from the TUI, they reach the next prompt exactly as from the line chat.
@Suite struct RoleplayKeysTests {
    @Test func noteUserAndLoreFromTheKeys() throws {
        let dir = TempDir()
        let lore = dir.path + "/Personas/lore"
        try FileManager.default.createDirectory(atPath: lore, withIntermediateDirectories: true)
        try Data(#"{"entries":{"0":{"key":["赤壁"],"content":"赤壁在江夏。","position":1}}}"#.utf8)
            .write(to: URL(fileURLWithPath: lore + "/chibi.json"))
        let h = Fx.harness(store: dir)

        h.keys([.f(11)])
        #expect(h.screen.contains("Who you are"))
        h.keys([.ctrl("u")]).type("子龙 | 常山人").keys([.enter])
        #expect(h.controller.userProfile == UserProfile(name: "子龙", description: "常山人"))
        #expect(h.state.user.name == "子龙" && h.state.overlay == nil)

        h.keys([.f(10)]).type("0 （{{user}}在帐外）").keys([.enter])
        #expect(h.controller.conversation.note == AuthorsNote(text: "（{{user}}在帐外）", depth: 0))
        h.keys([.f(12)]).type("chibi").keys([.enter])
        #expect(h.controller.conversation.lore == ["chibi"])
        h.keys([.f(12)]).type(" nosuch").keys([.enter])
        #expect(h.controller.conversation.lore == ["chibi"], "a book that cannot be read is refused")

        _ = h.send("赤壁之事如何？")
        let prompt = try #require(h.engine?.requests.last).promptIDs
        let text = ScalarTokenizer().decode(prompt, skipSpecialTokens: false)
        #expect(text.contains("（子龙在帐外）") && text.contains("赤壁在江夏。"), "\(text)")
        #expect(h.controller.conversation.path.contains { $0.role == .user && $0.text.hasPrefix("赤壁之事如何？") })

        // The dialogs open with what is set, so a change is an edit.
        h.keys([.f(10)])
        if case .roleplay(.note, let e)? = h.state.overlay { #expect(String(e.text) == "0 （{{user}}在帐外）") } else { Issue.record("no note dialog") }
        h.keys([.escape])
        #expect(h.state.overlay == nil)
    }
}
