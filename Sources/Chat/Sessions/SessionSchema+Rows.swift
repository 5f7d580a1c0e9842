import Foundation
import GRDB

/// Row checksums and reading values from rows of a file that may be damaged.
extension SessionSchema {
    // MARK: Checksums

    /// FNV-1a (64-bit) over the fields, each with a presence byte and a separator, so ("a", nil)
    /// and (nil, "a") differ. Doubles go in by bit pattern.
    static func crc(_ fields: [String?]) -> Int64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func eat(_ b: UInt8) { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        for f in fields {
            if var s = f {
                eat(1)
                s.withUTF8 { for b in $0 { eat(b) } }
            } else {
                eat(0)
            }
            eat(0x1F)
        }
        return Int64(bitPattern: h)
    }

    static func bits(_ d: Double) -> String { String(d.bitPattern, radix: 16) }

    // MARK: Rows → values (never trusting a value's type: the file may be damaged)

    static func text(_ row: Row, _ column: String) -> String? {
        if case .string(let s)? = (row[column] as DatabaseValue?)?.storage { return s }
        return nil
    }

    static func isNull(_ row: Row, _ column: String) -> Bool {
        if case .null? = (row[column] as DatabaseValue?)?.storage { return true }
        return false
    }

    static func real(_ row: Row, _ column: String) -> Double? {
        switch (row[column] as DatabaseValue?)?.storage {
        case .double(let d)?: d
        case .int64(let i)?: Double(i)
        default: nil
        }
    }

    static func integer(_ row: Row, _ column: String) -> Int64? {
        if case .int64(let i)? = (row[column] as DatabaseValue?)?.storage { return i }
        return nil
    }

    /// A nullable text column: .some(nil) for NULL, nil when the value is of another type.
    static func optionalText(_ row: Row, _ column: String) -> String?? {
        isNull(row, column) ? .some(nil) : text(row, column).map { .some($0) }
    }
}
