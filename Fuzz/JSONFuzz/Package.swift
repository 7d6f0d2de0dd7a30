// swift-tools-version:6.1
// libFuzzer entry point for AEMPCodecs' JSON stream decoder and the netstring/packstring decoders.
// Build and run with scripts/fuzz-json.sh (swift build --sanitize=fuzzer --sanitize=address).
import PackageDescription

// A path dependency's package identity is its directory name (the checkout's folder).
let rootPackage = String(#filePath.split(separator: "/").dropLast(3).last ?? "swift-aemp").lowercased()

let package = Package(
    name: "JSONFuzz",
    dependencies: [
        .package(path: "../.."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "JSONFuzz",
            dependencies: [
                .product(name: "AEMPCodecs", package: rootPackage),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6), .unsafeFlags(["-parse-as-library"])]
        )
    ]
)
