import Foundation
@testable import Chat

// The legacy JSONL session import, up to the plan (nothing is written).
enum FuzzSessionImport {
    static func run(_ input: UnsafeRawBufferPointer) {
        _ = LegacyImport.plan(Data(input), file: "fuzz.jsonl", fallbackID: "fuzz", fallbackTime: 0)
    }
}
