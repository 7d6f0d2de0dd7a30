// swift-tools-version:6.1
// Benchmarks for swift-aemp, kept out of the root package. Run in release mode:
//   swift run -c release --package-path Benchmarks CodecBenchmarks
import PackageDescription

let package = Package(
    name: "swift-aemp-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-aemp", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .executableTarget(
            name: "CodecBenchmarks",
            dependencies: [.product(name: "AEMPCodecs", package: "swift-aemp")],
            path: "CodecBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "HandleBenchmarks",
            dependencies: [
                .product(name: "AEMPHandle", package: "swift-aemp"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "HandleBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "NodeBenchmarks",
            dependencies: [
                .product(name: "AEMP", package: "swift-aemp"),
                .product(name: "AEMPCodecs", package: "swift-aemp"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "NodeBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "DistributedBenchmarks",
            dependencies: [
                .product(name: "AEMP", package: "swift-aemp"),
                .product(name: "AEMPCodecs", package: "swift-aemp"),
                .product(name: "AEMPDistributed", package: "swift-aemp"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "DistributedBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "DataConnBenchmarks",
            dependencies: [
                .product(name: "AEMP", package: "swift-aemp"),
                .product(name: "AEMPCodecs", package: "swift-aemp"),
                .product(name: "AEMPDataConn", package: "swift-aemp"),
                .product(name: "AEMPHandle", package: "swift-aemp"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "DataConnBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "CostModel",
            dependencies: [
                .product(name: "AEMP", package: "swift-aemp"),
                .product(name: "AEMPCodecs", package: "swift-aemp"),
                .product(name: "AEMPDataConn", package: "swift-aemp"),
                .product(name: "AEMPHandle", package: "swift-aemp"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "CostModel",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
