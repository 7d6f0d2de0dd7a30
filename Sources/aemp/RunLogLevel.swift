import AEMP
import AEMPCodecs
import Logging

/// The level of `aemp run`'s log lines: the `log_level` setting and `$AEMP_LOG_LEVEL`.
extension NodeCommands {
    /// The `aemp run` setting for the level of its log lines (`$AEMP_LOG_LEVEL` wins over it).
    static let logLevelKey = "log_level"
    /// The environment variable that sets the log level of every `aemp` command.
    static let logLevelVariable = "AEMP_LOG_LEVEL"
    /// Every setting `aemp run` takes that is not a node setting: ``runOnlyKeys`` and `log_level`.
    static let runSettingKeys: Set<String> = runOnlyKeys.union([logLevelKey])

    /// The log levels, lowest first, as `log_level` and `AEMP_LOG_LEVEL` name them.
    static let logLevelNames = Logger.Level.allCases.map(\.rawValue)

    /// The `log_level` setting, checked: one of ``logLevelNames`` (any case); `nil` when absent.
    ///
    /// - Throws: ``CLIError`` for any other value.
    static func logLevel(_ settings: ProfileSettings) throws(CLIError) -> Logger.Level? {
        guard let value = settings[logLevelKey], !value.isNull else { return nil }
        let text = ArgumentRules.plain(value)
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            throw CLIError("run: \(logLevelKey) must be one of \(logLevelNames.joined(separator: ", ")), got \(text)")
        }
        return level
    }

    /// The `log_level` setting of an `aemp run` command line: from the resolved settings (arguments,
    /// rc file, profile), or, when the arguments are only `aemp run`'s own settings (the embedded
    /// default node), from the arguments, which then win over the file as they do in ``runPlan(_:context:)``.
    ///
    /// - Throws: ``CLIError`` for an invalid value.
    static func logLevelSetting(_ arguments: [Value], plan: RunPlan) throws(CLIError) -> Logger.Level? {
        var settings = plan.resolved.settings
        if plan.usesEmbeddedDefaults, arguments.count.isMultiple(of: 2) {
            for index in stride(from: 0, to: arguments.count, by: 2) where arguments[index].stringValue == logLevelKey {
                settings[logLevelKey] = arguments[index + 1]
            }
        }
        return try logLevel(settings)
    }

    /// The level `aemp run` logs at and where it came from: `$AEMP_LOG_LEVEL` when set to a level
    /// (it wins, so a single run can be made more or less verbose without editing a profile), else
    /// the `log_level` setting, else `info`. An unusable `$AEMP_LOG_LEVEL` is ignored with a warning.
    ///
    /// - Throws: ``CLIError`` for an invalid `log_level` setting.
    static func effectiveLogLevel(
        _ arguments: [Value], plan: RunPlan, context: CLIContext
    ) throws(CLIError) -> (level: Logger.Level, source: String) {
        let setting = try logLevelSetting(arguments, plan: plan)
        if let text = context.environment[logLevelVariable], !text.isEmpty {
            if let level = Logger.Level(rawValue: text.lowercased()) { return (level, logLevelVariable) }
            context.errorOutput(
                "aemp: warning: ignoring \(logLevelVariable)=\(text) (expected one of \(logLevelNames.joined(separator: ", ")))")
        }
        if let setting { return (setting, logLevelKey) }
        return (.info, "default")
    }
}
