// swift-tools-version:6.0
import PackageDescription

// Dependencies point one way: C shims -> Engine -> Chat -> TUI / Serve -> yanyi (CLI).
let releaseC: [CSetting] = [.define("NDEBUG", .when(configuration: .release))]

let package = Package(
    name: "Yanyi",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "yanyi", targets: ["yanyi"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        // System libraries (Debian: libncursesw5-dev, libopenblas-dev, libsentencepiece-dev).
        // No pkgConfig for ncursesw: its -D flags are prohibited by SwiftPM (the shim defines them).
        .systemLibrary(name: "CNcursesw",
                       providers: [.apt(["libncursesw5-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CSentencePiece", pkgConfig: "sentencepiece",
                       providers: [.apt(["libsentencepiece-dev"])]),
        // C++ bridge: libsentencepiece does not import through Swift's C++ interop.
        .target(name: "CSentencePieceShim", dependencies: ["CSentencePiece"],
                cxxSettings: [.define("NDEBUG", .when(configuration: .release))]),
        // Stateless C hot loops: ck_<op>_ref + SIMD twins + one dispatcher.
        .target(name: "CKernels", cSettings: releaseC),
        .target(name: "Engine", dependencies: ["CKernels", "COpenBLAS", "CSentencePieceShim"]),
        .target(name: "Chat", dependencies: ["Engine", .product(name: "Yams", package: "Yams"),
                                            .product(name: "GRDB", package: "GRDB.swift")]),
        .target(name: "TUI", dependencies: ["Chat", "CNcursesw"]),
        // The OpenAI-compatible HTTP front end over the runtime.
        .target(name: "Serve", dependencies: ["Chat", "Engine",
                                              .product(name: "Hummingbird", package: "hummingbird"),
                                              .product(name: "Prometheus", package: "swift-prometheus"),
                                              .product(name: "NIOCore", package: "swift-nio"),
                                              .product(name: "Logging", package: "swift-log"),
                                              .product(name: "HTTPTypes", package: "swift-http-types")]),
        .executableTarget(name: "yanyi", dependencies: [
            "TUI", "Chat", "Engine", "Serve",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "CKernelsTests", dependencies: ["CKernels"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "CKernels"]),
        .testTarget(name: "ChatTests", dependencies: ["Chat"]),
        .testTarget(name: "TUITests", dependencies: ["TUI"]),
        .testTarget(name: "ServeTests", dependencies: ["Serve", "Chat", "Engine",
                                                       .product(name: "HummingbirdTesting", package: "hummingbird"),
                                                       .product(name: "HTTPTypes", package: "swift-http-types")]),
    ],
    cxxLanguageStandard: .cxx17
)

// The fuzz targets (tools/fuzz/run builds them): one libFuzzer executable over Engine and Chat,
// declared only when YANYI_FUZZ is set, built with libFuzzer and AddressSanitizer (see
// tools/fuzz/README.md). libFuzzer supplies `main`, so the target is parsed as a library.
if Context.environment["YANYI_FUZZ"] != nil {
    package.targets.append(.executableTarget(name: "yanyi-fuzz",
                                             dependencies: ["Engine", "Chat", .product(name: "Yams", package: "Yams")],
                                             path: "tools/fuzz/Sources",
                                             swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
}
