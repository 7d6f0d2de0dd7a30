// swift-tools-version:6.1
// Benchmarks for swift-aemp, kept out of the root package. Run in release mode:
//   swift run -c release --package-path Benchmarks CodecBenchmarks
import PackageDescription

let package = Package(
    name: "swift-aemp-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-aemp", path: "..")
    ],
    targets: [
        .executableTarget(
            name: "CodecBenchmarks",
            dependencies: [.product(name: "AEMPCodecs", package: "swift-aemp")],
            path: "CodecBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
)
