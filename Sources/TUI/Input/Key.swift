/// A key as the TUI sees it; the terminal turns its own codes into these.
public enum Key: Hashable, Sendable {
    /// A printable character (any script).
    case char(Character)
    /// Ctrl with a letter, lowercase (`ctrl("r")`).
    case ctrl(Character)
    /// Alt (Meta) with a character.
    case alt(Character)
    case enter, tab, backTab, backspace, delete, escape
    case up, down, left, right, home, end, pageUp, pageDown
    case ctrlLeft, ctrlRight, altLeft, altRight, altEnter
    case f(Int)
    /// A whole paste (bracketed paste): inserted as text, newlines kept, never sent.
    case paste(String)
    case resize

    /// How the help overlay and tests name a key.
    public var label: String {
        switch self {
        case .char(let c): c == " " ? "Space" : String(c)
        case .ctrl(let c): "Ctrl-" + String(c).uppercased()
        case .alt(let c): "Alt-" + String(c)
        case .enter: "Enter"
        case .tab: "Tab"
        case .backTab: "Shift-Tab"
        case .backspace: "Backspace"
        case .delete: "Delete"
        case .escape: "Esc"
        case .up: "↑"
        case .down: "↓"
        case .left: "←"
        case .right: "→"
        case .home: "Home"
        case .end: "End"
        case .pageUp: "PgUp"
        case .pageDown: "PgDn"
        case .ctrlLeft: "Ctrl-←"
        case .ctrlRight: "Ctrl-→"
        case .altLeft: "Alt-←"
        case .altRight: "Alt-→"
        case .altEnter: "Alt-Enter"
        case .f(let n): "F\(n)"
        case .paste: "paste"
        case .resize: "resize"
        }
    }
}

/// Turns raw key codes into Keys: the part of key decoding that needs no terminal, so it can
/// be tested. Codes are curses' (`get_wch`): characters, or function-key codes with `isKeyCode`.
public struct KeyDecoder: Sendable {
    /// Our own codes for sequences we bind with define_key (above curses' KEY_MAX, 0777).
    public enum Extra: Int32, CaseIterable, Sendable {
        case pasteStart = 0x2000, pasteEnd, ctrlLeft, ctrlRight, altLeft, altRight

        public var sequence: String {
            switch self {
            case .pasteStart: "\u{1B}[200~"
            case .pasteEnd: "\u{1B}[201~"
            case .ctrlLeft: "\u{1B}[1;5D"
            case .ctrlRight: "\u{1B}[1;5C"
            case .altLeft: "\u{1B}[1;3D"
            case .altRight: "\u{1B}[1;3C"
            }
        }
    }

    /// One code from the terminal.
    public enum Raw: Equatable, Sendable {
        case char(UInt32)
        case keyCode(Int32)
    }

    /// Curses' function-key codes the decoder knows (the terminal fills these from the header).
    public struct Codes: Sendable {
        public var up, down, left, right, home, end, pageUp, pageDown, backspace, delete, enter, backTab, resize, f0: Int32

        public init(up: Int32, down: Int32, left: Int32, right: Int32, home: Int32, end: Int32, pageUp: Int32, pageDown: Int32,
                    backspace: Int32, delete: Int32, enter: Int32, backTab: Int32, resize: Int32, f0: Int32) {
            self.up = up; self.down = down; self.left = left; self.right = right; self.home = home; self.end = end
            self.pageUp = pageUp; self.pageDown = pageDown; self.backspace = backspace; self.delete = delete
            self.enter = enter; self.backTab = backTab; self.resize = resize; self.f0 = f0
        }
    }

    public let codes: Codes
    public init(codes: Codes) { self.codes = codes }

    /// Decodes one batch of codes read together. ESC followed by a character in the same batch
    /// is Alt+character; characters between paste markers become one `.paste`.
    public func decode(_ raw: [Raw]) -> [Key] {
        var keys: [Key] = []
        var i = 0
        var paste: String?
        while i < raw.count {
            let r = raw[i]
            i += 1
            if var p = paste {
                switch r {
                case .keyCode(Extra.pasteEnd.rawValue):
                    keys.append(.paste(p))
                    paste = nil
                case .char(let c):
                    if c == 13 { p += "\n" } else if let s = Unicode.Scalar(c), c >= 0x20 || c == 10 || c == 9 { p.unicodeScalars.append(s) }
                    paste = p
                default:
                    break
                }
                continue
            }
            switch r {
            case .keyCode(let k):
                if k == Extra.pasteStart.rawValue { paste = ""; continue }
                if let key = key(code: k) { keys.append(key) }
            case .char(let c):
                if c == 27, i < raw.count, case .char(let next) = raw[i] {
                    i += 1
                    if next == 13 || next == 10 { keys.append(.altEnter) } else if let s = Unicode.Scalar(next), next >= 0x20 {
                        keys.append(.alt(Character(s)))
                    }
                    continue
                }
                if let key = key(char: c) { keys.append(key) }
            }
        }
        if let p = paste { keys.append(.paste(p)) }   // an end marker still to come: keep what came
        return keys
    }

    func key(char c: UInt32) -> Key? {
        switch c {
        case 13: return .enter
        case 10: return .ctrl("j")
        case 9: return .tab
        case 27: return .escape
        case 8, 127: return .backspace
        case 1...26: return .ctrl(Character(Unicode.Scalar(c + 96)!))
        case 0, 28...31: return nil
        default: return Unicode.Scalar(c).map { .char(Character($0)) }
        }
    }

    func key(code k: Int32) -> Key? {
        let c = codes
        switch k {
        case c.up: return .up
        case c.down: return .down
        case c.left: return .left
        case c.right: return .right
        case c.home: return .home
        case c.end: return .end
        case c.pageUp: return .pageUp
        case c.pageDown: return .pageDown
        case c.backspace: return .backspace
        case c.delete: return .delete
        case c.enter: return .enter
        case c.backTab: return .backTab
        case c.resize: return .resize
        case Extra.ctrlLeft.rawValue: return .ctrlLeft
        case Extra.ctrlRight.rawValue: return .ctrlRight
        case Extra.altLeft.rawValue: return .altLeft
        case Extra.altRight.rawValue: return .altRight
        case (c.f0 + 1)...(c.f0 + 24): return .f(Int(k - c.f0))
        default: return nil
        }
    }
}
