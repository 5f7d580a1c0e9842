import Testing
@testable import TUI

@Test func terminalSizeIsAValue() {
    #expect(TerminalSize(rows: 24, columns: 80) != TerminalSize(rows: 24, columns: 81))
}
