import Testing
@testable import Engine

@Test func loadErrorIsOneLineNamingTheFile() {
    let e = LoadError("/m/model.safetensors", "header length 9999 runs past the end of the file (120 bytes)")
    #expect(e.description == "/m/model.safetensors: header length 9999 runs past the end of the file (120 bytes)")
    #expect(!e.description.contains("\n"))
}
