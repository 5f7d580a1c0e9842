/// Every key the TUI answers, by where it works. Update dispatches keys through this table and
/// the help overlay lists exactly it, so the two cannot disagree.
public enum Keymap {
    /// What a key does.
    public enum Action: Equatable, Sendable {
        // Anywhere
        case help, escape, focusNext, focusPrevious, personas, sessions, newSession, adapterPanel
        case retry, continueReply, editLast, swipePrevious, swipeNext, scrollUp, scrollDown, nextTheme, stopOrQuit, quit
        case nextSpeaker, authorsNote, userProfile, attachLore
        // Input line
        case send, inputEarlier, inputLater, quitIfEmpty
        /// Handled by the text editor (cursor, delete, newline, paste).
        case edit
        // History
        case selectPrevious, selectNext, selectFirst, selectLast, branch
        // Sliders
        case sliderPrevious, sliderNext, decrease, increase, minimum, maximum, toggleSample, typeValue, resetValue
        // Adapters
        case adapterPrevious, adapterNext, loadAdapter, unloadAdapter, toggleAdapter
        // Lists and pickers
        case listUp, listDown, listPageUp, listPageDown, choose, close, importCard, exportCard
        case searchSessions, renameSession, deleteSession, markForScene
    }

    public struct Entry: Equatable, Sendable {
        public var keys: [Key]
        public var action: Action
        public var text: String
    }

    public struct Section: Equatable, Sendable {
        public var title: String
        public var entries: [Entry]
    }

    static func e(_ keys: [Key], _ action: Action, _ text: String) -> Entry { Entry(keys: keys, action: action, text: text) }

    public static let anywhere = Section(title: "Anywhere", entries: [
        e([.f(1)], .help, "this help (also ? on an empty input line or in a panel)"),
        e([.escape], .escape, "stop the reply / cancel an edit / back to the input line"),
        e([.tab], .focusNext, "focus: input → history → sliders → adapters"),
        e([.backTab], .focusPrevious, "focus the other way"),
        e([.f(2), .ctrl("p")], .personas, "persona picker (type to filter)"),
        e([.f(3), .ctrl("s")], .sessions, "sessions: resume, new, branch"),
        e([.ctrl("n")], .newSession, "new conversation"),
        e([.f(4)], .adapterPanel, "adapter panel"),
        e([.f(5), .ctrl("r")], .retry, "retry: another reply (the old one stays)"),
        e([.f(6), .ctrl("t")], .continueReply, "continue the last reply"),
        e([.f(7), .ctrl("x")], .editLast, "edit your last question and ask again"),
        e([.altLeft, .ctrlLeft], .swipePrevious, "previous alternative"),
        e([.altRight, .ctrlRight], .swipeNext, "next alternative (past the last: a new reply)"),
        e([.pageUp], .scrollUp, "scroll the conversation up"),
        e([.pageDown], .scrollDown, "scroll the conversation down"),
        e([.f(8)], .nextTheme, "next theme"),
        e([.f(9)], .nextSpeaker, "in a scene: the next speaker speaks"),
        e([.f(10)], .authorsNote, "author's note for this conversation ([depth] text)"),
        e([.f(11)], .userProfile, "who you are in role-play ({{user}}: name | description)"),
        e([.f(12)], .attachLore, "lorebooks for this conversation (names in Personas/lore/)"),
        e([.ctrl("c")], .stopOrQuit, "stop the reply; quit when none"),
        e([.ctrl("q")], .quit, "quit"),
    ])

    public static let input = Section(title: "Input line", entries: [
        e([.enter], .send, "send (while editing: ask again)"),
        e([.up], .inputEarlier, "earlier input (on the first line)"),
        e([.down], .inputLater, "later input (on the last line)"),
        e([.char("?")], .help, "help, when the line is empty"),
        e([.ctrl("d")], .quitIfEmpty, "quit, when the line is empty"),
    ] + editing.entries)

    /// Keys of every text field (the input line, the adapter and value dialogs).
    public static let editing = Section(title: "Editing text", entries: [
        e([.altEnter, .ctrl("j")], .edit, "new line (input line only)"),
        e([.left, .right, .home, .end, .ctrl("a"), .ctrl("e")], .edit, "move the cursor"),
        e([.backspace, .delete, .ctrl("w"), .ctrl("u"), .ctrl("k")], .edit, "delete char, word, to start, to end"),
        e([.paste("")], .edit, "paste"),
    ])

    public static let history = Section(title: "History (Tab)", entries: [
        e([.up], .selectPrevious, "select the message above"),
        e([.down], .selectNext, "select the message below"),
        e([.home], .selectFirst, "first message"),
        e([.end], .selectLast, "last message"),
        e([.left, .char("[")], .swipePrevious, "previous alternative of the selected message"),
        e([.right, .char("]")], .swipeNext, "next alternative (past the last reply's: a new reply)"),
        e([.char("r")], .retry, "retry"),
        e([.char("c")], .continueReply, "continue"),
        e([.char("e")], .editLast, "edit your last question"),
        e([.char("b")], .branch, "branch a new session at the selected message"),
        e([.char("?")], .help, "help"),
    ])

    public static let sliders = Section(title: "Sliders (Tab)", entries: [
        e([.up], .sliderPrevious, "previous setting"),
        e([.down], .sliderNext, "next setting"),
        e([.left], .decrease, "less (adapter scale: applies to the next reply)"),
        e([.right], .increase, "more"),
        e([.home], .minimum, "lowest value"),
        e([.end], .maximum, "highest value"),
        e([.char(" ")], .toggleSample, "toggle do-sample (from any row)"),
        e([.enter], .typeValue, "type an exact value"),
        e([.char("0")], .resetValue, "back to the persona's / model's value"),
        e([.char("?")], .help, "help"),
    ])

    public static let adapters = Section(title: "Adapters (F4)", entries: [
        e([.up], .adapterPrevious, "previous adapter"),
        e([.down], .adapterNext, "next adapter"),
        e([.char("l"), .char("a"), .enter], .loadAdapter, "load an adapter folder (relative to Models/)"),
        e([.char("u"), .delete, .backspace], .unloadAdapter, "unload"),
        e([.char(" "), .char("e")], .toggleAdapter, "enable / disable"),
        e([.left], .decrease, "scale −0.05"),
        e([.right], .increase, "scale +0.05"),
        e([.char("?")], .help, "help"),
    ])

    public static let lists = Section(title: "Pickers and lists", entries: [
        e([.up], .listUp, "up"),
        e([.down], .listDown, "down"),
        e([.pageUp, .home], .listPageUp, "page up"),
        e([.pageDown, .end], .listPageDown, "page down"),
        e([.enter], .choose, "choose"),
        e([.escape], .close, "close"),
        e([.char("n")], .newSession, "sessions: new conversation"),
        e([.char("b")], .branch, "sessions: branch the highlighted one"),
        e([.char("/")], .searchSessions, "sessions: search what was said"),
        e([.char("r")], .renameSession, "sessions: rename the highlighted one"),
        e([.char("d")], .deleteSession, "sessions: delete the highlighted one (press d again)"),
        e([.ctrl("t")], .markForScene, "personas: mark for a scene (Enter with two or more starts it)"),
        e([.ctrl("o")], .importCard, "personas: import a character card (PNG / JSON)"),
        e([.ctrl("e")], .exportCard, "personas: export the highlighted one as a card"),
    ])

    /// What the help overlay shows, in order.
    public static let sections: [Section] = [anywhere, input, history, sliders, adapters, lists]

    /// The action `key` has in `section`, if any.
    public static func action(_ key: Key, in section: Section) -> Action? {
        section.entries.first { $0.keys.contains { k in
            if case .paste = k, case .paste = key { return true }
            return k == key
        } }?.action
    }

    /// The section of a focus.
    static func section(_ f: Focus) -> Section {
        switch f {
        case .input: input
        case .history: history
        case .sliders: sliders
        case .adapters: adapters
        }
    }
}
