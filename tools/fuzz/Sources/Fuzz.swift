import Foundation

// The libFuzzer entry points. One executable holds every target; YANYI_FUZZ_TARGET picks the one
// a process runs (tools/fuzz/run sets it), so coverage feedback is per target all the same.
// A target gets the raw input bytes and must return normally: a typed error is a clean refusal,
// while a trap (overflow, bounds, precondition), an ASan report, a timeout or running out of
// memory is a finding.

/// Target name -> what one input runs through.
let targets: [String: @Sendable (UnsafeRawBufferPointer) -> Void] = [
    "safetensors": FuzzSafeTensors.run,
    "pickle": FuzzPickle.run,
    "zip": FuzzTorchArchive.run,
    "persona-yaml": FuzzPersonaYAML.run,
    "card-png": FuzzCardPNG.run,
    "card-json": FuzzCardJSON.run,
    "session-import": FuzzSessionImport.run,
]

nonisolated(unsafe) var selected: (@Sendable (UnsafeRawBufferPointer) -> Void)?

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    let name = ProcessInfo.processInfo.environment["YANYI_FUZZ_TARGET"] ?? ""
    guard let run = targets[name] else {
        let known = targets.keys.sorted().joined(separator: ", ")
        FileHandle.standardError.write(Data("yanyi-fuzz: set YANYI_FUZZ_TARGET to one of: \(known) (got '\(name)')\n".utf8))
        exit(2)
    }
    selected = run
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    selected?(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
