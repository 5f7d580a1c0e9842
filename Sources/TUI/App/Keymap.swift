/// Every key the TUI answers, by where it works: the help overlay lists exactly this, and the
/// tests check each entry does something.
public enum Keymap {
    public struct Entry: Equatable, Sendable {
        public var keys: [Key]
        public var action: String
    }

    public struct Section: Equatable, Sendable {
        public var title: String
        public var entries: [Entry]
    }

    public static let sections: [Section] = [
        Section(title: "Anywhere", entries: [
            Entry(keys: [.f(1), .char("?")], action: "this help (? when not typing)"),
            Entry(keys: [.escape], action: "stop the reply / close a panel"),
            Entry(keys: [.tab, .backTab], action: "focus: input→history→sliders→adapters"),
            Entry(keys: [.f(2), .ctrl("p")], action: "persona picker (type to filter)"),
            Entry(keys: [.f(3), .ctrl("s")], action: "sessions: resume, new, branch"),
            Entry(keys: [.ctrl("n")], action: "new session"),
            Entry(keys: [.f(4)], action: "adapter panel"),
            Entry(keys: [.f(5), .ctrl("r")], action: "retry: another reply"),
            Entry(keys: [.f(6), .ctrl("t")], action: "continue the last reply"),
            Entry(keys: [.f(7), .ctrl("x")], action: "edit the last message and resend"),
            Entry(keys: [.altLeft, .altRight, .ctrlLeft, .ctrlRight], action: "swipe between alternative replies"),
            Entry(keys: [.pageUp, .pageDown], action: "scroll the conversation"),
            Entry(keys: [.f(8)], action: "next theme"),
            Entry(keys: [.ctrl("c")], action: "stop the reply; quit when none"),
            Entry(keys: [.ctrl("q")], action: "quit"),
        ]),
        Section(title: "Input line", entries: [
            Entry(keys: [.enter], action: "send"),
            Entry(keys: [.altEnter, .ctrl("j")], action: "new line"),
            Entry(keys: [.up, .down], action: "earlier / later inputs"),
            Entry(keys: [.left, .right, .home, .end, .ctrl("a"), .ctrl("e")], action: "move the cursor"),
            Entry(keys: [.backspace, .delete, .ctrl("w"), .ctrl("u"), .ctrl("k")], action: "delete char, word, to start, to end"),
            Entry(keys: [.paste("")], action: "paste (newlines kept, not sent)"),
            Entry(keys: [.ctrl("d")], action: "quit (on an empty line)"),
        ]),
        Section(title: "History (Tab)", entries: [
            Entry(keys: [.up, .down, .home, .end], action: "select a message"),
            Entry(keys: [.left, .right, .char("["), .char("]")], action: "swipe alternatives"),
            Entry(keys: [.char("r"), .char("c"), .char("e")], action: "retry / continue / edit last"),
            Entry(keys: [.char("b")], action: "branch a new session here"),
        ]),
        Section(title: "Sliders (Tab)", entries: [
            Entry(keys: [.up, .down], action: "choose a setting"),
            Entry(keys: [.left, .right], action: "change (adapter scale: at once)"),
            Entry(keys: [.char(" ")], action: "toggle do-sample"),
            Entry(keys: [.char("0")], action: "back to the persona's value"),
        ]),
        Section(title: "Adapters (F4)", entries: [
            Entry(keys: [.char("l")], action: "load an adapter folder"),
            Entry(keys: [.char("u"), .delete], action: "unload"),
            Entry(keys: [.char(" ")], action: "enable / disable"),
            Entry(keys: [.left, .right], action: "scale 0–2"),
        ]),
        Section(title: "Pickers and lists", entries: [
            Entry(keys: [.up, .down, .enter], action: "choose"),
            Entry(keys: [.char("n"), .char("b")], action: "sessions: new / branch"),
        ]),
    ]
}
