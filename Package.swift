// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "swift-aemp",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "AEMPCodecs", targets: ["AEMPCodecs"]),
        .library(name: "AEMPSocket", targets: ["AEMPSocket"]),
        .library(name: "AEMPHandle", targets: ["AEMPHandle"]),
        .library(name: "AEMP", targets: ["AEMP"]),
        .library(name: "AEMPDataConn", targets: ["AEMPDataConn"]),
        .library(name: "AEMPDistributed", targets: ["AEMPDistributed"]),
        .executable(name: "aemp", targets: ["aemp"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Layer 3 in DESIGN.md, but the bottom of the import graph: pure codecs, no I/O.
        .target(
            name: "AEMPCodecs",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AEMPSocket",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AEMPHandle",
            dependencies: [
                "AEMPSocket",
                "AEMPCodecs",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AEMP",
            dependencies: [
                "AEMPHandle", "AEMPCodecs", "AEMPSocket",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AEMPDataConn",
            dependencies: [
                "AEMP", "AEMPHandle", "AEMPCodecs",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AEMPDistributed",
            dependencies: [
                "AEMP", "AEMPCodecs",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "aemp",
            dependencies: [
                "AEMP",
                "AEMPCodecs",
                "AEMPDataConn",
                "AEMPHandle",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Examples (Examples/*/README.md), built with the package so CI compiles and tests them.
        .executableTarget(
            name: "aemp-chat",
            dependencies: ["AEMP", "AEMPCodecs", .product(name: "Logging", package: "swift-log")],
            path: "Examples/Chat",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),
        // Helpers shared by the test targets (locating Tests/Fixtures, test certificates, probes).
        .executableTarget(
            name: "aemp-workqueue",
            dependencies: ["AEMP", "AEMPCodecs", "AEMPDistributed", .product(name: "Logging", package: "swift-log")],
            path: "Examples/WorkQueue",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "AEMPTestSupport",
            dependencies: [
                "AEMP", "AEMPHandle", "AEMPCodecs",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/AEMPTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AEMPCodecsTests",
            dependencies: ["AEMPCodecs", "AEMPTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AEMPSocketTests",
            dependencies: [
                "AEMPSocket",
                "AEMPTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AEMPHandleTests",
            dependencies: [
                "AEMPHandle",
                "AEMPCodecs",
                "AEMPTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AEMPTests",
            dependencies: [
                "AEMP", "AEMPCodecs", "AEMPDistributed", "AEMPHandle", "AEMPSocket", "AEMPTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // A node process for the chaos tests and scripts/chaos.sh (sink, storm and mesh roles).
        .executableTarget(
            name: "aemp-chaos-node",
            dependencies: [
                "AEMP", "AEMPCodecs",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Tests/ChaosNode",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "aempCLITests",
            dependencies: [
                "aemp", "aemp-chaos-node", "aemp-chat", "aemp-workqueue", "AEMP", "AEMPCodecs", "AEMPTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AEMPDataConnTests",
            dependencies: [
                "AEMPDataConn", "AEMP", "AEMPHandle", "AEMPCodecs", "AEMPTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
