// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "track",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "track", targets: ["track"]),
        .library(name: "TrackStore", targets: ["TrackStore"]),
        .library(name: "TrackCalibration", targets: ["TrackCalibration"]),
        .library(name: "TrackAnalysis", targets: ["TrackAnalysis"]),
    ],
    targets: [
        // MARK: - C libraries (Debian: libsqlite3-dev, libcairo2-dev, libopenblas-dev, libpq-dev)
        .systemLibrary(name: "CTrackSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CTrackCairo", pkgConfig: "cairo",
                       providers: [.apt(["libcairo2-dev"])]),
        .systemLibrary(name: "CTrackBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // A shared store for teams (Debian: libpq-dev).
        .systemLibrary(name: "CTrackPQ", pkgConfig: "libpq",
                       providers: [.apt(["libpq-dev"])]),

        // MARK: - Build tool: embeds sql/*.sql into the binary
        .executableTarget(name: "embed-sql", path: "Sources/embed-sql"),
        .plugin(name: "EmbedSQL", capability: .buildTool(), dependencies: ["embed-sql"]),

        // MARK: - Libraries, one per concern
        // Optimised in debug builds too: its SIMD loops are 20-50x slower unoptimised, and the
        // tests and the debug binary the CLI tests run spend most of their time in them.
        .target(name: "TrackCalibration", dependencies: ["CTrackBLAS"],
                swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(name: "TrackStore", dependencies: ["CTrackSQLite", "CTrackPQ", "TrackCalibration"],
                plugins: ["EmbedSQL"]),
        .target(name: "TrackFigures", dependencies: ["CTrackCairo", "TrackCalibration"]),
        // Workflows as typed requests and results: what the CLI (and any other caller) runs.
        .target(name: "TrackAnalysis", dependencies: ["TrackStore", "TrackCalibration", "TrackFigures"]),
        .target(name: "TrackCLI", dependencies: ["TrackAnalysis", "TrackStore", "TrackCalibration", "TrackFigures"]),
        .executableTarget(name: "track", dependencies: ["TrackCLI"]),
        .executableTarget(name: "track-bench", dependencies: ["TrackAnalysis", "TrackStore", "TrackCalibration", "TrackFigures"]),

        // MARK: - Tests
        .testTarget(name: "TrackCalibrationTests", dependencies: ["TrackCalibration"]),
        .testTarget(name: "TrackStoreTests", dependencies: ["TrackStore", "TrackCalibration"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "TrackCLITests", dependencies: ["TrackCLI", "TrackStore", "TrackFigures"]),
        .testTarget(name: "TrackAnalysisTests", dependencies: ["TrackAnalysis", "TrackStore", "TrackCalibration", "TrackFigures"]),
        .testTarget(name: "TrackFiguresTests", dependencies: ["TrackFigures", "TrackCalibration"]),
    ],
    swiftLanguageModes: [.v6]
)
