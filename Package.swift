// swift-tools-version:6.0
import PackageDescription

// Dependencies point one way: C shims -> Engine -> Chat -> TUI -> yanyi (CLI).
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
        .executableTarget(name: "yanyi", dependencies: [
            "TUI", "Chat", "Engine",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "CKernelsTests", dependencies: ["CKernels"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "CKernels"]),
        .testTarget(name: "ChatTests", dependencies: ["Chat"]),
        .testTarget(name: "TUITests", dependencies: ["TUI"]),
    ],
    cxxLanguageStandard: .cxx17
)
